"""batch / abatch on the mock provider: order, errors, timeouts, fail_fast, progress, loops."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from llmgate import BatchProgress, LLMGate
from llmgate.exceptions import InvalidRequestError
from llmgate.testing import MockReply, scripted
from llmgate.types import CompletionRequest, Message


def _requests(n: int) -> list[dict[str, object]]:
    return [
        {"model": "mock/m", "messages": [{"role": "user", "content": f"item {i}"}]}
        for i in range(n)
    ]


def test_results_in_input_order() -> None:
    result = LLMGate().batch(_requests(25), max_concurrency=4)
    assert [r.text for r in result.results if r] == [f"item {i}" for i in range(25)]
    assert (result.successful, result.failed, result.success_rate) == (25, 0, 1.0)
    assert result.total_tokens == sum(r.usage.total_tokens for r in result.results if r)


def test_completion_request_objects_and_defaults() -> None:
    requests = [CompletionRequest(model="mock/a", messages=[Message(role="user", content="hi")])]
    with scripted() as script:
        result = LLMGate().batch(requests, max_tokens=7)
    assert result.results[0] is not None and result.results[0].text == "hi"
    assert script.requests[0].max_tokens == 7  # type: ignore[union-attr]


def test_failed_item_keeps_index_and_error() -> None:
    replies = [
        MockReply(text="ok"),
        MockReply(error_status=400, error_message="bad prompt"),
        MockReply(text="ok"),
    ]
    with scripted(*replies):
        result = LLMGate().batch(_requests(3), max_concurrency=1)
    assert result.results[1] is None
    assert result.failed == 1 and result.successful == 2
    error = result.errors[0]
    assert (error.index, error.error_type, error.status_code) == (1, "BadRequestError", 400)
    assert "bad prompt" in error.error


def test_invalid_item_is_reported_not_raised() -> None:
    requests = [*_requests(1), {"model": "mock/m", "messages": "not a list"}]
    result = LLMGate().batch(requests)
    assert result.successful == 1
    assert result.errors[0].index == 1 and result.errors[0].error_type == "InvalidRequestError"


def test_per_request_timeout_counts_from_start() -> None:
    # One worker: item 1 waits for item 0, but its timeout starts only when it starts.
    with scripted(
        MockReply(text="a", delay=0.05), MockReply(text="slow", delay=0.5), MockReply(text="c")
    ):
        result = LLMGate().batch(_requests(3), max_concurrency=1, timeout=0.2)
    assert result.results[0] is not None
    assert result.errors[0].index == 1 and result.errors[0].error_type == "BatchTimeoutError"
    assert result.errors[0].exception.timeout == 0.2


def test_fail_fast_cancels_the_rest() -> None:
    with scripted(MockReply(error_status=401), *[MockReply(text="x", delay=0.05)] * 20):
        result = LLMGate().batch(_requests(21), max_concurrency=1, fail_fast=True)
    assert result.errors[0].index == 0 and result.errors[0].error_type == "AuthError"
    assert result.successful == 0
    assert {e.error_type for e in result.errors[1:]} == {"Cancelled"}
    assert result.failed == 21


def test_progress_callback() -> None:
    seen: list[BatchProgress] = []
    LLMGate().batch(_requests(5), progress=seen.append, max_concurrency=2)
    assert len(seen) == 5
    assert seen[-1].done == 5 and seen[-1].total == 5 and seen[-1].tokens > 0
    assert [p.finished for p in seen] == [1, 2, 3, 4, 5]


def test_concurrency_is_bounded() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    from llmgate.middleware.base import BaseMiddleware

    class Track(BaseMiddleware):
        def before_call(self, ctx: object) -> None:
            nonlocal active, peak
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.01)

        def after_call(self, ctx: object, result: object) -> None:
            nonlocal active
            with lock:
                active -= 1

    LLMGate().batch(_requests(30), max_concurrency=3, middleware=[Track()])
    assert 1 < peak <= 3


def test_sync_batch_inside_running_loop() -> None:
    """batch() works from code already inside an event loop (e.g. a Jupyter cell)."""

    async def notebook_cell() -> int:
        return LLMGate().batch(_requests(4)).successful

    assert asyncio.run(notebook_cell()) == 4


async def test_abatch() -> None:
    seen: list[BatchProgress] = []
    with scripted(MockReply(text="a"), MockReply(error_status=500), MockReply(text="c")):
        result = await LLMGate().abatch(
            _requests(3), max_concurrency=1, max_retries=0, progress=seen.append
        )
    assert [r.text if r else None for r in result.results] == ["a", None, "c"]
    assert result.errors[0].index == 1 and result.errors[0].error_type == "ServerError"
    assert seen[-1].finished == 3


async def test_abatch_timeout_and_fail_fast() -> None:
    with scripted(MockReply(text="slow", delay=1.0), *[MockReply(text="x")] * 5):
        result = await LLMGate().abatch(
            _requests(6), max_concurrency=1, timeout=0.1, fail_fast=True
        )
    assert result.errors[0].error_type == "BatchTimeoutError"
    assert result.failed == 6 and {e.index for e in result.errors} == set(range(6))


def test_bad_options() -> None:
    with pytest.raises(InvalidRequestError):
        LLMGate().batch(_requests(1), max_concurrency=0)
    with pytest.raises(InvalidRequestError):
        LLMGate().batch(_requests(1), timeout=0)


def test_empty_batch() -> None:
    result = LLMGate().batch([])
    assert result.results == [] and result.success_rate == 0.0


def test_item_fallback_settings_are_not_sent_to_the_vendor() -> None:
    from llmgate.exceptions import RateLimitError

    item = {
        "model": ["mock/a", "mock/b"],
        "messages": [{"role": "user", "content": "x"}],
        "fallback_on": (RateLimitError,),
    }
    with scripted(MockReply(error_status=429), MockReply(text="from b")) as script:
        result = LLMGate().batch([item], max_retries=0)
    assert result.results[0] is not None and result.results[0].text == "from b"
    assert all("fallback_on" not in r.extra_kwargs for r in script.requests)  # type: ignore[union-attr]
    with scripted(MockReply(error_status=500), MockReply(text="never")):
        failed = LLMGate().batch([item], max_retries=0)
    assert failed.errors[0].error_type == "ServerError"
