"""CacheMiddleware: what the key covers, hits, stream replay, TTL/LRU, what is not kept."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import BaseModel

from llmgate import LLMGate
from llmgate.middleware import CacheBackend, CacheMiddleware, CallContext, InMemoryCache
from llmgate.middleware.cache import cache_key, replay
from llmgate.testing import MockReply, scripted
from llmgate.types import CompletionRequest, TokenUsage

USER = [{"role": "user", "content": "Hello there"}]
SECRET = "sk-test-cache-0123456789abcdef"
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def _key(model: str = "m", provider: str = "mock", **kwargs: Any) -> str:
    request = LLMGate().build_request(f"{provider}/{model}", kwargs.pop("messages", USER), **kwargs)
    return cache_key(CallContext(request, "completion", False, provider, model))


class Answer(BaseModel):
    n: int


@pytest.mark.parametrize(
    "change",
    [
        {"model": "other"},
        {"provider": "mock2"},
        {"messages": [{"role": "user", "content": "Hello there!"}]},
        {"messages": [{"role": "system", "content": "Be brief"}, *USER]},
        {"max_tokens": 10},
        {"temperature": 0.5},
        {"top_p": 0.9},
        {"stop": ["\n"]},
        {"tools": [TOOL]},
        {"tools": [TOOL], "tool_choice": "required"},
        {"parallel_tool_calls": False},
        {"response_format": Answer},
        {"response_format": {"type": "object", "properties": {"n": {"type": "string"}}}},
        {"seed": 7},
        {"base_url": "http://127.0.0.1:9/v1"},
    ],
    ids=lambda change: ",".join(change),
)
def test_everything_that_changes_the_output_changes_the_key(change: dict[str, Any]) -> None:
    assert _key(**change) != _key()


@pytest.mark.parametrize(
    "same",
    [
        {"api_key": SECRET},
        {"timeout": 3.0},
        {"max_retries": 5},
        {"stream": True},
        {"stream_fallback_mode": "prefill"},
    ],
    ids=lambda change: ",".join(change),
)
def test_what_cannot_change_the_output_leaves_the_key_alone(same: dict[str, Any]) -> None:
    assert _key(**same) == _key()


def test_namespaces_and_kinds_are_apart() -> None:
    request = LLMGate().build_request("mock/m", USER)
    ctx = CallContext(request, "completion", False, "mock", "m")
    embedding = LLMGate().build_embedding_request("mock/m", "Hello there")
    assert cache_key(ctx, "tenant-a") != cache_key(ctx, "tenant-b")
    assert cache_key(CallContext(embedding, "embedding", False, "mock", "m")) != cache_key(ctx)


def test_the_api_key_is_in_neither_keys_nor_values() -> None:
    backend = InMemoryCache()
    with LLMGate(middleware=[CacheMiddleware(backend=backend)]) as gate:
        gate.completion("mock/m", USER, api_key=SECRET)
        gate.embed("mock/e", "text", api_key=SECRET)
    assert len(backend) == 2
    for key, (_, value) in backend._entries.items():
        assert SECRET not in key
        assert SECRET.encode() not in value


def test_a_hit_is_visible_and_makes_no_request() -> None:
    with LLMGate(middleware=[CacheMiddleware()]) as gate, scripted("cached answer") as script:
        first = gate.completion("mock/m", USER)
        second = gate.completion("mock/m", USER)
    assert len(script.requests) == 1
    assert first.provider_details["cache"] == "miss"
    assert second.provider_details["cache"] == "hit"
    assert (second.text, second.attempts) == ("cached answer", 0)
    assert second.usage == first.usage


async def test_async_hit() -> None:
    with LLMGate(middleware=[CacheMiddleware()]) as gate, scripted("x") as script:
        await gate.acompletion("mock/m", USER)
        second = await gate.acompletion("mock/m", USER)
    assert (second.provider_details["cache"], len(script.requests)) == ("hit", 1)


def _comparable(response: Any) -> dict[str, Any]:
    return {
        "text": response.text,
        "tool_calls": response.tool_calls,
        "reasoning": response.reasoning,
        "finish": response.finish_reason,
        "usage": response.usage,
    }


REPLIES = {
    "text": MockReply(text="one two three"),
    "tools": MockReply(
        text="Looking", tool_calls=[{"id": "c1", "name": "f", "arguments": {"x": 1}}]
    ),
    "reasoning": MockReply(text="42", reasoning="think", usage=TokenUsage(prompt_tokens=3)),
}


@pytest.mark.parametrize("reply", REPLIES.values(), ids=REPLIES.keys())
def test_a_cached_stream_replays_as_chunks(reply: MockReply) -> None:
    with LLMGate(middleware=[CacheMiddleware()]) as gate, scripted(reply) as script:
        original = gate.completion("mock/m", USER, stream=True).until_done()
        stream = gate.completion("mock/m", USER, stream=True)
        chunks = list(stream)
        replayed = stream.final_response()
    assert len(script.requests) == 1
    assert len(chunks) >= 2
    assert chunks[0].provider_details == {"cache": "hit"}
    assert chunks[-1].finish_reason == original.finish_reason
    assert _comparable(replayed) == _comparable(original)


def test_streamed_and_plain_calls_share_entries() -> None:
    with LLMGate(middleware=[CacheMiddleware()]) as gate, scripted("a b", "c d") as script:
        streamed = gate.completion("mock/m", USER, stream=True).until_done()
        plain = gate.completion("mock/m", USER)
        other = gate.completion("mock/m", [{"role": "user", "content": "new"}])
        replayed = gate.completion("mock/m", [{"role": "user", "content": "new"}], stream=True)
    assert plain.text == streamed.text == "a b"
    assert replayed.until_done().text == other.text == "c d"
    assert len(script.requests) == 2


def test_structured_output_is_parsed_again_on_a_hit() -> None:
    with LLMGate(middleware=[CacheMiddleware()]) as gate, scripted('{"n": 4}'):
        gate.completion("mock/m", USER, response_format=Answer)
        hit = gate.completion("mock/m", USER, response_format=Answer)
    assert hit.provider_details["cache"] == "hit"
    assert hit.parsed == Answer(n=4)


def test_entries_expire() -> None:
    with LLMGate(middleware=[CacheMiddleware(ttl=0.05)]) as gate, scripted("a", "b") as script:
        gate.completion("mock/m", USER)
        time.sleep(0.08)
        assert gate.completion("mock/m", USER).text == "b"
    assert len(script.requests) == 2


def test_least_recently_used_entries_are_evicted() -> None:
    backend = InMemoryCache(maxsize=2)
    backend.set("a", b"1", None)
    backend.set("b", b"2", None)
    assert backend.get("a") == b"1"  # "a" is now the most recently used
    backend.set("c", b"3", None)
    assert (backend.get("a"), backend.get("b"), backend.get("c")) == (b"1", None, b"3")


def test_failures_and_partial_answers_are_not_kept() -> None:
    backend = InMemoryCache()
    with LLMGate(middleware=[CacheMiddleware(backend=backend)], max_retries=0) as gate:
        with scripted(
            MockReply(error_status=500),
            MockReply(text="cut short", fail_after=1),
            MockReply(text="filtered", finish_reason="content_filter"),
            MockReply(text="closed early here"),
        ):
            with pytest.raises(Exception, match="scripted failure"):
                gate.completion("mock/m", USER)
            with pytest.raises(Exception, match="cut"):
                list(gate.completion("mock/m", USER, stream=True))
            gate.completion("mock/m", USER)
            stream = gate.completion("mock/m", USER, stream=True)
            next(stream)
            stream.close()
    assert len(backend) == 0


def test_embeddings_are_cached() -> None:
    with LLMGate(middleware=[CacheMiddleware()]) as gate, scripted() as script:
        first = gate.embed("mock/e", ["a", "b"], dimensions=4)
        hit = gate.embed("mock/e", ["a", "b"], dimensions=4)
        other = gate.embed("mock/e", ["a", "b"], dimensions=8)
    assert hit.embeddings == first.embeddings
    assert hit.provider_details["cache"] == "hit"
    assert len(other.embeddings[0]) == 8
    assert len(script.requests) == 2


class Broken(CacheBackend):
    def get(self, key: str) -> bytes | None:
        raise ConnectionError("cache server down")

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        raise ConnectionError("cache server down")


async def test_a_broken_backend_never_fails_the_call(caplog: pytest.LogCaptureFixture) -> None:
    with LLMGate(middleware=[CacheMiddleware(backend=Broken())]) as gate:
        assert gate.completion("mock/m", USER).text == "Hello there"
        assert (await gate.acompletion("mock/m", USER)).text == "Hello there"
        assert gate.completion("mock/m", USER, stream=True).until_done().text == "Hello there"
    assert any("lookup failed" in r.getMessage() for r in caplog.records)


def test_an_unreadable_entry_is_a_miss() -> None:
    backend = InMemoryCache()
    middleware = CacheMiddleware(backend=backend)
    request = LLMGate().build_request("mock/m", USER)
    backend.set(middleware.key(CallContext(request, "completion", False, "mock", "m")), b"{", None)
    with LLMGate(middleware=[middleware]) as gate, scripted("fresh"):
        assert gate.completion("mock/m", USER).text == "fresh"


def test_replay_of_an_empty_answer_is_one_chunk() -> None:
    request = CompletionRequest(model="mock/m", messages=USER)
    with LLMGate() as gate, scripted(MockReply(text="")):
        response = gate.run(request)
    chunks = replay(response)
    assert len(chunks) == 1
    assert chunks[0].finish_reason == "stop"
    assert chunks[0].provider_details == {"cache": "hit"}
