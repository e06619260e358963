"""The accumulator and the stream wrappers."""

from __future__ import annotations

import pytest

from llmgate import LLMGate
from llmgate._streaming import ChunkAccumulator, accumulate
from llmgate.testing import MockReply, scripted
from llmgate.types import StreamChunk, TokenUsage, ToolCallDelta

USER = [{"role": "user", "content": "hi"}]


def test_accumulates_text_tools_reasoning_usage() -> None:
    chunks = [
        StreamChunk(id="r1", model="m", provider="p", reasoning_delta="think "),
        StreamChunk(id="r1", model="m", provider="p", reasoning_delta="more"),
        StreamChunk(id="r1", model="m", provider="p", delta="Hel"),
        StreamChunk(id="r1", model="m", provider="p", delta="lo"),
        StreamChunk(
            tool_call_deltas=[ToolCallDelta(index=0, id="c1", name="f", arguments_delta='{"a"')]
        ),
        StreamChunk(tool_call_deltas=[ToolCallDelta(index=1, id="c2", name="g")]),
        StreamChunk(tool_call_deltas=[ToolCallDelta(index=0, arguments_delta=": 1}")]),
        StreamChunk(
            finish_reason="tool_calls", usage=TokenUsage(prompt_tokens=2, completion_tokens=3)
        ),
    ]
    response = accumulate(chunks)
    assert response.text == "Hello"
    assert response.reasoning == "think more"
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls or []] == [
        ("c1", "f", {"a": 1}),
        ("c2", "g", {}),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.usage.total_tokens == 5
    assert (response.id, response.model, response.provider) == ("r1", "m", "p")


def test_restart_clears_text_but_keeps_usage() -> None:
    acc = ChunkAccumulator()
    acc.add(StreamChunk(delta="partial", usage=TokenUsage(prompt_tokens=5)))
    acc.add(StreamChunk(delta="fresh", restarted=True))
    acc.add(
        StreamChunk(finish_reason="stop", usage=TokenUsage(prompt_tokens=1, completion_tokens=1))
    )
    response = acc.response()
    assert response.text == "fresh"
    assert response.usage.prompt_tokens == 6


def test_final_response_needs_consumption() -> None:
    stream = LLMGate().stream("mock/x", USER)
    with pytest.raises(RuntimeError, match="consumed"):
        stream.final_response()
    stream.close()


def test_stream_context_manager_closes() -> None:
    import inspect

    with scripted(MockReply(text="a b c d")):
        with LLMGate().stream("mock/x", USER) as stream:
            next(stream)
            generator = stream._chunks
            assert inspect.getgeneratorstate(generator) == inspect.GEN_SUSPENDED  # type: ignore[arg-type]
    assert inspect.getgeneratorstate(generator) == inspect.GEN_CLOSED  # type: ignore[arg-type]
    assert list(stream) == []


def test_errors_raise_at_call_time() -> None:
    from llmgate.exceptions import AuthError

    with scripted(MockReply(error_status=401)), pytest.raises(AuthError):
        LLMGate().stream("mock/x", USER)


async def test_async_stream_final_response() -> None:
    with scripted(MockReply(text="x y z")):
        stream = await LLMGate().astream("mock/x", USER)
        assert [c.delta async for c in stream][:3] == ["x", " y", " z"]
        assert stream.final_response().text == "x y z"
