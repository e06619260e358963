"""The Cohere provider driving the real ``cohere`` SDK against the loopback fake.

Covers what the conformance suite cannot express neutrally: Cohere's error-frame shapes
inside a stream, tool plans and citations round-tripping, the error table's edge statuses,
embedding types, and the base URL being read at call time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmgate import LLMGate, RetryPolicy
from llmgate._streaming import accumulate
from llmgate.exceptions import (
    AuthError,
    InvalidRequestError,
    ProviderAPIError,
    ProviderConnectionError,
    RateLimitError,
    ServerError,
)
from tests.fakes.cohere import CohereFake, RawJSON, RawStream, frame, typed
from tests.fakes.server import EmbeddingReply, FakeServer, FakeToolCall, Fault, Reply

MODEL = "cohere/command-a-03-2025"
EMBED_MODEL = "cohere/embed-v4.0"
USER = [{"role": "user", "content": "Hi"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(CohereFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[CohereFake]:
    vendor = server.vendor
    assert isinstance(vendor, CohereFake)
    vendor.reset()
    yield vendor
    vendor.reset()


@pytest.fixture
def gate(fake: CohereFake) -> Iterator[LLMGate]:
    options = {"cohere": {"api_key": "fake-cohere-key", "base_url": fake.base_url}}
    with LLMGate(max_retries=0, provider_options=options) as g:
        yield g


START = typed("message-start", id="m-1", delta={"message": {"role": "assistant"}})
TEXT_START = typed(
    "content-start", index=0, delta={"message": {"content": {"type": "text", "text": ""}}}
)
HELLO = typed("content-delta", index=0, delta={"message": {"content": {"text": "Hello"}}})
END = typed(
    "message-end",
    id="m-1",
    delta={
        "finish_reason": "COMPLETE",
        "usage": {"tokens": {"input_tokens": 3, "output_tokens": 1}},
    },
)


# --------------------------------------------------------------------------- clients


def test_requests_carry_the_key_and_reach_v2_chat(gate: LLMGate, fake: CohereFake) -> None:
    gate.completion(MODEL, USER)
    sent = fake.last
    assert sent.path == "/v2/chat"
    assert sent.headers["authorization"] == "Bearer fake-cohere-key"
    assert sent.json["model"] == "command-a-03-2025"


def test_base_url_variable_is_read_at_call_time(
    fake: CohereFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CO_API_URL set after ``import cohere`` still counts (the SDK alone would ignore it)."""
    monkeypatch.setenv("CO_API_URL", fake.base_url)
    monkeypatch.setenv("CO_API_KEY", "env-key")
    with LLMGate(max_retries=0) as gate:
        assert gate.completion(MODEL, USER).text == "Hello from the fake."
    assert fake.last.headers["authorization"] == "Bearer env-key"


def test_strict_params_refuse_before_sending(fake: CohereFake) -> None:
    options = {"cohere": {"api_key": "k", "base_url": fake.base_url}}
    with LLMGate(strict_params=True, provider_options=options) as gate:
        with pytest.raises(InvalidRequestError, match="parallel_tool_calls"):
            gate.completion(MODEL, USER, tools=[WEATHER], parallel_tool_calls=False)
    assert fake.requests == []


# --------------------------------------------------------------------------- streams


@pytest.mark.parametrize(
    ("error_frame", "error_class", "status"),
    [
        (frame("error", {"error": {"message": "slow down", "code": 429}}), RateLimitError, 429),
        (frame("error", {"message": "unavailable", "status": 503}), ServerError, 503),
        (frame("error", {"error": "internal failure"}), ServerError, None),
    ],
    ids=["nested", "flat", "bare-string"],
)
def test_stream_error_frames_raise_mapped_errors(
    gate: LLMGate, fake: CohereFake, error_frame: bytes, error_class: type, status: int | None
) -> None:
    fake.push(RawStream([START, TEXT_START, HELLO, error_frame, END]))
    stream = gate.completion(MODEL, USER, stream=True)
    with pytest.raises(error_class) as info:
        for _ in stream:
            pass
    assert stream.text == "Hello"
    assert info.value.status_code == status


def test_error_frame_before_any_text_is_retried(fake: CohereFake) -> None:
    fake.push(
        RawStream([frame("error", {"message": "rate limited", "status": 429})]),
        Reply(text="second try"),
    )
    options = {"cohere": {"api_key": "k", "base_url": fake.base_url}}
    fast = RetryPolicy(max_retries=1, backoff_factor=0.001, max_backoff=0.01)
    with LLMGate(retry_policy=fast, provider_options=options) as gate:
        assert "".join(c.delta for c in gate.completion(MODEL, USER, stream=True)) == "second try"
    assert len(fake.requests) == 2


def test_typed_error_frame_is_not_lost(gate: LLMGate, fake: CohereFake) -> None:
    """The SDK's own parser would skip this frame (unknown type) and report success."""
    typed_error = frame("error", {"type": "error", "message": "overloaded", "code": "529"})
    fake.push(RawStream([START, TEXT_START, HELLO, typed_error, END]))
    with pytest.raises(ServerError, match="overloaded") as info:
        list(gate.completion(MODEL, USER, stream=True))
    assert info.value.status_code == 529


def test_stream_without_message_end_is_a_connection_error(gate: LLMGate, fake: CohereFake) -> None:
    fake.push(RawStream([START, TEXT_START, HELLO]))
    with pytest.raises(ProviderConnectionError, match="message-end"):
        list(gate.completion(MODEL, USER, stream=True))


def test_malformed_frame_is_an_api_error(gate: LLMGate, fake: CohereFake) -> None:
    broken = b'event: content-delta\ndata: {"type": "content-delta", "delta": {\n\n'
    fake.push(RawStream([START, TEXT_START, HELLO, broken, END]))
    with pytest.raises(ProviderAPIError, match="not JSON"):
        list(gate.completion(MODEL, USER, stream=True))


def test_non_event_stream_answer_is_an_api_error(gate: LLMGate, fake: CohereFake) -> None:
    fake.push(RawJSON({"message": "not a stream"}))
    with pytest.raises(ProviderAPIError, match="application/json"):
        list(gate.completion(MODEL, USER, stream=True))


def test_unknown_event_types_and_comments_are_ignored(gate: LLMGate, fake: CohereFake) -> None:
    future = typed("future-event", delta={"message": {"x": 1}})
    fake.push(RawStream([START, b": keep-alive\n\n", future, TEXT_START, HELLO, END]))
    final = accumulate(gate.completion(MODEL, USER, stream=True))
    assert (final.text, final.finish_reason, final.id) == ("Hello", "stop", "m-1")


async def test_async_stream_error_frame(gate: LLMGate, fake: CohereFake) -> None:
    fake.push(RawStream([START, frame("error", {"message": "limit", "status": 429}), END]))
    with pytest.raises(RateLimitError):
        stream = await gate.acompletion(MODEL, USER, stream=True)
        async for _ in stream:
            pass


def test_error_finish_keeps_the_message(gate: LLMGate, fake: CohereFake) -> None:
    ended = typed("message-end", delta={"finish_reason": "ERROR", "error": "model crashed"})
    fake.push(RawStream([START, TEXT_START, HELLO, ended]))
    final = accumulate(gate.completion(MODEL, USER, stream=True))
    assert final.text == "Hello"
    assert final.finish_reason == "error"
    assert final.message.provider_details == {"cohere": {"error": "model crashed"}}


def test_thinking_and_text_stream(gate: LLMGate, fake: CohereFake) -> None:
    fake.push(Reply(text="42", reasoning="Six times seven"))
    chunks = list(gate.completion(MODEL, USER, stream=True))
    assert "".join(c.reasoning_delta or "" for c in chunks) == "Six times seven"
    assert "".join(c.delta for c in chunks) == "42"


# --------------------------------------------------------------------------- round trips


def test_tool_plan_round_trips(gate: LLMGate, fake: CohereFake) -> None:
    fake.push(Reply(tool_calls=[FakeToolCall("get_weather", {"city": "Paris"}, id="c1")]))
    first = gate.completion(MODEL, USER, tools=[WEATHER])
    assert first.message.provider_details == {"cohere": {"tool_plan": "I will call get_weather."}}
    history = [*USER, first.message, {"role": "tool", "tool_call_id": "c1", "content": "18C"}]
    gate.completion(MODEL, history, tools=[WEATHER])
    assistant = fake.last.json["messages"][1]
    assert assistant["tool_plan"] == "I will call get_weather."
    assert "content" not in assistant
    assert fake.last.json["messages"][2] == {"role": "tool", "tool_call_id": "c1", "content": "18C"}


def test_reasoning_goes_back_as_thinking(gate: LLMGate, fake: CohereFake) -> None:
    fake.push(Reply(text="42", reasoning="Six times seven."))
    first = gate.completion(MODEL, USER)
    gate.completion(MODEL, [*USER, first.message])
    assert fake.last.json["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Six times seven."},
        {"type": "text", "text": "42"},
    ]


CITATION = {
    "start": 0,
    "end": 5,
    "text": "Hello",
    "sources": [{"type": "document", "id": "doc-1", "document": {"title": "greeting"}}],
    "type": "TEXT_CONTENT",
}


def test_citations_are_the_same_streamed_or_not(gate: LLMGate, fake: CohereFake) -> None:
    reply = {
        "id": "m-1",
        "finish_reason": "COMPLETE",
        "message": {
            "role": "assistant",
            "content": [{"type": "text", "text": "Hello"}],
            "citations": [CITATION],
        },
        "usage": {"tokens": {"input_tokens": 3, "output_tokens": 1}},
    }
    cited = typed("citation-start", index=0, delta={"message": {"citations": CITATION}})
    fake.push(RawJSON(reply), RawStream([START, TEXT_START, HELLO, cited, END]))
    whole = gate.completion(MODEL, USER)
    streamed = accumulate(gate.completion(MODEL, USER, stream=True))
    assert whole.message.provider_details == {"cohere": {"citations": [CITATION]}}
    assert streamed.message.provider_details == whole.message.provider_details
    assert (streamed.text, streamed.usage) == (whole.text, whole.usage)


def test_billed_units_stand_in_for_missing_token_counts(gate: LLMGate, fake: CohereFake) -> None:
    reply = {
        "id": "m-2",
        "finish_reason": "MAX_TOKENS",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "cut"}]},
        "usage": {"billed_units": {"input_tokens": 4.0, "output_tokens": 2.0}},
    }
    fake.push(RawJSON(reply))
    response = gate.completion(MODEL, USER)
    assert response.finish_reason == "length"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (4, 2)
    assert response.raw.id == "m-2"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "error_class", "retryable"),
    [
        (498, AuthError, False),
        (499, ProviderAPIError, False),
        (501, ServerError, False),
        (503, ServerError, True),
    ],
)
def test_cohere_specific_statuses(
    gate: LLMGate, fake: CohereFake, status: int, error_class: type, retryable: bool
) -> None:
    fake.push(Fault(status=status, message=f"status {status}"))
    with pytest.raises(error_class) as info:
        gate.completion(MODEL, USER)
    error = info.value
    assert type(error) is error_class
    assert (error.status_code, error.retryable) == (status, retryable)
    assert error.message == f"status {status}"
    assert error.request_id == "req-fault-1"


def test_non_json_error_body_and_trace_id(gate: LLMGate, fake: CohereFake) -> None:
    fake.push(
        Fault(
            status=502,
            body="<html>bad gateway</html>",
            request_id=None,
            headers={"x-debug-trace-id": "trace-9", "content-type": "text/html"},
        )
    )
    with pytest.raises(ServerError) as info:
        gate.completion(MODEL, USER)
    assert info.value.message == "<html>bad gateway</html>"
    assert info.value.request_id == "trace-9"


def test_retry_after_ms_is_read(gate: LLMGate, fake: CohereFake) -> None:
    fake.push(Fault(status=429, headers={"retry-after-ms": "250"}))
    with pytest.raises(RateLimitError) as info:
        gate.completion(MODEL, USER)
    assert info.value.retry_after == pytest.approx(0.25)


# --------------------------------------------------------------------------- embeddings


def test_embed_sends_cohere_parameters(gate: LLMGate, fake: CohereFake) -> None:
    fake.push(EmbeddingReply(prompt_tokens=9))
    response = gate.embed(EMBED_MODEL, ["a", "b"], dimensions=8, truncate="start")
    sent = fake.last
    assert sent.path == "/v2/embed"
    assert sent.json == {
        "model": "embed-v4.0",
        "texts": ["a", "b"],
        "input_type": "search_document",
        "embedding_types": ["float"],
        "output_dimension": 8,
        "truncate": "START",
    }
    assert [len(v) for v in response.embeddings] == [8, 8]
    assert response.usage.prompt_tokens == 9
    assert response.provider_details["input_type"] == "search_document"


def test_base64_embeddings_are_decoded(gate: LLMGate, fake: CohereFake) -> None:
    vectors = [[0.5, -0.25, 1.0], [0.0, 0.125, -1.0]]
    fake.push(EmbeddingReply(vectors=vectors))
    response = gate.embed(EMBED_MODEL, ["a", "b"], encoding_format="base64", input_type="query")
    assert fake.last.json["embedding_types"] == ["base64"]
    assert fake.last.json["input_type"] == "search_query"
    assert response.embeddings == vectors


def test_int8_embeddings_come_back_as_floats(gate: LLMGate, fake: CohereFake) -> None:
    fake.push(EmbeddingReply(vectors=[[0.5, -1.0]]))
    response = gate.embed(EMBED_MODEL, "a", encoding_format="int8")
    assert response.embeddings == [[64.0, -127.0]]


def test_more_than_96_texts_are_split(gate: LLMGate, fake: CohereFake) -> None:
    texts = [f"text {i}" for i in range(100)]
    response = gate.embed(EMBED_MODEL, texts)
    sizes = sorted(len(r.json["texts"]) for r in fake.requests)
    assert sizes == [4, 96]
    assert len(response.embeddings) == 100
    assert response.embeddings[99] != response.embeddings[0]


async def test_async_embed(gate: LLMGate, fake: CohereFake) -> None:
    response = await gate.aembed(EMBED_MODEL, ["x", "y", "z"], input_type="classification")
    assert len(response.embeddings) == 3
    assert fake.last.json["input_type"] == "classification"
