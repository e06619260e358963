"""Stream wrappers and the accumulator that turns chunks into a CompletionResponse.

A :class:`Stream` is opened eagerly: the call, its retries and the first chunk happen when
``completion(stream=True)`` runs, so a bad key or an exhausted quota raises there, not at
the first ``next()``. Closing the stream (``close()``, leaving a ``with`` block, breaking a
loop and dropping the object) closes the generator chain and so the SDK's HTTP response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar

from .types import (
    Choice,
    CompletionResponse,
    Message,
    StreamChunk,
    TokenUsage,
    ToolCall,
    parse_tool_arguments,
    trusted,
)

_T = TypeVar("_T")
_SENTINEL: Any = object()


class _ToolCallBuffer:
    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []


class ChunkAccumulator:
    """Adds up stream chunks; :meth:`response` gives what the non-streaming call returns.

    Linear in the output: text pieces are kept in lists and joined once.
    """

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.provider = ""
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tools: dict[int, _ToolCallBuffer] = {}
        self.finish_reason: str | None = None
        self.usage: TokenUsage | None = None
        self.extra_usage: TokenUsage | None = None
        self.fallback_attempts: list[str] = []
        self.message_details: dict[str, Any] = {}
        self.parsed: Any = None
        self.chunks = 0

    def add(self, chunk: StreamChunk) -> None:
        self.chunks += 1
        if chunk.restarted:
            self._text.clear()
            self._reasoning.clear()
            self._tools.clear()
            self.finish_reason = None
            if self.usage is not None:
                self.extra_usage = self.usage + self.extra_usage
                self.usage = None
        if chunk.id and not self.id:
            self.id = chunk.id
        if chunk.model:
            self.model = chunk.model
        if chunk.provider:
            self.provider = chunk.provider
        if chunk.delta:
            self._text.append(chunk.delta)
        if chunk.reasoning_delta:
            self._reasoning.append(chunk.reasoning_delta)
        if chunk.tool_call_deltas:
            for delta in chunk.tool_call_deltas:
                buffer = self._tools.get(delta.index)
                if buffer is None:
                    buffer = self._tools[delta.index] = _ToolCallBuffer()
                if delta.id:
                    buffer.id = delta.id
                if delta.name:
                    buffer.name = delta.name
                if delta.arguments_delta:
                    buffer.arguments.append(delta.arguments_delta)
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.fallback_attempts:
            self.fallback_attempts = list(chunk.fallback_attempts)
        if chunk.provider_details:
            self.message_details.update(chunk.provider_details)
        if chunk.parsed is not None:
            self.parsed = chunk.parsed

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def in_tool_call(self) -> bool:
        """True when a tool call has started and the stream has not finished."""
        return bool(self._tools) and self.finish_reason is None

    def tool_calls(self) -> list[ToolCall] | None:
        if not self._tools:
            return None
        calls = []
        for index in sorted(self._tools):
            buffer = self._tools[index]
            calls.append(
                ToolCall(
                    id=buffer.id or f"call_{index}",
                    name=buffer.name or "",
                    arguments=parse_tool_arguments("".join(buffer.arguments)),
                )
            )
        return calls

    def response(self) -> CompletionResponse:
        text = self.text
        tool_calls = self.tool_calls()
        reasoning = "".join(self._reasoning) or None
        # Built unvalidated: every value comes from validated chunks (see types.trusted).
        message = trusted(
            Message,
            role="assistant",
            content=text if (text or not tool_calls) else None,
            tool_calls=tool_calls,
            reasoning=reasoning,
            provider_details=dict(self.message_details) if self.message_details else None,
        )
        usage = (self.usage or trusted(TokenUsage)) + self.extra_usage
        return trusted(
            CompletionResponse,
            id=self.id,
            model=self.model,
            provider=self.provider,
            choices=[trusted(Choice, index=0, message=message, finish_reason=self.finish_reason)],
            usage=usage,
            parsed=self.parsed,
            fallback_attempts=list(self.fallback_attempts),
        )


class _StreamBase(Generic[_T]):
    def __init__(self) -> None:
        self._accumulator = ChunkAccumulator()
        self._finished = False
        self._closed = False
        self._final: CompletionResponse | None = None
        self.response_hook: Callable[[CompletionResponse], CompletionResponse] | None = None

    @property
    def accumulator(self) -> ChunkAccumulator:
        return self._accumulator

    @property
    def text(self) -> str:
        """The text received so far."""
        return self._accumulator.text

    def final_response(self) -> CompletionResponse:
        """The whole response, once the stream has been consumed to its end."""
        if not self._finished:
            raise RuntimeError(
                "final_response() needs the stream consumed first: iterate it to the end"
            )
        if self._final is None:
            final = self._accumulator.response()
            self._final = self.response_hook(final) if self.response_hook else final
        return self._final


class Stream(_StreamBase[StreamChunk]):
    """A synchronous stream of :class:`StreamChunk`; iterate it, or use it as a context manager."""

    def __init__(self, chunks: Iterator[StreamChunk]) -> None:
        super().__init__()
        self._chunks = chunks
        self._first: StreamChunk | None = None
        try:
            self._first = next(chunks)
        except StopIteration:
            self._finished = True

    def __iter__(self) -> Iterator[StreamChunk]:
        return self

    def __next__(self) -> StreamChunk:
        if self._first is not None:
            chunk, self._first = self._first, None
        elif self._finished or self._closed:
            raise StopIteration
        else:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._finished = True
                raise
        self._accumulator.add(chunk)
        return chunk

    def close(self) -> None:
        """Stop the stream and release its HTTP response."""
        if self._closed:
            return
        self._closed = True
        closer = getattr(self._chunks, "close", None)
        if closer is not None:
            closer()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not self._closed:
            try:
                self.close()
            except Exception:
                pass

    def until_done(self) -> CompletionResponse:
        """Consume what is left and return the final response."""
        for _ in self:
            pass
        return self.final_response()


class AsyncStream(_StreamBase[StreamChunk]):
    """An asynchronous stream of :class:`StreamChunk`; ``async for`` it or ``async with`` it."""

    def __init__(self, chunks: AsyncIterator[StreamChunk]) -> None:
        super().__init__()
        self._chunks = chunks
        self._first: StreamChunk | None = None

    async def _prime(self) -> AsyncStream:
        try:
            self._first = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._finished = True
        return self

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        return self

    async def __anext__(self) -> StreamChunk:
        if self._first is not None:
            chunk, self._first = self._first, None
        elif self._finished or self._closed:
            raise StopAsyncIteration
        else:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._finished = True
                raise
        self._accumulator.add(chunk)
        return chunk

    async def aclose(self) -> None:
        """Stop the stream and release its HTTP response."""
        if self._closed:
            return
        self._closed = True
        closer = getattr(self._chunks, "aclose", None)
        if closer is not None:
            await closer()

    close = aclose

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def until_done(self) -> CompletionResponse:
        async for _ in self:
            pass
        return self.final_response()


def accumulate(chunks: Iterator[StreamChunk] | list[StreamChunk]) -> CompletionResponse:
    """The response a list (or iterator) of chunks adds up to."""
    acc = ChunkAccumulator()
    for chunk in chunks:
        acc.add(chunk)
    return acc.response()
