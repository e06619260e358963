"""The gate's own paths: input rejected before any request, plugin providers, streams, secrets.

Everything runs offline: the ``mock/`` provider, or small plugin providers registered in a
private registry (a plugin is any :class:`~llmgate.providers.base.Provider` subclass).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from llmgate import LLMGate, RetryPolicy
from llmgate._registry import Capabilities, ProviderSpec, Registry
from llmgate.exceptions import (
    AuthError,
    EmbeddingsNotSupported,
    InvalidRequestError,
    ProviderAPIError,
    ProviderConnectionError,
    StreamingNotSupported,
    StructuredOutputError,
    ToolsNotSupported,
    VisionNotSupported,
)
from llmgate.providers.base import Provider
from llmgate.testing import MockReply, scripted
from llmgate.types import (
    Choice,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    ImagePart,
    Message,
    StreamChunk,
    TextPart,
    TokenUsage,
)

USER = [{"role": "user", "content": "hello"}]
NO_WAIT = RetryPolicy(max_retries=2, backoff_factor=0, max_backoff=0, jitter=0)
TOOL = {
    "name": "lookup",
    "description": "Look a thing up",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
}


class City(BaseModel):
    name: str
    population: int


# --------------------------------------------------------------------------- plugin providers


class _AsyncClient:
    """An SDK async client that can only be closed through ``async with``."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def __aexit__(self, *exc: object) -> None:
        self.log.append("async client closed")


class _SyncClient:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def close(self) -> None:
        self.log.append("sync client closed")


class Plugin(Provider):
    """A third-party provider that answers, but has no streaming or embeddings of its own."""

    calls: ClassVar[list[str]] = []
    failures: ClassVar[list[BaseException]] = []

    def create_client(self) -> Any:
        return _SyncClient(self.calls)

    def create_async_client(self) -> Any:
        return _AsyncClient(self.calls)

    def _answer(self, request: CompletionRequest, model: str) -> CompletionResponse:
        self.calls.append(f"complete {model}")
        if self.failures:
            raise self.failures.pop(0)
        return CompletionResponse(
            id="plug-1",
            model=model,
            provider=self.name,
            choices=[
                Choice(
                    index=0,
                    message=Message(
                        role="assistant", content=f"plugin says {request.messages[-1].text}"
                    ),
                    finish_reason="stop",
                )
            ],
            usage=TokenUsage(prompt_tokens=3, completion_tokens=2),
        )

    def complete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        assert self.client is not None
        return self._answer(request, model)

    async def acomplete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        assert self.async_client is not None
        return self._answer(request, model)


class Silent(Plugin):
    """A provider whose streams end before their first chunk."""

    def stream(self, request: CompletionRequest, model: str) -> Iterator[StreamChunk]:
        self.calls.append("stream opened")
        return iter(())

    async def _nothing(self) -> AsyncIterator[StreamChunk]:
        return
        yield  # pragma: no cover - makes this an async generator

    def astream(self, request: CompletionRequest, model: str) -> AsyncIterator[StreamChunk]:
        self.calls.append("stream opened")
        return self._nothing()


@pytest.fixture
def registry() -> Iterator[Registry]:
    Plugin.calls.clear()
    Plugin.failures.clear()
    registry = Registry()
    registry.register(ProviderSpec(name="plug", module="unused:Plugin", key_required=False), Plugin)
    registry.register(
        ProviderSpec(name="silent", module="unused:Silent", key_required=False), Silent
    )
    registry.register(
        ProviderSpec(
            name="textonly",
            module="unused:Plugin",
            key_required=False,
            capabilities=Capabilities(streaming=False, tools=False, vision=False),
        ),
        Plugin,
    )
    registry.register(
        ProviderSpec(
            name="claims",
            module="unused:Plugin",
            key_required=False,
            capabilities=Capabilities(embeddings=True),
        ),
        Plugin,
    )
    yield registry


@pytest.fixture
def gate(registry: Registry) -> Iterator[LLMGate]:
    with LLMGate(registry=registry, retry_policy=NO_WAIT) as g:
        yield g


def test_plugin_answers_and_its_client_is_closed_with_the_gate(registry: Registry) -> None:
    gate = LLMGate(registry=registry)
    assert gate.completion("plug/m1", USER).text == "plugin says hello"
    gate.close()
    assert Plugin.calls == ["complete m1", "sync client closed"]


async def test_async_client_without_close_method_is_closed_through_aexit(
    registry: Registry,
) -> None:
    async with LLMGate(registry=registry) as gate:
        response = await gate.acompletion("plug/m2", USER)
        assert response.text == "plugin says hello"
    assert Plugin.calls == ["complete m2", "async client closed"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"stream": True}, StreamingNotSupported),
        ({"tools": [TOOL]}, ToolsNotSupported),
    ],
)
def test_unsupported_features_are_refused_before_any_call(
    gate: LLMGate, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error, match="textonly/m"):
        gate.completion("textonly/m", USER, **kwargs)
    assert Plugin.calls == []


def test_images_refused_for_a_text_only_model(gate: LLMGate) -> None:
    message = Message(
        role="user",
        content=[TextPart(text="what is this?"), ImagePart.from_bytes(b"\x89PNG", "image/png")],
    )
    with pytest.raises(VisionNotSupported, match="does not accept images"):
        gate.completion("textonly/m", [message])
    assert Plugin.calls == []


def test_image_url_that_is_not_http_is_refused(gate: LLMGate) -> None:
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "ftp://example.invalid/cat.png"}},
        ],
    }
    with pytest.raises(InvalidRequestError, match="unsupported image URL 'ftp://"):
        gate.completion("plug/m", [message])
    assert Plugin.calls == []


def test_provider_without_stream_method_says_it_cannot_stream(gate: LLMGate) -> None:
    with pytest.raises(StreamingNotSupported, match="plug cannot stream"):
        gate.completion("plug/m", USER, stream=True)


async def test_provider_without_astream_method_says_it_cannot_stream(gate: LLMGate) -> None:
    with pytest.raises(StreamingNotSupported, match="plug cannot stream"):
        await gate.acompletion("plug/m", USER, stream=True)


def test_embeddings_claimed_but_not_implemented(gate: LLMGate) -> None:
    with pytest.raises(EmbeddingsNotSupported, match="claims has no embeddings API"):
        gate.embed("claims/e", "text")
    with pytest.raises(EmbeddingsNotSupported, match="plug has no embeddings API"):
        gate.embed("plug/e", "text")  # the spec says no: refused before the provider is asked


async def test_async_embeddings_claimed_but_not_implemented(gate: LLMGate) -> None:
    with pytest.raises(EmbeddingsNotSupported, match="claims has no embeddings API"):
        await gate.aembed("claims/e", ["a", "b"])


def test_unknown_plugin_exception_becomes_a_provider_error(gate: LLMGate) -> None:
    cause = RuntimeError("kaput")
    Plugin.failures.append(cause)
    with pytest.raises(ProviderAPIError, match="RuntimeError: kaput") as info:
        gate.completion("plug/m", USER)
    assert info.value.__cause__ is cause
    assert info.value.provider == "plug" and info.value.model == "m"
    assert Plugin.calls == ["complete m"]  # not retryable: asked once


def test_plugin_connection_errors_are_retried(gate: LLMGate) -> None:
    Plugin.failures.append(ConnectionResetError("peer went away"))
    response = gate.completion("plug/m", USER)
    assert response.text == "plugin says hello"
    assert response.attempts == 2
    Plugin.failures.extend(ConnectionResetError("again") for _ in range(3))
    with pytest.raises(ProviderConnectionError, match="connection failed: again"):
        gate.completion("plug/m", USER)


def test_stream_that_ends_before_any_chunk(gate: LLMGate) -> None:
    stream = gate.completion("silent/m", USER, stream=True)
    assert list(stream) == []
    final = stream.final_response()
    assert final.text == "" and final.finish_reason is None
    assert Plugin.calls == ["stream opened"]


async def test_async_stream_that_ends_before_any_chunk(gate: LLMGate) -> None:
    stream = await gate.acompletion("silent/m", USER, stream=True)
    assert [chunk async for chunk in stream] == []
    assert stream.final_response().text == ""


# --------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    ("model", "messages", "message"),
    [
        (None, USER, "no model given"),
        ("mock/a", None, "no messages given"),
        ("mock/a", "hello", "messages must be a list"),
        ("mock/a", 42, "messages must be a list"),
        ("mock/a", [], "messages is empty"),
        ("mock/a", [{"role": "wizard", "content": "hi"}], r"messages\[0\] is malformed"),
        ([], USER, "model is an empty list"),
    ],
)
def test_bad_call_arguments_are_rejected_before_any_request(
    model: Any, messages: Any, message: str
) -> None:
    with scripted() as script, pytest.raises(InvalidRequestError, match=message):
        LLMGate().completion(model, messages)
    assert script.requests == []


def test_bad_parameter_values_are_rejected_with_the_field_named() -> None:
    with scripted() as script, pytest.raises(InvalidRequestError, match="temperature"):
        LLMGate().completion("mock/a", USER, temperature="very hot")
    assert script.requests == []


def test_model_comes_from_defaults_then_from_the_fallback_chain() -> None:
    with scripted("from defaults", "from the chain") as script:
        assert LLMGate(defaults={"model": "mock/d"}).completion(None, USER).text == "from defaults"
        chained = LLMGate(fallback_chain=["mock/first", "mock/second"]).completion(messages=USER)
    assert chained.text == "from the chain"
    assert [r.model for r in script.requests] == ["mock/d", "mock/first"]


@pytest.mark.parametrize("bad", [[1, 2], ["ok", None], {"a": "b"}, 7])
def test_embedding_input_must_be_text(bad: Any) -> None:
    with pytest.raises(InvalidRequestError, match="input must be a string or a list of strings"):
        LLMGate().embed("mock/e", bad)


def test_embedding_parameter_values_are_checked() -> None:
    with pytest.raises(InvalidRequestError, match="dimensions"):
        LLMGate().embed("mock/e", "x", dimensions="many")


def test_unknown_embedding_arguments_travel_as_extra_kwargs() -> None:
    with scripted() as script:
        LLMGate().embed("mock/e", "x", dimensions=4, vendor_flag=True, extra_kwargs={"a": 1})
    (request,) = script.requests
    assert isinstance(request, EmbeddingRequest)
    assert request.extra_kwargs == {"a": 1, "vendor_flag": True}
    assert request.dimensions == 4


def test_gate_repr_names_its_settings_not_its_key() -> None:
    gate = LLMGate(
        api_key="sk-very-secret", base_url="http://127.0.0.1:1", fallback_chain=["mock/x"]
    )
    text = repr(gate)
    assert "sk-very-secret" not in text
    assert "base_url='http://127.0.0.1:1'" in text and "fallback_chain=['mock/x']" in text


# --------------------------------------------------------------------------- secrets in errors


def test_a_key_echoed_by_the_vendor_is_redacted_from_the_error() -> None:
    key = "sk-live-0123456789"
    reply = MockReply(error_status=401, error_message=f"Incorrect API key provided: {key}.")
    with scripted(reply), pytest.raises(AuthError) as info:
        LLMGate(api_key=key).completion("mock/a", USER)
    assert key not in str(info.value)
    assert info.value.message == "Incorrect API key provided: [redacted]."
    assert info.value.args == (info.value.message,)


def test_secret_provider_options_are_redacted_too() -> None:
    token = "tok-abcdefgh"
    reply = MockReply(error_status=403, error_message=f"token {token} lacks permission")
    gate = LLMGate(provider_options={"mock": {"session_token": token}})
    with scripted(reply), pytest.raises(AuthError, match=r"token \[redacted\] lacks"):
        gate.completion("mock/a", USER)


def test_error_without_secrets_is_left_alone() -> None:
    reply = MockReply(error_status=400, error_message="bad request: ab")
    with scripted(reply), pytest.raises(ProviderAPIError) as info:
        LLMGate(api_key="ab").completion("mock/a", USER)  # too short to be worth redacting
    assert info.value.message == "bad request: ab"


# --------------------------------------------------------------------------- structured output


def test_parse_when_the_model_calls_a_tool_instead() -> None:
    reply = MockReply(tool_calls=[{"id": "c1", "name": "lookup", "arguments": {"q": "Paris"}}])
    with scripted(reply), pytest.raises(StructuredOutputError, match="without structured output"):
        LLMGate().parse("mock/a", USER, response_format=City, tools=[TOOL])


async def test_async_structured_stream_carries_partial_then_validated_objects() -> None:
    text = '{"name": "Lyon", "population": 522250}'
    cut = text.index("population")
    with scripted(MockReply(text=text, chunks=[text[:cut], text[cut:-3], text[-3:]])):
        stream = await LLMGate().acompletion("mock/a", USER, stream=True, response_format=City)
        chunks = [chunk async for chunk in stream]
    assert chunks[0].parsed == {"name": "Lyon"}
    assert chunks[-1].parsed == City(name="Lyon", population=522250)
    assert stream.final_response().parsed == City(name="Lyon", population=522250)


async def test_async_structured_stream_closes_the_source_when_abandoned() -> None:
    text = '{"name": "Nice", "population": 1}'
    with scripted(MockReply(text=text, chunks=[text[:5], text[5:]])):
        stream = await LLMGate().acompletion("mock/a", USER, stream=True, response_format=City)
        first = await stream.__anext__()
        await stream.aclose()
        await stream.aclose()  # closing twice is harmless
    assert first.delta == text[:5]
    assert [chunk async for chunk in stream] == []


def test_sync_stream_close_is_idempotent_and_exposes_its_accumulator() -> None:
    with scripted(MockReply(text="one two three")):
        stream = LLMGate().completion("mock/a", USER, stream=True)
        next(stream)
        assert stream.accumulator.text == "one"
        stream.close()
        stream.close()
    assert list(stream) == []
    with pytest.raises(RuntimeError, match="needs the stream consumed first"):
        stream.final_response()


def test_stream_knows_when_it_is_inside_a_tool_call() -> None:
    reply = MockReply(text="checking", tool_calls=[{"id": "c1", "name": "lookup", "arguments": {}}])
    with scripted(reply):
        stream = LLMGate().completion("mock/a", USER, stream=True, tools=[TOOL])
        seen = []
        for chunk in stream:
            seen.append(stream.accumulator.in_tool_call)
            if chunk.finish_reason:
                break
    assert seen == [False, True, False]
