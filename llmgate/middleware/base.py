"""The middleware chain.

A middleware sees every call the gate makes — sync, async, streaming and embeddings —
through one of two forms:

- **hooks**: ``before_call(ctx)``, ``after_call(ctx, result)`` and ``on_error(ctx, error)``.
  Written once, they run on every kind of call: on a stream, ``after_call`` receives the
  final :class:`~llmgate.types.CompletionResponse` when the stream ends. Async calls use
  ``abefore_call``/``aafter_call``/``aon_error`` when a middleware defines them, else the
  sync hooks.
- **wrapping**: override ``wrap_call``/``awrap_call`` (and ``wrap_stream``/``awrap_stream``)
  to control the call itself: skip it (a cache), delay it (a rate limit), or replace it.

A middleware that cannot handle some kind of call lists the kinds it does handle in
``supports``; using it on another kind raises :class:`~llmgate.exceptions.ConfigError`
instead of being skipped. The list order is the nesting order: the first middleware is the
outermost.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from typing_extensions import override

from ..exceptions import ConfigError
from ..types import (
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamChunk,
)

CallKind = Literal["completion", "stream", "embedding"]
Result = CompletionResponse | EmbeddingResponse
CallNext = Callable[["CallContext"], Any]
AsyncCallNext = Callable[["CallContext"], Awaitable[Any]]
StreamNext = Callable[["CallContext"], Iterator[StreamChunk]]
AsyncStreamNext = Callable[["CallContext"], AsyncIterator[StreamChunk]]

ALL_KINDS = frozenset({"sync", "async", "completion", "stream", "embedding"})


@dataclass
class CallContext:
    """What a middleware knows about the call in flight."""

    request: CompletionRequest | EmbeddingRequest
    kind: CallKind
    is_async: bool
    provider: str
    model: str
    attempts: int = 0
    fallback_attempts: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.perf_counter)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started_at


class BaseMiddleware:
    """Subclass and override the hooks, or the wrapping methods, you need."""

    supports: ClassVar[frozenset[str]] = ALL_KINDS

    # hooks -------------------------------------------------------------------------
    def before_call(self, ctx: CallContext) -> None:
        """Runs before the call; may change ``ctx.request`` (it is the request sent)."""

    def after_call(self, ctx: CallContext, result: Any) -> Any:
        """Runs after success; return a replacement result, or None to keep it."""
        return None

    def on_error(self, ctx: CallContext, error: BaseException) -> None:
        """Runs when the call failed (after retries); the error is raised afterwards."""

    async def abefore_call(self, ctx: CallContext) -> None:
        self.before_call(ctx)

    async def aafter_call(self, ctx: CallContext, result: Any) -> Any:
        return self.after_call(ctx, result)

    async def aon_error(self, ctx: CallContext, error: BaseException) -> None:
        self.on_error(ctx, error)

    # wrapping forms ----------------------------------------------------------------
    def wrap_call(self, ctx: CallContext, call_next: CallNext) -> Any:
        self.before_call(ctx)
        try:
            result = call_next(ctx)
        except BaseException as error:
            self.on_error(ctx, error)
            raise
        replaced = self.after_call(ctx, result)
        return result if replaced is None else replaced

    async def awrap_call(self, ctx: CallContext, call_next: AsyncCallNext) -> Any:
        await self.abefore_call(ctx)
        try:
            result = await call_next(ctx)
        except BaseException as error:
            await self.aon_error(ctx, error)
            raise
        replaced = await self.aafter_call(ctx, result)
        return result if replaced is None else replaced

    def wrap_stream(self, ctx: CallContext, call_next: StreamNext) -> Iterator[StreamChunk]:
        from .._streaming import ChunkAccumulator

        self.before_call(ctx)
        accumulator = ChunkAccumulator() if self._wants_result(False) else None
        chunks = call_next(ctx)
        try:
            for chunk in chunks:
                if accumulator is not None:
                    accumulator.add(chunk)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as error:
            self.on_error(ctx, error)
            raise
        finally:
            _close(chunks)
        if accumulator is not None:
            self.after_call(ctx, accumulator.response())

    async def awrap_stream(
        self, ctx: CallContext, call_next: AsyncStreamNext
    ) -> AsyncIterator[StreamChunk]:
        from .._streaming import ChunkAccumulator

        await self.abefore_call(ctx)
        accumulator = ChunkAccumulator() if self._wants_result(True) else None
        chunks = call_next(ctx)
        try:
            async for chunk in chunks:
                if accumulator is not None:
                    accumulator.add(chunk)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as error:
            await self.aon_error(ctx, error)
            raise
        finally:
            await _aclose(chunks)
        if accumulator is not None:
            await self.aafter_call(ctx, accumulator.response())

    def _wants_result(self, is_async: bool) -> bool:
        """Whether a stream must be added up for ``after_call`` (skipped when it is a no-op)."""
        cls = type(self)
        if cls.after_call is not BaseMiddleware.after_call:
            return True
        return is_async and cls.aafter_call is not BaseMiddleware.aafter_call


class SettingsMiddleware(BaseMiddleware):
    """A middleware that only configures the gate: its retry policy or its fallback models.

    The gate reads the settings when a call starts; the call itself passes straight
    through, so such a middleware costs nothing per call or per chunk.
    """

    @override
    def wrap_call(self, ctx: CallContext, call_next: CallNext) -> Any:
        return call_next(ctx)

    @override
    async def awrap_call(self, ctx: CallContext, call_next: AsyncCallNext) -> Any:
        return await call_next(ctx)

    @override
    def wrap_stream(self, ctx: CallContext, call_next: StreamNext) -> Iterator[StreamChunk]:
        return call_next(ctx)

    @override
    def awrap_stream(
        self, ctx: CallContext, call_next: AsyncStreamNext
    ) -> AsyncIterator[StreamChunk]:
        return call_next(ctx)


def _close(iterator: Any) -> None:
    closer = getattr(iterator, "close", None)
    if closer is not None:
        closer()


async def _aclose(iterator: Any) -> None:
    closer = getattr(iterator, "aclose", None)
    if closer is not None:
        await closer()


def check_supported(middleware: Sequence[BaseMiddleware], kind: CallKind, is_async: bool) -> None:
    """Refuse a middleware on a kind of call it declares it cannot handle."""
    if not middleware:
        return
    needed = {kind, "async" if is_async else "sync"}
    for item in middleware:
        missing = needed - item.supports
        if missing:
            raise ConfigError(
                f"{type(item).__name__} does not support {', '.join(sorted(missing))} calls; "
                f"it supports: {', '.join(sorted(item.supports))}"
            )


def run_chain(middleware: Sequence[BaseMiddleware], ctx: CallContext, innermost: CallNext) -> Any:
    call: CallNext = innermost
    for item in reversed(middleware):
        call = _bind(item.wrap_call, call)
    return call(ctx)


async def arun_chain(
    middleware: Sequence[BaseMiddleware], ctx: CallContext, innermost: AsyncCallNext
) -> Any:
    call: AsyncCallNext = innermost
    for item in reversed(middleware):
        call = _abind(item.awrap_call, call)
    return await call(ctx)


def run_stream_chain(
    middleware: Sequence[BaseMiddleware], ctx: CallContext, innermost: StreamNext
) -> Iterator[StreamChunk]:
    call: StreamNext = innermost
    for item in reversed(middleware):
        call = _bind(item.wrap_stream, call)
    return call(ctx)


def arun_stream_chain(
    middleware: Sequence[BaseMiddleware], ctx: CallContext, innermost: AsyncStreamNext
) -> AsyncIterator[StreamChunk]:
    call: AsyncStreamNext = innermost
    for item in reversed(middleware):
        call = _bind(item.awrap_stream, call)
    return call(ctx)


def _bind(method: Callable[[CallContext, Any], Any], call_next: Any) -> Any:
    def bound(ctx: CallContext) -> Any:
        return method(ctx, call_next)

    return bound


def _abind(
    method: Callable[[CallContext, AsyncCallNext], Awaitable[Any]], call_next: AsyncCallNext
) -> AsyncCallNext:
    async def bound(ctx: CallContext) -> Any:
        return await method(ctx, call_next)

    return bound
