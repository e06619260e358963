"""The same calls made with each raw vendor SDK, as a user of that SDK would write them.

Each ``RawVendor`` is built from the fake's options (fake key, base URL) and offers the
calls the benchmark times against llmgate: a completion, a full stream, an async
completion and, where the vendor has one, an embedding.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

MESSAGES = [{"role": "user", "content": "Hello there"}]


@dataclass
class RawVendor:
    complete: Callable[[], Any]  # returns the reply's text
    stream: Callable[[], int]  # returns the number of text pieces seen
    acomplete: Callable[[], Awaitable[Any]] | None  # a factory, called inside the event loop
    embed: Callable[[], Any] | None
    close: Callable[[], None]
    respond: Callable[[], Any]  # the SDK's whole response: what a batch of calls keeps


def openai_like(options: dict[str, Any], model: str, embedding_model: str | None) -> RawVendor:
    import openai

    client = openai.OpenAI(api_key=options["api_key"], base_url=options["base_url"], max_retries=0)
    holder: dict[str, Any] = {}

    def respond() -> Any:
        return client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]

    def complete() -> Any:
        return respond().choices[0].message.content

    def stream() -> int:
        pieces = 0
        for chunk in client.chat.completions.create(
            model=model,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[arg-type]
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                pieces += 1
        return pieces

    async def acomplete() -> Any:
        aclient = holder.get("async")
        if aclient is None:
            aclient = holder["async"] = openai.AsyncOpenAI(
                api_key=options["api_key"], base_url=options["base_url"], max_retries=0
            )
        result = await aclient.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
        return result.choices[0].message.content

    def embed() -> Any:
        assert embedding_model is not None
        return client.embeddings.create(model=embedding_model, input=["alpha", "beta"]).data

    return RawVendor(
        complete, stream, acomplete, embed if embedding_model else None, client.close, respond
    )


def anthropic_raw(options: dict[str, Any], model: str, embedding_model: str | None) -> RawVendor:
    import anthropic

    client = anthropic.Anthropic(
        api_key=options["api_key"], base_url=options["base_url"], max_retries=0
    )
    holder: dict[str, Any] = {}

    def respond() -> Any:
        return client.messages.create(model=model, max_tokens=1024, messages=MESSAGES)  # type: ignore[arg-type]

    def complete() -> Any:
        return respond().content[0].text

    def stream() -> int:
        pieces = 0
        for event in client.messages.create(
            model=model, max_tokens=1024, messages=MESSAGES, stream=True
        ):  # type: ignore[arg-type]
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                pieces += 1
        return pieces

    async def acomplete() -> Any:
        aclient = holder.get("async")
        if aclient is None:
            aclient = holder["async"] = anthropic.AsyncAnthropic(
                api_key=options["api_key"], base_url=options["base_url"], max_retries=0
            )
        message = await aclient.messages.create(model=model, max_tokens=1024, messages=MESSAGES)  # type: ignore[arg-type]
        return message.content[0].text

    return RawVendor(complete, stream, acomplete, None, client.close, respond)


def gemini_raw(options: dict[str, Any], model: str, embedding_model: str | None) -> RawVendor:
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key=options["api_key"], http_options=types.HttpOptions(base_url=options["base_url"])
    )

    def respond() -> Any:
        return client.models.generate_content(model=model, contents="Hello there")

    def complete() -> Any:
        return respond().text

    def stream() -> int:
        return sum(
            1
            for chunk in client.models.generate_content_stream(model=model, contents="Hello there")
            if chunk.text
        )

    async def acomplete() -> Any:
        result = await client.aio.models.generate_content(model=model, contents="Hello there")
        return result.text

    def embed() -> Any:
        assert embedding_model is not None
        return client.models.embed_content(model=embedding_model, contents=["alpha", "beta"])

    return RawVendor(
        complete, stream, acomplete, embed if embedding_model else None, client.close, respond
    )


def mistral_raw(options: dict[str, Any], model: str, embedding_model: str | None) -> RawVendor:
    from mistralai.client import Mistral

    client = Mistral(api_key=options["api_key"], server_url=options["base_url"])

    def respond() -> Any:
        return client.chat.complete(model=model, messages=MESSAGES)  # type: ignore[arg-type]

    def complete() -> Any:
        return respond().choices[0].message.content

    def stream() -> int:
        pieces = 0
        for event in client.chat.stream(model=model, messages=MESSAGES):  # type: ignore[arg-type]
            if event.data.choices and event.data.choices[0].delta.content:
                pieces += 1
        return pieces

    async def acomplete() -> Any:
        result = await client.chat.complete_async(model=model, messages=MESSAGES)  # type: ignore[arg-type]
        return result.choices[0].message.content

    def embed() -> Any:
        assert embedding_model is not None
        return client.embeddings.create(model=embedding_model, inputs=["alpha", "beta"]).data

    return RawVendor(
        complete, stream, acomplete, embed if embedding_model else None, lambda: None, respond
    )


def cohere_raw(options: dict[str, Any], model: str, embedding_model: str | None) -> RawVendor:
    import cohere

    client = cohere.ClientV2(api_key=options["api_key"], base_url=options["base_url"])
    holder: dict[str, Any] = {}
    no_retry = {"max_retries": 0}

    def respond() -> Any:
        return client.chat(model=model, messages=MESSAGES, request_options=no_retry)  # type: ignore[arg-type]

    def complete() -> Any:
        return respond().message

    def stream() -> int:
        return sum(
            1
            for event in client.chat_stream(
                model=model, messages=MESSAGES, request_options=no_retry
            )  # type: ignore[arg-type]
            if event.type == "content-delta"
        )

    async def acomplete() -> Any:
        aclient = holder.get("async")
        if aclient is None:
            aclient = holder["async"] = cohere.AsyncClientV2(
                api_key=options["api_key"], base_url=options["base_url"]
            )
        result = await aclient.chat(model=model, messages=MESSAGES, request_options=no_retry)  # type: ignore[arg-type]
        return result.message

    def embed() -> Any:
        assert embedding_model is not None
        return client.embed(
            model=embedding_model,
            texts=["alpha", "beta"],
            input_type="search_document",
            embedding_types=["float"],
            request_options=no_retry,
        ).embeddings

    return RawVendor(
        complete, stream, acomplete, embed if embedding_model else None, lambda: None, respond
    )


def bedrock_raw(options: dict[str, Any], model: str, embedding_model: str | None) -> RawVendor:
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "bedrock-runtime",
        region_name=options["region"],
        endpoint_url=options["base_url"],
        aws_access_key_id=options["aws_access_key_id"],
        aws_secret_access_key=options["aws_secret_access_key"],
        config=Config(retries={"total_max_attempts": 1}),
    )
    messages = [{"role": "user", "content": [{"text": "Hello there"}]}]

    def respond() -> Any:
        return client.converse(modelId=model, messages=messages)

    def complete() -> Any:
        return respond()["output"]

    def stream() -> int:
        response = client.converse_stream(modelId=model, messages=messages)
        return sum(1 for event in response["stream"] if "contentBlockDelta" in event)

    def embed() -> Any:
        assert embedding_model is not None
        # Titan embeds one text a call: the two texts llmgate is given, one after the other.
        return [
            json.loads(
                client.invoke_model(modelId=embedding_model, body=json.dumps({"inputText": text}))[
                    "body"
                ].read()
            )
            for text in ("alpha", "beta")
        ]

    return RawVendor(
        complete, stream, None, embed if embedding_model else None, client.close, respond
    )


def ollama_raw(options: dict[str, Any], model: str, embedding_model: str | None) -> RawVendor:
    import ollama

    # the same Authorization header llmgate sends for the target's key
    headers = {"authorization": f"Bearer {options['api_key']}"} if options.get("api_key") else {}
    client = ollama.Client(host=options["base_url"], headers=headers)
    holder: dict[str, Any] = {}

    def respond() -> Any:
        return client.chat(model=model, messages=MESSAGES)

    def complete() -> Any:
        return respond().message.content

    def stream() -> int:
        return sum(
            1
            for part in client.chat(model=model, messages=MESSAGES, stream=True)
            if part.message.content
        )

    async def acomplete() -> Any:
        aclient = holder.get("async")
        if aclient is None:
            aclient = holder["async"] = ollama.AsyncClient(
                host=options["base_url"], headers=headers
            )
        result = await aclient.chat(model=model, messages=MESSAGES)
        return result.message.content

    def embed() -> Any:
        assert embedding_model is not None
        return client.embed(model=embedding_model, input=["alpha", "beta"]).embeddings

    return RawVendor(
        complete,
        stream,
        acomplete,
        embed if embedding_model else None,
        client.close,
        respond,
    )


FACTORIES: dict[str, Callable[[dict[str, Any], str, str | None], RawVendor]] = {
    "openai": openai_like,
    "groq": openai_like,
    "azure": openai_like,
    "anthropic": anthropic_raw,
    "gemini": gemini_raw,
    "mistral": mistral_raw,
    "cohere": cohere_raw,
    "bedrock": bedrock_raw,
    "ollama": ollama_raw,
}
