"""Streaming: text, tool-call deltas, finish reason, usage, and parity with non-streaming."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from llmgate import LLMGate
from llmgate._streaming import accumulate
from tests.fakes.server import FakeToolCall, FakeVendor, Reply

from .conftest import skip_if_not_applicable
from .helpers import TIME_TOOL, USER, WEATHER_TOOL, comparable, provider_name
from .target import Target

TEXT = "The quick brown fox jumps over the lazy dog"


def test_stream_text(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text=TEXT, prompt_tokens=9, completion_tokens=8))
    with gate.completion(target.model, USER, stream=True) as stream:
        chunks = list(stream)
    assert "".join(c.delta for c in chunks) == TEXT
    assert sum(1 for c in chunks if c.delta) >= 3, "text must arrive in several chunks"
    assert all(c.provider == provider_name(target) for c in chunks)
    finishes = [c.finish_reason for c in chunks if c.finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (9, 8)
    assert all(c.usage is None for c in chunks[:-1]), "usage belongs on the last chunk only"
    assert target.wire.is_stream(fake.last)
    final = stream.final_response()
    assert final.text == TEXT
    assert final.usage.total_tokens == 17


def test_stream_tool_calls(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    calls = [FakeToolCall("get_weather", {"city": "Paris"}, id="call_a")]
    if "parallel_tool_calls" not in target.not_applicable:
        calls.append(FakeToolCall("get_time", {"city": "Oslo", "utc": False}, id="call_b"))
    fake.push(Reply(tool_calls=calls))
    stream = gate.completion(target.model, USER, tools=[WEATHER_TOOL, TIME_TOOL], stream=True)
    chunks = list(stream)
    deltas = [d for c in chunks for d in c.tool_call_deltas or []]
    assert deltas, "tool calls must arrive as tool_call_deltas"
    assert all(d.index in range(len(calls)) for d in deltas)
    first_of_each = {}
    for d in deltas:
        first_of_each.setdefault(d.index, d)
    assert all(d.id and d.name for d in first_of_each.values()), "id and name come first"
    final = stream.final_response()
    assert final.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in final.tool_calls or []] == [
        (c.name, c.arguments) for c in calls
    ]


PARITY_REPLIES = {
    "text": Reply(text=TEXT, prompt_tokens=5, completion_tokens=9),
    "tool_calls": Reply(
        tool_calls=[FakeToolCall("get_weather", {"city": "Paris", "days": 3}, id="call_1")]
    ),
    "text_and_tool": Reply(
        text="Let me check.",
        tool_calls=[FakeToolCall("get_weather", {"city": "Paris"}, id="call_2")],
    ),
    "reasoning": Reply(
        text="42", reasoning="Six times seven is forty-two.", reasoning_signature="s1"
    ),
    "length": Reply(text="truncated output", finish_reason="length"),
    "cached_usage": Reply(text="ok", prompt_tokens=100, completion_tokens=2, cached_tokens=64),
}


@pytest.mark.parametrize("case", list(PARITY_REPLIES))
def test_stream_parity(gate: LLMGate, fake: FakeVendor, target: Target, case: str) -> None:
    """The accumulated stream equals the non-streaming response for the same output."""
    if case == "reasoning":
        skip_if_not_applicable(target, "reasoning")
    if case == "text_and_tool":
        skip_if_not_applicable(target, "text_and_tool")
    if case == "cached_usage":
        skip_if_not_applicable(target, "cached_usage")
    reply = PARITY_REPLIES[case]
    fake.push(reply, reply)
    tools = [WEATHER_TOOL] if reply.tool_calls else None
    whole = gate.completion(target.model, USER, tools=tools)
    streamed = accumulate(gate.completion(target.model, USER, tools=tools, stream=True))
    assert comparable(streamed) == comparable(whole)
    if case == "cached_usage":
        assert whole.usage.cached_prompt_tokens == 64


def test_stream_close_releases_connection(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    assert fake.server is not None
    # Connections that earlier tests closed may still be winding down on the server side,
    # and async clients of finished event loops release theirs only when collected.
    gc.collect()
    baseline = -1
    deadline = time.monotonic() + 1
    while baseline != fake.server.open_connections and time.monotonic() < deadline:
        baseline = fake.server.open_connections
        time.sleep(0.03)
    fake.push(Reply(text=" ".join(["word"] * 200), chunk_delay=0.01))
    stream = gate.completion(target.model, USER, stream=True)
    next(iter(stream))
    assert fake.server.open_connections == baseline + 1
    stream.close()
    deadline = time.monotonic() + 3
    while fake.server.open_connections > baseline and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.server.open_connections == baseline, "closing a stream must close its response"


def test_stream_then_call_reuses_client(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    list(gate.completion(target.model, USER, stream=True))
    gate.completion(target.model, USER)
    assert len(gate._providers) == 1


async def test_async_text(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text="Async hello", prompt_tokens=3, completion_tokens=2))
    response = await gate.acompletion(target.model, USER)
    assert response.text == "Async hello"
    assert response.usage.total_tokens == 5


async def test_async_stream(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text=TEXT))
    stream = await gate.acompletion(target.model, USER, stream=True)
    async with stream:
        pieces = [chunk.delta async for chunk in stream]
    assert "".join(pieces) == TEXT
    assert stream.final_response().finish_reason == "stop"
    assert stream.final_response().usage.total_tokens > 0


async def test_async_concurrent(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    results = await asyncio.gather(*(gate.acompletion(target.model, USER) for _ in range(20)))
    assert len(results) == 20 and all(r.text for r in results)
    assert len(fake.requests) == 20


def test_async_client_per_event_loop(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    """Two asyncio.run() calls must not share an async client bound to a closed loop."""
    for _ in range(2):
        assert asyncio.run(gate.acompletion(target.model, USER)).text
