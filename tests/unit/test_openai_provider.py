"""The OpenAI provider and its presets against the loopback fake, through the real SDK."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel
from typing_extensions import override

from llmgate import LLMGate
from llmgate.exceptions import (
    InvalidRequestError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from llmgate.types import CompletionResponse
from tests.fakes.openai import OpenAIFake
from tests.fakes.server import (
    EmbeddingReply,
    FakeServer,
    FakeVendor,
    RecordedRequest,
    Reply,
    Response,
    json_response,
)

USER = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(OpenAIFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[FakeVendor]:
    server.vendor.reset()
    yield server.vendor
    server.vendor.reset()


def openai_gate(fake: FakeVendor, **kwargs: Any) -> LLMGate:
    options = {"openai": {"api_key": "sk-fake", "base_url": f"{fake.base_url}/v1"}}
    return LLMGate(max_retries=0, provider_options=options, **kwargs)


def test_keyless_preset_sends_a_placeholder_not_the_openai_key(
    fake: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-key-must-not-leak")
    monkeypatch.setenv("VLLM_BASE_URL", f"{fake.base_url}/v1")
    with LLMGate(max_retries=0) as gate:
        assert gate.completion("vllm/qwen3", USER).text
    assert fake.last.headers["authorization"] == "Bearer llmgate-no-key"


def test_preset_reads_its_key_and_base_url_from_the_environment(
    fake: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk-env")
    monkeypatch.setenv("GROQ_BASE_URL", f"{fake.base_url}/openai/v1")
    with LLMGate(max_retries=0) as gate:
        gate.completion("groq/llama-3.3-70b-versatile", USER, max_tokens=9)
    sent = fake.last
    assert sent.path == "/openai/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer gsk-env"
    assert sent.json["max_tokens"] == 9 and "max_completion_tokens" not in sent.json


def test_openai_sends_max_completion_tokens(fake: FakeVendor) -> None:
    with openai_gate(fake) as gate:
        gate.completion("openai/o4-mini", USER, max_tokens=9)
    assert fake.last.json["max_completion_tokens"] == 9 and "max_tokens" not in fake.last.json


class Answer(BaseModel):
    value: int


def test_deepseek_structured_output_uses_json_mode(
    fake: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "ds-key")
    monkeypatch.setenv("DEEPSEEK_BASE_URL", f"{fake.base_url}/v1")
    fake.push(Reply(text='{"value": 42}'))
    with LLMGate(max_retries=0) as gate:
        answer = gate.parse("deepseek/deepseek-chat", USER, response_format=Answer)
    assert answer == Answer(value=42)
    assert fake.last.json["response_format"] == {"type": "json_object"}
    assert "JSON Schema" in fake.last.json["messages"][0]["content"]


def test_strict_params_refuses_before_sending(fake: FakeVendor) -> None:
    with openai_gate(fake, strict_params=True) as gate, pytest.raises(InvalidRequestError):
        gate.completion("openai/gpt-4o-mini", USER, top_k=3)
    assert fake.requests == []


def test_sdk_parameters_and_escape_hatches_reach_the_wire(fake: FakeVendor) -> None:
    with openai_gate(fake) as gate:
        gate.completion(
            "openai/gpt-4o-mini",
            USER,
            reasoning_effort="low",
            extra_body={"custom": 1},
            extra_headers={"x-trace": "t-1"},
        )
    assert fake.last.json["reasoning_effort"] == "low"
    assert fake.last.json["custom"] == 1
    assert fake.last.headers["x-trace"] == "t-1"


def test_raw_is_built_on_first_access(fake: FakeVendor) -> None:
    fake.push(Reply(text="Hi", response_id="chatcmpl-42"))
    with openai_gate(fake) as gate:
        response: CompletionResponse = gate.completion("openai/gpt-4o-mini", USER)
    assert response._raw is None, "the SDK object is not built unless asked for"
    raw = response.raw
    assert type(raw).__name__ == "ChatCompletion"
    assert raw.id == "chatcmpl-42" and raw.choices[0].message.content == "Hi"
    assert response.provider_details["request_id"] == "req-chatcmpl-42"


class ScriptedBodies(FakeVendor):
    """Answers each request with the next raw Response given to it (for odd wire shapes)."""

    name = "openai-raw"

    def __init__(self) -> None:
        super().__init__()
        self.responses: deque[Response] = deque()

    @override
    def handle(self, request: RecordedRequest) -> Response:
        return self.responses.popleft()


@pytest.fixture(scope="module")
def raw_server() -> Iterator[FakeServer]:
    with FakeServer(ScriptedBodies()) as running:
        yield running


def raw_gate(raw_server: FakeServer, name: str = "openai") -> LLMGate:
    base = f"{raw_server.url}/v1"
    return LLMGate(max_retries=0, provider_options={name: {"api_key": "k", "base_url": base}})


def sse(*payloads: Any) -> list[bytes]:
    return [
        f"data: {p if isinstance(p, str) else json.dumps(p)}\r\n\r\n".encode() for p in payloads
    ]


def delta(fields: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "g1",
        "model": "m",
        "choices": [{"index": 0, "delta": fields, "finish_reason": finish}],
        **extra,
    }


USAGE = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}


def test_groq_usage_comments_and_crlf(raw_server: FakeServer) -> None:
    vendor = raw_server.vendor
    assert isinstance(vendor, ScriptedBodies)
    pieces = [b": keep-alive\r\n\r\n", *sse(delta({"content": "Hel"}), delta({"content": "lo"}))]
    pieces += sse(delta({}, "stop", x_groq={"usage": USAGE}), "[DONE]")
    vendor.responses.append(Response(headers={"content-type": "text/event-stream"}, stream=pieces))
    with raw_gate(raw_server, "groq") as gate:
        chunks = list(gate.completion("groq/llama", USER, stream=True))
    assert "".join(c.delta for c in chunks) == "Hello"
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 6


def test_stream_ending_without_done_still_finishes(raw_server: FakeServer) -> None:
    vendor = raw_server.vendor
    assert isinstance(vendor, ScriptedBodies)
    pieces = sse(delta({"content": "a"}), delta({}, "length"))
    vendor.responses.append(Response(headers={"content-type": "text/event-stream"}, stream=pieces))
    with raw_gate(raw_server) as gate:
        chunks = list(gate.completion("openai/gpt-4o-mini", USER, stream=True))
    assert chunks[-1].finish_reason == "length"


def test_error_body_with_status_200(raw_server: FakeServer) -> None:
    vendor = raw_server.vendor
    assert isinstance(vendor, ScriptedBodies)
    body = {"error": {"message": "Rate limit exceeded", "code": 429}}
    vendor.responses.append(json_response(body, headers={"x-request-id": "req-or"}))
    with raw_gate(raw_server) as gate, pytest.raises(RateLimitError) as info:
        gate.completion("openai/gpt-4o-mini", USER)
    assert info.value.request_id == "req-or"


def test_stream_request_answered_with_plain_json(raw_server: FakeServer) -> None:
    vendor = raw_server.vendor
    assert isinstance(vendor, ScriptedBodies)
    message = {
        "role": "assistant",
        "content": "Hi",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }
    body = {
        "id": "j1",
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
    }
    vendor.responses.append(json_response({**body, "usage": USAGE}))
    vendor.responses.append(json_response({"error": {"message": "busy", "type": "server_error"}}))
    with raw_gate(raw_server) as gate:
        response = gate.completion("openai/gpt-4o-mini", USER, stream=True).until_done()
        assert response.text == "Hi" and response.finish_reason == "tool_calls"
        assert [c.id for c in response.tool_calls or []] == ["c1"]
        assert response.usage.total_tokens == 6
        with pytest.raises(ServerError, match="busy"):
            gate.completion("openai/gpt-4o-mini", USER, stream=True)


def test_read_timeout_while_streaming(fake: FakeVendor) -> None:
    fake.push(Reply(text="one two three", chunk_delay=0.5))
    with openai_gate(fake) as gate, pytest.raises(ProviderTimeoutError):
        list(gate.completion("openai/gpt-4o-mini", USER, stream=True, timeout=0.2))


def test_finished_streams_leave_their_connection_reusable() -> None:
    with FakeServer(OpenAIFake()) as server:
        with openai_gate(server.vendor) as gate:
            for _ in range(3):
                assert list(gate.completion("openai/gpt-4o-mini", USER, stream=True))
            gate.completion("openai/gpt-4o-mini", USER)
            time.sleep(0.05)
            assert server.open_connections == 1, "one pooled keep-alive connection served all"
        deadline = time.monotonic() + 2
        while server.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)


def test_embeddings_split_by_batch_size_in_order(fake: FakeVendor) -> None:
    texts = [f"t{i}" for i in range(2049)]
    with openai_gate(fake) as gate:
        response = gate.embed("openai/text-embedding-3-small", texts, dimensions=2)
    sizes = sorted(len(r.json["input"]) for r in fake.requests)
    assert sizes == [1, 2048]
    assert len(response.embeddings) == 2049
    assert response.usage.prompt_tokens == 10


def test_embeddings_base64_asked_by_the_caller_come_back_as_floats(fake: FakeVendor) -> None:
    fake.push(EmbeddingReply(vectors=[[0.5, -0.25]]))
    with openai_gate(fake) as gate:
        response = gate.embed(
            "openai/text-embedding-3-small", "x", encoding_format="base64", user="u-7"
        )
    assert response.embeddings == [[0.5, -0.25]]
    assert fake.last.json["encoding_format"] == "base64" and fake.last.json["user"] == "u-7"
    assert type(response.raw).__name__ == "CreateEmbeddingResponse"


async def test_async_stream_reasoning(fake: FakeVendor) -> None:
    fake.push(Reply(text="42", reasoning="six times seven", cached_tokens=5))
    async with openai_gate(fake) as gate:
        stream = await gate.acompletion("openai/gpt-4o-mini", USER, stream=True)
        response = await stream.until_done()
    assert response.reasoning == "six times seven"
    assert response.usage.cached_prompt_tokens == 5
    assert response.message.provider_details == {"openai": {"reasoning_field": "reasoning_content"}}
