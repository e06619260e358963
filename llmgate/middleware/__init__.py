"""Middleware: code that runs around every call (sync, async, streaming, embeddings).

Names are re-exported lazily, so the execution path (which needs only ``base``) does not
pay for importing the cache, rate-limit or logging modules until a caller uses them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "BaseMiddleware": "base",
    "CallContext": "base",
    "SettingsMiddleware": "base",
    "CacheBackend": "cache",
    "CacheMiddleware": "cache",
    "InMemoryCache": "cache",
    "RedisCache": "cache",
    "FallbackMiddleware": "fallback",
    "LoggingMiddleware": "logging",
    "InMemoryRateLimit": "ratelimit",
    "RateLimitBackend": "ratelimit",
    "RateLimitMiddleware": "ratelimit",
    "RedisRateLimit": "ratelimit",
    "RetryMiddleware": "retry",
}

__all__ = [
    "BaseMiddleware",
    "CacheBackend",
    "CacheMiddleware",
    "CallContext",
    "FallbackMiddleware",
    "InMemoryCache",
    "InMemoryRateLimit",
    "LoggingMiddleware",
    "RateLimitBackend",
    "RateLimitMiddleware",
    "RedisCache",
    "RedisRateLimit",
    "RetryMiddleware",
    "SettingsMiddleware",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmgate.middleware' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from .base import BaseMiddleware, CallContext, SettingsMiddleware
    from .cache import CacheBackend, CacheMiddleware, InMemoryCache, RedisCache
    from .fallback import FallbackMiddleware
    from .logging import LoggingMiddleware
    from .ratelimit import InMemoryRateLimit, RateLimitBackend, RateLimitMiddleware, RedisRateLimit
    from .retry import RetryMiddleware
