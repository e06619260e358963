"""A bounded load test: 2,000 concurrent async streams against the fakes, 10 % faults.

Every stream must either give the whole answer or fail with a mapped llmgate error, and
no socket may stay open afterwards. The figures (duration, successes, failures by class)
are printed; run with ``-s`` to see them.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from llmgate import LLMGate, RetryPolicy
from llmgate.exceptions import LLMGateError, ProviderError
from tests.conformance.targets import TARGETS
from tests.fakes.server import FakeVendor, Fault, RecordedRequest, Reply, Script

from .conftest import server_for
from .test_leaks import open_sockets, settled

pytestmark = pytest.mark.slow

STREAMS = 2000
TEXT = "the quick brown fox jumps over the lazy dog"
USER = [{"role": "user", "content": "Hello"}]
FAULTS: list[Callable[[], Script]] = [
    lambda: Fault(500),
    lambda: Fault(429),
    lambda: Reply(text=TEXT, drop_after=4),
    lambda: Reply(text=TEXT, malformed_after=3),
    lambda: Reply(text=TEXT, error_after=3, error_status=529),
]


def _one_in_ten_faulty() -> Callable[[RecordedRequest], Script]:
    counter = itertools.count()
    lock = threading.Lock()

    def script(request: RecordedRequest) -> Script:
        with lock:
            n = next(counter)
        if n % 10 == 9:
            return FAULTS[(n // 10) % len(FAULTS)]()
        return Reply(text=TEXT)

    return script


@pytest.mark.skipif(not TARGETS, reason="no vendor fakes to load yet")
def test_two_thousand_concurrent_async_streams_with_faults() -> None:
    fakes: list[FakeVendor] = []
    for target in TARGETS:
        fake = server_for(target).vendor
        fake.reset()
        fake.set_default(_one_in_ten_faulty())
        fakes.append(fake)
    # A long timeout: with 2,000 streams on one event loop, callbacks run late, and the
    # SDKs' 5 s connect timeouts would fire; this test is about the injected faults.
    gates = [
        LLMGate(retry_policy=RetryPolicy(max_retries=0), timeout=120, **t.gate_kwargs(f.base_url))
        for t, f in zip(TARGETS, fakes, strict=True)
    ]
    outcomes: Counter[str] = Counter()
    by_vendor: Counter[tuple[str, str]] = Counter()
    sockets = open_sockets()

    async def one(n: int) -> None:
        index = n % len(TARGETS)
        try:
            stream = await gates[index].acompletion(TARGETS[index].model, USER, stream=True)
            response = await stream.until_done()
        except ProviderError as error:
            outcomes[type(error).__name__] += 1
            by_vendor[(TARGETS[index].id, type(error).__name__)] += 1
            return
        except LLMGateError as error:  # mapped, but not a provider error: a bug
            outcomes[f"unexpected {type(error).__name__}"] += 1
            return
        except Exception as error:  # not mapped at all
            outcomes[f"unmapped {type(error).__name__}: {error}"] += 1
            return
        outcomes["ok" if response.text == TEXT else "wrong text"] += 1

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(STREAMS)))
        return time.perf_counter() - started

    try:
        duration = asyncio.run(run())
    finally:
        for gate in gates:
            gate.close()
        for fake in fakes:
            fake.reset()
    requests = sum(outcomes.values())
    failures = {name: count for name, count in outcomes.items() if name != "ok"}
    print(
        f"\nload: {STREAMS} concurrent async streams over {len(TARGETS)} vendor fakes in "
        f"{duration:.1f} s ({STREAMS / duration:.0f}/s): {outcomes['ok']} succeeded, "
        f"{sum(failures.values())} failed: {failures}"
    )
    print(f"failures by vendor: {dict(sorted(by_vendor.items()))}")
    assert requests == STREAMS
    assert all(name == "ok" or name.endswith("Error") for name in outcomes), outcomes
    assert not any(name.startswith(("unexpected", "unmapped", "wrong")) for name in outcomes)
    assert 0.05 * STREAMS <= sum(failures.values()) <= 0.15 * STREAMS
    assert settled(open_sockets, sockets, seconds=10) <= sockets, "sockets left open"
