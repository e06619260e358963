"""The Gemini provider class: google-genai's ``Client`` against the Gemini Developer API.

One ``Client`` serves sync calls; each event loop gets its own ``Client`` whose ``.aio`` the
base class closes when that loop shuts down. Every Client shares one SSL context (building
one costs tens of milliseconds) and async calls always go through an ``httpx2`` transport of
their own, so google-genai never switches to aiohttp behind our back. SDK retries are off
(one attempt); the per-call timeout is sent in milliseconds through ``config.http_options``.

Calls take the wire path where they can (``_wire``): the SDK's API client sends the request
llmgate wrote as JSON and raises its errors, llmgate reads the answer's JSON, and the SDK's
objects are built only when a caller reads ``raw``. Requests the wire path does not cover go
through the SDK's public methods.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Any

import httpx2
import pydantic_core
from google.genai import Client
from google.genai import types as gt
from typing_extensions import override

from ..._images import fetch_image, url_not_supported
from ...exceptions import LLMGateError
from ...types import (
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImagePart,
    Message,
    StreamChunk,
)
from ..base import Provider
from . import _wire
from ._convert import (
    ImageLoader,
    StreamTranslator,
    embed_config,
    embedding_response_from_sdk,
    embedding_response_from_wire,
    generate_kwargs,
    is_file_uri,
    map_gemini_error,
    response_from_sdk,
    response_from_wire,
    wire_embed_request,
    wire_request,
)

DEFAULT_TIMEOUT_SECONDS = 600.0

# The HTTP responses an async stream opened in the current task, noted by an httpx2 hook.
_stream_responses: ContextVar[list[Any] | None] = ContextVar(
    "llmgate_gemini_stream_responses", default=None
)


async def _note_stream_response(response: Any) -> None:
    """httpx2 response hook: remember the response an async stream is about to read.

    google-genai's async stream keeps its HTTP response in a reference cycle, so closing
    its generator does not close the response until the garbage collector runs; the
    provider closes the noted response itself, so an abandoned stream frees its connection.
    """
    opened = _stream_responses.get()
    if opened is not None:
        opened.append(response)


async def _next_event(
    events: AsyncIterator[gt.GenerateContentResponse],
) -> gt.GenerateContentResponse | None:
    try:
        return await events.__anext__()
    except StopAsyncIteration:
        return None


def _load(text: str) -> Any:
    """A JSON body as the SDK reads it (an empty body is ``{}``; malformed JSON raises the
    SDK's ``json.JSONDecodeError``)."""
    if not text:
        return {}
    try:
        return pydantic_core.from_json(text)
    except ValueError:
        return json.loads(text)


def _continues(data: Any) -> bool:
    """Whether the answer may carry a continuation token (the SDK decides on its object)."""
    if type(data) is not dict:
        return False
    candidates = data.get("candidates")
    first = candidates[0] if type(candidates) is list and candidates else None
    return type(first) is dict and bool(first.get("continuationToken"))


def _raw_response(
    data: Any, headers: Any, schema: dict[str, Any] | None, *, history: bool
) -> gt.GenerateContentResponse:
    result = _wire.generate_response(data, headers, schema)
    return _wire.with_call_history(result) if history and schema is None else result


def _merged(
    hops: list[gt.GenerateContentResponse], schema: dict[str, Any] | None
) -> gt.GenerateContentResponse:
    merged = _wire.merge_hops(hops, schema)
    return _wire.with_call_history(merged) if schema is None else merged


def _text_embedding_model(model: str) -> bool:
    """Models the SDK embeds text by text (it reads the others' inputs as parts of one)."""
    name = model.rsplit("/", 1)[-1]
    return "gemini" not in name or name.startswith(("gemini-embedding-001", "gemini-embedding-exp"))


def _downloads(request: CompletionRequest) -> bool:
    """Whether translating the request fetches an image over the network."""
    return any(
        image.image_url is not None and not is_file_uri(image.image_url.url)
        for message in request.messages
        for image in message.images
    )


def _without_file_uris(message: Message) -> Message:
    if not isinstance(message.content, list):
        return message
    kept = [
        part
        for part in message.content
        if not (
            isinstance(part, ImagePart)
            and part.image_url is not None
            and is_file_uri(part.image_url.url)
        )
    ]
    return message.model_copy(update={"content": kept})


class GeminiProvider(Provider):
    """``gemini/<model>``: chat, streaming, tools, vision, structured output, embeddings.

    Provider options: ``allow_image_download`` (fetch http(s) image URLs and send the bytes;
    off by default), ``image_download_max_bytes``, ``image_download_timeout`` and
    ``api_version`` (the SDK's default is ``v1``).
    """

    embedding_batch_size = 100  # batchEmbedContents takes at most 100 requests

    # clients -------------------------------------------------------------------------
    _ssl_context: ssl.SSLContext | None = None

    def _new_client(self, *, for_event_loop: bool) -> Client:
        """A Client with llmgate's options (called with the base class's client lock held)."""
        if self._ssl_context is None:
            self._ssl_context = httpx2.create_ssl_context()
        context = self._ssl_context
        # "ssl" serves google-genai's websocket settings; giving the context saves building one.
        async_args: dict[str, Any] = {
            "verify": context,
            "ssl": context,
            "event_hooks": {"response": [_note_stream_response]},
        }
        if for_event_loop:
            async_args["transport"] = httpx2.AsyncHTTPTransport(verify=context)
        options = gt.HttpOptions(
            base_url=self.base_url,
            api_version=self.settings.option("api_version"),
            timeout=round(DEFAULT_TIMEOUT_SECONDS * 1000),
            retry_options=gt.HttpRetryOptions(attempts=1),
            client_args={"verify": context},
            async_client_args=async_args,
        )
        return Client(api_key=self.api_key(), vertexai=False, http_options=options)

    @override
    def create_client(self) -> Client:
        return self._new_client(for_event_loop=False)

    @override
    def create_async_client(self) -> Any:
        # This loop's own pool (an explicit transport also keeps google-genai on httpx2);
        # the base class closes it when the loop shuts down.
        return self._new_client(for_event_loop=True).aio

    @property
    def _strict(self) -> bool:
        return self.strict_params

    # checks ----------------------------------------------------------------------------
    @override
    def check_request(self, request: CompletionRequest, model: str) -> None:
        """As the base, except that Files API URIs are sent by reference (never fetched)."""
        has_file_uris = any(
            image.image_url is not None and is_file_uri(image.image_url.url)
            for message in request.messages
            for image in message.images
        )
        if has_file_uris:
            messages = [_without_file_uris(message) for message in request.messages]
            request = request.model_copy(update={"messages": messages})
        super().check_request(request, model)

    def _image_loader(self, model: str) -> ImageLoader:
        if not self.settings.option("allow_image_download", False):

            def refuse(url: str) -> tuple[bytes, str]:
                raise url_not_supported(self.name, model)

            return refuse
        max_bytes, timeout = self.image_download_limits()
        return lambda url: fetch_image(url, max_bytes=max_bytes, timeout=timeout)

    def _kwargs(self, request: CompletionRequest, model: str) -> dict[str, Any]:
        return generate_kwargs(
            request,
            self._image_loader(model),
            strict=self._strict,
            system_instruction=self.capabilities_for(model).system_prompt,
        )

    async def _akwargs(self, request: CompletionRequest, model: str) -> dict[str, Any]:
        if _downloads(request):
            return await asyncio.to_thread(self._kwargs, request, model)
        return self._kwargs(request, model)

    # calls -----------------------------------------------------------------------------
    # Each call takes the wire path (``_wire``: the SDK sends, llmgate reads the JSON) when
    # the SDK has the pieces it uses and the request is one ``wire_request`` covers; else
    # the SDK's public methods, whose results ``response_from_sdk`` and co. translate.

    def _wire_request(self, api: Any, request: CompletionRequest, model: str) -> Any:
        if api is None:
            return None
        return wire_request(
            request,
            self._image_loader(model),
            system_instruction=self.capabilities_for(model).system_prompt,
        )

    async def _awire_request(self, api: Any, request: CompletionRequest, model: str) -> Any:
        if api is not None and _downloads(request):
            return await asyncio.to_thread(self._wire_request, api, request, model)
        return self._wire_request(api, request, model)

    @override
    def complete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        api = _wire.api_client(self.client)
        wire = self._wire_request(api, request, model)
        if wire is None:
            kwargs = self._kwargs(request, model)
            return response_from_sdk(
                self.client.models.generate_content(model=model, **kwargs), model
            )
        path = f"{_wire.model_path(model)}:generateContent"
        headers, text = _wire.post(api, path, wire.body, wire.options)
        data = _load(text)
        if _continues(data):
            hops = [_raw_response(data, headers, wire.schema, history=False)]
            token = _wire.continuation_token(hops[0])
            while token:
                body = _wire.with_continuation_token(wire.body, token)
                headers, text = _wire.post(api, path, body, wire.options)
                hops.append(_raw_response(_load(text), headers, wire.schema, history=False))
                token = _wire.continuation_token(hops[-1])
            return response_from_sdk(_merged(hops, wire.schema), model)
        return response_from_wire(
            data, model, lambda: _raw_response(data, headers, wire.schema, history=True)
        )

    @override
    async def acomplete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        client = self.async_client
        api = _wire.api_client(client)
        wire = await self._awire_request(api, request, model)
        if wire is None:
            kwargs = await self._akwargs(request, model)
            result = await client.models.generate_content(model=model, **kwargs)
            return response_from_sdk(result, model)
        path = f"{_wire.model_path(model)}:generateContent"
        headers, text = await _wire.apost(api, path, wire.body, wire.options)
        data = _load(text)
        if _continues(data):
            hops = [_raw_response(data, headers, wire.schema, history=False)]
            token = _wire.continuation_token(hops[0])
            while token:
                body = _wire.with_continuation_token(wire.body, token)
                headers, text = await _wire.apost(api, path, body, wire.options)
                hops.append(_raw_response(_load(text), headers, wire.schema, history=False))
                token = _wire.continuation_token(hops[-1])
            return response_from_sdk(_merged(hops, wire.schema), model)
        return response_from_wire(
            data, model, lambda: _raw_response(data, headers, wire.schema, history=True)
        )

    @override
    def stream(self, request: CompletionRequest, model: str) -> Iterator[StreamChunk]:
        api = _wire.api_client(self.client)
        wire = self._wire_request(api, request, model)
        if wire is None:
            yield from self._sdk_stream(request, model)
            return
        path = f"{_wire.model_path(model)}:streamGenerateContent?alt=sse"
        schema = wire.schema
        stream = _wire.WireStream(api, path, wire.body, wire.options)
        translator = StreamTranslator(model)

        def to_sdk(event: Any) -> gt.GenerateContentResponse:
            return _wire.stream_event(event, schema)

        try:
            events = stream.events()
            try:
                for event in events:
                    chunk = translator.feed_wire(event, to_sdk)
                    if chunk is not None:
                        yield chunk
            except _wire.Continued as continued:
                hops = _wire.StreamHops(translator.noted_events(), schema)
                error: Exception | None = None
                try:
                    chunk = translator.feed(hops.observe(continued.result))
                    if chunk is not None:
                        yield chunk
                    for event in events:
                        result = _wire.generate_response(event, None, schema)
                        chunk = translator.feed(hops.observe(result))
                        if chunk is not None:
                            yield chunk
                except Exception as exc:
                    error = exc
                while (token := hops.next_token(error)) is not None:
                    stream.close()
                    error = None
                    try:
                        body = _wire.with_continuation_token(wire.body, token)
                        stream = _wire.WireStream(api, path, body, wire.options)
                        for event in stream.events():
                            result = _wire.generate_response(event, None, schema)
                            chunk = translator.feed(hops.observe(result))
                            if chunk is not None:
                                yield chunk
                    except Exception as exc:
                        error = exc
            yield translator.finish()
        finally:
            stream.close()

    def _sdk_stream(self, request: CompletionRequest, model: str) -> Iterator[StreamChunk]:
        kwargs = self._kwargs(request, model)
        events = self.client.models.generate_content_stream(model=model, **kwargs)
        translator = StreamTranslator(model)
        try:
            for event in events:
                chunk = translator.feed(event)
                if chunk is not None:
                    yield chunk
            yield translator.finish()
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    @override
    async def astream(self, request: CompletionRequest, model: str) -> AsyncIterator[StreamChunk]:
        client = self.async_client
        api = _wire.api_client(client)
        wire = await self._awire_request(api, request, model)
        if wire is None:
            async for chunk in self._sdk_astream(client, request, model):
                yield chunk
            return
        path = f"{_wire.model_path(model)}:streamGenerateContent?alt=sse"
        schema = wire.schema
        translator = StreamTranslator(model)

        def to_sdk(event: Any) -> gt.GenerateContentResponse:
            return _wire.stream_event(event, schema)

        stream = await _wire.AsyncWireStream.open(api, path, wire.body, wire.options)
        try:
            events = stream.events()
            try:
                async for event in events:
                    piece = translator.feed_wire(event, to_sdk)
                    if piece is not None:
                        yield piece
            except _wire.Continued as continued:
                hops = _wire.StreamHops(translator.noted_events(), schema)
                error: Exception | None = None
                try:
                    piece = translator.feed(hops.observe(continued.result))
                    if piece is not None:
                        yield piece
                    async for event in events:
                        result = _wire.generate_response(event, None, schema)
                        piece = translator.feed(hops.observe(result))
                        if piece is not None:
                            yield piece
                except Exception as exc:
                    error = exc
                while (token := hops.next_token(error)) is not None:
                    await stream.aclose()
                    error = None
                    try:
                        body = _wire.with_continuation_token(wire.body, token)
                        stream = await _wire.AsyncWireStream.open(api, path, body, wire.options)
                        async for event in stream.events():
                            result = _wire.generate_response(event, None, schema)
                            piece = translator.feed(hops.observe(result))
                            if piece is not None:
                                yield piece
                    except Exception as exc:
                        error = exc
            yield translator.finish()
        finally:
            await stream.aclose()

    async def _sdk_astream(
        self, client: Any, request: CompletionRequest, model: str
    ) -> AsyncIterator[StreamChunk]:
        kwargs = await self._akwargs(request, model)
        opened: list[Any] = []
        events: AsyncIterator[gt.GenerateContentResponse] | None = None
        translator = StreamTranslator(model)
        try:
            _stream_responses.set(opened)
            try:
                events = await client.models.generate_content_stream(model=model, **kwargs)
                event = await _next_event(events)  # sends the request
            finally:
                _stream_responses.set(None)
            while event is not None:
                chunk = translator.feed(event)
                if chunk is not None:
                    yield chunk
                event = await _next_event(events)
            yield translator.finish()
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
            for response in opened:
                await response.aclose()

    @override
    def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        api = _wire.api_client(self.client) if _text_embedding_model(model) else None
        wire = wire_embed_request(request, _wire.model_path(model)) if api is not None else None
        if wire is None:
            config = embed_config(request, strict=self._strict)
            contents: list[Any] = list(request.input)
            result = self.client.models.embed_content(model=model, contents=contents, config=config)
            return embedding_response_from_sdk(result, model)
        body, options = wire
        path = f"{_wire.model_path(model)}:batchEmbedContents"
        headers, text = _wire.post(api, path, body, options)
        data = _load(text)
        return embedding_response_from_wire(
            data, model, lambda: _wire.embed_response(data, headers)
        )

    @override
    async def aembed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        client = self.async_client
        api = _wire.api_client(client) if _text_embedding_model(model) else None
        wire = wire_embed_request(request, _wire.model_path(model)) if api is not None else None
        if wire is None:
            config = embed_config(request, strict=self._strict)
            contents: list[Any] = list(request.input)
            result = await client.models.embed_content(
                model=model, contents=contents, config=config
            )
            return embedding_response_from_sdk(result, model)
        body, options = wire
        path = f"{_wire.model_path(model)}:batchEmbedContents"
        headers, text = await _wire.apost(api, path, body, options)
        data = _load(text)
        return embedding_response_from_wire(
            data, model, lambda: _wire.embed_response(data, headers)
        )

    # errors ----------------------------------------------------------------------------
    @override
    def map_error(self, exc: BaseException, model: str) -> LLMGateError:
        return map_gemini_error(exc, model)
