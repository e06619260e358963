"""Failing calls leak nothing: after 1,000 of them, sockets and threads are back to baseline.

The calls are split across the vendor targets (at least 1,000 in all, at least 120 each)
and across every failure shape: HTTP errors (plain, streamed, async), a stream cut by the
server, a malformed frame, an error frame, a read timeout, and a stream the caller
abandons half-way. Each target's gate is then closed and the process's open sockets
(``/proc/self/fd``; the fake servers run in this process, so both ends count), its threads
and the fake server's open connections must be back where they were.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from llmgate import LLMGate, RetryPolicy
from llmgate.exceptions import ProviderError
from tests.conformance.target import Target
from tests.conformance.targets import TARGETS
from tests.fakes.server import FakeServer, FakeVendor, Fault, Reply

from .conftest import server_for

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="counting open sockets needs /proc/self/fd"
)

USER = [{"role": "user", "content": "Hello"}]
TEXT = "one two three four five six seven eight nine ten"
CALLS = max(120, math.ceil(1000 / max(len(TARGETS), 1)))
NO_RETRY = RetryPolicy(max_retries=0)


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:  # closed while listing
            pass
    return count


def settled(measure: Callable[[], int], limit: int, seconds: float = 5.0) -> int:
    """``measure()`` once it is at most ``limit``, or its last value after ``seconds``."""
    deadline = time.monotonic() + seconds
    value = measure()
    while value > limit and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
        value = measure()
    return value


def _sync_failure(gate: LLMGate, fake: FakeVendor, target: Target, n: int) -> None:
    shape = n % 7
    if shape == 0:
        fake.push(Fault(500))
        gate.completion(target.model, USER)
    elif shape == 1:
        fake.push(Fault(401))
        gate.completion(target.model, USER)
    elif shape == 2:
        fake.push(Fault(503))
        gate.completion(target.model, USER, stream=True)
    elif shape == 3:
        fake.push(Reply(text=TEXT, drop_after=4))
        gate.completion(target.model, USER, stream=True).until_done()
    elif shape == 4:
        fake.push(Reply(text=TEXT, malformed_after=3))
        gate.completion(target.model, USER, stream=True).until_done()
    elif shape == 5:
        fake.push(Reply(text=TEXT, error_after=3, error_status=500))
        gate.completion(target.model, USER, stream=True).until_done()
    else:
        fake.push(Reply(text=TEXT, delay=0.5))
        gate.completion(target.model, USER, timeout=0.02)


async def _async_failure(gate: LLMGate, fake: FakeVendor, target: Target, n: int) -> None:
    if n % 2:
        fake.push(Fault(429))
        await gate.acompletion(target.model, USER)
    else:
        fake.push(Reply(text=TEXT, drop_after=4))
        stream = await gate.acompletion(target.model, USER, stream=True)
        await stream.until_done()


def _abandon_a_stream(gate: LLMGate, target: Target) -> None:
    stream = gate.completion(target.model, USER, stream=True)
    next(stream)
    del stream  # neither consumed nor closed: the wrapper must release the connection


def _warm_up(gate: LLMGate, target: Target) -> None:
    gate.completion(target.model, USER)
    gate.completion(target.model, USER, stream=True).until_done()

    async def once() -> None:
        await gate.acompletion(target.model, USER)

    asyncio.run(once())


@pytest.mark.parametrize("target", TARGETS, ids=[t.id for t in TARGETS])
def test_failing_calls_leak_no_sockets_or_threads(target: Target) -> None:
    server: FakeServer = server_for(target)
    fake = server.vendor
    fake.reset()
    with LLMGate(retry_policy=NO_RETRY, **target.gate_kwargs(fake.base_url)) as warm:
        _warm_up(warm, target)  # imports, SDK caches, the loop's default executor
    gc.collect()
    sockets, threads = open_sockets(), threading.active_count()
    connections = server.open_connections

    errors: Counter[str] = Counter()
    async_calls = CALLS // 4
    gate = LLMGate(retry_policy=NO_RETRY, **target.gate_kwargs(fake.base_url))
    for n in range(CALLS - async_calls):
        if n % 25 == 24:
            _abandon_a_stream(gate, target)
        try:
            _sync_failure(gate, fake, target, n)
        except ProviderError as error:
            errors[type(error).__name__] += 1

    async def failures() -> None:
        for n in range(async_calls):
            try:
                await _async_failure(gate, fake, target, n)
            except ProviderError as error:
                errors[type(error).__name__] += 1

    asyncio.run(failures())
    gate.close()
    fake.reset()

    assert sum(errors.values()) == CALLS, f"every call failed with a mapped error: {errors}"
    assert settled(lambda: server.open_connections, connections) <= connections
    assert settled(open_sockets, sockets) <= sockets, "sockets left open"
    assert settled(threading.active_count, threads) <= threads, "threads left running"
