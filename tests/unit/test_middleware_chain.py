"""The middleware chain: hooks and wrapping on every kind of call, order, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from llmgate import LLMGate, RetryPolicy
from llmgate.exceptions import ConfigError, ServerError
from llmgate.middleware import (
    BaseMiddleware,
    CacheMiddleware,
    CallContext,
    FallbackMiddleware,
    LoggingMiddleware,
    RateLimitMiddleware,
    RetryMiddleware,
)
from llmgate.middleware.base import CallNext, StreamNext
from llmgate.testing import MockReply, scripted
from llmgate.types import CompletionResponse, EmbeddingResponse, StreamChunk

USER = [{"role": "user", "content": "Hello there"}]
FAST = RetryPolicy(max_retries=1, backoff_factor=0.001, max_backoff=0.001)
KINDS = [
    ("completion", False),
    ("completion", True),
    ("stream", False),
    ("stream", True),
    ("embedding", False),
    ("embedding", True),
]
KIND_IDS = [f"{'async-' if is_async else ''}{kind}" for kind, is_async in KINDS]


def call(gate: LLMGate, kind: str, is_async: bool, **kwargs: Any) -> Any:
    """One call of the given kind; streams are consumed and give their final response."""
    if kind == "embedding":
        if is_async:
            return asyncio.run(gate.aembed("mock/embed", ["one", "two"], **kwargs))
        return gate.embed("mock/embed", ["one", "two"], **kwargs)
    stream = kind == "stream"
    if not is_async:
        result = gate.completion("mock/m", USER, stream=stream, **kwargs)
        return result.until_done() if stream else result

    async def run() -> Any:
        result = await gate.acompletion("mock/m", USER, stream=stream, **kwargs)
        return await result.until_done() if stream else result

    return asyncio.run(run())


class Recorder(BaseMiddleware):
    """Hooks only, written once: they must run on every kind of call."""

    def __init__(self, name: str = "r", log: list[str] | None = None) -> None:
        self.name = name
        self.log = log if log is not None else []
        self.results: list[Any] = []
        self.errors: list[BaseException] = []

    def before_call(self, ctx: CallContext) -> None:
        self.log.append(f"{self.name}:before:{ctx.kind}:{'async' if ctx.is_async else 'sync'}")

    def after_call(self, ctx: CallContext, result: Any) -> Any:
        self.log.append(f"{self.name}:after")
        self.results.append(result)
        return None

    def on_error(self, ctx: CallContext, error: BaseException) -> None:
        self.log.append(f"{self.name}:error")
        self.errors.append(error)


@pytest.mark.parametrize(("kind", "is_async"), KINDS, ids=KIND_IDS)
def test_hooks_run_on_every_kind_of_call(kind: str, is_async: bool) -> None:
    recorder = Recorder()
    with LLMGate(middleware=[recorder]) as gate:
        call(gate, kind, is_async)
    mode = "async" if is_async else "sync"
    assert recorder.log == [f"r:before:{kind}:{mode}", "r:after"]
    expected = EmbeddingResponse if kind == "embedding" else CompletionResponse
    assert isinstance(recorder.results[0], expected)
    if kind == "stream":
        assert recorder.results[0].text == "Hello there", "after_call sees the whole stream"


@pytest.mark.parametrize(("kind", "is_async"), KINDS[:4], ids=KIND_IDS[:4])
def test_on_error_runs_once_after_the_retries(kind: str, is_async: bool) -> None:
    recorder = Recorder()
    with LLMGate(middleware=[recorder], retry_policy=FAST) as gate:
        with scripted(MockReply(error_status=503), MockReply(error_status=503)) as script:
            with pytest.raises(ServerError):
                call(gate, kind, is_async)
    assert len(script.requests) == 2
    assert recorder.log[-1] == "r:error"
    assert recorder.log.count("r:error") == 1
    assert isinstance(recorder.errors[0], ServerError)


def test_order_is_list_order_and_per_call_middleware_comes_after_the_gates() -> None:
    log: list[str] = []
    first, second, third = Recorder("1", log), Recorder("2", log), Recorder("3", log)
    with LLMGate(middleware=[first, second]) as gate:
        gate.completion("mock/m", USER, middleware=[third])
    assert log == [
        "1:before:completion:sync",
        "2:before:completion:sync",
        "3:before:completion:sync",
        "3:after",
        "2:after",
        "1:after",
    ]


class Replacer(BaseMiddleware):
    def after_call(self, ctx: CallContext, result: Any) -> Any:
        result = result.model_copy()
        result.provider_details = {"replaced": True}
        return result


def test_after_call_may_replace_the_result() -> None:
    with LLMGate(middleware=[Replacer()]) as gate:
        assert gate.completion("mock/m", USER).provider_details == {"replaced": True}


class Rewriter(BaseMiddleware):
    def before_call(self, ctx: CallContext) -> None:
        ctx.request = ctx.request.model_copy(update={"max_tokens": 5})


def test_before_call_may_change_the_request_sent() -> None:
    with LLMGate(middleware=[Rewriter()]) as gate, scripted("ok") as script:
        gate.completion("mock/m", USER)
    assert script.requests[0].max_tokens == 5


class SyncOnly(BaseMiddleware):
    supports = frozenset({"sync", "completion", "stream"})


@pytest.mark.parametrize(
    ("kind", "is_async"), [("completion", True), ("embedding", False), ("stream", True)]
)
def test_unsupported_kinds_raise_instead_of_being_skipped(kind: str, is_async: bool) -> None:
    with LLMGate(middleware=[SyncOnly()]) as gate, scripted() as script:
        with pytest.raises(ConfigError, match="SyncOnly does not support"):
            call(gate, kind, is_async)
    assert script.requests == [], "refused before any request"


class Wrapper(BaseMiddleware):
    """The wrapping form: it controls the call and sees the chunks go by."""

    def __init__(self) -> None:
        self.chunks = 0

    def wrap_call(self, ctx: CallContext, call_next: CallNext) -> Any:
        result = call_next(ctx)
        result.provider_details["wrapped"] = ctx.kind
        return result

    def wrap_stream(self, ctx: CallContext, call_next: StreamNext) -> Iterator[StreamChunk]:
        for chunk in call_next(ctx):
            self.chunks += 1
            yield chunk


def test_wrapping_forms() -> None:
    wrapper = Wrapper()
    with LLMGate(middleware=[wrapper]) as gate:
        assert gate.completion("mock/m", USER).provider_details["wrapped"] == "completion"
        assert gate.embed("mock/e", "x").provider_details["wrapped"] == "embedding"
        list(gate.completion("mock/m", USER, stream=True))
    assert wrapper.chunks == 3  # "Hello", " there", and the finish chunk


def test_a_hook_less_middleware_does_not_add_up_streams() -> None:
    class BeforeOnly(BaseMiddleware):
        def before_call(self, ctx: CallContext) -> None:
            pass

    assert not BeforeOnly()._wants_result(False)
    assert Recorder()._wants_result(False)


def _builtins() -> list[BaseMiddleware]:
    return [
        RetryMiddleware(1, 0.001),
        CacheMiddleware(ttl=60),
        LoggingMiddleware(),
        RateLimitMiddleware(rpm=10_000, tpm=10_000_000),
    ]


@pytest.mark.parametrize(("kind", "is_async"), KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("index", range(4), ids=["retry", "cache", "logging", "ratelimit"])
def test_every_builtin_middleware_works_on_every_kind_of_call(
    index: int, kind: str, is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    middleware = _builtins()[index]
    caplog.set_level("INFO", logger="llmgate")
    with LLMGate(middleware=[middleware]) as gate:
        first = call(gate, kind, is_async)
        second = call(gate, kind, is_async)
    if kind == "embedding":
        assert first.embeddings == second.embeddings and len(first.embeddings) == 2
    else:
        assert first.text == second.text == "Hello there"
    if isinstance(middleware, CacheMiddleware):
        assert second.attempts == 0, "the second call is a cache hit"
    if isinstance(middleware, LoggingMiddleware):
        records = [r for r in caplog.records if hasattr(r, "llmgate")]
        assert [r.llmgate["kind"] for r in records] == [kind, kind]


@pytest.mark.parametrize("is_async", [False, True])
def test_fallback_middleware_on_completions_and_streams(is_async: bool) -> None:
    with LLMGate(middleware=[FallbackMiddleware(["mock/b"])], retry_policy=FAST) as gate:
        for kind in ("completion", "stream"):
            with scripted(MockReply(error_status=400), "from b"):
                result = call(gate, kind, is_async)
            assert result.text == "from b"
            assert result.fallback_attempts == ["mock/m"]
