"""Middleware: code that runs around every call (sync, async, streaming, embeddings)."""

from __future__ import annotations

from .base import BaseMiddleware, CallContext, SettingsMiddleware
from .cache import CacheBackend, CacheMiddleware, InMemoryCache, RedisCache
from .fallback import FallbackMiddleware
from .logging import LoggingMiddleware
from .ratelimit import InMemoryRateLimit, RateLimitBackend, RateLimitMiddleware, RedisRateLimit
from .retry import RetryMiddleware

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
