"""Anthropic result translation: Message JSON and stream events -> llmgate types."""

from __future__ import annotations

from typing import Any

import pytest

from llmgate._streaming import accumulate
from llmgate.providers.anthropic._convert import (
    StreamTranslator,
    finish_reason,
    response_from_json,
    usage_from,
)
from llmgate.types import StreamChunk

THINKING = {"type": "thinking", "thinking": "Six times seven.", "signature": "sig-1"}
REDACTED = {"type": "redacted_thinking", "data": "ENCRYPTED"}

MESSAGE: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [
        THINKING,
        REDACTED,
        {"type": "text", "text": "It is "},
        {"type": "text", "text": "42."},
        {"type": "tool_use", "id": "toolu_1", "name": "calc", "input": {"x": 6}},
        {"type": "tool_use", "id": "toolu_2", "name": "noop", "input": {}},
        {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "cache_read_input_tokens": 30,
        "cache_creation_input_tokens": 5,
        "output_tokens": 20,
        "output_tokens_details": {"thinking_tokens": 12},
    },
}


def _events() -> list[dict[str, Any]]:
    """The stream of MESSAGE, as the API sends it."""

    def delta(index: int, **payload: Any) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": index, "delta": payload}

    def start(index: int, block: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_start", "index": index, "content_block": block}

    def stop(index: int) -> dict[str, Any]:
        return {"type": "content_block_stop", "index": index}

    usage = {k: v for k, v in MESSAGE["usage"].items() if k != "output_tokens_details"}
    return [
        {
            "type": "message_start",
            "message": {
                **MESSAGE,
                "content": [],
                "stop_reason": None,
                "usage": {**usage, "output_tokens": 1},
            },
        },
        start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, type="thinking_delta", thinking="Six times "),
        delta(0, type="thinking_delta", thinking="seven."),
        delta(0, type="signature_delta", signature="sig-1"),
        stop(0),
        start(1, REDACTED),
        stop(1),
        start(2, {"type": "text", "text": ""}),
        delta(2, type="text_delta", text="It is "),
        stop(2),
        start(3, {"type": "text", "text": "42."}),
        stop(3),
        start(4, {"type": "tool_use", "id": "toolu_1", "name": "calc", "input": {}}),
        delta(4, type="input_json_delta", partial_json=""),
        delta(4, type="input_json_delta", partial_json='{"x"'),
        delta(4, type="input_json_delta", partial_json=": 6}"),
        stop(4),
        start(5, {"type": "tool_use", "id": "toolu_2", "name": "noop", "input": {}}),
        stop(5),
        start(6, {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}}),
        stop(6),
        {"type": "ping"},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 20, "output_tokens_details": {"thinking_tokens": 12}},
        },
        {"type": "message_stop"},
    ]


def _translate(events: list[dict[str, Any]]) -> list[StreamChunk]:
    translator = StreamTranslator("anthropic")
    return [c for c in (translator.feed(e) for e in events) if c is not None]


def test_message_json() -> None:
    response = response_from_json(MESSAGE, "anthropic", "req_1")
    assert (response.id, response.model, response.provider) == ("msg_1", "claude-x", "anthropic")
    assert response.text == "It is 42."
    assert response.reasoning == "Six times seven."
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls or []] == [
        ("toolu_1", "calc", {"x": 6}),
        ("toolu_2", "noop", {}),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.message.provider_details == {
        "anthropic": {"thinking_blocks": [THINKING, REDACTED]}
    }
    assert response.provider_details == {
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "request_id": "req_1",
    }


def test_usage_counts_cache_reads_and_writes_as_prompt() -> None:
    usage = usage_from(MESSAGE["usage"])
    assert usage.prompt_tokens == 45
    assert usage.cached_prompt_tokens == 30
    assert usage.completion_tokens == 20
    assert usage.total_tokens == 65
    assert usage.reasoning_tokens == 12
    plain = usage_from({"input_tokens": 3, "output_tokens": 4})
    assert (plain.cached_prompt_tokens, plain.reasoning_tokens, plain.total_tokens) == (
        None,
        None,
        7,
    )


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
        (None, None),
    ],
)
def test_finish_reasons(stop_reason: str | None, expected: str | None) -> None:
    assert finish_reason(stop_reason) == expected


def test_stream_equals_the_message() -> None:
    chunks = _translate(_events())
    streamed = accumulate(chunks)
    whole = response_from_json(MESSAGE, "anthropic")
    assert streamed.message == whole.message
    assert streamed.usage == whole.usage
    assert streamed.finish_reason == whole.finish_reason
    assert (streamed.id, streamed.model) == (whole.id, whole.model)


def test_stream_chunk_shapes() -> None:
    chunks = _translate(_events())
    assert all(c.id == "msg_1" and c.model == "claude-x" for c in chunks)
    assert [c.reasoning_delta for c in chunks if c.reasoning_delta] == ["Six times ", "seven."]
    assert [c.delta for c in chunks if c.delta] == ["It is ", "42."]
    deltas = [d for c in chunks for d in c.tool_call_deltas or []]
    assert [(d.index, d.id, d.name, d.arguments_delta) for d in deltas] == [
        (0, "toolu_1", "calc", ""),
        (0, None, None, '{"x"'),
        (0, None, None, ": 6}"),
        (1, "toolu_2", "noop", ""),
    ]
    last = chunks[-1]
    assert last.finish_reason == "tool_calls"
    assert last.usage is not None and last.usage.total_tokens == 65
    assert all(c.usage is None and c.finish_reason is None for c in chunks[:-1])


def test_late_usage_fields_override_message_start() -> None:
    translator = StreamTranslator("anthropic")
    translator.feed(
        {
            "type": "message_start",
            "message": {"id": "m", "model": "c", "usage": {"input_tokens": 5, "output_tokens": 1}},
        }
    )
    chunk = translator.feed(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"input_tokens": 8, "cache_read_input_tokens": None, "output_tokens": 3},
        }
    )
    assert chunk is not None and chunk.usage is not None
    assert (chunk.usage.prompt_tokens, chunk.usage.completion_tokens) == (8, 3)
    assert chunk.provider_details is None


def test_unknown_events_and_deltas_are_ignored() -> None:
    translator = StreamTranslator("anthropic")
    assert translator.feed({"type": "brand_new_event"}) is None
    assert (
        translator.feed(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta"}}
        )
        is None
    )
    assert (
        translator.feed(
            {
                "type": "content_block_delta",
                "index": 9,
                "delta": {"type": "input_json_delta", "partial_json": "{}"},
            }
        )
        is None
    )
