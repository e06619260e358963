"""Bedrock's stream fast path: frames split and checked by llmgate, text deltas read from
their JSON, every other frame parsed by botocore. It must yield what botocore's own
EventStream path yields, frame for frame and chunk for chunk."""

from __future__ import annotations

import binascii
import json
import random
import struct
from collections.abc import Iterator
from typing import Any

import botocore.eventstream
import botocore.exceptions
import botocore.parsers
import pytest

from llmgate import LLMGate
from llmgate.exceptions import ProviderAPIError, ProviderConnectionError, RateLimitError
from llmgate.providers.bedrock import _convert
from llmgate.providers.bedrock._convert import StreamTranslator, text_delta
from llmgate.providers.bedrock._eventstream import frames
from llmgate.types import StreamChunk
from tests.fakes.bedrock import (
    BedrockFake,
    event_frame,
    eventstream_message,
    exception_frame,
    gate_kwargs,
)
from tests.fakes.server import FakeServer, FakeToolCall, Reply, Response

MODEL = "bedrock/anthropic.claude-3-haiku-20240307-v1:0"
USER = [{"role": "user", "content": "Hi"}]


def _typed_header(name: str, kind: int, value: bytes) -> bytes:
    raw = name.encode()
    return struct.pack(">B", len(raw)) + raw + struct.pack(">B", kind) + value


def _message(encoded_headers: bytes, payload: bytes) -> bytes:
    total = 12 + len(encoded_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded_headers))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + encoded_headers + payload
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


def _odd_headers_frame() -> bytes:
    """A frame with every non-string header type botocore knows."""
    headers = b"".join(
        [
            _typed_header(":message-type", 7, struct.pack(">H", 5) + b"event"),
            _typed_header(":event-type", 7, struct.pack(">H", 8) + b"metadata"),
            _typed_header("yes", 0, b""),
            _typed_header("no", 1, b""),
            _typed_header("byte", 2, struct.pack(">b", -3)),
            _typed_header("short", 3, struct.pack(">h", 300)),
            _typed_header("int", 4, struct.pack(">i", -70000)),
            _typed_header("long", 5, struct.pack(">q", 2**40)),
            _typed_header("blob", 6, struct.pack(">H", 3) + b"\x00\x01\x02"),
            _typed_header("when", 8, struct.pack(">q", 1_700_000_000_000)),
            _typed_header("uuid", 9, bytes(range(16))),
        ]
    )
    return _message(headers, b'{"usage": {"inputTokens": 1}}')


def _sample_stream() -> bytes:
    return b"".join(
        [
            event_frame("messageStart", {"role": "assistant"}),
            event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hé"}}),
            event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": ""}}),
            _odd_headers_frame(),
            eventstream_message({":message-type": "event"}, b"{}"),
            exception_frame("throttlingException", {"message": "slow down"}),
            event_frame("metadata", {"usage": {"inputTokens": 3, "outputTokens": 4}}),
        ]
    )


def _botocore_frames(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = botocore.eventstream.EventStreamBuffer()
    buffer.add_data(data)
    return [(message.headers, message.payload) for message in buffer]


def _pieces(data: bytes, rng: random.Random) -> Iterator[bytes]:
    position = 0
    while position < len(data):
        size = rng.randint(1, 40)
        yield data[position : position + size]
        position += size


def test_frames_equal_botocores_however_the_bytes_are_split() -> None:
    data = _sample_stream()
    expected = _botocore_frames(data)
    assert len(expected) == 7
    assert list(frames([data])) == expected
    rng = random.Random(7)
    for _ in range(50):
        assert list(frames(_pieces(data, rng))) == expected


def test_a_partial_last_frame_is_dropped_as_botocore_drops_it() -> None:
    data = _sample_stream()
    cut = data[:-5]
    assert list(frames([cut])) == _botocore_frames(cut)


@pytest.mark.parametrize("where", ["prelude", "message"])
def test_a_bad_checksum_raises_botocores_error(where: str) -> None:
    good = bytearray(event_frame("contentBlockDelta", {"delta": {"text": "x"}}))
    good[8 if where == "prelude" else -1] ^= 0xFF
    with pytest.raises(botocore.eventstream.ChecksumMismatch):
        list(frames([bytes(good)]))


def test_length_limits_raise_botocores_errors() -> None:
    def prelude(total: int, headers: int) -> bytes:
        head = struct.pack(">II", total, headers)
        return head + struct.pack(">I", binascii.crc32(head) & 0xFFFFFFFF)

    with pytest.raises(botocore.eventstream.InvalidHeadersLength):
        list(frames([prelude(200_000, 140_000)]))
    with pytest.raises(botocore.eventstream.InvalidPayloadLength):
        list(frames([prelude(30 * 1024 * 1024, 10)]))
    with pytest.raises(botocore.eventstream.InvalidPayloadLength):
        list(frames([prelude(12, 0)]))  # shorter than its own prelude and CRC


def test_duplicate_headers_raise_botocores_error() -> None:
    header = _typed_header("a", 7, struct.pack(">H", 1) + b"x")
    with pytest.raises(botocore.eventstream.DuplicateHeader):
        list(frames([_message(header + header, b"{}")]))


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"contentBlockIndex": 0, "delta": {"text": "hi"}}', "hi"),
        (b'{"delta": {"text": ""}}', ""),
        (b'{"delta": {"text": null}}', None),
        (b'{"delta": {"text": 5}}', None),
        (b'{"delta": {"text": "a", "extra": 1}}', None),
        (b'{"delta": {"toolUse": {"input": "{}"}}}', None),
        (b'{"delta": "text"}', None),
        (b"[]", None),
        (b"not json", None),
        (b"", None),
    ],
)
def test_text_delta(payload: bytes, expected: str | None) -> None:
    assert text_delta(payload) == expected


# --------------------------------------------------------------------------- end to end


class FramesFake(BedrockFake):
    """The Bedrock fake, answering ConverseStream with given frames when it has some."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[bytes] | None = None
        self.body: dict[str, Any] | None = None

    def _converse(self, reply: Reply) -> Response:
        if self.body is None:
            return super()._converse(reply)
        return Response(
            headers={"content-type": "application/json", "x-amzn-RequestId": "req-body"},
            body=json.dumps(self.body).encode(),
        )

    def _converse_stream(self, reply: Reply) -> Response:
        if self.frames is None:
            return super()._converse_stream(reply)
        return Response(
            headers={
                "content-type": "application/vnd.amazon.eventstream",
                "x-amzn-RequestId": "req-frames",
            },
            stream=list(self.frames),
        )


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(FramesFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[FramesFake]:
    vendor = server.vendor
    assert isinstance(vendor, FramesFake)
    vendor.reset()
    vendor.frames = vendor.body = None
    yield vendor
    vendor.reset()
    vendor.frames = vendor.body = None


@pytest.fixture
def gate(fake: FramesFake) -> Iterator[LLMGate]:
    with LLMGate(max_retries=0, **gate_kwargs(fake.base_url)) as gate:
        yield gate


def _botocore_chunks(gate: LLMGate, structured_tool: str | None = None) -> list[StreamChunk]:
    """What the plain botocore EventStream gives, through the same translator."""
    provider = next(iter(gate._providers.values()))  # made by the llmgate call before
    client: Any = provider.client
    response = client.converse_stream(
        modelId=MODEL.split("/", 1)[1], messages=[{"role": "user", "content": [{"text": "Hi"}]}]
    )
    request_id = response["ResponseMetadata"]["RequestId"]
    translator = StreamTranslator(MODEL.split("/", 1)[1], request_id, structured_tool)
    chunks = [chunk for event in response["stream"] if (chunk := translator.feed(event))]
    last = translator.close()
    return chunks + ([last] if last else [])


def _dumps(chunks: list[StreamChunk]) -> list[dict[str, Any]]:
    return [chunk.model_dump(exclude={"id"}) for chunk in chunks]  # one id a request


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text="one two three four"),
        Reply(text="", tool_calls=[FakeToolCall(name="lookup", arguments={"q": "x" * 30})]),
        Reply(
            text="thought through",
            reasoning="let me think",
            reasoning_signature="sig",
            tool_calls=[
                FakeToolCall(name="a", arguments={}),
                FakeToolCall(name="b", arguments={"k": [1, 2]}),
            ],
            cached_tokens=3,
        ),
    ],
    ids=["text", "tool", "mixed"],
)
def test_stream_chunks_equal_botocores(gate: LLMGate, fake: FramesFake, reply: Reply) -> None:
    fake.push(reply, reply)
    ours = list(gate.completion(MODEL, USER, stream=True))
    assert _dumps(ours) == _dumps(_botocore_chunks(gate))
    assert all(type(chunk) is StreamChunk for chunk in ours)


def test_odd_frames_are_handed_to_botocore(gate: LLMGate, fake: FramesFake) -> None:
    redacted = "cmVkYWN0ZWQ="  # base64 on the wire; botocore gives bytes
    fake.frames = [
        event_frame("messageStart", {"role": "assistant"}),
        eventstream_message({":message-type": "event", ":event-type": "unknownEvent"}, b"{}"),
        event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "a"}}),
        event_frame(
            "contentBlockDelta",
            {"contentBlockIndex": 1, "delta": {"reasoningContent": {"redactedContent": redacted}}},
        ),
        event_frame("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"newKind": {}}}),
        _odd_headers_frame(),
        event_frame("messageStop", {"stopReason": "end_turn"}),
    ]
    ours = list(gate.completion(MODEL, USER, stream=True))
    assert _dumps(ours) == _dumps(_botocore_chunks(gate))
    assert ours[-1].provider_details == {
        "bedrock": {"reasoning_content": [{"redactedContent": redacted}]}
    }


def test_in_stream_exception_maps_as_botocores_does(gate: LLMGate, fake: FramesFake) -> None:
    fake.frames = [
        event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "a"}}),
        exception_frame("throttlingException", {"message": "slow down"}),
    ]
    with pytest.raises(RateLimitError) as info:
        list(gate.completion(MODEL, USER, stream=True))
    with pytest.raises(botocore.exceptions.EventStreamError) as raw_error:
        _botocore_chunks(gate)
    assert info.value.request_id == "req-frames"
    assert info.value.status_code == 429
    cause = info.value.__cause__
    assert isinstance(cause, botocore.exceptions.EventStreamError)
    assert cause.response["Error"] == raw_error.value.response["Error"]


def test_a_delta_botocore_refuses_is_refused(gate: LLMGate, fake: FramesFake) -> None:
    fake.frames = [
        event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": None}}),
    ]
    with pytest.raises(ProviderAPIError, match="one and only one member") as info:
        list(gate.completion(MODEL, USER, stream=True))
    with pytest.raises(botocore.parsers.ResponseParserError) as raw_error:
        _botocore_chunks(gate)
    assert str(raw_error.value) in str(info.value)


def test_error_message_frame(gate: LLMGate, fake: FramesFake) -> None:
    fake.frames = [
        eventstream_message(
            {
                ":message-type": "error",
                ":error-code": "InternalFailure",
                ":error-message": "boom",
            },
            b"",
        )
    ]
    with pytest.raises(Exception) as info:
        list(gate.completion(MODEL, USER, stream=True))
    assert "InternalFailure: boom" in str(info.value)


def test_corrupt_frame_is_a_connection_error(gate: LLMGate, fake: FramesFake) -> None:
    good = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}})
    fake.frames = [good, good[:-1] + bytes([good[-1] ^ 1])]
    with pytest.raises(ProviderConnectionError, match="malformed event-stream frame"):
        list(gate.completion(MODEL, USER, stream=True))


def test_unicode_split_across_pieces(gate: LLMGate, fake: FramesFake) -> None:
    frame = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "日本"}})
    stop = event_frame("messageStop", {"stopReason": "end_turn"})
    fake.frames = [frame[:20], frame[20:25], frame[25:] + stop]
    chunks = list(gate.completion(MODEL, USER, stream=True))
    assert [c.delta for c in chunks] == ["日本", ""]
    assert chunks[-1].finish_reason == "stop"
    assert json.loads(frame[frame.index(b"{") : -4])["delta"]["text"] == "日本"


# --------------------------------------------------------------------------- converse


def _botocore_converse(gate: LLMGate) -> dict[str, Any]:
    provider = next(iter(gate._providers.values()))  # made by the llmgate call before
    client: Any = provider.client
    result: dict[str, Any] = client.converse(
        modelId=MODEL.split("/", 1)[1], messages=[{"role": "user", "content": [{"text": "Hi"}]}]
    )
    return result


def _without_ids(result: dict[str, Any]) -> dict[str, Any]:
    metadata = dict(result["ResponseMetadata"])
    headers = dict(metadata.pop("HTTPHeaders"))
    for name in ("x-amzn-requestid", "date", "content-length"):
        headers.pop(name, None)
    metadata.pop("RequestId")
    return {**result, "ResponseMetadata": {**metadata, "HTTPHeaders": headers}}


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text="one two three"),
        Reply(text="", tool_calls=[FakeToolCall(name="lookup", arguments={"q": [1, 2.5, None]})]),
        Reply(text="thought", reasoning="let me think", reasoning_signature="sig"),
    ],
    ids=["text", "tool", "reasoning"],
)
def test_converse_response_and_raw_equal_botocores(
    gate: LLMGate, fake: FramesFake, reply: Reply
) -> None:
    fake.push(reply, reply)
    response = gate.completion(MODEL, USER)
    result = _botocore_converse(gate)
    expected = _convert.completion_response(result, MODEL.split("/", 1)[1])
    assert response.model_dump(exclude={"id"}) == expected.model_dump(exclude={"id"})
    assert response.id == response.raw["ResponseMetadata"]["RequestId"] != ""
    assert _without_ids(response.raw) == _without_ids(result)
    assert list(response.raw) == list(result)
    assert response.raw is response.raw
    assert response.raw["ResponseMetadata"]["RetryAttempts"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}}},
        {"stopReason": "end_turn", "usage": {"inputTokens": 2, "outputTokens": 3}},
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
            "stopReason": "end_turn",
            "additionalModelResponseFields": {"stop_sequence": None},
            "trace": {"guardrail": {"modelOutput": ["x"]}},
            "performanceConfig": {"latency": "optimized"},
            "serviceTier": {"type": "priority"},
            "unmodelled": {"dropped": True},
        },
        {
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [
                        {"reasoningContent": {"redactedContent": "cmVkYWN0ZWQ="}},
                        {"text": "a", "image": {}},
                        {"toolUse": {"toolUseId": "t1", "name": "f", "input": {}, "x": 1}},
                    ],
                }
            },
            "stopReason": "tool_use",
        },
        {"output": {"message": {"role": "assistant", "content": [{"text": 5}]}}},
        {"output": {"message": {"role": "assistant", "content": "text"}}},
        {"output": {"message": None}, "usage": {"inputTokens": 1}, "metrics": {"latencyMs": 9}},
        {"output": "x"},
        {"output": {"message": {"content": [{"toolUse": {"toolUseId": None, "name": "f"}}]}}},
        {"output": {"message": {"content": None}}, "usage": None, "stopReason": None},
        {"usage": [], "stopReason": "end_turn"},
        {"stopReason": 7},
    ],
)
def test_converse_bodies_equal_botocores(
    gate: LLMGate, fake: FramesFake, body: dict[str, Any]
) -> None:
    fake.body = body
    try:
        expected_result: Any = _convert.completion_response(
            _botocore_converse_first(gate), MODEL.split("/", 1)[1]
        )
    except Exception as exc:  # botocore or the translation refuses it: llmgate must too
        with pytest.raises(Exception) as info:
            gate.completion(MODEL, USER)
        assert type(exc).__name__ in repr(info.value) or str(exc) in str(info.value)
        return
    response = gate.completion(MODEL, USER)
    assert response.model_dump(exclude={"id"}) == expected_result.model_dump(exclude={"id"})
    assert _without_ids(response.raw) == _without_ids(_botocore_converse(gate))


def _botocore_converse_first(gate: LLMGate) -> dict[str, Any]:
    gate.completion(MODEL, USER, stream=True).close()  # makes the provider and its client
    return _botocore_converse(gate)


def test_direct_client_calls_are_untouched(gate: LLMGate, fake: FramesFake) -> None:
    gate.completion(MODEL, USER)
    result = _botocore_converse(gate)
    assert result["output"]["message"]["content"] == [{"text": "Hello from the fake."}]
