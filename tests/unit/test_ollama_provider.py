"""The Ollama provider end to end: the real ``ollama`` SDK against the NDJSON fake."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import pytest
from pydantic import ValidationError

from llmgate import LLMGate, RetryPolicy
from llmgate.exceptions import (
    AuthError,
    BadRequestError,
    InvalidRequestError,
    ProviderAPIError,
    ProviderConnectionError,
    RateLimitError,
    ServerError,
    VisionNotSupported,
)
from llmgate.providers.ollama import OllamaProvider
from llmgate.providers.ollama.provider import DEFAULT_HOST, map_ollama_error
from llmgate.types import ImagePart, Message, TextPart
from tests.fakes.ollama import OllamaFake, OllamaWire
from tests.fakes.server import (
    EmbeddingReply,
    FakeServer,
    FakeToolCall,
    FakeVendor,
    Fault,
    RecordedRequest,
    Reply,
    Response,
)

USER = [{"role": "user", "content": "Hi"}]
MODEL = "ollama/llama3.2:3b"
EMBED_MODEL = "ollama/nomic-embed-text"
WIRE = OllamaWire()
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
FAST = RetryPolicy(max_retries=2, backoff_factor=0.001, max_backoff=0.01, max_retry_after=0.05)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(OllamaFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[FakeVendor]:
    server.vendor.reset()
    yield server.vendor
    server.vendor.reset()


def make_gate(base_url: str, **options: Any) -> LLMGate:
    settings = {"api_key": "fake-ollama-key", "base_url": base_url, **options}
    return LLMGate(retry_policy=FAST, provider_options={"ollama": settings})


@pytest.fixture
def gate(fake: FakeVendor) -> Iterator[LLMGate]:
    with make_gate(fake.base_url) as g:
        yield g


def provider_of(gate: LLMGate) -> OllamaProvider:
    provider = next(iter(gate._providers.values()))
    assert isinstance(provider, OllamaProvider)
    return provider


# --------------------------------------------------------------------------- clients


def test_key_goes_as_bearer_header(gate: LLMGate, fake: FakeVendor) -> None:
    gate.completion(MODEL, USER)
    assert fake.last.headers["authorization"] == "Bearer fake-ollama-key"
    assert fake.last.path == "/api/chat"


def test_no_key_sends_no_authorization(fake: FakeVendor) -> None:
    with LLMGate(provider_options={"ollama": {"base_url": fake.base_url}}) as gate:
        gate.completion(MODEL, USER)
    assert "authorization" not in fake.last.headers


def test_env_key_is_read_through_the_spec(
    fake: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "env-fake-key")
    with LLMGate(provider_options={"ollama": {"base_url": fake.base_url}}) as gate:
        gate.completion(MODEL, USER)
    assert fake.last.headers["authorization"] == "Bearer env-fake-key"


def test_default_host() -> None:
    with LLMGate() as gate:
        spec, _ = gate.registry.resolve(MODEL)
        provider = gate.provider_for(spec)
        assert provider.base_url == DEFAULT_HOST


def test_one_client_per_timeout(gate: LLMGate, fake: FakeVendor) -> None:
    gate.completion(MODEL, USER, timeout=5)
    gate.completion(MODEL, USER, timeout=5)
    gate.completion(MODEL, USER, timeout=7)
    provider = provider_of(gate)
    assert provider.sync_client(5) is provider.sync_client(5)
    assert provider.sync_client(5) is not provider.sync_client(7)
    assert provider.sync_client(7)._client.timeout == httpx.Timeout(7)


def test_base_client_properties_are_the_default_timeout_clients(gate: LLMGate) -> None:
    gate.completion(MODEL, USER)
    provider = provider_of(gate)
    assert provider.client is provider.sync_client(None)


def test_client_cache_is_bounded(gate: LLMGate) -> None:
    gate.completion(MODEL, USER)
    provider = provider_of(gate)
    first = provider.sync_client(0.5)
    for i in range(provider.max_cached_clients + 1):
        provider.sync_client(1.0 + i)
    assert len(provider._sync_clients) == provider.max_cached_clients
    assert provider.sync_client(0.5) is not first


# --------------------------------------------------------------------------- chat


def test_wire_shape(gate: LLMGate, fake: FakeVendor) -> None:
    message = Message(role="user", content=[TextPart(text="What?"), ImagePart.from_bytes(PNG)])
    gate.completion(
        MODEL,
        [{"role": "system", "content": "Be brief."}, message],
        max_tokens=20,
        temperature=0.5,
        stop=["END"],
        seed=3,
        keep_alive="1m",
    )
    body = fake.last.json
    assert body["model"] == "llama3.2:3b"
    assert body["stream"] is False
    assert body["keep_alive"] == "1m"
    assert body["options"] == {"num_predict": 20, "temperature": 0.5, "stop": ["END"], "seed": 3}
    assert WIRE.system(fake.last) == "Be brief."
    assert WIRE.image_bytes(fake.last) == [PNG]


def test_think_reaches_the_wire(gate: LLMGate, fake: FakeVendor) -> None:
    fake.push(Reply(text="42", reasoning="Six sevens."))
    response = gate.completion(MODEL, USER, reasoning_effort="medium")
    assert WIRE.think(fake.last) == "medium"
    assert response.reasoning == "Six sevens."
    gate.completion(MODEL, USER, think=True)
    assert WIRE.think(fake.last) is True


def test_reasoning_is_sent_back_as_thinking(gate: LLMGate, fake: FakeVendor) -> None:
    fake.push(Reply(text="42", reasoning="Six sevens."))
    first = gate.completion(MODEL, USER)
    gate.completion(MODEL, [*USER, first.message, {"role": "user", "content": "Why?"}])
    assistant = fake.last.json["messages"][1]
    assert assistant == {"role": "assistant", "content": "42", "thinking": "Six sevens."}


def test_tool_round_trip_names_the_tool(gate: LLMGate, fake: FakeVendor) -> None:
    fake.push(Reply(tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})]))
    first = gate.completion(MODEL, USER, tools=[WEATHER])
    assert first.tool_calls is not None
    call = first.tool_calls[0]
    gate.completion(
        MODEL,
        [*USER, first.message, {"role": "tool", "tool_call_id": call.id, "content": "18C"}],
        tools=[WEATHER],
    )
    assert fake.last.json["messages"][2] == {
        "role": "tool",
        "content": "18C",
        "tool_name": "get_weather",
    }


def test_streamed_and_whole_tool_ids_match(gate: LLMGate, fake: FakeVendor) -> None:
    reply = Reply(tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})])
    fake.push(reply, reply)
    whole = gate.completion(MODEL, USER, tools=[WEATHER])
    streamed = gate.completion(MODEL, USER, tools=[WEATHER], stream=True).until_done()
    assert whole.tool_calls == streamed.tool_calls


def test_tool_choice_required_warns(gate: LLMGate, fake: FakeVendor) -> None:
    with pytest.warns(UserWarning, match="tool_choice='required'"):
        gate.completion(MODEL, USER, tools=[WEATHER], tool_choice="required")
    assert WIRE.tool_names(fake.last) == ["get_weather"]


def test_strict_params_refuse_before_any_request(fake: FakeVendor) -> None:
    with LLMGate(
        strict_params=True, provider_options={"ollama": {"base_url": fake.base_url}}
    ) as gate:
        with pytest.raises(InvalidRequestError, match="tool_choice"):
            gate.completion(MODEL, USER, tools=[WEATHER], tool_choice="get_weather")
        with pytest.raises(InvalidRequestError, match="'logit_bias'"):
            gate.completion(MODEL, USER, logit_bias={"1": 2})
    assert fake.requests == []


def test_stream_reasoning_deltas(gate: LLMGate, fake: FakeVendor) -> None:
    fake.push(Reply(text="The answer", reasoning="Think hard first"))
    chunks = list(gate.completion(MODEL, USER, stream=True))
    assert "".join(c.reasoning_delta or "" for c in chunks) == "Think hard first"
    assert "".join(c.delta for c in chunks) == "The answer"
    assert WIRE.is_stream(fake.last)


async def test_async_stream_and_embed(gate: LLMGate, fake: FakeVendor) -> None:
    fake.push(Reply(text="a b c", prompt_tokens=2, completion_tokens=3))
    stream = await gate.acompletion(MODEL, USER, stream=True)
    final = await stream.until_done()
    assert final.text == "a b c"
    assert final.usage.total_tokens == 5
    response = await gate.aembed(EMBED_MODEL, ["x", "y"], dimensions=3)
    assert [len(v) for v in response.embeddings] == [3, 3]
    await provider_of(gate).aclose()


async def test_aclose_releases_async_connections(gate: LLMGate, fake: FakeVendor) -> None:
    assert fake.server is not None
    gc.collect()
    baseline = fake.server.open_connections
    await gate.acompletion(MODEL, USER)
    await gate.acompletion(MODEL, USER, timeout=3)
    provider = provider_of(gate)
    assert fake.server.open_connections > baseline
    await provider.aclose()
    for _ in range(200):
        if fake.server.open_connections <= baseline:
            break
        await asyncio.sleep(0.01)
    assert fake.server.open_connections <= baseline
    assert provider.async_client_for(None) is not None  # a fresh one is made on demand


# --------------------------------------------------------------------------- images


class ImageHost(FakeVendor):
    name = "images"

    def handle(self, request: RecordedRequest) -> Response:
        if request.path == "/cat.png":
            return Response(headers={"content-type": "image/png"}, body=PNG)
        return Response(status=404, body=b"missing")


@pytest.fixture(scope="module")
def image_host() -> Iterator[FakeServer]:
    with FakeServer(ImageHost()) as running:
        yield running


def url_message(url: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


def test_image_url_refused_without_opt_in(gate: LLMGate, fake: FakeVendor) -> None:
    with pytest.raises(VisionNotSupported, match="allow_image_download"):
        gate.completion(MODEL, url_message("https://img.test/cat.png"))
    assert fake.requests == []


def test_image_url_downloaded_with_opt_in(fake: FakeVendor, image_host: FakeServer) -> None:
    with make_gate(fake.base_url, allow_image_download=True) as gate:
        gate.completion(MODEL, url_message(f"{image_host.url}/cat.png"))
    assert WIRE.image_bytes(fake.last) == [PNG]


async def test_async_image_download(fake: FakeVendor, image_host: FakeServer) -> None:
    with make_gate(fake.base_url, allow_image_download=True) as gate:
        await gate.acompletion(MODEL, url_message(f"{image_host.url}/cat.png"))
        await provider_of(gate).aclose()
    assert WIRE.image_bytes(fake.last) == [PNG]


def test_image_download_size_cap(fake: FakeVendor, image_host: FakeServer) -> None:
    with make_gate(fake.base_url, allow_image_download=True, image_max_bytes=10) as gate:
        with pytest.raises(InvalidRequestError, match="limit"):
            gate.completion(MODEL, url_message(f"{image_host.url}/cat.png"))
    assert fake.requests == []


def test_image_download_failure(fake: FakeVendor, image_host: FakeServer) -> None:
    with make_gate(fake.base_url, allow_image_download=True) as gate:
        with pytest.raises(InvalidRequestError, match="could not download"):
            gate.completion(MODEL, url_message(f"{image_host.url}/missing.png"))


# --------------------------------------------------------------------------- streams


class TruncatingFake(OllamaFake):
    """Ends the NDJSON stream cleanly but without its ``done`` line."""

    def stream_response(self, reply: Reply, body: dict[str, Any]) -> Response:
        complete = super().stream_response(reply, body)
        assert complete.stream is not None
        pieces = [p for p in complete.stream if isinstance(p, bytes)]
        return Response(status=200, headers=complete.headers, stream=pieces[:-1])


def test_stream_without_done_line_is_an_error() -> None:
    with FakeServer(TruncatingFake()) as server, make_gate(server.url) as gate:
        stream = gate.completion(MODEL, USER, stream=True, max_retries=0)
        with pytest.raises(ProviderConnectionError, match="done"):
            list(stream)
        assert stream.text == "Hello from the fake."


def test_malformed_whole_response(gate: LLMGate, fake: FakeVendor) -> None:
    fake.push(Fault(status=200, body="this is not json"))
    with pytest.raises(ProviderAPIError, match="malformed"):
        gate.completion(MODEL, USER, max_retries=0)


# --------------------------------------------------------------------------- embeddings


def test_embed_wire_and_usage(gate: LLMGate, fake: FakeVendor) -> None:
    fake.push(EmbeddingReply(vectors=[[0.5, 0.25]], prompt_tokens=4))
    response = gate.embed(EMBED_MODEL, "hello", truncate="true", dimensions=2, keep_alive=0)
    assert response.embeddings == [[0.5, 0.25]]
    assert response.usage.prompt_tokens == 4
    assert response.model == "nomic-embed-text"
    body = fake.last.json
    assert fake.last.path == "/api/embed"
    assert (body["input"], body["truncate"], body["dimensions"], body["keep_alive"]) == (
        ["hello"],
        True,
        2,
        0,
    )


def test_embed_splits_large_inputs(gate: LLMGate, fake: FakeVendor) -> None:
    texts = [f"t{i}" for i in range(OllamaProvider.embedding_batch_size + 3)]
    response = gate.embed(EMBED_MODEL, texts)
    assert len(response.embeddings) == len(texts)
    sizes = sorted(len(WIRE.embedding_inputs(r)) for r in fake.requests)
    assert sizes == [3, OllamaProvider.embedding_batch_size]


def test_embed_count_mismatch(gate: LLMGate, fake: FakeVendor) -> None:
    fake.push(EmbeddingReply(vectors=[[1.0]]))
    with pytest.raises(ProviderAPIError, match="1 embeddings for 2 inputs"):
        gate.embed(EMBED_MODEL, ["a", "b"])


# --------------------------------------------------------------------------- errors


def test_http_error_keeps_status_and_headers(gate: LLMGate, fake: FakeVendor) -> None:
    fake.push(Fault(status=429, message="slow down", headers={"retry-after": "4"}))
    with pytest.raises(RateLimitError) as info:
        gate.completion(MODEL, USER, max_retries=0)
    error = info.value
    assert (error.status_code, error.retry_after, error.message) == (429, 4.0, "slow down")
    assert isinstance(error.__cause__, ollama.ResponseError)


def test_model_not_found(gate: LLMGate, fake: FakeVendor) -> None:
    fake.push(Fault(status=404, message="model 'llama9' not found, try pulling it first"))
    with pytest.raises(BadRequestError, match="try pulling it first") as info:
        gate.completion(MODEL, USER, max_retries=0)
    assert info.value.status_code == 404


def test_error_body_in_stream_request(gate: LLMGate, fake: FakeVendor) -> None:
    fake.push(Fault(status=503, message="server busy", headers={"retry-after": "1"}))
    with pytest.raises(ServerError) as info:
        list(gate.completion(MODEL, USER, stream=True, max_retries=0))
    assert (info.value.status_code, info.value.retry_after) == (503, 1.0)


@pytest.mark.parametrize(
    ("message", "error_class"),
    [
        ("too many requests: rate limit exceeded", RateLimitError),
        ("unauthorized", AuthError),
        ("model 'x' not found", BadRequestError),
        ("input exceeds maximum context length", BadRequestError),
        ("server busy, please try again", ServerError),
        ("an error was encountered while running the model: unexpected EOF", ServerError),
    ],
)
def test_in_stream_error_lines(message: str, error_class: type) -> None:
    error = map_ollama_error(ollama.ResponseError(message), provider="ollama", model="m")
    assert type(error) is error_class
    assert error.status_code is None  # type: ignore[attr-defined]


def test_in_stream_error_json_text() -> None:
    raw = json.dumps({"error": "too many requests"})
    error = map_ollama_error(ollama.ResponseError(raw), provider="ollama", model="m")
    assert isinstance(error, RateLimitError)
    assert error.message == "too many requests"


def test_request_error_is_invalid_request() -> None:
    error = map_ollama_error(
        ollama.RequestError("must provide a model"), provider="ollama", model=""
    )
    assert isinstance(error, InvalidRequestError)


def test_validation_errors_by_side() -> None:
    with pytest.raises(ValidationError) as request_side:
        ollama.Client(host=DEFAULT_HOST).chat(model="", messages=[])
    assert isinstance(
        map_ollama_error(request_side.value, provider="ollama", model=""), InvalidRequestError
    )
    with pytest.raises(ValidationError) as response_side:
        ollama.ChatResponse.model_validate({"done": True})
    mapped = map_ollama_error(response_side.value, provider="ollama", model="m")
    assert type(mapped) is ProviderAPIError


def test_builtin_connection_error_and_timeouts() -> None:
    refused = map_ollama_error(ConnectionError("Failed to connect"), provider="ollama", model="m")
    assert isinstance(refused, ProviderConnectionError)
    timeout = map_ollama_error(httpx.ReadTimeout("slow"), provider="ollama", model="m")
    assert timeout.retryable  # type: ignore[attr-defined]
    assert type(timeout).__name__ == "ProviderTimeoutError"


def test_unknown_exception_falls_back() -> None:
    error = map_ollama_error(RuntimeError("boom"), provider="ollama", model="m")
    assert type(error) is ProviderAPIError and "boom" in str(error)


def test_clients_share_one_tls_context(gate: LLMGate) -> None:
    gate.completion(MODEL, USER)
    provider = provider_of(gate)
    context = provider._verify()
    assert isinstance(context, ssl.SSLContext)
    assert provider._verify() is context


def test_verify_option_is_passed_through(fake: FakeVendor) -> None:
    with make_gate(fake.base_url, verify=False) as gate:
        gate.completion(MODEL, USER)
        assert provider_of(gate)._verify() is False
