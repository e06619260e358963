"""batch / abatch: many completions with bounded concurrency, results in input order.

The sync :func:`run_batch` uses a thread pool and no event loop, so it works the same in a
script and inside a running loop (Jupyter). :func:`arun_batch` runs on the caller's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from .exceptions import InvalidRequestError, LLMGateError
from .middleware.base import BaseMiddleware
from .types import BatchError, BatchResult, CompletionRequest, CompletionResponse

if TYPE_CHECKING:
    from ._gate import LLMGate

ProgressCallback = Callable[[int, int, int, int], None]  # done, failed, total, tokens


def _request(
    gate: LLMGate, item: CompletionRequest | Mapping[str, Any], defaults: Mapping[str, Any]
) -> CompletionRequest:
    if isinstance(item, CompletionRequest):
        if not defaults:
            return item
        data = {**defaults, **item.model_dump(exclude_unset=True)}
        data["messages"] = item.messages
        return gate.build_request(data.pop("model"), data.pop("messages"), **data)
    if not isinstance(item, Mapping):
        raise InvalidRequestError("a batch request must be a CompletionRequest or a dict")
    data = {**defaults, **item}
    return gate.build_request(data.pop("model", None), data.pop("messages", None), **data)


def _error(index: int, exc: BaseException) -> BatchError:
    return BatchError(
        index=index,
        error_type=type(exc).__name__,
        error=str(exc),
        status_code=getattr(exc, "status_code", None),
        exception=exc,
    )


def _result(results: list[CompletionResponse | None], errors: list[BatchError]) -> BatchResult:
    done = sum(1 for r in results if r is not None)
    total = len(results)
    return BatchResult(
        results=results,
        errors=sorted(errors, key=lambda e: e.index),
        successful=done,
        failed=len(errors),
        total_tokens=sum(r.usage.total_tokens for r in results if r is not None),
        success_rate=(done / total) if total else 0.0,
    )


def run_batch(
    gate: LLMGate,
    requests: Sequence[CompletionRequest | Mapping[str, Any]],
    *,
    max_concurrency: int = 10,
    fail_fast: bool = False,
    middleware: Sequence[BaseMiddleware] | None = None,
    progress: ProgressCallback | None = None,
    **defaults: Any,
) -> BatchResult:
    if max_concurrency < 1:
        raise InvalidRequestError("max_concurrency must be at least 1")
    total = len(requests)
    results: list[CompletionResponse | None] = [None] * total
    errors: list[BatchError] = []
    tokens = 0

    def one(index: int) -> CompletionResponse:
        request = _request(gate, requests[index], defaults)
        response: CompletionResponse = gate.run(
            request.model_copy(update={"stream": False}), middleware
        )
        return response

    with ThreadPoolExecutor(max_workers=min(max_concurrency, max(total, 1))) as pool:
        pending: dict[Future[CompletionResponse], int] = {}
        next_index = 0
        stop = False
        while next_index < total or pending:
            while not stop and next_index < total and len(pending) < max_concurrency:
                pending[pool.submit(one, next_index)] = next_index
                next_index += 1
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                index = pending.pop(future)
                exc = future.exception()
                if exc is None:
                    results[index] = future.result()
                    tokens += future.result().usage.total_tokens
                else:
                    errors.append(_error(index, exc))
                    if fail_fast:
                        stop = True
                        for other in pending:
                            other.cancel()
                if progress is not None:
                    progress(total and len([r for r in results if r]), len(errors), total, tokens)
            if stop:
                next_index = total
    return _result(results, errors)


async def arun_batch(
    gate: LLMGate,
    requests: Sequence[CompletionRequest | Mapping[str, Any]],
    *,
    max_concurrency: int = 10,
    fail_fast: bool = False,
    middleware: Sequence[BaseMiddleware] | None = None,
    progress: ProgressCallback | None = None,
    **defaults: Any,
) -> BatchResult:
    if max_concurrency < 1:
        raise InvalidRequestError("max_concurrency must be at least 1")
    total = len(requests)
    results: list[CompletionResponse | None] = [None] * total
    errors: list[BatchError] = []
    queue = iter(range(total))
    failed_fast = asyncio.Event()

    async def worker() -> None:
        for index in queue:
            if failed_fast.is_set():
                return
            try:
                request = _request(gate, requests[index], defaults)
                results[index] = await gate.arun(
                    request.model_copy(update={"stream": False}), middleware
                )
            except (LLMGateError, Exception) as exc:
                errors.append(_error(index, exc))
                if fail_fast:
                    failed_fast.set()
            if progress is not None:
                done = sum(1 for r in results if r is not None)
                progress(done, len(errors), total, 0)

    await asyncio.gather(*(worker() for _ in range(min(max_concurrency, max(total, 1)))))
    return _result(results, errors)
