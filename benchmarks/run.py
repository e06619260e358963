"""llmgate against the raw vendor SDKs, in one run, on the same loopback fakes.

    python -m benchmarks.run                 # every vendor, writes docs/performance.md
    python -m benchmarks.run --vendors openai anthropic --quick

Each vendor's fake runs in its own process (benchmarks/serve.py). Timings interleave
llmgate and the raw SDK in rounds and report medians; ratios are llmgate / raw, so below
1.0 means llmgate is faster (throughput: above 1.0 means llmgate is faster).
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import datetime
import gc
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conformance.targets import TARGETS

from .raw import FACTORIES, MESSAGES, RawVendor

ROOT = Path(__file__).resolve().parents[1]
VENDORS = ["openai", "anthropic", "gemini", "mistral", "cohere", "bedrock", "ollama"]
SDK_PACKAGES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google-genai",
    "mistral": "mistralai",
    "cohere": "cohere",
    "bedrock": "boto3",
    "ollama": "ollama",
}
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


@dataclass
class Settings:
    calls: int = 300
    rounds: int = 5
    stream_chunks: int = 500
    streams: int = 10
    async_requests: int = 1000
    concurrency: int = 100


@dataclass
class Row:
    vendor: str
    metrics: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (llmgate, raw)


class FakeProcess:
    def __init__(self, target_id: str, chunks: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.serve", target_id, "--chunks", str(chunks)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("URL "):
            raise RuntimeError(f"fake for {target_id} did not start: {line!r}")
        self.url = line[4:]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _median_per_call(fn: Callable[[], Any], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls


def interleaved(
    a: Callable[[], Any], b: Callable[[], Any], calls: int, rounds: int
) -> tuple[float, float]:
    """Median seconds per call of ``a`` and ``b``, measured in alternating rounds."""
    a(), b()  # warm up: clients, connections, lazy imports
    times_a: list[float] = []
    times_b: list[float] = []
    for _ in range(rounds):
        gc.collect()
        times_a.append(_median_per_call(a, calls))
        gc.collect()
        times_b.append(_median_per_call(b, calls))
    return statistics.median(times_a), statistics.median(times_b)


async def _throughput(make_call: Callable[[], Any], requests: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await make_call()

    await one()
    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    return requests / (time.perf_counter() - started)


def bench_vendor(vendor: str, settings: Settings) -> Row:
    import llmgate

    target = next(t for t in TARGETS if t.id == vendor)
    fake = FakeProcess(vendor, settings.stream_chunks)
    row = Row(vendor)
    try:
        kwargs = target.gate_kwargs(fake.url)
        options = dict(kwargs["provider_options"][vendor])
        raw: RawVendor = FACTORIES[vendor](
            options,
            target.model.split("/", 1)[1],
            target.embedding_model.split("/", 1)[1] if target.embedding_model else None,
        )
        gate = llmgate.LLMGate(max_retries=0, **kwargs)

        row.metrics["per call (sync)"] = interleaved(
            lambda: gate.completion(target.model, MESSAGES).text,
            raw.complete,
            settings.calls,
            settings.rounds,
        )

        def llmgate_stream() -> int:
            return sum(1 for c in gate.completion(target.model, MESSAGES, stream=True) if c.delta)

        per_stream = interleaved(llmgate_stream, raw.stream, settings.streams, settings.rounds)
        row.metrics["per chunk (stream)"] = (
            per_stream[0] / settings.stream_chunks,
            per_stream[1] / settings.stream_chunks,
        )
        if raw.embed is not None and target.embedding_model:
            embedding_model = target.embedding_model
            row.metrics["per embedding call"] = interleaved(
                lambda: gate.embed(embedding_model, ["alpha", "beta"]).embeddings,
                raw.embed,
                max(20, settings.calls // 3),
                settings.rounds,
            )
        if raw.acomplete is not None:
            acomplete = raw.acomplete

            async def both() -> tuple[float, float]:
                ours = await _throughput(
                    lambda: gate.acompletion(target.model, MESSAGES),
                    settings.async_requests,
                    settings.concurrency,
                )
                theirs = await _throughput(acomplete, settings.async_requests, settings.concurrency)
                return ours, theirs

            row.metrics["async throughput (req/s)"] = asyncio.run(both())
        raw.close()
        gate.close()
        row.metrics["first call, fresh process"] = first_call(vendor, target, fake.url)
    finally:
        fake.stop()
    return row


FIRST_CALL_LLMGATE = """
import sys, time
from tests.conformance.targets import TARGETS
t = next(t for t in TARGETS if t.id == {vendor!r})
started = time.perf_counter()
import llmgate
gate = llmgate.LLMGate(max_retries=0, **t.gate_kwargs({url!r}))
gate.completion(t.model, [{{"role": "user", "content": "Hello there"}}])
print(time.perf_counter() - started)
"""

FIRST_CALL_RAW = """
import sys, time
from tests.conformance.targets import TARGETS
t = next(t for t in TARGETS if t.id == {vendor!r})
options = t.gate_kwargs({url!r})["provider_options"][{vendor!r}]
started = time.perf_counter()
from benchmarks.raw import FACTORIES
raw = FACTORIES[{vendor!r}](options, t.model.split("/", 1)[1], None)
raw.complete()
print(time.perf_counter() - started)
"""


def _run_timed(code: str) -> float:
    env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def first_call(vendor: str, target: Any, url: str, runs: int = 5) -> tuple[float, float]:
    ours = [_run_timed(FIRST_CALL_LLMGATE.format(vendor=vendor, url=url)) for _ in range(runs)]
    theirs = [_run_timed(FIRST_CALL_RAW.format(vendor=vendor, url=url)) for _ in range(runs)]
    return statistics.median(ours), statistics.median(theirs)


def import_times(runs: int = 15) -> dict[str, float]:
    def median_wall(statement: str) -> float:
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", statement], check=True)
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    bare = median_wall("pass")
    return {
        "bare interpreter": bare,
        "import llmgate": median_wall("import llmgate") - bare,
        "from llmgate import completion": median_wall("from llmgate import completion") - bare,
        "import openai (for reference)": median_wall("import openai") - bare,
    }


def structured_linearity() -> list[tuple[int, float]]:
    """Seconds per KB of partial structured parsing, from 10 KB to 1 MB of JSON output."""
    from llmgate._structured import StreamParser
    from llmgate.types import StreamChunk

    results = []
    for size_kb in (10, 100, 1000):
        item = '{"id": 12345, "name": "an item name", "tags": ["a", "b"]}, '
        body = '{"items": [' + item * (size_kb * 1024 // len(item)) + '{"id": 0}]}'
        pieces = [body[i : i + 20] for i in range(0, len(body), 20)]
        parser = StreamParser({"type": "object"})
        started = time.perf_counter()
        for piece in pieces:
            parser.feed(StreamChunk(delta=piece))
        parser.feed(StreamChunk(finish_reason="stop"))
        results.append((size_kb, (time.perf_counter() - started) / size_kb))
    return results


def mock_batch(requests: int = 100_000) -> tuple[float, float, float]:
    """(seconds, requests per second, peak RSS growth in MB) for a mock/ batch."""
    import resource

    import llmgate

    items = [
        {"model": "mock/m", "messages": [{"role": "user", "content": f"q{i}"}]}
        for i in range(requests)
    ]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = llmgate.LLMGate().batch(items, max_concurrency=32)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert result.successful == requests
    return elapsed, requests / elapsed, (after - before) / 1024


def _fmt(metric: str, value: float) -> str:
    if "throughput" in metric:
        return f"{value:,.0f}"
    if value < 1e-3:
        return f"{value * 1e6:,.1f} µs"
    if value < 1:
        return f"{value * 1e3:,.2f} ms"
    return f"{value:,.2f} s"


def render(
    rows: list[Row],
    imports: dict[str, float],
    linear: list[tuple[int, float]],
    batch: tuple[float, float, float] | None,
) -> str:
    versions = ", ".join(
        f"{pkg} {importlib.metadata.version(pkg)}"
        for pkg in ["llmgate", "pydantic", *SDK_PACKAGES.values()]
    )
    lines = [
        "# Performance",
        "",
        f"Measured {datetime.date.today().isoformat()} with `nox -s bench` (`python -m benchmarks.run`) on "
        f"{platform.machine()} ({os.cpu_count()} cores), Python {platform.python_version()}: {versions}.",
        "",
        "Both sides call the same fake vendor server, in its own process on 127.0.0.1, with the",
        "same request; rounds alternate between llmgate and the raw SDK and medians are reported.",
        "Ratio = llmgate / raw SDK for times (below 1.0: llmgate is faster) and for throughput",
        "(above 1.0: llmgate is faster).",
        "",
        "## Per vendor",
        "",
        "| Vendor | Metric | llmgate | raw SDK | ratio |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        for metric, (ours, theirs) in row.metrics.items():
            lines.append(
                f"| {row.vendor} | {metric} | {_fmt(metric, ours)} | {_fmt(metric, theirs)} | {ours / theirs:.2f} |"
            )
    lines += ["", "## Import time", "", "| Statement | Time over a bare interpreter |", "|---|---|"]
    for name, seconds in imports.items():
        lines.append(f"| `{name}` | {seconds * 1e3:.1f} ms |")
    lines += [
        "",
        "## Streamed structured output stays linear",
        "",
        "Partial parsing of a JSON object streamed in 20-byte chunks:",
        "",
        "| Output size | Time per KB |",
        "|---|---|",
    ]
    for size_kb, per_kb in linear:
        lines.append(f"| {size_kb:,} KB | {per_kb * 1e6:,.1f} µs |")
    if batch is not None:
        elapsed, rate, rss = batch
        count = round(elapsed * rate)
        lines += [
            "",
            f"## Batch of {count:,} requests (mock provider)",
            "",
            f"{elapsed:.1f} s, {rate:,.0f} requests/s at max_concurrency=32; peak RSS grew by {rss:.0f} MB "
            "(the 100,000 results themselves included).",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vendors", nargs="*", default=VENDORS)
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/performance.md")
    parser.add_argument("--skip-batch", action="store_true")
    args = parser.parse_args(argv)
    # Installed packages have their bytecode compiled (pip does it); a source checkout run
    # with PYTHONDONTWRITEBYTECODE would compile llmgate afresh in every new process while
    # the SDKs load compiled, which skews the fresh-process and import-time comparisons.
    compileall.compile_dir(ROOT / "llmgate", quiet=1)
    settings = (
        Settings(calls=40, rounds=3, streams=3, async_requests=200) if args.quick else Settings()
    )
    rows = []
    for vendor in args.vendors:
        print(f"benchmarking {vendor} ...", file=sys.stderr, flush=True)
        rows.append(bench_vendor(vendor, settings))
    imports = import_times(5 if args.quick else 15)
    linear = structured_linearity()
    batch = None if args.skip_batch else mock_batch(10_000 if args.quick else 100_000)
    page = render(rows, imports, linear, batch)
    print(page)
    if not args.no_write:
        (ROOT / "docs" / "performance.md").write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
