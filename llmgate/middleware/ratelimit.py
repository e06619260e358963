"""RateLimitMiddleware: keep calls within a requests-per-minute and tokens-per-minute budget.

It waits; it never fails a call and never raises a RateLimitError of its own, so a 429
a caller sees always came from the vendor.

The budget is a GCRA (generic cell rate algorithm) with reservations: each limit keeps one
number, the time at which its budget is spent through (``tat``). A call reserves its cost
(one request; its estimated tokens), moving ``tat`` forward, and waits until ``tat`` is at
most ``burst_window`` seconds ahead of now. With the default window of 60 s, a whole
minute's budget can be spent at once, then calls are spaced evenly. Tokens are estimated
before the call (about 4 characters a token, plus ``max_tokens``) and corrected by the
usage the vendor reports; a failed call gives its estimated tokens back.

Backends: :class:`InMemoryRateLimit` for one process, :class:`RedisRateLimit` for a fleet
(one Lua script reserves every limit atomically, on the Redis server's clock).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Literal

from typing_extensions import override

from .._redis import DEFAULT_URL, RedisConnection
from ..exceptions import ConfigError
from ..types import CompletionRequest, StreamChunk, TokenUsage
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

Scope = Literal["global", "provider", "model"]
# (limit key, seconds of budget this call costs)
Cost = tuple[str, float]


# --------------------------------------------------------------------------- backends


class RateLimitBackend:
    """Keeps each limit's ``tat``. ``reserve`` returns the seconds to wait before calling."""

    def reserve(self, costs: Sequence[Cost], window: float) -> float:
        raise NotImplementedError

    def adjust(self, key: str, seconds: float) -> None:
        """Move a limit's ``tat`` by ``seconds`` (negative: give budget back)."""
        raise NotImplementedError

    async def areserve(self, costs: Sequence[Cost], window: float) -> float:
        return self.reserve(costs, window)

    async def aadjust(self, key: str, seconds: float) -> None:
        self.adjust(key, seconds)


class InMemoryRateLimit(RateLimitBackend):
    """Budgets of this process only."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    @override
    def reserve(self, costs: Sequence[Cost], window: float) -> float:
        now = time.monotonic()
        wait = 0.0
        with self._lock:
            for key, seconds in costs:
                tat = max(self._tat.get(key, now), now) + seconds
                self._tat[key] = tat
                wait = max(wait, tat - window - now)
        return wait

    @override
    def adjust(self, key: str, seconds: float) -> None:
        with self._lock:
            if key in self._tat:
                self._tat[key] += seconds


_RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local window = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  tat = tat + tonumber(ARGV[i + 1])
  redis.call('SET', key, string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
  if tat - window - now > wait then wait = tat - window - now end
end
return string.format('%.6f', wait)
"""

_ADJUST = """
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tat = tonumber(value) + tonumber(ARGV[1])
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
end
return 1
"""


class RedisRateLimit(RateLimitBackend):
    """Budgets shared by every process and host using the same Redis and ``prefix``."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = "llmgate:ratelimit:",
        connection: RedisConnection | None = None,
        **options: Any,
    ) -> None:
        self.connection = connection or RedisConnection(url, **options)
        self.prefix = prefix
        self._reserve: Any = None
        self._adjust: Any = None

    @override
    def __repr__(self) -> str:
        return f"RedisRateLimit({self.connection!r}, prefix={self.prefix!r})"

    def _scripts(self) -> tuple[Any, Any]:
        if self._reserve is None:
            client = self.connection.client
            self._reserve = client.register_script(_RESERVE)
            self._adjust = client.register_script(_ADJUST)
        return self._reserve, self._adjust

    @override
    def reserve(self, costs: Sequence[Cost], window: float) -> float:
        reserve, _ = self._scripts()
        keys = [self.prefix + key for key, _ in costs]
        return float(reserve(keys=keys, args=[window, *(seconds for _, seconds in costs)]))

    @override
    def adjust(self, key: str, seconds: float) -> None:
        _, adjust = self._scripts()
        adjust(keys=[self.prefix + key], args=[seconds])

    @override
    async def areserve(self, costs: Sequence[Cost], window: float) -> float:
        script = self.connection.async_client.register_script(_RESERVE)
        keys = [self.prefix + key for key, _ in costs]
        return float(await script(keys=keys, args=[window, *(seconds for _, seconds in costs)]))

    @override
    async def aadjust(self, key: str, seconds: float) -> None:
        script = self.connection.async_client.register_script(_ADJUST)
        await script(keys=[self.prefix + key], args=[seconds])

    def close(self) -> None:
        self.connection.close()


# --------------------------------------------------------------------------- estimates


def estimate_tokens(ctx: CallContext) -> int:
    """Tokens a call will likely spend: ~4 characters a token, plus max_tokens if set."""
    request = ctx.request
    if isinstance(request, CompletionRequest):
        chars = sum(len(message.text) for message in request.messages)
        for tool in request.tools or []:
            chars += len(str(tool.function.parameters)) + len(tool.function.description or "")
        return math.ceil(chars / 4) + (request.max_tokens or 0)
    return math.ceil(sum(len(text) for text in request.input) / 4)


# --------------------------------------------------------------------------- the middleware


class RateLimitMiddleware(BaseMiddleware):
    """Wait as long as needed to stay within ``rpm`` requests and ``tpm`` tokens a minute.

    ``scope`` says what shares one budget: ``"model"`` (each provider/model, the way vendors
    count), ``"provider"`` or ``"global"``. ``burst_window`` is how many seconds of budget may
    be spent at once (default: a minute's). ``backend`` defaults to this process's memory;
    give a :class:`RedisRateLimit` to share the budget across processes (then use the same
    ``name`` everywhere). Works on every kind of call, sync and async.
    """

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        scope: Scope = "model",
        burst_window: float = 60.0,
        backend: RateLimitBackend | None = None,
        name: str = "default",
    ) -> None:
        if rpm is None and tpm is None:
            raise ConfigError("RateLimitMiddleware needs rpm=..., tpm=... or both")
        for label, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value <= 0:
                raise ConfigError(f"{label} must be more than 0")
        if burst_window <= 0:
            raise ConfigError("burst_window must be more than 0 seconds")
        if scope not in ("global", "provider", "model"):
            raise ConfigError("scope must be 'global', 'provider' or 'model'")
        self.rpm = rpm
        self.tpm = tpm
        self.scope = scope
        self.burst_window = burst_window
        self.backend = backend if backend is not None else InMemoryRateLimit()
        self.name = name

    @override
    def __repr__(self) -> str:
        return (
            f"RateLimitMiddleware(rpm={self.rpm!r}, tpm={self.tpm!r}, scope={self.scope!r}, "
            f"backend={self.backend!r})"
        )

    # budget arithmetic --------------------------------------------------------------
    def _key(self, ctx: CallContext, unit: str) -> str:
        if self.scope == "global":
            where = "*"
        elif self.scope == "provider":
            where = ctx.provider
        else:
            where = f"{ctx.provider}/{ctx.model}"
        return f"{self.name}:{where}:{unit}"

    def _token_seconds(self, tokens: float) -> float:
        assert self.tpm is not None
        # one call never costs more than the whole window, or it could never start
        return min(tokens * 60.0 / self.tpm, self.burst_window)

    def _costs(self, ctx: CallContext) -> tuple[list[Cost], float]:
        costs: list[Cost] = []
        if self.rpm is not None:
            costs.append((self._key(ctx, "requests"), 60.0 / self.rpm))
        reserved = 0.0
        if self.tpm is not None:
            reserved = self._token_seconds(estimate_tokens(ctx))
            costs.append((self._key(ctx, "tokens"), reserved))
        return costs, reserved

    def _correction(self, reserved: float, usage: TokenUsage | None, failed: bool) -> float:
        """Seconds to move the token budget once the call's real usage is known."""
        if self.tpm is None:
            return 0.0
        if usage is None or not usage.total_tokens:
            return -reserved if failed else 0.0
        return self._token_seconds(usage.total_tokens) - reserved

    def _waited(self, ctx: CallContext, wait: float) -> float:
        ctx.metadata["rate_limit_wait"] = ctx.metadata.get("rate_limit_wait", 0.0) + max(wait, 0)
        return max(wait, 0.0)

    def _settle(
        self, ctx: CallContext, reserved: float, usage: TokenUsage | None, failed: bool = False
    ) -> None:
        seconds = self._correction(reserved, usage, failed)
        if seconds:
            self.backend.adjust(self._key(ctx, "tokens"), seconds)

    async def _asettle(
        self, ctx: CallContext, reserved: float, usage: TokenUsage | None, failed: bool = False
    ) -> None:
        seconds = self._correction(reserved, usage, failed)
        if seconds:
            await self.backend.aadjust(self._key(ctx, "tokens"), seconds)

    # the four kinds of call ---------------------------------------------------------
    @override
    def wrap_call(self, ctx: CallContext, call_next: CallNext) -> Any:
        costs, reserved = self._costs(ctx)
        time.sleep(self._waited(ctx, self.backend.reserve(costs, self.burst_window)))
        try:
            result = call_next(ctx)
        except BaseException:
            self._settle(ctx, reserved, None, failed=True)
            raise
        self._settle(ctx, reserved, result.usage)
        return result

    @override
    async def awrap_call(self, ctx: CallContext, call_next: AsyncCallNext) -> Any:
        import asyncio

        costs, reserved = self._costs(ctx)
        wait = await self.backend.areserve(costs, self.burst_window)
        await asyncio.sleep(self._waited(ctx, wait))
        try:
            result = await call_next(ctx)
        except BaseException:
            await self._asettle(ctx, reserved, None, failed=True)
            raise
        await self._asettle(ctx, reserved, result.usage)
        return result

    @override
    def wrap_stream(self, ctx: CallContext, call_next: StreamNext) -> Iterator[StreamChunk]:
        costs, reserved = self._costs(ctx)
        time.sleep(self._waited(ctx, self.backend.reserve(costs, self.burst_window)))
        usage: TokenUsage | None = None
        failed = False
        chunks = call_next(ctx)
        try:
            for chunk in chunks:
                if chunk.usage is not None:
                    usage = chunk.usage
                yield chunk
        except Exception:
            failed = True
            raise
        finally:
            _close(chunks)
            self._settle(ctx, reserved, usage, failed)

    @override
    async def awrap_stream(
        self, ctx: CallContext, call_next: AsyncStreamNext
    ) -> AsyncIterator[StreamChunk]:
        import asyncio

        costs, reserved = self._costs(ctx)
        wait = await self.backend.areserve(costs, self.burst_window)
        await asyncio.sleep(self._waited(ctx, wait))
        usage: TokenUsage | None = None
        failed = False
        chunks = call_next(ctx)
        try:
            async for chunk in chunks:
                if chunk.usage is not None:
                    usage = chunk.usage
                yield chunk
        except Exception:
            failed = True
            raise
        finally:
            await _aclose(chunks)
            await self._asettle(ctx, reserved, usage, failed)
