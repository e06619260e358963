"""Where the time of a call goes: cProfile, or instruction counts that ignore machine load.

    python -m benchmarks.profile openai                      # cProfile of llmgate calls
    python -m benchmarks.profile openai --kind stream --side raw
    python -m benchmarks.profile openai --instructions       # valgrind: llmgate vs raw
    python -m benchmarks.profile bedrock --kind first        # first call of a fresh process

``--instructions`` runs each side in a fresh process under ``valgrind --tool=callgrind``
twice (with no timed calls, then with ``--calls`` of them) and reports the difference per
call: CPU instructions spent by the client process, which neither the other processes on
the machine nor the fake server's speed can disturb.
"""

from __future__ import annotations

import argparse
import compileall
import cProfile
import os
import pstats
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .run import ROOT, FakeProcess

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


def callables(vendor: str, url: str, kind: str, side: str) -> Callable[[], Any]:
    """The one operation to repeat: a completion, a whole stream, or an embedding."""
    from tests.conformance.targets import TARGETS

    from .raw import FACTORIES, MESSAGES

    target = next(t for t in TARGETS if t.id == vendor)
    kwargs = target.gate_kwargs(url)
    if side == "raw":
        raw = FACTORIES[vendor](
            dict(kwargs["provider_options"][vendor]),
            target.model.split("/", 1)[1],
            target.embedding_model.split("/", 1)[1] if target.embedding_model else None,
        )
        op = {"call": raw.complete, "stream": raw.stream, "embed": raw.embed}[kind]
        assert op is not None, f"{vendor} has no raw {kind}"
        return op

    import llmgate

    gate = llmgate.LLMGate(max_retries=0, **kwargs)
    if kind == "call":
        return lambda: gate.completion(target.model, MESSAGES).text
    if kind == "stream":
        return lambda: sum(
            1 for c in gate.completion(target.model, MESSAGES, stream=True) if c.delta
        )
    assert target.embedding_model
    model = target.embedding_model
    return lambda: gate.embed(model, ["alpha", "beta"]).embeddings


CHILD = """
import os, sys
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
from benchmarks.profile import callables
op = callables({vendor!r}, {url!r}, {kind!r}, {side!r})
for _ in range(3):
    op()
for _ in range({calls}):
    op()
"""


def first_call_code(vendor: str, url: str, side: str) -> str:
    """The benchmark's fresh-process child: imports, client setup and one completion."""
    from tests.conformance.targets import TARGETS

    from .run import FIRST_CALL_LLMGATE, FIRST_CALL_RAW

    target = next(t for t in TARGETS if t.id == vendor)
    kwargs = target.gate_kwargs(url)
    if side == "llmgate":
        return FIRST_CALL_LLMGATE.format(kwargs=kwargs, model=target.model)
    return FIRST_CALL_RAW.format(
        vendor=vendor,
        options=kwargs["provider_options"][vendor],
        model=target.model.split("/", 1)[1],
    )


def instructions(vendor: str, url: str, kind: str, side: str, calls: int) -> int:
    """Instructions the client process executes (valgrind callgrind, no cache simulation)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        if kind == "first":
            code = first_call_code(vendor, url, side)
        else:
            code = CHILD.format(vendor=vendor, url=url, kind=kind, side=side, calls=calls)
        result = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                code,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        match = re.search(r"Collected : (\d+)", result.stderr)
        if result.returncode != 0 or match is None:
            raise RuntimeError(result.stderr[-2000:])
        return int(match.group(1))


def instructions_per_call(vendor: str, url: str, kind: str, side: str, calls: int) -> float:
    """The two runs (no timed calls, ``calls`` of them) go side by side, one a core."""
    with ThreadPoolExecutor(2) as pool:
        base, full = pool.map(lambda n: instructions(vendor, url, kind, side, n), (0, calls))
    return (full - base) / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("vendor")
    parser.add_argument("--kind", choices=["call", "stream", "embed", "first"], default="call")
    parser.add_argument("--side", choices=["llmgate", "raw"], default="llmgate")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--filter", default=None, help="only functions whose path matches")
    parser.add_argument("--instructions", action="store_true")
    args = parser.parse_args(argv)
    fake = FakeProcess(args.vendor, args.chunks)
    try:
        if args.kind == "first":
            for package in ("llmgate", "benchmarks"):
                compileall.compile_dir(ROOT / package, quiet=1)
            sides = ("llmgate", "raw")
            with ThreadPoolExecutor(2) as pool:
                found = pool.map(
                    lambda side: instructions(args.vendor, fake.url, "first", side, 0), sides
                )
                counts = dict(zip(sides, found, strict=True))
            print(
                f"{args.vendor} first call, fresh process: instructions llmgate "
                f"{counts['llmgate']:,}, raw {counts['raw']:,}, "
                f"ratio {counts['llmgate'] / counts['raw']:.3f}"
            )
            return 0
        if args.instructions:
            per = {
                side: instructions_per_call(args.vendor, fake.url, args.kind, side, args.calls)
                for side in ("llmgate", "raw")
            }
            unit = f"per chunk ({args.chunks} a stream)" if args.kind == "stream" else "per call"
            scale = args.chunks if args.kind == "stream" else 1
            print(
                f"{args.vendor} {args.kind}: instructions {unit}: llmgate {per['llmgate'] / scale:,.0f}, "
                f"raw {per['raw'] / scale:,.0f}, ratio {per['llmgate'] / per['raw']:.3f}"
            )
            return 0
        op = callables(args.vendor, fake.url, args.kind, args.side)
        for _ in range(3):
            op()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.calls):
            op()
        profiler.disable()
        restrictions: list[Any] = [args.filter] if args.filter else []
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(*restrictions, args.top)
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
