"""LiteLLM and any-llm as peer columns: their own venv, driven in subprocesses.

The peers pin SDK versions of their own (any-llm wants ``anthropic<1``), so they never go
into the project's environment. ``ensure_venv()`` makes ``.bench-peers/`` (git-ignored) and
pip-installs them there; the benchmark then starts ``benchmarks/peer_child.py`` with that
venv's python, against the same fake server process and the same request as llmgate and
the raw SDK, and asks it to time the same operations between their rounds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = ROOT / ".bench-peers"
PEERS = ["litellm", "any-llm"]
LABELS = {"litellm": "LiteLLM", "any-llm": "any-llm"}
MODULES = {"litellm": "litellm", "any-llm": "any_llm"}
DISTRIBUTIONS = {"litellm": "litellm", "any-llm": "any-llm-sdk"}
REQUIREMENTS = [
    "litellm",
    "any-llm-sdk[gemini,mistral,cohere,bedrock,ollama]",
]


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def installed(venv: Path) -> dict[str, str]:
    """Versions of the peers installed in ``venv`` (empty if there is no such venv)."""
    python = venv_python(venv)
    if not python.exists():
        return {}
    code = (
        "import importlib.metadata as m, json\n"
        "found = {}\n"
        f"for name, dist in {DISTRIBUTIONS!r}.items():\n"
        "    try:\n"
        "        found[name] = m.version(dist)\n"
        "    except m.PackageNotFoundError:\n"
        "        pass\n"
        "print(json.dumps(found))\n"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def ensure_venv(venv: Path = DEFAULT_VENV) -> Path:
    """Create ``venv`` and pip-install the peers into it, unless they are already there."""
    if len(installed(venv)) == len(PEERS):
        return venv_python(venv)
    if not venv_python(venv).exists():
        print(f"creating the peers venv {venv} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print(f"installing {' '.join(REQUIREMENTS)} into {venv} ...", file=sys.stderr, flush=True)
    subprocess.run(
        [venv_python(venv), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True
    )
    return venv_python(venv)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the peers venv must not see the project's site-packages
    env.pop("VIRTUAL_ENV", None)
    return env


def peer_config(vendor: str, options: dict[str, Any], model: str, embedding: str | None) -> str:
    return json.dumps(
        {"vendor": vendor, "options": options, "model": model, "embedding_model": embedding}
    )


class LeakError(RuntimeError):
    """A peer tried to reach a host that is not loopback (the child's guard refused it)."""


class PeerWorker:
    """One peer for one vendor, in a long-lived child process that times what it is asked."""

    def __init__(self, python: Path, peer: str, config: str) -> None:
        self.peer = peer
        self.process = subprocess.Popen(
            [python, "-m", "benchmarks.peer_child", "serve", peer, config],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        hello = self._read()
        self.versions: dict[str, str] = hello.get("versions", {})
        self.error: str | None = None if hello.get("ready") else hello.get("error", "failed")

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.peer} worker exited (code {self.process.wait()})")
        message: dict[str, Any] = json.loads(line)
        if message.get("blocked"):
            self.close()
            raise LeakError(f"{self.peer}: " + "; ".join(message["blocked"]))
        return message

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._read()

    def check(self, kind: str) -> str | None:
        """None if ``kind`` works against the fake, else why not."""
        if self.error is not None:
            return self.error
        return self.ask(op="check", kind=kind).get("error")

    def timer(self, kind: str) -> Callable[[int], float]:
        def run(n: int) -> float:
            answer = self.ask(op="time", kind=kind, n=n)
            if "error" in answer:
                raise RuntimeError(f"{self.peer} {kind}: {answer['error']}")
            return float(answer["seconds"])

        return run

    def throughput(self, requests: int, concurrency: int) -> float:
        answer = self.ask(op="throughput", requests=requests, concurrency=concurrency)
        if "error" in answer:
            raise RuntimeError(f"{self.peer} async: {answer['error']}")
        return float(answer["per_second"])

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            try:
                self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.process.stdin.close()
                self.process.wait(30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def _run_child(python: Path, *args: str) -> str:
    out = subprocess.run(
        [python, "-m", "benchmarks.peer_child", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=child_env(),
        check=False,
    )
    if out.returncode == 3:
        raise LeakError(out.stderr.strip())
    if out.returncode != 0:
        raise RuntimeError(f"peer_child {' '.join(args[:2])} failed:\n{out.stderr[-2000:]}")
    return out.stdout


def first_call_seconds(python: Path, peer: str, config: str) -> float:
    """Import, client setup and one completion, in a fresh process of the peers venv."""
    return float(_run_child(python, "first-call", peer, config).strip().splitlines()[-1])


def import_seconds(python: Path, peer: str, runs: int) -> float:
    """Median wall time of importing ``peer`` over a bare (guarded) interpreter of its venv."""

    def median_wall(*args: str) -> float:
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            _run_child(python, *args)
            samples.append(time.perf_counter() - started)
        return sorted(samples)[len(samples) // 2]

    return median_wall("import", peer) - median_wall("bare")
