"""Connections to Redis for the shared cache and rate limiter (the ``redis`` extra).

The ``redis`` package is imported only when a Redis backend is built. Like SDK clients,
an asyncio Redis client belongs to the event loop that made it, so one is kept per loop.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.parse
import weakref
from typing import Any

from typing_extensions import override

from .exceptions import ConfigError

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def _redis_modules() -> tuple[Any, Any]:
    try:
        import redis
        import redis.asyncio
    except ImportError as exc:
        raise ConfigError(
            "the Redis backends need the 'redis' package: pip install 'llmgate[redis]'"
        ) from exc
    return redis, redis.asyncio


def redact_url(url: str) -> str:
    """The URL without its password, for reprs and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + host))


class RedisConnection:
    """A Redis URL (or ready clients) and the clients made from it, sync and per loop."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        client: Any = None,
        async_client: Any = None,
        **options: Any,
    ) -> None:
        self.url = url
        self.options = options
        self._client = client
        self._fixed_async = async_client
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        _redis_modules()

    @override
    def __repr__(self) -> str:
        return f"RedisConnection({redact_url(self.url)!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    redis, _ = _redis_modules()
                    self._client = redis.Redis.from_url(self.url, **self.options)
        return self._client

    @property
    def async_client(self) -> Any:
        if self._fixed_async is not None:
            return self._fixed_async
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            _, redis_asyncio = _redis_modules()
            client = self._async[loop] = redis_asyncio.Redis.from_url(self.url, **self.options)
        return client

    def close(self) -> None:
        """Close the sync client's connections (async clients close with their loop)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the running loop's async client."""
        loop = asyncio.get_running_loop()
        client = self._async.pop(loop, None)
        if client is not None:
            await client.aclose()
