"""batch / abatch: many completions with bounded concurrency, results in input order.

The sync path runs requests on a thread pool and needs no event loop, so ``batch()`` works
the same in a script and inside a running loop (a Jupyter cell). The async path runs a fixed
number of workers on the caller's loop. Either way only ``max_concurrency`` requests are in
flight, so memory is bounded by that, not by the number of requests (apart from the results).

Every item ends as a response or as a :class:`BatchError` with its index: nothing is lost.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._gate import _with_fallback_on
from .exceptions import BatchTimeoutError, InvalidRequestError, LLMGateError
from .middleware.base import BaseMiddleware
from .types import BatchError, BatchResult, CompletionRequest, CompletionResponse

if TYPE_CHECKING:
    from ._gate import LLMGate


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch stands: handed to the ``progress`` callback after every item."""

    done: int
    failed: int
    total: int
    tokens: int
    elapsed: float

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def rate(self) -> float:
        """Items finished per second so far."""
        return self.finished / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate (None before the first item finishes)."""
        rate = self.rate
        return (self.total - self.finished) / rate if rate > 0 else None


ProgressCallback = Callable[[BatchProgress], None]
Outcome = tuple[int, CompletionResponse | None, BatchError | None]


class _Tally:
    def __init__(self, total: int, progress: ProgressCallback | None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.tokens = 0
        self.started = time.perf_counter()
        self.progress = progress

    def record(self, response: CompletionResponse | None, error: BatchError | None) -> None:
        if response is not None:
            self.done += 1
            self.tokens += response.usage.total_tokens
        if error is not None:
            self.failed += 1
        if self.progress is not None:
            self.progress(
                BatchProgress(
                    self.done,
                    self.failed,
                    self.total,
                    self.tokens,
                    time.perf_counter() - self.started,
                )
            )


def build_batch_request(
    gate: LLMGate, item: CompletionRequest | Mapping[str, Any], defaults: Mapping[str, Any]
) -> tuple[CompletionRequest, Any]:
    """One batch item as a request (the batch-wide defaults filling what it leaves out) and
    its own ``fallback_on``, if it names one."""
    if isinstance(item, CompletionRequest):
        data: dict[str, Any] = {**defaults, **item.model_dump(exclude_unset=True)}
        data.update(data.pop("extra_kwargs", {}) or {})
        data["messages"] = item.messages
        if item.api_key is not None:
            data["api_key"] = item.api_key.get_secret_value()
    elif isinstance(item, Mapping):
        data = {**defaults, **item}
    else:
        raise InvalidRequestError(
            f"a batch request must be a CompletionRequest or a dict, not {type(item).__name__}"
        )
    data["stream"] = False
    fallback_on = data.pop("fallback_on", None)
    request = gate.build_request(data.pop("model", None), data.pop("messages", None), **data)
    return request, fallback_on


def batch_error(index: int, exc: BaseException) -> BatchError:
    return BatchError(
        index=index,
        error_type=type(exc).__name__,
        error=str(exc),
        status_code=getattr(exc, "status_code", None),
        exception=exc,
    )


def _cancelled(index: int, reason: str) -> BatchError:
    return BatchError(index=index, error_type="Cancelled", error=reason)


def collect(total: int, outcomes: Iterator[Outcome] | list[Outcome]) -> BatchResult:
    results: list[CompletionResponse | None] = [None] * total
    errors: list[BatchError] = []
    for index, response, error in outcomes:
        results[index] = response
        if error is not None:
            errors.append(error)
    done = sum(1 for r in results if r is not None)
    errors.sort(key=lambda e: e.index)
    return BatchResult(
        results=results,
        errors=errors,
        successful=done,
        failed=len(errors),
        total_tokens=sum(r.usage.total_tokens for r in results if r is not None),
        success_rate=(done / total) if total else 0.0,
    )


def _check(max_concurrency: int, timeout: float | None) -> None:
    if max_concurrency < 1:
        raise InvalidRequestError("max_concurrency must be at least 1")
    if timeout is not None and timeout <= 0:
        raise InvalidRequestError("timeout must be a positive number of seconds")


# --------------------------------------------------------------------------- sync


def iter_batch(
    gate: LLMGate,
    requests: Sequence[CompletionRequest | Mapping[str, Any]],
    *,
    max_concurrency: int = 10,
    fail_fast: bool = False,
    middleware: Sequence[BaseMiddleware] | None = None,
    timeout: float | None = None,
    progress: ProgressCallback | None = None,
    indices: Sequence[int] | None = None,
    **defaults: Any,
) -> Iterator[Outcome]:
    """Run a batch on threads, yielding ``(index, response, error)`` as items finish."""
    _check(max_concurrency, timeout)
    if timeout is not None:
        defaults.setdefault("timeout", timeout)
    order = list(range(len(requests))) if indices is None else list(indices)
    tally = _Tally(len(order), progress)
    started: dict[int, float] = {}
    lock = threading.Lock()

    def run_one(index: int) -> CompletionResponse:
        with lock:
            started[index] = time.monotonic()
        request, fallback_on = build_batch_request(gate, requests[index], defaults)
        chain = _with_fallback_on(middleware, fallback_on)
        response: CompletionResponse = gate.run(request, chain)
        return response

    pool = ThreadPoolExecutor(max_workers=min(max_concurrency, max(len(order), 1)))
    pending: dict[Future[CompletionResponse], int] = {}
    # Finished futures arrive here, so each completion costs O(1) rather than a wait() that
    # registers a waiter with every pending future.
    finished: queue.SimpleQueue[Future[CompletionResponse]] = queue.SimpleQueue()
    order_left = iter(order)
    stopped: str | None = None

    def settled(future: Future[CompletionResponse], index: int) -> Outcome:
        exc = future.exception()
        if exc is None:
            return index, future.result(), None
        return index, None, batch_error(index, exc)

    try:
        while True:
            while stopped is None and len(pending) < max_concurrency:
                index = next(order_left, None)
                if index is None:
                    break
                future = pool.submit(run_one, index)
                pending[future] = index
                future.add_done_callback(finished.put)
            if not pending:
                break
            wait_for = None
            if timeout is not None:
                with lock:
                    starts = [started[i] for i in pending.values() if i in started]
                wait_for = max(0.0, min(starts) + timeout - time.monotonic()) if starts else timeout
            outcomes: list[Outcome] = []
            try:
                done = finished.get(timeout=wait_for)
                while True:
                    index_done = pending.pop(done, None)
                    if index_done is not None:  # None: a future given up on after its timeout
                        outcomes.append(settled(done, index_done))
                    done = finished.get_nowait()
            except queue.Empty:
                pass
            if timeout is not None:
                now = time.monotonic()
                for future, index in list(pending.items()):
                    if index in started and now - started[index] >= timeout:
                        del pending[future]
                        future.cancel()
                        error = BatchTimeoutError(index, timeout)
                        outcomes.append((index, None, batch_error(index, error)))
            for outcome in outcomes:
                tally.record(outcome[1], outcome[2])
                if outcome[2] is not None and fail_fast and stopped is None:
                    stopped = f"cancelled: request {outcome[0]} failed and fail_fast is on"
                yield outcome
            if stopped is not None:
                for future, index in list(pending.items()):
                    future.cancel()
                    del pending[future]
                    error_item = _cancelled(index, stopped)
                    tally.record(None, error_item)
                    yield index, None, error_item
                for index in order_left:
                    error_item = _cancelled(index, stopped)
                    tally.record(None, error_item)
                    yield index, None, error_item
                break
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def run_batch(
    gate: LLMGate,
    requests: Sequence[CompletionRequest | Mapping[str, Any]],
    **options: Any,
) -> BatchResult:
    return collect(len(requests), iter_batch(gate, requests, **options))


# --------------------------------------------------------------------------- async


async def aiter_batch(
    gate: LLMGate,
    requests: Sequence[CompletionRequest | Mapping[str, Any]],
    *,
    max_concurrency: int = 10,
    fail_fast: bool = False,
    middleware: Sequence[BaseMiddleware] | None = None,
    timeout: float | None = None,
    progress: ProgressCallback | None = None,
    indices: Sequence[int] | None = None,
    **defaults: Any,
) -> AsyncIterator[Outcome]:
    """Run a batch on the caller's loop, yielding ``(index, response, error)`` as items finish."""
    import asyncio

    _check(max_concurrency, timeout)
    if timeout is not None:
        defaults.setdefault("timeout", timeout)
    order = list(range(len(requests))) if indices is None else list(indices)
    tally = _Tally(len(order), progress)
    queue = iter(order)
    outcomes: asyncio.Queue[Outcome | None] = asyncio.Queue()
    stop = asyncio.Event()

    async def run_one(index: int) -> CompletionResponse:
        request, fallback_on = build_batch_request(gate, requests[index], defaults)
        coro = gate.arun(request, _with_fallback_on(middleware, fallback_on))
        if timeout is None:
            response: CompletionResponse = await coro
            return response
        try:
            return await asyncio.wait_for(coro, timeout)
        except asyncio.TimeoutError:
            raise BatchTimeoutError(index, timeout) from None

    async def worker() -> None:
        try:
            for index in queue:
                if stop.is_set():
                    await outcomes.put(
                        (index, None, _cancelled(index, "cancelled: an earlier request failed"))
                    )
                    continue
                try:
                    outcome: Outcome = (index, await run_one(index), None)
                except asyncio.CancelledError:
                    await outcomes.put(
                        (index, None, _cancelled(index, "cancelled: an earlier request failed"))
                    )
                    raise
                except (LLMGateError, Exception) as exc:
                    outcome = (index, None, batch_error(index, exc))
                    if fail_fast:
                        stop.set()
                await outcomes.put(outcome)
        finally:
            await outcomes.put(None)

    workers = [
        asyncio.ensure_future(worker()) for _ in range(min(max_concurrency, max(len(order), 1)))
    ]
    running = len(workers)
    try:
        while running:
            item = await outcomes.get()
            if item is None:
                running -= 1
                continue
            tally.record(item[1], item[2])
            if item[2] is not None and fail_fast:
                for task in workers:
                    if not task.done():
                        task.cancel()
            yield item
        for index in queue:
            error_item = _cancelled(index, "cancelled: an earlier request failed")
            tally.record(None, error_item)
            yield index, None, error_item
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def arun_batch(
    gate: LLMGate,
    requests: Sequence[CompletionRequest | Mapping[str, Any]],
    **options: Any,
) -> BatchResult:
    return collect(len(requests), [o async for o in aiter_batch(gate, requests, **options)])
