"""Fixtures of the conformance suite: one fake server per vendor, one gate per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmgate import LLMGate, RetryPolicy
from tests.fakes.server import FakeServer, FakeVendor

from .target import Target
from .targets import TARGETS

_servers: dict[str, FakeServer] = {}

FAST_RETRIES = RetryPolicy(
    max_retries=2, backoff_factor=0.001, max_backoff=0.01, max_retry_after=0.05
)


@pytest.fixture(params=TARGETS, ids=[t.id for t in TARGETS])
def target(request: pytest.FixtureRequest) -> Target:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def fake(target: Target) -> Iterator[FakeVendor]:
    server = _servers.get(target.id)
    if server is None:
        server = _servers[target.id] = FakeServer(target.make_vendor()).start()
    server.vendor.reset()
    yield server.vendor
    server.vendor.reset()


@pytest.fixture
def gate(target: Target, fake: FakeVendor) -> Iterator[LLMGate]:
    with LLMGate(retry_policy=FAST_RETRIES, **target.gate_kwargs(fake.base_url)) as g:
        yield g


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for server in _servers.values():
        server.stop()


def skip_if_not_applicable(target: Target, case: str) -> None:
    reason = target.not_applicable.get(case)
    if reason:
        pytest.skip(f"{target.id}: {case} not applicable: {reason}")
