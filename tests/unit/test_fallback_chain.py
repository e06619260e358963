"""Fallback across models for plain calls: order, errors, settings, attempts."""

from __future__ import annotations

from typing import Any

import pytest

from llmgate import LLMGate, RetryPolicy
from llmgate.exceptions import (
    AllProvidersFailedError,
    AuthError,
    BadRequestError,
    ConfigError,
    ModelNotFoundError,
    RateLimitError,
    ServerError,
)
from llmgate.middleware import BaseMiddleware, CallContext, FallbackMiddleware
from llmgate.testing import MockReply, scripted

USER = [{"role": "user", "content": "Hello there"}]
NO_RETRY = RetryPolicy(max_retries=0)


def _gate(**kwargs: Any) -> LLMGate:
    return LLMGate(retry_policy=NO_RETRY, **kwargs)


def _models(script_requests: list[Any]) -> list[str]:
    return [r.model for r in script_requests]


def test_next_model_answers_and_failures_are_listed() -> None:
    with _gate() as gate, scripted(MockReply(error_status=503), MockReply(text="b")) as s:
        response = gate.completion(["mock/a", "mock/b"], USER)
    assert response.text == "b"
    assert response.model == "b"
    assert response.fallback_attempts == ["mock/a"]
    assert response.attempts == 2
    assert _models(s.requests) == ["mock/a", "mock/b"]


def test_first_model_success_tries_nothing_else() -> None:
    with _gate() as gate, scripted(MockReply(text="a")) as s:
        response = gate.completion(["mock/a", "mock/b"], USER)
    assert (response.text, response.fallback_attempts) == ("a", [])
    assert len(s.requests) == 1


def test_all_failed_lists_model_and_error() -> None:
    with _gate() as gate, scripted(MockReply(error_status=500), MockReply(error_status=429)):
        with pytest.raises(AllProvidersFailedError) as info:
            gate.completion(["mock/a", "mock/b"], USER)
    (first, first_error), (second, second_error) = info.value.errors
    assert (first, second) == ("mock/a", "mock/b")
    assert isinstance(first_error, ServerError)
    assert isinstance(second_error, RateLimitError)
    assert "mock/a" in str(info.value) and "mock/b" in str(info.value)


def test_each_model_gets_its_own_retries_before_falling_back() -> None:
    policy = RetryPolicy(max_retries=1, backoff_factor=0.001, max_backoff=0.001)
    replies = [MockReply(error_status=503), MockReply(error_status=503), MockReply(text="b")]
    with LLMGate(retry_policy=policy) as gate, scripted(*replies) as s:
        response = gate.completion(["mock/a", "mock/b"], USER)
    assert _models(s.requests) == ["mock/a", "mock/a", "mock/b"]
    assert response.attempts == 3


def test_gate_fallback_chain_and_fallback_on() -> None:
    with _gate(fallback_chain=["mock/backup"], fallback_on=RateLimitError) as gate:
        with scripted(MockReply(error_status=429), MockReply(text="backup")):
            assert gate.completion("mock/main", USER).text == "backup"
        with scripted(MockReply(error_status=500), MockReply(text="never")) as s:
            with pytest.raises(ServerError):
                gate.completion("mock/main", USER)
        assert len(s.requests) == 1, "an error outside fallback_on is raised at once"


def test_per_call_fallback_on_wins_over_the_gate() -> None:
    with _gate() as gate, scripted(MockReply(error_status=401), MockReply(text="b")) as s:
        with pytest.raises(AuthError):
            gate.completion(["mock/a", "mock/b"], USER, fallback_on=(RateLimitError,))
    assert len(s.requests) == 1


def test_errors_outside_provider_errors_are_raised_at_once() -> None:
    with _gate() as gate, scripted(MockReply(error_status=500)):
        with pytest.raises(ModelNotFoundError):
            gate.completion(["mock/a", "nosuchvendor/x"], USER)


def test_fallback_middleware_adds_models_after_the_calls_own() -> None:
    middleware = FallbackMiddleware(["mock/c"])
    replies = [MockReply(error_status=500), MockReply(error_status=500), MockReply(text="c")]
    with _gate(fallback_chain=["mock/d"]) as gate, scripted(*replies) as s:
        response = gate.completion(["mock/a", "mock/b"], USER, middleware=[middleware])
    assert response.text == "c"
    assert response.fallback_attempts == ["mock/a", "mock/b"]
    assert _models(s.requests) == ["mock/a", "mock/b", "mock/c"]


def test_fallback_middleware_fallback_on() -> None:
    middleware = FallbackMiddleware(["mock/b"], fallback_on=BadRequestError)
    with _gate(middleware=[middleware]) as gate:
        with scripted(MockReply(error_status=400), MockReply(text="b")):
            assert gate.completion("mock/a", USER).text == "b"
        with scripted(MockReply(error_status=503), MockReply(text="never")):
            with pytest.raises(ServerError):
                gate.completion("mock/a", USER)


def test_fallback_middleware_refuses_embeddings_and_bad_settings() -> None:
    with _gate(middleware=[FallbackMiddleware(["mock/b"])]) as gate:
        with pytest.raises(ConfigError, match="embedding"):
            gate.embed("mock/a", "text")
    with pytest.raises(ConfigError):
        FallbackMiddleware(["mock/b"], fallback_on=["not an exception"])  # type: ignore[list-item]


def test_duplicate_models_in_a_list_are_each_tried() -> None:
    with _gate() as gate, scripted(MockReply(error_status=500), MockReply(text="2nd")) as s:
        assert gate.completion(["mock/a", "mock/a"], USER).text == "2nd"
    assert len(s.requests) == 2


class _Seen(BaseMiddleware):
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def before_call(self, ctx: CallContext) -> None:
        self.calls.append((ctx.model, list(ctx.fallback_attempts)))


def test_middleware_runs_for_each_model_and_knows_the_failures() -> None:
    seen = _Seen()
    with _gate(middleware=[seen]) as gate:
        with scripted(MockReply(error_status=500), MockReply(text="b")):
            gate.completion(["mock/a", "mock/b"], USER)
    assert seen.calls == [("a", []), ("b", ["mock/a"])]


async def test_async_fallback() -> None:
    with _gate() as gate, scripted(MockReply(error_status=503), MockReply(text="b")):
        response = await gate.acompletion(["mock/a", "mock/b"], USER)
    assert (response.text, response.fallback_attempts, response.attempts) == (
        "b",
        ["mock/a"],
        2,
    )
    with _gate() as gate, scripted(MockReply(error_status=503), MockReply(error_status=503)):
        with pytest.raises(AllProvidersFailedError) as info:
            await gate.acompletion(["mock/a", "mock/b"], USER)
    assert [model for model, _ in info.value.errors] == ["mock/a", "mock/b"]


def test_structured_output_is_parsed_from_the_fallback_answer() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    with _gate() as gate, scripted(MockReply(error_status=500), MockReply(text='{"n": 3}')):
        response = gate.completion(["mock/a", "mock/b"], USER, response_format=schema)
    assert response.parsed == {"n": 3}
