"""How the gate runs the parts of a split embedding call: order, bound, failures, progress."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from llmgate import LLMGate
from llmgate._gate import EMBED_CONCURRENCY, _run_parts
from llmgate.testing import MockProvider
from llmgate.types import EmbeddingRequest


def parts(n: int) -> list[EmbeddingRequest]:
    return [EmbeddingRequest(model="mock/e", input=[f"text {i}"]) for i in range(n)]


def test_results_keep_the_order_of_the_parts_and_the_bound_holds() -> None:
    running, peak, lock = 0, 0, threading.Lock()
    release = threading.Barrier(EMBED_CONCURRENCY, timeout=10)

    def run(part: EmbeddingRequest) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        if part.input[0] in {f"text {i}" for i in range(EMBED_CONCURRENCY)}:
            release.wait()  # the first parts all run at once, or this times out
        with lock:
            running -= 1
        return part.input[0]

    with ThreadPoolExecutor(16) as pool:
        results = _run_parts(pool, parts(20), run)
    assert results == [f"text {i}" for i in range(20)]
    assert peak == EMBED_CONCURRENCY


def test_a_failure_stops_new_parts_and_is_raised() -> None:
    started: list[str] = []

    def run(part: EmbeddingRequest) -> str:
        started.append(part.input[0])
        if part.input[0] == "text 0":
            raise ValueError("part 0 failed")
        return part.input[0]

    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="part 0 failed"):
        _run_parts(pool, parts(50), run)
    assert len(started) < 50


def test_the_calling_thread_finishes_the_work_when_the_pool_is_busy() -> None:
    blocker = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(blocker.wait, 10)  # the pool's only worker is taken
        results = _run_parts(pool, parts(5), lambda part: part.input[0])
        blocker.set()
    assert results == [f"text {i}" for i in range(5)]


def test_gate_embedding_split_uses_the_gates_workers_and_close_releases_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(MockProvider, "embedding_batch_size", 2)
    with LLMGate() as gate:
        response = gate.embed("mock/e", [f"t{i}" for i in range(7)])
        assert len(response.embeddings) == 7
        assert response.provider_details == {"requests": 4}
        assert response.embeddings == gate.embed("mock/e", [f"t{i}" for i in range(7)]).embeddings
        assert gate._embed_pool is not None
    assert gate._embed_pool is None
