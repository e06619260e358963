"""CacheMiddleware: answer a repeated call from a cache, in memory or in a shared Redis.

The key is a SHA-256 over everything that changes the output: the kind of call, provider,
vendor model, messages, every parameter (max_tokens, temperature, top_p, stop, tools,
tool_choice, parallel_tool_calls, the response_format schema and name, extra_kwargs, a
per-call base_url) and the middleware's ``namespace``. What cannot change the output is
left out: timeout, max_retries, stream mode and the stream flag itself (a streamed answer
serves a plain call and the other way round).

The API key is left out of the key, not hashed into it: the answer does not depend on
which key paid for it, so every process of a fleet, whatever its key, shares entries; and
nothing derived from a secret is ever written to a shared store, where a hash of a short
or known-format key could be tested offline. Keep tenants apart with ``namespace``.

A hit is visible: ``response.provider_details["cache"] == "hit"`` (``"miss"`` otherwise)
and ``attempts == 0``; a replayed stream's first chunk carries ``provider_details={"cache":
"hit"}``. A hit is replayed as chunks: reasoning, text, one chunk per tool call, and the
finish reason with usage. Only complete answers are stored (not errors, not streams the
caller closed early, not ``finish_reason="error"`` or ``"content_filter"``). A backend that
fails (Redis down) is logged and skipped: the cache never fails a call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from typing import Any

from typing_extensions import override

from .. import _structured
from .._redis import DEFAULT_URL, RedisConnection
from .._streaming import ChunkAccumulator
from ..types import (
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamChunk,
    ToolCallDelta,
)
from .base import (
    AsyncCallNext,
    AsyncStreamNext,
    BaseMiddleware,
    CallContext,
    CallNext,
    StreamNext,
    _aclose,
    _close,
)

logger = logging.getLogger("llmgate.cache")

# Request fields that cannot change the answer (or are added to the key another way).
_NOT_IN_KEY = frozenset(
    {
        "api_key",
        "model",
        "provider",
        "stream",
        "timeout",
        "max_retries",
        "stream_fallback_mode",
        "stream_resume_prompt",
        "response_format",
    }
)
_NOT_CACHED_FINISH = frozenset({"error", "content_filter"})


# --------------------------------------------------------------------------- backends


class CacheBackend:
    """Where entries live. Subclasses implement get/set; async ones override aget/aset."""

    def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        raise NotImplementedError

    async def aget(self, key: str) -> bytes | None:
        return self.get(key)

    async def aset(self, key: str, value: bytes, ttl: float | None) -> None:
        self.set(key, value, ttl)


class InMemoryCache(CacheBackend):
    """A per-process LRU of at most ``maxsize`` entries, each with its own expiry."""

    def __init__(self, maxsize: int = 1024) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[str, tuple[float | None, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @override
    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires is not None and expires <= time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    @override
    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        expires = None if ttl is None else time.monotonic() + ttl
        with self._lock:
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class RedisCache(CacheBackend):
    """Entries in Redis, shared by every process and host that uses the same ``prefix``."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = "llmgate:cache:",
        connection: RedisConnection | None = None,
        **options: Any,
    ) -> None:
        self.connection = connection or RedisConnection(url, **options)
        self.prefix = prefix

    @override
    def __repr__(self) -> str:
        return f"RedisCache({self.connection!r}, prefix={self.prefix!r})"

    @override
    def get(self, key: str) -> bytes | None:
        value: bytes | None = self.connection.client.get(self.prefix + key)
        return value

    @override
    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        px = None if ttl is None else max(1, int(ttl * 1000))
        self.connection.client.set(self.prefix + key, value, px=px)

    @override
    async def aget(self, key: str) -> bytes | None:
        value: bytes | None = await self.connection.async_client.get(self.prefix + key)
        return value

    @override
    async def aset(self, key: str, value: bytes, ttl: float | None) -> None:
        px = None if ttl is None else max(1, int(ttl * 1000))
        await self.connection.async_client.set(self.prefix + key, value, px=px)

    def close(self) -> None:
        self.connection.close()


# --------------------------------------------------------------------------- keys and values


def cache_key(ctx: CallContext, namespace: str = "") -> str:
    """The SHA-256 key of a call (see the module docstring for what it covers)."""
    request = ctx.request
    kind = "embedding" if isinstance(request, EmbeddingRequest) else "chat"
    payload: dict[str, Any] = {
        "namespace": namespace,
        "kind": kind,
        "provider": ctx.provider,
        "model": ctx.model,
        "request": request.model_dump(exclude=set(_NOT_IN_KEY), exclude_none=True),
    }
    if isinstance(request, CompletionRequest) and request.response_format is not None:
        payload["schema"] = [
            _structured.schema_name(request.response_format),
            _structured.json_schema(request.response_format),
        ]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _cacheable(result: Any) -> bool:
    if isinstance(result, EmbeddingResponse):
        return True
    return isinstance(result, CompletionResponse) and (
        result.finish_reason is not None and result.finish_reason not in _NOT_CACHED_FINISH
    )


def _dump(result: CompletionResponse | EmbeddingResponse) -> bytes:
    if isinstance(result, CompletionResponse):
        return result.model_dump_json(exclude={"parsed"}).encode()
    return result.model_dump_json().encode()


def _load(ctx: CallContext, raw: bytes) -> CompletionResponse | EmbeddingResponse | None:
    """The stored result marked as a hit, or None when the entry cannot be read."""
    try:
        if isinstance(ctx.request, EmbeddingRequest):
            result: CompletionResponse | EmbeddingResponse = EmbeddingResponse.model_validate_json(
                raw
            )
        else:
            response = CompletionResponse.model_validate_json(raw)
            response_format = ctx.request.response_format
            if response_format is not None and (response.text or not response.tool_calls):
                response.parsed = _structured.parse_output(response.text, response_format)
            result = response
    except Exception:
        logger.warning("llmgate cache: an unreadable entry was ignored", exc_info=True)
        return None
    result.attempts = 0
    result.provider_details["cache"] = "hit"
    return result


def replay(response: CompletionResponse) -> list[StreamChunk]:
    """A cached answer as stream chunks; accumulated, they give the answer back."""
    base: dict[str, Any] = {
        "id": response.id,
        "model": response.model,
        "provider": response.provider,
    }
    message = response.message
    chunks: list[StreamChunk] = []
    if message.reasoning:
        chunks.append(StreamChunk(**base, reasoning_delta=message.reasoning))
    if message.text:
        chunks.append(StreamChunk(**base, delta=message.text))
    for index, call in enumerate(message.tool_calls or []):
        delta = ToolCallDelta(
            index=index, id=call.id, name=call.name, arguments_delta=call.arguments_json
        )
        chunks.append(StreamChunk(**base, tool_call_deltas=[delta]))
    chunks.append(
        StreamChunk(
            **base,
            finish_reason=response.finish_reason,
            usage=response.usage,
            provider_details=message.provider_details,
        )
    )
    chunks[0].provider_details = {**(chunks[0].provider_details or {}), "cache": "hit"}
    return chunks


def _stream_result(accumulator: ChunkAccumulator) -> CompletionResponse | None:
    try:
        return accumulator.response()
    except ValueError:  # tool arguments that are not JSON: nothing worth keeping
        return None


# --------------------------------------------------------------------------- the middleware


class CacheMiddleware(BaseMiddleware):
    """Serve repeated calls from ``backend`` (default: an in-memory LRU) for ``ttl`` seconds.

    Works on completions, streams and embeddings, sync and async. Put it after a
    RateLimitMiddleware if hits should not spend the budget, and after a LoggingMiddleware
    if hits should be logged too.
    """

    def __init__(
        self,
        ttl: float | None = 3600.0,
        backend: CacheBackend | None = None,
        *,
        namespace: str = "",
    ) -> None:
        self.ttl = ttl
        self.backend = backend if backend is not None else InMemoryCache()
        self.namespace = namespace

    @override
    def __repr__(self) -> str:
        return f"CacheMiddleware(ttl={self.ttl!r}, backend={self.backend!r})"

    def key(self, ctx: CallContext) -> str:
        return cache_key(ctx, self.namespace)

    # backend access that never fails the call ---------------------------------------
    def _get(self, key: str) -> bytes | None:
        try:
            return self.backend.get(key)
        except Exception:
            logger.warning("llmgate cache: lookup failed; calling the model", exc_info=True)
            return None

    def _set(self, key: str, result: Any) -> None:
        if not _cacheable(result):
            return
        try:
            self.backend.set(key, _dump(result), self.ttl)
        except Exception:
            logger.warning("llmgate cache: store failed", exc_info=True)

    async def _aget(self, key: str) -> bytes | None:
        try:
            return await self.backend.aget(key)
        except Exception:
            logger.warning("llmgate cache: lookup failed; calling the model", exc_info=True)
            return None

    async def _aset(self, key: str, result: Any) -> None:
        if not _cacheable(result):
            return
        try:
            await self.backend.aset(key, _dump(result), self.ttl)
        except Exception:
            logger.warning("llmgate cache: store failed", exc_info=True)

    def _hit(self, ctx: CallContext, raw: bytes | None) -> Any:
        result = _load(ctx, raw) if raw is not None else None
        ctx.metadata["cache"] = "miss" if result is None else "hit"
        return result

    # the four kinds of call ---------------------------------------------------------
    @override
    def wrap_call(self, ctx: CallContext, call_next: CallNext) -> Any:
        key = self.key(ctx)
        cached = self._hit(ctx, self._get(key))
        if cached is not None:
            return cached
        result = call_next(ctx)
        self._set(key, result)
        result.provider_details["cache"] = "miss"
        return result

    @override
    async def awrap_call(self, ctx: CallContext, call_next: AsyncCallNext) -> Any:
        key = self.key(ctx)
        cached = self._hit(ctx, await self._aget(key))
        if cached is not None:
            return cached
        result = await call_next(ctx)
        await self._aset(key, result)
        result.provider_details["cache"] = "miss"
        return result

    @override
    def wrap_stream(self, ctx: CallContext, call_next: StreamNext) -> Iterator[StreamChunk]:
        key = self.key(ctx)
        cached = self._hit(ctx, self._get(key))
        if cached is not None:
            yield from replay(cached)
            return
        accumulator = ChunkAccumulator()
        chunks = call_next(ctx)
        try:
            for chunk in chunks:
                accumulator.add(chunk)
                yield chunk
        finally:
            _close(chunks)
        self._set(key, _stream_result(accumulator))

    @override
    async def awrap_stream(
        self, ctx: CallContext, call_next: AsyncStreamNext
    ) -> AsyncIterator[StreamChunk]:
        key = self.key(ctx)
        cached = self._hit(ctx, await self._aget(key))
        if cached is not None:
            for chunk in replay(cached):
                yield chunk
            return
        accumulator = ChunkAccumulator()
        chunks = call_next(ctx)
        try:
            async for chunk in chunks:
                accumulator.add(chunk)
                yield chunk
        finally:
            await _aclose(chunks)
        await self._aset(key, _stream_result(accumulator))
