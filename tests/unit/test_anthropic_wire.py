"""The Anthropic provider end to end: the real SDK against the wire-level fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from llmgate import LLMGate, RetryPolicy
from llmgate._streaming import accumulate
from llmgate.exceptions import (
    AuthError,
    BadRequestError,
    EmbeddingsNotSupported,
    InvalidRequestError,
    ProviderAPIError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from tests.fakes.anthropic import FAKE_API_KEY, AnthropicFake
from tests.fakes.server import FakeServer, FakeToolCall, Fault, Reply

MODEL = "anthropic/claude-sonnet-4-6"
USER = [{"role": "user", "content": "Hi"}]
NO_RETRIES = RetryPolicy(max_retries=0)

# The SDK warns that claude-sonnet-4-6 is deprecated; not what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(AnthropicFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[AnthropicFake]:
    vendor = server.vendor
    assert isinstance(vendor, AnthropicFake)
    vendor.reset()
    yield vendor
    vendor.reset()


def _gate(fake: AnthropicFake, **kwargs: Any) -> LLMGate:
    options = {"api_key": FAKE_API_KEY, "base_url": fake.base_url, **kwargs.pop("options", {})}
    return LLMGate(retry_policy=NO_RETRIES, provider_options={"anthropic": options}, **kwargs)


@pytest.fixture
def gate(fake: AnthropicFake) -> Iterator[LLMGate]:
    with _gate(fake) as gate:
        yield gate


def _body(fake: AnthropicFake) -> dict[str, Any]:
    body = fake.last.json
    assert isinstance(body, dict)
    return body


def test_bearer_key_and_sdk_retries_off(gate: LLMGate, fake: AnthropicFake) -> None:
    gate.completion(MODEL, USER)
    headers = fake.last.headers
    assert headers["authorization"] == f"Bearer {FAKE_API_KEY}"
    assert "x-api-key" not in headers
    assert headers["anthropic-version"]
    provider = next(iter(gate._providers.values()))
    assert provider.client.max_retries == 0


def test_raw_is_the_sdk_message(gate: LLMGate, fake: AnthropicFake) -> None:
    fake.push(Reply(text="Hello", tool_calls=[FakeToolCall("calc", {"x": 1}, id="toolu_9")]))
    response = gate.completion(MODEL, USER)
    raw = response.raw
    assert isinstance(raw, anthropic.types.Message)
    assert [block.type for block in raw.content] == ["text", "tool_use"]
    assert raw._request_id == response.provider_details["request_id"]
    assert response.raw is raw


def test_default_max_tokens_option(fake: AnthropicFake) -> None:
    with _gate(fake, options={"default_max_tokens": 123}) as gate:
        gate.completion(MODEL, USER)
    assert _body(fake)["max_tokens"] == 123


def test_temperature_is_dropped_with_a_warning(gate: LLMGate, fake: AnthropicFake) -> None:
    with pytest.warns(UserWarning, match="'temperature', 'top_p'"):
        gate.completion(MODEL, USER, temperature=0.3, top_p=0.5)
    assert not {"temperature", "top_p"} & set(_body(fake))


def test_temperature_is_refused_under_strict_params(fake: AnthropicFake) -> None:
    with _gate(fake, strict_params=True) as gate, pytest.raises(InvalidRequestError):
        gate.completion(MODEL, USER, temperature=0.3)
    assert fake.requests == []


def test_prefill_continues_the_assistant_turn(gate: LLMGate, fake: AnthropicFake) -> None:
    fake.push(Reply(text="42}"))
    response = gate.completion(MODEL, [*USER, {"role": "assistant", "content": '{"answer": '}])
    assert response.text == "42}"
    assert _body(fake)["messages"][-1] == {"role": "assistant", "content": '{"answer":'}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_thinking_signature_round_trips(gate: LLMGate, fake: AnthropicFake, stream: bool) -> None:
    fake.push(
        Reply(
            text="Calling.",
            reasoning="Need the weather.",
            reasoning_signature="sig-xyz",
            tool_calls=[FakeToolCall("weather", {"city": "Oslo"}, id="toolu_1")],
        )
    )
    if stream:
        first = accumulate(gate.completion(MODEL, USER, stream=True))
    else:
        first = gate.completion(MODEL, USER)
    history = [*USER, first.message, {"role": "tool", "tool_call_id": "toolu_1", "content": "-3C"}]
    gate.completion(MODEL, history)
    assistant = _body(fake)["messages"][1]
    assert assistant["content"] == [
        {"type": "thinking", "thinking": "Need the weather.", "signature": "sig-xyz"},
        {"type": "text", "text": "Calling."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
    ]


MID_STREAM = [
    (400, BadRequestError),
    (401, AuthError),
    (429, RateLimitError),
    (500, ServerError),
    (529, ServerError),
]


@pytest.mark.parametrize(("status", "error_class"), MID_STREAM, ids=[str(s) for s, _ in MID_STREAM])
def test_error_frame_types(
    gate: LLMGate, fake: AnthropicFake, status: int, error_class: type[ProviderError]
) -> None:
    fake.push(Reply(text="one two three", error_after=1, error_status=status))
    stream = gate.completion(MODEL, USER, stream=True)
    with pytest.raises(error_class) as info:
        list(stream)
    assert stream.text == "one"
    error = info.value
    assert error.status_code == status
    assert error.request_id and error.request_id.startswith("req_fake_")
    assert isinstance(error.__cause__, anthropic.APIStatusError)
    assert error.__cause__.status_code == 200


async def test_async_error_frame(gate: LLMGate, fake: AnthropicFake) -> None:
    fake.push(Reply(text="one two three", error_after=2, error_status=529))
    stream = await gate.acompletion(MODEL, USER, stream=True)
    with pytest.raises(ServerError) as info:
        async for _ in stream:
            pass
    assert info.value.status_code == 529


def test_overloaded_status(gate: LLMGate, fake: AnthropicFake) -> None:
    fake.push(Fault(status=529, message="Overloaded", headers={"retry-after": "2"}))
    with pytest.raises(ServerError) as info:
        gate.completion(MODEL, USER)
    error = info.value
    assert (error.status_code, error.retry_after, error.request_id) == (529, 2.0, "req-fault-1")
    assert "overloaded_error" in str(error)
    assert error.retryable


def test_malformed_frame(gate: LLMGate, fake: AnthropicFake) -> None:
    fake.push(Reply(text="one two three", malformed_after=1))
    with pytest.raises(ProviderAPIError, match="malformed stream event"):
        list(gate.completion(MODEL, USER, stream=True))


def test_connection_dropped_before_an_answer(gate: LLMGate, fake: AnthropicFake) -> None:
    fake.push(Fault(close_connection=True))
    with pytest.raises(ProviderConnectionError):
        gate.completion(MODEL, USER)


def test_long_non_streaming_call_is_refused_before_sending(
    gate: LLMGate, fake: AnthropicFake
) -> None:
    with pytest.raises(InvalidRequestError, match="stream=True"):
        gate.completion(MODEL, USER, max_tokens=100_000)
    assert fake.requests == []
    assert "".join(c.delta for c in gate.completion(MODEL, USER, max_tokens=100_000, stream=True))


def test_embeddings_are_refused_unsent(gate: LLMGate, fake: AnthropicFake) -> None:
    with pytest.raises(EmbeddingsNotSupported):
        gate.embed(MODEL, ["a", "b"])
    assert fake.requests == []


async def test_async_embeddings_are_refused_unsent(gate: LLMGate, fake: AnthropicFake) -> None:
    with pytest.raises(EmbeddingsNotSupported):
        await gate.aembed(MODEL, "a")
    assert fake.requests == []


# The wire path (``_wire.post_arguments`` + ``client.post``) must send what ``create`` sends.

PARITY_CALL: dict[str, Any] = {
    "system": "Be brief.",
    "stop": ["END"],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "calc",
                "description": "Add.",
                "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}},
            },
        }
    ],
    "tool_choice": "required",
    "user": "u-1",
    "extra_headers": {"x-extra": "1"},
    "extra_body": {"service_tier": "auto"},
}


def _llmgate_request(gate: LLMGate, fake: AnthropicFake, stream: bool) -> Any:
    call = dict(PARITY_CALL)
    messages = [{"role": "system", "content": call.pop("system")}, *USER]
    if stream:
        list(gate.completion(MODEL, messages, stream=True, max_tokens=77, **call))
    else:
        gate.completion(MODEL, messages, max_tokens=77, **call)
    return fake.last


def _sdk_request(fake: AnthropicFake, stream: bool) -> Any:
    client = anthropic.Anthropic(api_key=FAKE_API_KEY, base_url=fake.base_url, max_retries=0)
    kwargs: dict[str, Any] = {
        "model": MODEL.split("/", 1)[1],
        "max_tokens": 77,
        "messages": USER,
        "system": "Be brief.",
        "stop_sequences": ["END"],
        "tools": [
            {
                "name": "calc",
                "input_schema": {"type": "object", "properties": {"x": {"type": "integer"}}},
                "description": "Add.",
            }
        ],
        "tool_choice": {"type": "any"},
        "metadata": {"user_id": "u-1"},
        "extra_headers": {"x-extra": "1"},
        "extra_body": {"service_tier": "auto"},
    }
    with client:
        if stream:
            for _ in client.messages.create(stream=True, **kwargs):
                pass
        else:
            client.messages.create(**kwargs)
    return fake.last


RAW_MARKER = "x-stainless-raw-response"


@pytest.mark.parametrize("public", [False, True], ids=["wire", "public-fallback"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_request_is_byte_identical_to_the_sdks(
    gate: LLMGate, fake: AnthropicFake, monkeypatch: pytest.MonkeyPatch, stream: bool, public: bool
) -> None:
    from llmgate.providers.anthropic import _wire

    if public:
        monkeypatch.setattr(_wire, "_BODY_KEYS", None)
    ours = _llmgate_request(gate, fake, stream)
    theirs = _sdk_request(fake, stream)
    assert ours.body == theirs.body
    assert (ours.method, ours.path, ours.query) == (theirs.method, theirs.path, theirs.query)
    # with_raw_response (the public path) also sends its marker header
    sent = {k: v for k, v in ours.headers.items() if not (public and k == RAW_MARKER)}
    assert sent == theirs.headers


@pytest.mark.parametrize("public", [False, True], ids=["wire", "public-fallback"])
def test_results_equal_on_both_paths(
    gate: LLMGate, fake: AnthropicFake, monkeypatch: pytest.MonkeyPatch, public: bool
) -> None:
    from llmgate.providers.anthropic import _wire

    if public:
        monkeypatch.setattr(_wire, "_BODY_KEYS", None)
    reply = Reply(text="Hi", tool_calls=[FakeToolCall("calc", {"x": 1}, id="toolu_1")])
    fake.push(reply, reply)
    whole = gate.completion(MODEL, USER)
    streamed = accumulate(gate.completion(MODEL, USER, stream=True))
    assert whole.text == streamed.text == "Hi"
    assert whole.tool_calls == streamed.tool_calls
    assert whole.usage == streamed.usage
    assert whole.provider_details["request_id"].startswith("req_fake_")
    assert isinstance(whole.raw, anthropic.types.Message)
    assert whole.raw._request_id == whole.provider_details["request_id"]


@pytest.mark.parametrize("public", [False, True], ids=["wire", "public-fallback"])
def test_errors_equal_on_both_paths(
    gate: LLMGate, fake: AnthropicFake, monkeypatch: pytest.MonkeyPatch, public: bool
) -> None:
    from llmgate.providers.anthropic import _wire

    if public:
        monkeypatch.setattr(_wire, "_BODY_KEYS", None)
    fake.push(Fault(status=429, message="Slow down", headers={"retry-after": "3"}))
    with pytest.raises(RateLimitError) as info:
        gate.completion(MODEL, USER)
    error = info.value
    assert (error.status_code, error.retry_after, error.request_id) == (429, 3.0, "req-fault-1")
    assert isinstance(error.__cause__, anthropic.RateLimitError)


def test_user_profile_id_takes_the_public_path(gate: LLMGate, fake: AnthropicFake) -> None:
    gate.completion(MODEL, USER, user_profile_id="prof-1")
    assert fake.last.headers["anthropic-user-profile-id"] == "prof-1"
    assert "user_profile_id" not in _body(fake)


def test_deprecated_model_warns_as_the_sdk_does(gate: LLMGate, fake: AnthropicFake) -> None:
    client = anthropic.Anthropic(api_key=FAKE_API_KEY, base_url=fake.base_url, max_retries=0)
    with pytest.warns(DeprecationWarning) as theirs:
        client.messages.create(model="claude-opus-4-5", max_tokens=10, messages=USER)  # type: ignore[arg-type]
    with pytest.warns(DeprecationWarning) as ours:
        gate.completion("anthropic/claude-opus-4-5", USER)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    client.close()


DELTA = b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}'


@pytest.mark.parametrize(
    ("piece", "data"),
    [
        (b"event: content_block_delta\ndata: " + DELTA + b"\n\n", DELTA),
        (b"event: content_block_delta\r\ndata: " + DELTA + b"\r\n\r\n", None),
        (b"event: content_block_delta\ndata: " + DELTA + b"\n", None),
        (b"event: content_block_delta\ndata: " + DELTA + b"\ndata: {}\n\n", None),
        (b"event: content_block_delta\ndata: " + DELTA + b"\n\nevent: ping\ndata: {}\n\n", None),
        (b"event: ping\ndata: {}\n\n", None),
    ],
    ids=["one-event", "crlf", "unfinished", "two-data-lines", "two-events", "other-event"],
)
def test_only_one_whole_delta_event_skips_the_sse_parser(piece: bytes, data: bytes | None) -> None:
    from llmgate.providers.anthropic.provider import _delta_data

    assert _delta_data(piece) == data


def test_feed_data_equals_feed() -> None:
    import json

    from llmgate.providers.anthropic._convert import StreamTranslator

    events = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        json.loads(DELTA),
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 5}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}},
    ]
    ours, theirs = StreamTranslator("anthropic"), StreamTranslator("anthropic")
    for event in events:
        try:
            expected: Any = theirs.feed(event)
        except Exception as exc:
            expected = type(exc)
        try:
            got: Any = ours.feed_data(json.dumps(event).encode())
        except Exception as exc:
            got = type(exc)
        assert got == expected
