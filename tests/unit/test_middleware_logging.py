"""LoggingMiddleware: one structured record per call, and secrets never in any output."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from llmgate import LLMGate, RetryPolicy
from llmgate.exceptions import AuthError, ServerError
from llmgate.middleware import (
    CacheMiddleware,
    FallbackMiddleware,
    LoggingMiddleware,
    RateLimitMiddleware,
)
from llmgate.middleware.logging import redact
from llmgate.testing import MockReply, scripted
from llmgate.types import TokenUsage

USER = [{"role": "user", "content": "Hello there"}]
SECRET = "sk-live-logging-test-0123456789abcdef"
FAST = RetryPolicy(max_retries=1, backoff_factor=0.001, max_backoff=0.001)


def _records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.llmgate for r in caplog.records if hasattr(r, "llmgate")]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="llmgate")
    return caplog


def test_a_successful_call_gives_one_record_with_the_fields(
    logs: pytest.LogCaptureFixture,
) -> None:
    usage = TokenUsage(prompt_tokens=5, completion_tokens=2, cached_prompt_tokens=1)
    with LLMGate(middleware=[LoggingMiddleware()], retry_policy=FAST) as gate:
        with scripted(MockReply(error_status=503), MockReply(text="hi", usage=usage)):
            gate.completion("mock/m", USER)
    (record,) = _records(logs)
    assert record["kind"] == "completion"
    assert (record["provider"], record["model"], record["outcome"]) == ("mock", "m", "ok")
    assert record["attempts"] == 2
    assert (record["prompt_tokens"], record["completion_tokens"], record["total_tokens"]) == (
        5,
        2,
        7,
    )
    assert record["cached_prompt_tokens"] == 1
    assert record["finish_reason"] == "stop"
    assert record["latency_ms"] >= 0
    assert logs.records[0].levelno == logging.INFO
    assert "mock/m ok" in logs.records[0].getMessage()


def test_a_failed_call_gives_one_record_with_the_error(logs: pytest.LogCaptureFixture) -> None:
    with LLMGate(middleware=[LoggingMiddleware()], retry_policy=FAST) as gate:
        with scripted(MockReply(error_status=503), MockReply(error_status=503, retry_after=0)):
            with pytest.raises(ServerError):
                gate.completion("mock/m", USER)
    (record,) = _records(logs)
    assert (record["outcome"], record["error_type"], record["status_code"]) == (
        "error",
        "ServerError",
        503,
    )
    assert record["attempts"] == 2
    assert record["request_id"].startswith("mock-req-")
    assert record["retry_after"] == 0
    assert logs.records[0].levelno == logging.WARNING


@pytest.mark.parametrize("is_async", [False, True])
def test_streams_give_one_record_when_they_end(
    is_async: bool, logs: pytest.LogCaptureFixture
) -> None:
    with LLMGate(middleware=[LoggingMiddleware()]) as gate:
        if is_async:

            async def run() -> None:
                stream = await gate.acompletion("mock/m", USER, stream=True)
                await stream.until_done()

            asyncio.run(run())
        else:
            gate.completion("mock/m", USER, stream=True).until_done()
    (record,) = _records(logs)
    assert (record["kind"], record["outcome"], record["chunks"]) == ("stream", "ok", 3)
    assert record["total_tokens"] > 0
    assert record["first_chunk_ms"] is not None
    assert record["async"] is is_async


def test_a_stream_closed_early_is_logged_as_cancelled(logs: pytest.LogCaptureFixture) -> None:
    with LLMGate(middleware=[LoggingMiddleware()]) as gate:
        stream = gate.completion("mock/m", USER, stream=True)
        next(stream)
        stream.close()
    (record,) = _records(logs)
    assert record["outcome"] == "cancelled"
    assert "error_type" not in record


def test_a_stream_failing_mid_way_is_logged_as_an_error(logs: pytest.LogCaptureFixture) -> None:
    with (
        LLMGate(middleware=[LoggingMiddleware()]) as gate,
        scripted(MockReply(text="a b c", fail_after=1)),
    ):
        with pytest.raises(Exception, match="cut"):
            list(gate.completion("mock/m", USER, stream=True))
    (record,) = _records(logs)
    assert (record["outcome"], record["error_type"], record["chunks"]) == (
        "error",
        "ProviderConnectionError",
        1,
    )


def test_embeddings_are_logged(logs: pytest.LogCaptureFixture) -> None:
    with LLMGate(middleware=[LoggingMiddleware()]) as gate:
        asyncio.run(gate.aembed("mock/e", ["a", "b"]))
    (record,) = _records(logs)
    assert (record["kind"], record["async"], record["outcome"]) == ("embedding", True, "ok")
    assert record["prompt_tokens"] > 0


def test_fallback_cache_and_rate_limit_are_in_the_record(logs: pytest.LogCaptureFixture) -> None:
    chain = [
        LoggingMiddleware(),
        FallbackMiddleware(["mock/b"]),
        RateLimitMiddleware(rpm=1000),
        CacheMiddleware(),
    ]
    with LLMGate(middleware=chain, max_retries=0) as gate:
        with scripted(MockReply(error_status=500), "from b"):
            gate.completion("mock/a", USER)
        gate.completion("mock/a", USER, fallback_on=())  # b's answer is not cached for a
    first, second, third = _records(logs)
    assert (first["model"], first["outcome"]) == ("a", "error")
    assert (second["model"], second["fallback_attempts"], second["cache"]) == (
        "b",
        ["mock/a"],
        "miss",
    )
    assert "rate_limit_wait_ms" in second
    assert (third["model"], third["cache"], third["outcome"]) == ("a", "miss", "ok")
    assert "after mock/a failed" in logs.records[1].getMessage()


def test_level_and_logger_are_configurable(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="myapp.llm")
    middleware = LoggingMiddleware(logging.DEBUG, logger="myapp.llm")
    with LLMGate(middleware=[middleware]) as gate:
        gate.completion("mock/m", USER)
    (record,) = caplog.records
    assert (record.name, record.levelno) == ("myapp.llm", logging.DEBUG)


def test_nothing_is_formatted_when_the_level_is_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="llmgate")
    with LLMGate(middleware=[LoggingMiddleware()]) as gate:
        gate.completion("mock/m", USER)
    assert caplog.records == []


# ---------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    "text",
    [
        f"Incorrect API key provided: {SECRET}",
        "Authorization: Bearer abcdef0123456789xyz",
        "request failed: api_key=hunter2hunter2&x=1",
        "x-goog-api-key: AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "key AKIAABCDEFGHIJKLMNOP was refused",
    ],
)
def test_redact_removes_keys_and_tokens(text: str) -> None:
    cleaned = redact(text, [SECRET])
    assert "[redacted]" in cleaned
    for secret in (SECRET, "abcdef0123456789xyz", "hunter2hunter2", "AIzaSyA12345", "AKIAABCD"):
        assert secret not in cleaned


def test_the_api_key_never_reaches_logs_reprs_or_error_text(
    logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    echo = MockReply(error_status=401, error_message=f"Incorrect API key provided: {SECRET}")
    gate = LLMGate(api_key=SECRET, middleware=[LoggingMiddleware()], max_retries=0)
    with gate, scripted(echo, MockReply(text="ok")):
        with pytest.raises(AuthError) as info:
            gate.completion("mock/m", USER, api_key=SECRET)
        request = gate.build_request("mock/m", USER, api_key=SECRET)
        gate.completion("mock/m", USER, api_key=SECRET)
        provider = gate.provider_for(gate.registry.get("mock"), SECRET)
        outputs = [
            str(info.value),
            repr(info.value),
            str(info.value.args),
            repr(request),
            str(request),
            repr(gate),
            repr(provider),
            repr(provider.settings),
            repr(gate.middleware),
            logs.text,
            *(str(r.__dict__) for r in logs.records),
        ]
    assert len(_records(logs)) == 2
    for output in outputs:
        assert SECRET not in output


def test_env_keys_of_the_provider_are_redacted_too(
    logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "envsecret-0123456789")
    middleware = LoggingMiddleware()
    from llmgate.exceptions import ProviderAPIError
    from llmgate.middleware.base import CallContext

    request = LLMGate().build_request("openai/gpt-x", USER)
    ctx = CallContext(request, "completion", False, "openai", "gpt-x")
    middleware.emit(
        middleware.fields(ctx, "error", error=ProviderAPIError("bad key envsecret-0123456789"))
    )
    assert "envsecret-0123456789" not in logs.text
