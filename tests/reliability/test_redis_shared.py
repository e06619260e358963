"""The Redis-backed cache and rate limiter, in one process and shared by two."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import textwrap
import time

import pytest

from llmgate import LLMGate
from llmgate.middleware import CacheMiddleware, RateLimitMiddleware, RedisCache, RedisRateLimit
from llmgate.testing import scripted

pytestmark = pytest.mark.redis

USER = [{"role": "user", "content": "Hello there"}]


def test_redis_cache_in_one_process(redis_url: str) -> None:
    backend = RedisCache(redis_url)
    with LLMGate(middleware=[CacheMiddleware(ttl=30, backend=backend)]) as gate:
        with scripted("first", "second") as script:
            gate.completion("mock/m", USER)
            hit = gate.completion("mock/m", USER)
            streamed = gate.completion("mock/m", USER, stream=True).until_done()
    assert (hit.text, hit.provider_details["cache"], streamed.text) == ("first", "hit", "first")
    assert len(script.requests) == 1
    ttl_ms = backend.connection.client.pttl(backend.connection.client.keys("llmgate:cache:*")[0])
    assert 0 < ttl_ms <= 30_000
    backend.close()


async def test_redis_cache_async(redis_url: str) -> None:
    backend = RedisCache(redis_url, prefix="async-test:")
    with LLMGate(middleware=[CacheMiddleware(backend=backend)]) as gate, scripted("a") as script:
        await gate.acompletion("mock/m", USER)
        hit = await gate.acompletion("mock/m", USER)
        stream = await gate.acompletion("mock/m", USER, stream=True)
        replayed = await stream.until_done()
    assert (hit.provider_details["cache"], replayed.text, len(script.requests)) == ("hit", "a", 1)
    await backend.connection.aclose()


def test_redis_entries_expire(redis_url: str) -> None:
    backend = RedisCache(redis_url)
    backend.set("k", b"v", 0.05)
    assert backend.get("k") == b"v"
    time.sleep(0.1)
    assert backend.get("k") is None


def test_a_password_in_the_url_is_not_shown() -> None:
    backend = RedisCache("redis://user:s3cretpass@127.0.0.1:1/0")
    assert "s3cretpass" not in repr(backend)
    assert "s3cretpass" not in repr(RedisRateLimit("redis://:s3cretpass@127.0.0.1:1/0"))


def test_redis_rate_limit_waits(redis_url: str) -> None:
    limiter = RateLimitMiddleware(rpm=600, burst_window=0.1, backend=RedisRateLimit(redis_url))
    started = time.monotonic()
    with LLMGate(middleware=[limiter]) as gate:
        for _ in range(5):
            gate.completion("mock/m", USER)
    assert time.monotonic() - started >= 0.35


async def test_redis_rate_limit_async(redis_url: str) -> None:
    backend = RedisRateLimit(redis_url)
    limiter = RateLimitMiddleware(rpm=600, tpm=10**6, burst_window=0.1, backend=backend)
    started = time.monotonic()
    with LLMGate(middleware=[limiter]) as gate:
        await asyncio.gather(*(gate.acompletion("mock/m", USER) for _ in range(5)))
    assert time.monotonic() - started >= 0.35
    await backend.connection.aclose()


def _run_processes(script: str, *argv_sets: list[str]) -> list[str]:
    """Run the script in one process per argv set, all at once; their stdout lines."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argv_sets
    ]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        outputs.append(out.strip())
    return outputs


CACHE_SCRIPT = """
    import sys
    from llmgate import LLMGate
    from llmgate.middleware import CacheMiddleware, RedisCache
    from llmgate.testing import scripted

    url, answer = sys.argv[1], sys.argv[2]
    with LLMGate(middleware=[CacheMiddleware(backend=RedisCache(url))]) as gate:
        with scripted(answer) as script:
            response = gate.completion("mock/m", [{"role": "user", "content": "Hi"}])
    print(response.text, response.provider_details["cache"], len(script.requests))
"""


def test_two_processes_share_one_cache(redis_url: str) -> None:
    (first,) = _run_processes(CACHE_SCRIPT, [redis_url, "from-process-one"])
    (second,) = _run_processes(CACHE_SCRIPT, [redis_url, "from-process-two"])
    assert first == "from-process-one miss 1"
    assert second == "from-process-one hit 0", "the second process got the first one's answer"


LIMIT_SCRIPT = """
    import json, sys, time
    from llmgate import LLMGate
    from llmgate.middleware import BaseMiddleware, RateLimitMiddleware, RedisRateLimit

    url = sys.argv[1]
    starts = []

    class Stamp(BaseMiddleware):
        def before_call(self, ctx):
            starts.append(time.time())

    limiter = RateLimitMiddleware(rpm=600, burst_window=0.1, backend=RedisRateLimit(url))
    barrier = limiter.backend.connection.client
    barrier.incr("test:barrier")
    while int(barrier.get("test:barrier")) < 2:  # start together, however long imports took
        time.sleep(0.005)
    with LLMGate(middleware=[limiter, Stamp()]) as gate:
        for _ in range(5):
            gate.completion("mock/m", [{"role": "user", "content": "Hi"}])
    print(json.dumps(starts))
"""


def test_two_processes_share_one_rate_limit(redis_url: str) -> None:
    outputs = _run_processes(LIMIT_SCRIPT, [redis_url], [redis_url])
    first, second = (json.loads(output) for output in outputs)
    assert min(first) < max(second) and min(second) < max(first), "the processes overlapped"
    starts = sorted(first + second)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # one budget of 10 calls/s for both: the 10 calls are spaced ~0.1 s apart, in turn;
    # two separate budgets would let both processes call at the same moments
    assert min(gaps) >= 0.05, gaps
    assert starts[-1] - starts[0] >= 0.8
