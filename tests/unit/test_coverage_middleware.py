"""Middleware on the failure paths: failed calls and broken streams, sync and async."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import llmgate.middleware
from llmgate import LLMGate
from llmgate._registry import ProviderSpec, Registry
from llmgate.exceptions import ConfigError, ProviderConnectionError, RateLimitError
from llmgate.middleware import (
    BaseMiddleware,
    FallbackMiddleware,
    LoggingMiddleware,
    RateLimitMiddleware,
    RetryMiddleware,
)
from llmgate.middleware.base import CallContext
from llmgate.testing import MockProvider, MockReply, scripted

USER = [{"role": "user", "content": "hello"}]


def records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.llmgate for r in caplog.records if hasattr(r, "llmgate")]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- the package


def test_middleware_package_exports_lazily_and_refuses_unknown_names() -> None:
    assert "RateLimitMiddleware" in dir(llmgate.middleware)
    assert llmgate.middleware.RetryMiddleware is RetryMiddleware
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        llmgate.middleware.Nope  # noqa: B018


def test_reprs_name_their_settings() -> None:
    assert repr(FallbackMiddleware("mock/b")) == "FallbackMiddleware(models=['mock/b'])"
    assert "max_retries=5" in repr(RetryMiddleware(max_retries=5))
    limiter = repr(RateLimitMiddleware(rpm=10, scope="provider"))
    assert limiter.startswith("RateLimitMiddleware(rpm=10, tpm=None, scope='provider'")


@pytest.mark.parametrize("bad", ["ProviderError", [ValueError, "x"], [RateLimitError("429")]])
def test_fallback_on_must_be_exception_classes(bad: Any) -> None:
    with pytest.raises(ConfigError, match="fallback_on takes exception classes"):
        FallbackMiddleware(["mock/b"], fallback_on=bad)


def test_fallback_on_an_exception_instance_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="fallback_on takes exception classes"):
        FallbackMiddleware(["mock/b"], fallback_on=RateLimitError("429"))  # type: ignore[arg-type]


def test_fallback_middleware_with_one_model_string() -> None:
    with scripted(MockReply(error_status=500), "from b") as script:
        response = LLMGate(max_retries=0).completion(
            "mock/a", USER, middleware=[FallbackMiddleware("mock/b")]
        )
    assert response.text == "from b"
    assert [r.model for r in script.requests] == ["mock/a", "mock/b"]


# --------------------------------------------------------------------------- logging


def test_async_failure_is_logged_once_with_the_key_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio

    key = "sk-abcdefghijklmnop"
    reply = MockReply(error_status=429, error_message=f"slow down, {key}", retry_after=3)

    async def call() -> None:
        await LLMGate(max_retries=0).acompletion("mock/a", USER, middleware=[LoggingMiddleware()])

    with caplog.at_level(logging.INFO, "llmgate"), scripted(reply):
        with pytest.raises(RateLimitError):
            asyncio.run(call())
    (fields,) = records(caplog)
    assert fields["outcome"] == "error" and fields["async"] is True
    assert fields["error_type"] == "RateLimitError"
    assert key not in fields["error"] and "[redacted]" in fields["error"]
    assert (fields["status_code"], fields["retry_after"]) == (429, 3)
    assert fields["request_id"].startswith("mock-req-")


async def test_async_stream_that_breaks_is_logged_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, "llmgate"), scripted(MockReply(text="a b c", fail_after=2)):
        stream = await LLMGate(max_retries=0).acompletion(
            "mock/a", USER, stream=True, middleware=[LoggingMiddleware()]
        )
        with pytest.raises(ProviderConnectionError):
            async for _ in stream:
                pass
    (fields,) = records(caplog)
    assert (fields["kind"], fields["outcome"], fields["chunks"]) == ("stream", "error", 2)
    assert fields["error_type"] == "ProviderConnectionError"


def test_failure_of_a_provider_from_a_private_registry_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = Registry()
    registry.register(
        ProviderSpec(name="inhouse", module="unused:X", key_required=False), MockProvider
    )
    gate = LLMGate(registry=registry, max_retries=0, middleware=[LoggingMiddleware()])
    with caplog.at_level(logging.INFO, "llmgate"), scripted(MockReply(error_status=503)):
        with pytest.raises(llmgate.ProviderError):
            gate.completion("inhouse/m", USER)
    (fields,) = records(caplog)
    assert (fields["provider"], fields["outcome"], fields["status_code"]) == (
        "inhouse",
        "error",
        503,
    )


def test_non_provider_errors_are_logged_without_vendor_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Refuse(BaseMiddleware):
        def before_call(self, ctx: CallContext) -> None:
            raise ValueError("refused by policy: password=hunter22")

    gate = LLMGate(middleware=[LoggingMiddleware(), Refuse()])
    with caplog.at_level(logging.INFO, "llmgate"), pytest.raises(ValueError):
        gate.completion("mock/a", USER)
    (fields,) = records(caplog)
    assert fields["error_type"] == "ValueError"
    assert "hunter22" not in fields["error"]
    assert "status_code" not in fields


# --------------------------------------------------------------------------- hooks on streams


class Recorder(BaseMiddleware):
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.results: list[str] = []

    def on_error(self, ctx: CallContext, error: BaseException) -> None:
        self.errors.append(type(error).__name__)

    def after_call(self, ctx: CallContext, result: Any) -> Any:
        self.results.append(result.text)
        return None


def test_on_error_hook_runs_when_a_stream_breaks() -> None:
    recorder = Recorder()
    with scripted(MockReply(text="a b c", fail_after=1)):
        stream = LLMGate(max_retries=0).completion(
            "mock/a", USER, stream=True, middleware=[recorder]
        )
        with pytest.raises(ProviderConnectionError):
            list(stream)
    assert recorder.errors == ["ProviderConnectionError"] and recorder.results == []


async def test_on_error_hook_runs_when_an_async_stream_breaks() -> None:
    recorder = Recorder()
    with scripted(MockReply(text="a b c", fail_after=1), "x y") as script:
        gate = LLMGate(max_retries=0)
        stream = await gate.acompletion("mock/a", USER, stream=True, middleware=[recorder])
        with pytest.raises(ProviderConnectionError):
            async for _ in stream:
                pass
        good = await gate.acompletion("mock/a", USER, stream=True, middleware=[recorder])
        await good.until_done()
    assert recorder.errors == ["ProviderConnectionError"]
    assert recorder.results == ["x y"]
    assert len(script.requests) == 2


# --------------------------------------------------------------------------- rate limits


def _limiter() -> RateLimitMiddleware:
    # 10 tokens a second, half a second of burst: one call of ~5 tokens fills the window,
    # so a second call right after a successful one would have to wait.
    return RateLimitMiddleware(tpm=600, burst_window=0.5)


LIMITED = dict(max_tokens=3, max_retries=0)


def test_a_failed_call_gives_its_token_reservation_back(caplog: pytest.LogCaptureFixture) -> None:
    gate = LLMGate(middleware=[LoggingMiddleware(), _limiter()])
    with caplog.at_level(logging.INFO, "llmgate"), scripted(MockReply(error_status=400), "ok"):
        with pytest.raises(llmgate.ProviderError):
            gate.completion("mock/a", USER, **LIMITED)
        assert gate.completion("mock/a", USER, **LIMITED).text == "ok"
    assert [f.get("rate_limit_wait_ms", 0) for f in records(caplog)] == [0, 0]


def test_a_broken_stream_gives_its_token_reservation_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = LLMGate(middleware=[LoggingMiddleware(), _limiter()])
    with (
        caplog.at_level(logging.INFO, "llmgate"),
        scripted(MockReply(text="a b", fail_after=0), "ok"),
    ):
        with pytest.raises(ProviderConnectionError):
            list(gate.completion("mock/a", USER, stream=True, **LIMITED))
        assert list(gate.completion("mock/a", USER, stream=True, **LIMITED))
    assert [f.get("rate_limit_wait_ms", 0) for f in records(caplog)] == [0, 0]


async def test_async_failures_give_their_token_reservation_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = LLMGate(middleware=[LoggingMiddleware(), _limiter()])
    replies = (MockReply(error_status=400), MockReply(text="a b", fail_after=1), "ok")
    with caplog.at_level(logging.INFO, "llmgate"), scripted(*replies):
        with pytest.raises(llmgate.ProviderError):
            await gate.acompletion("mock/a", USER, **LIMITED)
        stream = await gate.acompletion("mock/a", USER, stream=True, **LIMITED)
        with pytest.raises(ProviderConnectionError):
            async for _ in stream:
                pass
        assert (await gate.acompletion("mock/a", USER, **LIMITED)).text == "ok"
    assert [f.get("rate_limit_wait_ms", 0) for f in records(caplog)] == [0, 0, 0]


def test_tools_count_towards_the_token_estimate() -> None:
    tool = {
        "name": "search",
        "description": "Search the catalogue " * 20,
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    limiter = RateLimitMiddleware(tpm=600, burst_window=60)
    gate = LLMGate(middleware=[limiter])
    with scripted("plain", "with tools"):
        gate.completion("mock/a", USER, max_retries=0)
        gate.completion("mock/b", USER, tools=[tool], max_retries=0)
    tat = limiter.backend._tat  # type: ignore[attr-defined]
    assert tat["default:mock/b:tokens"] > tat["default:mock/a:tokens"]
