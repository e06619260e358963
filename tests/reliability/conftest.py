"""Fixtures of the reliability suite: Redis, and one fake server per vendor target.

The targets are the conformance rows (``TARGETS`` of every ``tests/fakes/*.py``), so a
vendor joins this suite the moment its fake lands.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from llmgate import LLMGate, RetryPolicy
from tests.conformance.target import Target
from tests.conformance.targets import TARGETS
from tests.fakes.server import FakeServer, FakeVendor
from tests.redis_server import redis_server, redis_url

__all__ = ["redis_server", "redis_url"]

# Two retries, and waits short enough for hundreds of failing calls.
FAST_RETRIES = RetryPolicy(
    max_retries=2, backoff_factor=0.001, max_backoff=0.002, max_retry_after=0.02
)

_servers: dict[str, FakeServer] = {}


def server_for(target: Target) -> FakeServer:
    """The target's fake server, started on first use and kept for the session."""
    server = _servers.get(target.id)
    if server is None:
        server = _servers[target.id] = FakeServer(target.make_vendor()).start()
    return server


@pytest.fixture(params=TARGETS, ids=[t.id for t in TARGETS])
def target(request: pytest.FixtureRequest) -> Target:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def fake(target: Target) -> Iterator[FakeVendor]:
    vendor = server_for(target).vendor
    vendor.reset()
    yield vendor
    vendor.reset()


_gates: dict[str, LLMGate] = {}


@pytest.fixture
def gate(target: Target, fake: FakeVendor) -> LLMGate:
    """The target's gate, shared by the session: SDK clients are built once per vendor."""
    shared = _gates.get(target.id)
    if shared is None:
        kwargs = target.gate_kwargs(fake.base_url)
        shared = _gates[target.id] = LLMGate(retry_policy=FAST_RETRIES, **kwargs)
    return shared


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for shared in _gates.values():
        shared.close()
    for server in _servers.values():
        server.stop()
