"""The Redis backends' setup, without a server: secrets in reprs, the missing-package error,
clients handed in by the caller. (Their behaviour on a live Redis is tested in reliability/.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import redis
import redis.asyncio

from llmgate._redis import RedisConnection, redact_url
from llmgate.middleware import RedisCache, RedisRateLimit


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:s3cret-pass@127.0.0.1:6380/1", "redis://:***@127.0.0.1:6380/1"),
        ("rediss://app:s3cret-pass@cache.internal/2", "rediss://app:***@cache.internal/2"),
    ],
)
def test_reprs_never_show_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    for backend in (RedisCache(url), RedisRateLimit(url)):
        text = repr(backend)
        assert "s3cret-pass" not in text
        assert repr(shown) in text


def test_clients_given_by_the_caller_are_used_as_they_are() -> None:
    sync_client = redis.Redis(host="127.0.0.1", port=6399)
    async_client = redis.asyncio.Redis(host="127.0.0.1", port=6399)
    connection = RedisConnection(client=sync_client, async_client=async_client)
    assert connection.client is sync_client
    assert connection.async_client is async_client
    assert RedisCache(connection=connection).connection is connection
    connection.close()


def test_missing_redis_package_names_the_extra() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["redis"] = None
        sys.modules["redis.asyncio"] = None
        from llmgate.exceptions import ConfigError
        from llmgate.middleware import RedisCache
        try:
            RedisCache("redis://127.0.0.1:6399/0")
        except ConfigError as exc:
            print(exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'llmgate[redis]'" in out.stdout
