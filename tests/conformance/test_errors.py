"""Every failure shape of every vendor becomes the same llmgate error."""

from __future__ import annotations

import socket
import time

import pytest

from llmgate import LLMGate
from llmgate.exceptions import (
    AuthError,
    BadRequestError,
    LLMGateError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from tests.fakes.server import FakeVendor, Fault, Reply

from .conftest import FAST_RETRIES, skip_if_not_applicable
from .helpers import USER, provider_name, vendor_model
from .target import Target

STATUSES = [
    (400, BadRequestError),
    (401, AuthError),
    (403, AuthError),
    (404, BadRequestError),
    (413, BadRequestError),
    (422, BadRequestError),
    (429, RateLimitError),
    (500, ServerError),
    (502, ServerError),
    (503, ServerError),
    (504, ServerError),
    (529, ServerError),
]


@pytest.mark.parametrize(("status", "error_class"), STATUSES, ids=[str(s) for s, _ in STATUSES])
def test_http_error_mapping(
    gate: LLMGate, fake: FakeVendor, target: Target, status: int, error_class: type
) -> None:
    fake.push(Fault(status=status, message=f"injected {status}"))
    with pytest.raises(error_class) as info:
        gate.completion(target.model, USER, max_retries=0)
    error = info.value
    assert isinstance(error, ProviderError)
    assert error.status_code == status
    assert error.provider == provider_name(target)
    assert error.model == vendor_model(target)
    if target.request_ids:
        assert error.request_id == "req-fault-1"
    assert error.__cause__ is not None, "the SDK's exception is kept as __cause__"
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"retry-after": "7"}, 7.0), ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5)],
    ids=["seconds", "milliseconds"],
)
def test_retry_after(
    gate: LLMGate, fake: FakeVendor, target: Target, headers: dict[str, str], seconds: float
) -> None:
    if not target.error_headers:
        pytest.skip(f"{target.id}: its SDK exposes no response headers on errors")
    fake.push(Fault(status=429, headers=headers))
    with pytest.raises(RateLimitError) as info:
        gate.completion(target.model, USER, max_retries=0)
    assert info.value.retry_after == pytest.approx(seconds)


@pytest.mark.parametrize("status", [429, 500, 503, 529])
def test_retry_then_success(gate: LLMGate, fake: FakeVendor, target: Target, status: int) -> None:
    fake.push(Fault(status=status, headers={"retry-after": "0"}), Reply(text="recovered"))
    response = gate.completion(target.model, USER)
    assert response.text == "recovered"
    assert response.attempts == 2
    assert len(fake.requests) == 2


def test_retries_are_bounded(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(*[Fault(status=503) for _ in range(5)])
    with pytest.raises(ServerError):
        gate.completion(target.model, USER, max_retries=2)
    assert len(fake.requests) == 3, "2 retries = 3 attempts, and the SDK itself never retries"


def test_client_errors_are_not_retried(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Fault(status=400), Reply(text="never"))
    with pytest.raises(BadRequestError):
        gate.completion(target.model, USER, max_retries=3)
    assert len(fake.requests) == 1


def test_timeout(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text="late", delay=2.0))
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError):
        gate.completion(target.model, USER, timeout=0.3, max_retries=0)
    assert time.monotonic() - started < 1.8


def test_gate_timeout(fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text="late", delay=2.0))
    with LLMGate(timeout=0.3, max_retries=0, **target.gate_kwargs(fake.base_url)) as gate:
        with pytest.raises(ProviderTimeoutError):
            gate.completion(target.model, USER)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_connection_refused(target: Target) -> None:
    with LLMGate(retry_policy=FAST_RETRIES, **target.gate_kwargs(_closed_port_url())) as gate:
        with pytest.raises(ProviderConnectionError):
            gate.completion(target.model, USER, max_retries=1)


def test_stream_error_before_first_chunk_is_retried(
    gate: LLMGate, fake: FakeVendor, target: Target
) -> None:
    fake.push(Fault(status=429, headers={"retry-after": "0"}), Reply(text="after retry"))
    stream = gate.completion(target.model, USER, stream=True)
    assert "".join(c.delta for c in stream) == "after retry"
    assert len(fake.requests) == 2


def test_stream_http_error(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Fault(status=401))
    with pytest.raises(AuthError):
        gate.completion(target.model, USER, stream=True, max_retries=0)


def test_stream_dropped_mid_way(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text="one two three four five six", drop_after=3))
    stream = gate.completion(target.model, USER, stream=True, max_retries=0)
    received = []
    with pytest.raises(ProviderError) as info:
        for chunk in stream:
            received.append(chunk.delta)
    assert isinstance(info.value, (ProviderConnectionError, ServerError, ProviderError))
    assert "one two three four five six".startswith("".join(received))


@pytest.mark.parametrize(("status", "error_class"), [(429, RateLimitError), (500, ServerError)])
def test_stream_error_frame(
    gate: LLMGate, fake: FakeVendor, target: Target, status: int, error_class: type
) -> None:
    skip_if_not_applicable(target, "stream_error_frame")
    fake.push(Reply(text="one two three four five", error_after=2, error_status=status))
    stream = gate.completion(target.model, USER, stream=True, max_retries=0)
    with pytest.raises(error_class):
        for _ in stream:
            pass
    assert stream.text in ("one two", "one")


def test_stream_malformed_frame(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text="one two three four five", malformed_after=2))
    stream = gate.completion(target.model, USER, stream=True, max_retries=0)
    with pytest.raises(LLMGateError):
        for _ in stream:
            pass


async def test_async_error_mapping(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Fault(status=429, headers={"retry-after": "3"}))
    with pytest.raises(RateLimitError) as info:
        await gate.acompletion(target.model, USER, max_retries=0)
    assert info.value.status_code == 429
    if target.error_headers:
        assert info.value.retry_after == 3.0


async def test_async_stream_dropped(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text="one two three four five six", drop_after=3))
    stream = await gate.acompletion(target.model, USER, stream=True, max_retries=0)
    with pytest.raises(ProviderError):
        async for _ in stream:
            pass


async def test_async_timeout(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text="late", delay=2.0))
    with pytest.raises(ProviderTimeoutError):
        await gate.acompletion(target.model, USER, timeout=0.3, max_retries=0)
