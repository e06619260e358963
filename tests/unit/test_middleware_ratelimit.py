"""RateLimitMiddleware: it waits (never fails), counts requests and tokens, per scope."""

from __future__ import annotations

import asyncio
import time

import pytest

from llmgate import LLMGate
from llmgate.exceptions import ConfigError, ServerError
from llmgate.middleware import CallContext, InMemoryRateLimit, RateLimitMiddleware
from llmgate.middleware.ratelimit import estimate_tokens
from llmgate.testing import MockReply, scripted
from llmgate.types import TokenUsage

USER = [{"role": "user", "content": "Hello there"}]


def test_reservations_space_calls_once_the_window_is_spent() -> None:
    backend = InMemoryRateLimit()
    waits = [backend.reserve([("k", 1.0)], window=2.0) for _ in range(4)]
    assert waits[0] == waits[1] == 0.0, "two seconds of budget may be spent at once"
    assert waits[2] == pytest.approx(1.0, abs=0.01)
    assert waits[3] == pytest.approx(2.0, abs=0.01)
    backend.adjust("k", -4.0)
    assert backend.reserve([("k", 1.0)], window=2.0) == 0.0, "budget given back"


def test_the_wait_is_the_longest_of_all_limits() -> None:
    backend = InMemoryRateLimit()
    backend.reserve([("tokens", 5.0)], window=1.0)
    wait = backend.reserve([("requests", 0.1), ("tokens", 0.5)], window=1.0)
    assert wait == pytest.approx(4.5, abs=0.01)


def test_rpm_waits_instead_of_failing() -> None:
    limiter = RateLimitMiddleware(rpm=600, burst_window=0.1)  # one call every 0.1 s
    started = time.monotonic()
    with LLMGate(middleware=[limiter]) as gate:
        texts = [gate.completion("mock/m", USER).text for _ in range(5)]
    assert texts == ["Hello there"] * 5
    assert time.monotonic() - started >= 0.35


async def test_concurrent_async_calls_share_the_budget() -> None:
    limiter = RateLimitMiddleware(rpm=600, burst_window=0.1)
    started = time.monotonic()
    with LLMGate(middleware=[limiter]) as gate:
        results = await asyncio.gather(*(gate.acompletion("mock/m", USER) for _ in range(5)))
    assert len(results) == 5
    assert time.monotonic() - started >= 0.35


def test_tokens_are_counted_from_the_usage_the_vendor_reports() -> None:
    limiter = RateLimitMiddleware(tpm=60_000, burst_window=0.2)  # 1 ms a token, 200 at once
    usage = TokenUsage(prompt_tokens=150)
    started = time.monotonic()
    with LLMGate(middleware=[limiter]) as gate, scripted(*[MockReply(usage=usage)] * 4):
        for _ in range(4):
            gate.completion("mock/m", USER)
    assert time.monotonic() - started >= 0.2, "3 x 150 tokens spent, 200 at once: ~0.25 s"


def test_streams_are_counted_by_their_final_usage() -> None:
    limiter = RateLimitMiddleware(tpm=60_000, burst_window=0.2)
    usage = TokenUsage(prompt_tokens=150)
    started = time.monotonic()
    with LLMGate(middleware=[limiter]) as gate, scripted(*[MockReply(text="x", usage=usage)] * 4):
        for _ in range(4):
            gate.completion("mock/m", USER, stream=True).until_done()
    assert time.monotonic() - started >= 0.2


def test_a_failed_call_gives_its_estimated_tokens_back() -> None:
    backend = InMemoryRateLimit()
    limiter = RateLimitMiddleware(tpm=60_000, burst_window=0.2, backend=backend)
    with LLMGate(middleware=[limiter], max_retries=0) as gate:
        with scripted(MockReply(error_status=500)), pytest.raises(ServerError):
            gate.completion("mock/m", USER, max_tokens=1000)
        started = time.monotonic()
        gate.completion("mock/m", USER)
    assert time.monotonic() - started < 0.5, "1,000 tokens kept would have meant a 1 s wait"
    assert backend._tat["default:mock/m:tokens"] - time.monotonic() < 0.05


def test_the_limit_never_raises_a_rate_limit_error_of_its_own() -> None:
    limiter = RateLimitMiddleware(rpm=1200, burst_window=0.05)
    with LLMGate(middleware=[limiter]) as gate:
        for _ in range(6):
            gate.completion("mock/m", USER)


@pytest.mark.parametrize(
    ("scope", "keys"),
    [
        ("model", {"default:mock/a:requests", "default:mock/b:requests"}),
        ("provider", {"default:mock:requests"}),
        ("global", {"default:*:requests"}),
    ],
)
def test_scope_says_what_shares_a_budget(scope: str, keys: set[str]) -> None:
    backend = InMemoryRateLimit()
    limiter = RateLimitMiddleware(rpm=100, scope=scope, backend=backend)  # type: ignore[arg-type]
    with LLMGate(middleware=[limiter]) as gate:
        gate.completion("mock/a", USER)
        gate.embed("mock/b", "x")
    assert set(backend._tat) == keys


def test_token_estimates() -> None:
    request = LLMGate().build_request("mock/m", [{"role": "user", "content": "x" * 40}])
    ctx = CallContext(request, "completion", False, "mock", "m")
    assert estimate_tokens(ctx) == 10
    ctx.request = request.model_copy(update={"max_tokens": 100})
    assert estimate_tokens(ctx) == 110
    embedding = LLMGate().build_embedding_request("mock/e", ["y" * 8, "z" * 8])
    assert estimate_tokens(CallContext(embedding, "embedding", False, "mock", "e")) == 4


@pytest.mark.parametrize(
    "bad", [{}, {"rpm": 0}, {"tpm": -1}, {"rpm": 1, "burst_window": 0}, {"rpm": 1, "scope": "x"}]
)
def test_bad_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        RateLimitMiddleware(**bad)  # type: ignore[arg-type]
