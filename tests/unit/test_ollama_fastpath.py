"""Ollama streams read from the wire agree with the SDK's own ``chat(stream=True)``.

llmgate reads the NDJSON lines through the SDK client's httpx client and turns a plain
text line into a chunk without the SDK's ``ChatResponse``; every other line still goes
through it. These tests serve the same bytes to the raw SDK (its parts fed to the same
translator) and to llmgate, and compare the request, the chunks and the errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ollama
import pytest

from llmgate import LLMGate
from llmgate.exceptions import LLMGateError
from llmgate.providers.ollama._convert import StreamTranslator, plain_text
from llmgate.providers.ollama.provider import map_ollama_error
from llmgate.types import StreamChunk
from tests.fakes.ollama import NDJSON, OllamaFake
from tests.fakes.server import FakeServer, Fault, Reply, Response

MODEL = "llama3.2:3b"
USER = [{"role": "user", "content": "Hi"}]


def line(**fields: Any) -> bytes:
    return json.dumps(fields).encode() + b"\n"


def text(content: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "created_at": "2026-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": False,
        **extra,
    }


DONE = line(
    model=MODEL,
    created_at="2026-01-01T00:00:00Z",
    message={"role": "assistant", "content": ""},
    done=True,
    done_reason="stop",
    prompt_eval_count=4,
    eval_count=3,
)


class LinesFake(OllamaFake):
    """Streams exactly the byte pieces it is given."""

    pieces: list[bytes] = []

    def stream_response(self, reply: Reply, body: dict[str, Any]) -> Response:
        return Response(status=200, headers={"content-type": NDJSON}, stream=list(self.pieces))


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(LinesFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[LinesFake]:
    vendor = server.vendor
    assert isinstance(vendor, LinesFake)
    vendor.reset()
    yield vendor
    vendor.reset()


@pytest.fixture
def gate(fake: LinesFake) -> Iterator[LLMGate]:
    options = {"ollama": {"api_key": "fake-ollama-key", "base_url": fake.base_url}}
    with LLMGate(max_retries=0, provider_options=options) as g:
        yield g


def sdk_client(fake: LinesFake) -> ollama.Client:
    return ollama.Client(host=fake.base_url, headers={"authorization": "Bearer fake-ollama-key"})


def sdk_chunks(fake: LinesFake) -> list[StreamChunk]:
    translator = StreamTranslator(MODEL)
    chunks = []
    for part in sdk_client(fake).chat(model=MODEL, messages=USER, stream=True):
        chunk = translator.feed(part)
        if chunk is not None:
            chunks.append(chunk)
    return chunks


def fields(chunk: StreamChunk) -> dict[str, Any]:
    return chunk.model_dump(
        include={"delta", "reasoning_delta", "tool_call_deltas", "finish_reason", "usage", "model"}
    )


SHAPES: dict[str, list[bytes]] = {
    "plain lines, one a piece": [line(**text("Hel")), line(**text("lo")), DONE],
    "several lines a piece, split lines": [
        line(**text("a")) + line(**text("b"))[:7],
        line(**text("b"))[7:] + line(**text("")) + DONE[:-1],
        b"\n",
    ],
    "crlf line ends, last line unterminated": [
        line(**text("x"))[:-1] + b"\r\n",
        DONE[:-1],
    ],
    "model null and extra keys": [
        line(**{**text("m"), "model": None}),
        line(**text("n", total_duration=5)),
        line(**{**text("o"), "message": {"role": "assistant", "content": "o", "images": None}}),
        DONE,
    ],
    "thinking and tool calls": [
        line(**{**text(""), "message": {"role": "assistant", "content": "", "thinking": "hm"}}),
        line(
            **{
                **text(""),
                "message": {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
                },
            }
        ),
        DONE,
    ],
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_chunks_are_the_ones_the_sdk_parts_give(gate: LLMGate, fake: LinesFake, shape: str) -> None:
    fake.pieces = SHAPES[shape]
    expected = [fields(c) for c in sdk_chunks(fake)]
    ours = [fields(c) for c in gate.completion(f"ollama/{MODEL}", USER, stream=True)]
    assert ours == expected


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_async_chunks_are_the_ones_the_sdk_parts_give(
    gate: LLMGate, fake: LinesFake, shape: str
) -> None:
    fake.pieces = SHAPES[shape]
    expected = [fields(c) for c in sdk_chunks(fake)]
    stream = await gate.acompletion(f"ollama/{MODEL}", USER, stream=True)
    assert [fields(c) async for c in stream] == expected


def test_the_request_is_the_one_chat_sends(gate: LLMGate, fake: LinesFake) -> None:
    fake.pieces = [DONE]
    list(gate.completion(f"ollama/{MODEL}", USER, stream=True, temperature=0.5, max_tokens=9))
    list(
        sdk_client(fake).chat(
            model=MODEL,
            messages=USER,
            stream=True,
            options={"num_predict": 9, "temperature": 0.5},
        )
    )
    ours, theirs = fake.requests
    assert (ours.method, ours.path, ours.body) == (theirs.method, theirs.path, theirs.body)
    for name in ("content-type", "accept", "user-agent", "authorization"):
        assert ours.headers.get(name) == theirs.headers.get(name)


def _sdk_stream_error(fake: LinesFake) -> LLMGateError:
    with pytest.raises(Exception) as info:
        sdk_chunks(fake)
    return map_ollama_error(info.value, provider="ollama", model=MODEL)


@pytest.mark.parametrize(
    "pieces",
    [
        [line(**text("a")), line(error="rate limit exceeded")],
        [line(**text("a")), b"{not json\n"],
        [line(**text("a")), b"\n", DONE],
        [line(**{**text("a"), "message": {"role": "assistant", "content": 5}})],
        [line(**{**text("a"), "created_at": 5})],
    ],
    ids=["error line", "broken JSON", "blank line", "content not text", "odd created_at"],
)
def test_stream_errors_are_the_ones_the_sdk_raises(
    gate: LLMGate, fake: LinesFake, pieces: list[bytes]
) -> None:
    fake.pieces = pieces
    theirs = _sdk_stream_error(fake)
    with pytest.raises(LLMGateError) as info:
        list(gate.completion(f"ollama/{MODEL}", USER, stream=True))
    assert type(info.value) is type(theirs)
    assert str(info.value) == str(theirs)


@pytest.mark.parametrize("status", [404, 429, 500])
def test_http_errors_are_the_ones_the_sdk_raises(
    gate: LLMGate, fake: LinesFake, status: int
) -> None:
    fault = Fault(status=status, message="nope", headers={"retry-after": "2"})
    fake.push(fault, fault)
    theirs = _sdk_stream_error(fake)
    with pytest.raises(LLMGateError) as info:
        list(gate.completion(f"ollama/{MODEL}", USER, stream=True))
    assert type(info.value) is type(theirs)
    assert str(info.value) == str(theirs)
    for name in ("status_code", "retry_after", "retryable"):
        assert getattr(info.value, name, None) == getattr(theirs, name, None)


@pytest.mark.parametrize(
    "part",
    [
        {**text("a"), "done": None},
        {**text("a"), "message": {"role": "assistant", "content": None}},
        {**text("a"), "message": {"role": 1, "content": "a"}},
        {**text("a"), "model": 3},
        {**text("a"), "eval_count": 1},
        ["not", "a", "dict"],
    ],
)
def test_only_plain_text_lines_skip_the_sdk_model(part: Any) -> None:
    assert plain_text(part) is None
    assert plain_text(text("a")) == "a"


# --------------------------------------------------------------------------- whole replies


class BodyFake(OllamaFake):
    """Answers a whole (non-streamed) chat with exactly the body it is given."""

    body: bytes = b""

    def chat_response(self, reply: Reply, body: dict[str, Any]) -> Response:
        return Response(status=200, headers={"content-type": "application/json"}, body=self.body)


@pytest.fixture(scope="module")
def body_server() -> Iterator[FakeServer]:
    with FakeServer(BodyFake()) as running:
        yield running


@pytest.fixture
def body_fake(body_server: FakeServer) -> Iterator[BodyFake]:
    vendor = body_server.vendor
    assert isinstance(vendor, BodyFake)
    vendor.reset()
    yield vendor
    vendor.reset()


def reply_fields(response: Any) -> dict[str, Any]:
    return response.model_dump(exclude={"id"})


WHOLE = {
    **text("Hello there"),
    "done": True,
    "done_reason": "stop",
    "total_duration": 10,
    "load_duration": 1,
    "prompt_eval_count": 4,
    "prompt_eval_duration": 2,
    "eval_count": 3,
    "eval_duration": 5,
}
BODIES: dict[str, dict[str, Any]] = {
    "plain": WHOLE,
    "length": {**WHOLE, "done_reason": "length", "load_duration": None},
    "empty model, few fields": {
        "model": "",
        "message": {"role": "assistant", "content": "x"},
        "done": True,
    },
    "thinking": {**WHOLE, "message": {"role": "assistant", "content": "a", "thinking": "hm"}},
    "tool call": {
        **WHOLE,
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
        },
    },
    "extra key": {**WHOLE, "logprobs": None},
    "float counter": {**WHOLE, "eval_count": 3.0},
}


@pytest.mark.parametrize("shape", list(BODIES))
async def test_whole_replies_are_the_ones_chat_gives(body_fake: BodyFake, shape: str) -> None:
    from llmgate.providers.ollama._convert import response_from_chat

    body_fake.body = json.dumps(BODIES[shape]).encode()
    options = {"ollama": {"api_key": "fake-ollama-key", "base_url": body_fake.base_url}}
    sdk = ollama.Client(
        host=body_fake.base_url, headers={"authorization": "Bearer fake-ollama-key"}
    )
    expected_raw = sdk.chat(model=MODEL, messages=USER)
    expected = response_from_chat(expected_raw, model=MODEL)
    with LLMGate(max_retries=0, provider_options=options) as gate:
        ours = gate.completion(f"ollama/{MODEL}", USER)
        ours_async = await gate.acompletion(f"ollama/{MODEL}", USER)
    for response in (ours, ours_async):
        assert reply_fields(response) == reply_fields(expected)
        assert response.raw == expected_raw
    requests = body_fake.requests
    assert requests[0].body == requests[1].body == requests[2].body
    assert json.loads(requests[0].body)["stream"] is False


def test_a_whole_reply_that_is_not_json_fails_as_chat_fails(body_fake: BodyFake) -> None:
    body_fake.body = b"{not json"
    options = {"ollama": {"api_key": "fake-ollama-key", "base_url": body_fake.base_url}}
    sdk = ollama.Client(host=body_fake.base_url)
    with pytest.raises(Exception) as sdk_error:
        sdk.chat(model=MODEL, messages=USER)
    theirs = map_ollama_error(sdk_error.value, provider="ollama", model=MODEL)
    with LLMGate(max_retries=0, provider_options=options) as gate:
        with pytest.raises(LLMGateError) as info:
            gate.completion(f"ollama/{MODEL}", USER)
    assert type(info.value) is type(theirs)
    assert str(info.value) == str(theirs)


@pytest.mark.parametrize("status", [404, 429, 500])
def test_whole_reply_http_errors_are_the_ones_chat_raises(fake: LinesFake, status: int) -> None:
    fault = Fault(status=status, message="nope", headers={"retry-after": "2"})
    fake.push(fault, fault)
    with pytest.raises(Exception) as sdk_error:
        sdk_client(fake).chat(model=MODEL, messages=USER)
    theirs = map_ollama_error(sdk_error.value, provider="ollama", model=MODEL)
    options = {"ollama": {"api_key": "fake-ollama-key", "base_url": fake.base_url}}
    with LLMGate(max_retries=0, provider_options=options) as gate:
        with pytest.raises(LLMGateError) as info:
            gate.completion(f"ollama/{MODEL}", USER)
    assert type(info.value) is type(theirs)
    assert str(info.value) == str(theirs)
    for name in ("status_code", "retry_after", "retryable"):
        assert getattr(info.value, name, None) == getattr(theirs, name, None)


def test_only_plain_whole_replies_skip_the_sdk_model() -> None:
    from llmgate.providers.ollama._convert import plain_reply

    assert plain_reply(BODIES["plain"]) == ("Hello there", MODEL)
    assert plain_reply(BODIES["empty model, few fields"]) == ("x", "")
    for shape in ("thinking", "tool call", "extra key", "float counter"):
        assert plain_reply(BODIES[shape]) is None, shape
    assert plain_reply({**WHOLE, "done": False}) is None


# --------------------------------------------------------------------------- request bodies


CHAT_KWARGS: dict[str, dict[str, Any]] = {
    "plain": {"model": MODEL, "messages": USER},
    "every text field": {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "", "thinking": "hm"},
            {"role": "tool", "content": "42", "tool_name": "f"},
        ],
    },
    "empty and null values": {
        "model": MODEL,
        "messages": [{"role": "user", "content": ""}, {"role": "user", "content": None}],
    },
    "no messages": {"model": MODEL, "messages": []},
    "options": {
        "model": MODEL,
        "messages": USER,
        "options": {"num_predict": 9, "temperature": 1, "top_p": 0.5, "stop": ["x", "y"]},
    },
    "empty options": {"model": MODEL, "messages": USER, "options": {}},
    "odd options": {"model": MODEL, "messages": USER, "options": {"seed": None, "stop": ("x",)}},
    "nested options": {"model": MODEL, "messages": USER, "options": {"a": {"b": 1}}},
    "images": {
        "model": MODEL,
        "messages": [{"role": "user", "content": "x", "images": [b"\x89P"]}],
    },
    "tool calls": {
        "model": MODEL,
        "messages": [
            {
                "role": "assistant",
                "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
            }
        ],
    },
    "tools": {
        "model": MODEL,
        "messages": USER,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    },
    "format and think": {"model": MODEL, "messages": USER, "format": "json", "think": True},
    "keep_alive": {"model": MODEL, "messages": USER, "keep_alive": 5},
    "content not text": {"model": MODEL, "messages": [{"role": "user", "content": 5}]},
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("name", list(CHAT_KWARGS))
def test_chat_bodies_are_the_ones_chat_request_gives(name: str, stream: bool) -> None:
    from llmgate.providers.ollama.provider import _chat_body, _sdk_chat_body

    kwargs = CHAT_KWARGS[name]
    try:
        expected = _sdk_chat_body(**kwargs, stream=stream)
    except Exception as exc:
        with pytest.raises(type(exc)):
            _chat_body(kwargs, stream)
        return
    assert json.dumps(_chat_body(kwargs, stream)) == json.dumps(expected)


def test_only_plain_requests_skip_the_chat_request_model() -> None:
    from llmgate.providers.ollama.provider import _plain_chat_body

    plain = {
        "plain", "every text field", "empty and null values", "no messages", "options",
        "empty options",
    }  # fmt: skip
    for name, kwargs in CHAT_KWARGS.items():
        assert (_plain_chat_body(kwargs, False) is not None) == (name in plain), name
    assert _plain_chat_body({"model": "", "messages": USER}, False) is None
    assert _plain_chat_body({"model": MODEL, "messages": [{"content": "x"}]}, False) is None


@pytest.mark.parametrize("stream", [False, True])
async def test_requests_with_every_kind_of_message_are_the_ones_chat_sends(
    body_fake: BodyFake, stream: bool
) -> None:
    """The whole request on the wire, for a conversation of every role and option."""
    body_fake.body = json.dumps(WHOLE).encode()
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {
            "role": "assistant",
            "content": "",
            "reasoning": "hm",
            "tool_calls": [{"id": "c1", "type": "function",
                            "function": {"name": "f", "arguments": "{\"a\": 1}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]  # fmt: skip
    options = {"ollama": {"api_key": "fake-ollama-key", "base_url": body_fake.base_url}}
    with LLMGate(max_retries=0, provider_options=options) as gate:
        if stream:
            list(gate.completion(f"ollama/{MODEL}", messages, stream=True, max_tokens=9))
        else:
            gate.completion(f"ollama/{MODEL}", messages, max_tokens=9)
            await gate.acompletion(f"ollama/{MODEL}", messages, max_tokens=9)
    provider_kwargs = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "thinking": "hm",
                "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
            },
            {"role": "tool", "content": "42", "tool_name": "f"},
        ],
        "options": {"num_predict": 9},
    }
    sdk = ollama.Client(
        host=body_fake.base_url, headers={"authorization": "Bearer fake-ollama-key"}
    )
    if stream:
        list(sdk.chat(**provider_kwargs, stream=True))
    else:
        sdk.chat(**provider_kwargs)
    *ours, theirs = body_fake.requests
    for request in ours:
        assert request.body == theirs.body
