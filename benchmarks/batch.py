"""One batch of completions in a fresh process: llmgate's ``batch()`` or the raw SDK on a
thread pool, against a running fake, keeping every result.

    python -m benchmarks.batch <vendor> <url> <llmgate|raw> <requests> <concurrency>

Prints one JSON line: seconds, peak RSS of the whole process, and the growth: that peak
minus the RSS just before the batch (MB). The baseline is taken after one warm-up call, so
imports, clients and connections are in it and the growth is what running the batch and
keeping its results cost.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _current_mb() -> float:
    """Resident set size now (Linux's /proc; elsewhere the peak so far stands in)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return _peak_mb()
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def run(vendor: str, url: str, side: str, requests: int, concurrency: int) -> dict[str, float]:
    from tests.conformance.targets import TARGETS

    from .raw import FACTORIES, MESSAGES

    target = next(t for t in TARGETS if t.id == vendor)
    kwargs = target.gate_kwargs(url)
    if side == "raw":
        raw = FACTORIES[vendor](
            dict(kwargs["provider_options"][vendor]), target.model.split("/", 1)[1], None
        )
        raw.respond()
        before = _current_mb()
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            results: list[Any] = list(pool.map(lambda _: raw.respond(), range(requests)))
        seconds = time.perf_counter() - started
        assert len(results) == requests
    else:
        import llmgate

        gate = llmgate.LLMGate(max_retries=0, **kwargs)
        gate.completion(target.model, MESSAGES)
        items = [{"model": target.model, "messages": MESSAGES} for _ in range(requests)]
        before = _current_mb()
        started = time.perf_counter()
        outcome = gate.batch(items, max_concurrency=concurrency)
        seconds = time.perf_counter() - started
        if outcome.failed:
            raise RuntimeError(f"{outcome.failed} of {requests} llmgate requests failed")
    peak = _peak_mb()
    return {"seconds": seconds, "peak_mb": peak, "growth_mb": peak - before}


def main(argv: list[str]) -> int:
    vendor, url, side, requests, concurrency = argv
    print(json.dumps(run(vendor, url, side, int(requests), int(concurrency))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
