"""The one retry budget: which policy a call uses, Retry-After, attempts, streams."""

from __future__ import annotations

import time

import pytest

from llmgate import LLMGate, RetryPolicy
from llmgate.exceptions import (
    BadRequestError,
    InvalidRequestError,
    ProviderConnectionError,
    RateLimitError,
    ServerError,
)
from llmgate.middleware import RetryMiddleware
from llmgate.testing import MockReply, scripted

USER = [{"role": "user", "content": "Hello there"}]
TINY = RetryPolicy(max_retries=2, backoff_factor=0.001, max_backoff=0.002, max_retry_after=0.05)


def test_policy_retries_only_retryable_errors_within_budget() -> None:
    policy = RetryPolicy(max_retries=2)
    assert policy.should_retry(ServerError("x", retryable=True), 1)
    assert policy.should_retry(ServerError("x", retryable=True), 2)
    assert not policy.should_retry(ServerError("x", retryable=True), 3)
    assert not policy.should_retry(BadRequestError("x"), 1)
    assert not policy.should_retry(ValueError("not a provider error"), 1)


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(backoff_factor=1.0, max_backoff=3.0, jitter=0.25)
    error = ServerError("x", retryable=True)
    for attempt, base in ((1, 1.0), (2, 2.0), (3, 3.0), (6, 3.0)):
        for _ in range(20):
            assert base * 0.75 <= policy.delay(error, attempt) <= base


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(max_retry_after=10.0)
    assert policy.delay(RateLimitError("x", retry_after=2.5), 1) == 2.5
    assert policy.delay(RateLimitError("x", retry_after=3600), 1) == 10.0
    assert policy.delay(RateLimitError("x", retry_after=0), 1) == 0.0


@pytest.mark.parametrize(
    "bad", [{"max_retries": -1}, {"backoff_factor": -1}, {"jitter": 2}, {"max_retry_after": -5}]
)
def test_policy_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(InvalidRequestError):
        RetryPolicy(**bad)  # type: ignore[arg-type]


def test_with_max_retries_keeps_the_other_settings() -> None:
    policy = TINY.with_max_retries(5)
    assert policy.max_retries == 5
    assert policy.max_retry_after == TINY.max_retry_after
    assert TINY.with_max_retries(None) is TINY


def _failures(n: int, status: int = 503, retry_after: float | None = 0.0) -> list[MockReply]:
    return [MockReply(error_status=status, retry_after=retry_after) for _ in range(n)]


def test_attempts_are_counted_on_the_response() -> None:
    with LLMGate(retry_policy=TINY) as gate, scripted(*_failures(2), MockReply(text="ok")) as s:
        response = gate.completion("mock/m", USER)
    assert response.text == "ok"
    assert response.attempts == 3
    assert len(s.requests) == 3


def test_budget_is_bounded_and_last_error_raised() -> None:
    with LLMGate(retry_policy=TINY) as gate, scripted(*_failures(5)) as s:
        with pytest.raises(ServerError):
            gate.completion("mock/m", USER)
    assert len(s.requests) == 3


def test_non_retryable_errors_are_not_retried() -> None:
    with LLMGate(retry_policy=TINY) as gate, scripted(*_failures(3, status=400)) as s:
        with pytest.raises(BadRequestError):
            gate.completion("mock/m", USER)
    assert len(s.requests) == 1


def test_precedence_call_over_middleware_over_gate() -> None:
    gate = LLMGate(retry_policy=TINY, max_retries=1)
    fast = {"backoff_factor": 0.001, "max_backoff": 0.002}
    with scripted(*_failures(10)) as s:
        with pytest.raises(ServerError):
            gate.completion("mock/m", USER)
    assert len(s.requests) == 2, "the gate's max_retries=1 applies to its retry_policy"
    with scripted(*_failures(10)) as s:
        with pytest.raises(ServerError):
            gate.completion("mock/m", USER, middleware=[RetryMiddleware(3, **fast)])
    assert len(s.requests) == 4, "a RetryMiddleware wins over the gate"
    with scripted(*_failures(10)) as s:
        with pytest.raises(ServerError):
            gate.completion("mock/m", USER, middleware=[RetryMiddleware(3, **fast)], max_retries=0)
    assert len(s.requests) == 1, "the call's own max_retries wins over everything"


def test_retry_middleware_never_multiplies_attempts() -> None:
    twice = [RetryMiddleware(2, 0.001), RetryMiddleware(2, 0.001)]
    with LLMGate(middleware=twice) as gate, scripted(*_failures(10)) as s:
        with pytest.raises(ServerError):
            gate.completion("mock/m", USER)
    assert len(s.requests) == 3, "one loop with one budget, however many RetryMiddleware"


def test_retry_after_is_waited_for_up_to_the_cap() -> None:
    policy = RetryPolicy(max_retries=1, max_retry_after=0.15)
    with LLMGate(retry_policy=policy) as gate:
        with scripted(MockReply(error_status=429, retry_after=0.1), MockReply(text="ok")):
            started = time.monotonic()
            gate.completion("mock/m", USER)
            assert 0.1 <= time.monotonic() - started < 0.5
        with scripted(MockReply(error_status=429, retry_after=3600), MockReply(text="ok")):
            started = time.monotonic()
            assert gate.completion("mock/m", USER).text == "ok"
            assert 0.15 <= time.monotonic() - started < 0.6, "an hour is clamped to the cap"


async def test_async_calls_share_the_budget() -> None:
    with LLMGate(retry_policy=TINY) as gate, scripted(*_failures(2), MockReply(text="ok")) as s:
        response = await gate.acompletion("mock/m", USER)
    assert (response.attempts, len(s.requests)) == (3, 3)


def test_stream_is_retried_before_its_first_chunk_only() -> None:
    with LLMGate(retry_policy=TINY) as gate:
        with scripted(*_failures(2), MockReply(text="a b c")) as s:
            stream = gate.completion("mock/m", USER, stream=True)
            assert "".join(c.delta for c in stream) == "a b c"
            assert stream.final_response().attempts == 3
            assert len(s.requests) == 3
        with scripted(MockReply(text="a b c d", fail_after=2), MockReply(text="never")) as s:
            stream = gate.completion("mock/m", USER, stream=True)
            with pytest.raises(ProviderConnectionError):
                list(stream)
            assert stream.text == "a b"
            assert len(s.requests) == 1, "after a chunk reached the caller, no retry"


async def test_async_stream_attempts_on_final_response() -> None:
    with LLMGate(retry_policy=TINY) as gate, scripted(*_failures(1), MockReply(text="x y")):
        stream = await gate.acompletion("mock/m", USER, stream=True)
        response = await stream.until_done()
    assert (response.text, response.attempts) == ("x y", 2)


def test_embeddings_are_retried_with_the_same_policy() -> None:
    with LLMGate(retry_policy=TINY, middleware=[RetryMiddleware(0)]) as gate:
        response = gate.embed("mock/e", ["a", "b"])
    assert response.attempts == 1
    assert len(response.embeddings) == 2
