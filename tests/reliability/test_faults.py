"""Fault injection against every vendor's fake: errors, attempts, fallback, stream switches.

Each case drives the real SDK against the vendor's wire-level fake and checks the llmgate
error (class, status, request id, retry_after), how many requests reached the fake (the
attempts), what fallback does, and that no text is lost or repeated across a switch of
model in the middle of a stream.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from typing_extensions import override

from llmgate import LLMGate, RetryPolicy
from llmgate.exceptions import (
    AllProvidersFailedError,
    AuthError,
    BadRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from llmgate.middleware import BaseMiddleware, CallContext, LoggingMiddleware
from llmgate.testing import MockReply, scripted
from llmgate.types import StreamChunk
from tests.conformance.target import Target
from tests.fakes.server import FakeVendor, Fault, RecordedRequest, Reply

from .conftest import FAST_RETRIES, closed_port_url

USER = [{"role": "user", "content": "Spell out the alphabet"}]
LONG = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"

STATUSES: list[tuple[int, type[ProviderError]]] = [
    (400, BadRequestError),
    (401, AuthError),
    (403, AuthError),
    (404, BadRequestError),
    (408, ProviderTimeoutError),
    (413, BadRequestError),
    (422, BadRequestError),
    (429, RateLimitError),
    (500, ServerError),
    (502, ServerError),
    (503, ServerError),
    (504, ServerError),
    (529, ServerError),
]
RETRYABLE = {408, 429, 500, 502, 503, 504, 529}

# Faults inside a stream, after part of the answer went out.
STREAM_FAULTS: dict[str, dict[str, Any]] = {
    "dropped": {"drop_after": 6},
    "malformed": {"malformed_after": 3},
    "error_frame": {"error_after": 3, "error_status": 529},
}


@dataclass(frozen=True)
class RecordingPolicy(RetryPolicy):
    """The gate's retry policy, keeping the waits it chose (no wall-clock timing needed)."""

    waits: list[float] = field(default_factory=list)

    @override
    def delay(self, error: BaseException, attempt: int) -> float:
        wait = super().delay(error, attempt)
        self.waits.append(wait)
        return wait


def _complete(gate: LLMGate, model: Any, kind: str, **kwargs: Any) -> Any:
    """One call of the given kind (sync, async or stream); streams are consumed."""
    if kind == "sync":
        return gate.completion(model, USER, **kwargs)
    if kind == "stream":
        return gate.completion(model, USER, stream=True, **kwargs).until_done()

    async def run() -> Any:
        return await gate.acompletion(model, USER, **kwargs)

    return asyncio.run(run())


class Attempts(BaseMiddleware):
    """Records how many attempts each failed call made (requests that never reached a fake)."""

    def __init__(self) -> None:
        self.failed: list[int] = []

    def on_error(self, ctx: CallContext, error: BaseException) -> None:
        self.failed.append(ctx.attempts)


# --------------------------------------------------------------------------- HTTP errors


# Every status on plain calls; a retried and a final one on async calls and streams.
HTTP_CASES = [(status, error_class, "sync") for status, error_class in STATUSES] + [
    (status, error_class, kind)
    for kind in ("async", "stream")
    for status, error_class in STATUSES
    if status in (401, 503)
]


@pytest.mark.parametrize(
    ("status", "error_class", "kind"),
    HTTP_CASES,
    ids=[f"{kind}-{status}" for status, _, kind in HTTP_CASES],
)
def test_http_error(
    gate: LLMGate,
    fake: FakeVendor,
    target: Target,
    status: int,
    error_class: type[ProviderError],
    kind: str,
) -> None:
    fake.push(*(Fault(status=status, request_id=f"req-{status}-{n}") for n in range(3)))
    with pytest.raises(error_class) as info:
        _complete(gate, target.model, kind)
    error = info.value
    attempts = 3 if status in RETRYABLE else 1
    assert len(fake.requests) == attempts, "retryable: 1 + 2 retries; others: no retry"
    assert error.status_code == status
    assert error.retryable is (status in RETRYABLE)
    assert error.provider == target.model.split("/", 1)[0]
    if target.request_ids:
        assert error.request_id == f"req-{status}-{attempts - 1}", "the last attempt's error"


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"retry-after": "1"}, 1.0), ({"retry-after-ms": "40"}, 0.04)],
    ids=["retry-after", "retry-after-ms"],
)
def test_retry_after_is_honoured_up_to_the_cap(
    fake: FakeVendor, target: Target, headers: dict[str, str], seconds: float
) -> None:
    if not target.error_headers:
        pytest.skip(f"{target.id}: its SDK exposes no response headers on errors")
    cap = 0.05
    policy = RecordingPolicy(max_retries=2, backoff_factor=0.0, max_retry_after=cap)
    with LLMGate(retry_policy=policy, **target.gate_kwargs(fake.base_url)) as gate:
        fake.push(Fault(429, headers=headers), Fault(429, headers=headers), Reply(text="ok"))
        response = gate.completion(target.model, USER)
        assert (response.text, response.attempts, len(fake.requests)) == ("ok", 3, 3)
        assert policy.waits == [pytest.approx(min(seconds, cap))] * 2, "waited what it said, capped"
        fake.push(Fault(429, headers=headers))
        with pytest.raises(RateLimitError) as info:
            gate.completion(target.model, USER, max_retries=0)
    assert info.value.retry_after == pytest.approx(seconds)


# --------------------------------------------------------------------------- transport


@pytest.mark.parametrize("kind", ["sync", "async", "stream"])
def test_read_timeout_is_retried_then_raised(
    gate: LLMGate, fake: FakeVendor, target: Target, kind: str
) -> None:
    fake.push(Reply(text="late", delay=1.0), Reply(text="late", delay=1.0))
    with pytest.raises(ProviderTimeoutError):
        _complete(gate, target.model, kind, timeout=0.1, max_retries=1)
    assert len(fake.requests) == 2  # each reply comes after 1 s: only the timeout ends a try


@pytest.mark.parametrize("kind", ["sync", "async", "stream"])
def test_connection_refused_is_retried_then_raised(target: Target, kind: str) -> None:
    attempts = Attempts()
    kwargs = target.gate_kwargs(closed_port_url())
    with LLMGate(retry_policy=FAST_RETRIES, middleware=[attempts], **kwargs) as gate:
        with pytest.raises(ProviderConnectionError) as info:
            _complete(gate, target.model, kind)
    assert attempts.failed == [3]
    assert info.value.retryable


# --------------------------------------------------------------------------- inside a stream


def _stream_fault_error(fault: str) -> type[ProviderError]:
    return {"dropped": ProviderConnectionError, "error_frame": ServerError}.get(
        fault, ProviderError
    )


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("fault", STREAM_FAULTS)
def test_fault_inside_a_stream(
    gate: LLMGate, fake: FakeVendor, target: Target, fault: str, is_async: bool
) -> None:
    fake.push(Reply(text=LONG, **STREAM_FAULTS[fault]), Reply(text="never sent"))

    async def consume_async() -> str:
        stream = await gate.acompletion(target.model, USER, stream=True)
        try:
            async for _ in stream:
                pass
        finally:
            received.append(stream.text)
        return stream.text

    received: list[str] = []
    with pytest.raises(_stream_fault_error(fault)):
        if is_async:
            asyncio.run(consume_async())
        else:
            stream = gate.completion(target.model, USER, stream=True)
            try:
                for _ in stream:
                    pass
            finally:
                received.append(stream.text)
    assert received[0] and LONG.startswith(received[0]), "the partial text is what was sent"
    assert len(fake.requests) == 1, "no retry once a chunk reached the caller"


@pytest.mark.parametrize(
    ("status", "error_class"), [(429, RateLimitError), (500, ServerError), (529, ServerError)]
)
def test_error_frame_status_picks_the_class(
    gate: LLMGate, fake: FakeVendor, target: Target, status: int, error_class: type
) -> None:
    fake.push(Reply(text=LONG, error_after=3, error_status=status))
    with pytest.raises(error_class):
        gate.completion(target.model, USER, stream=True).until_done()


# --------------------------------------------------------------------------- fallback


FALLBACK_FAULTS: dict[str, Callable[[FakeVendor], None]] = {
    "429": lambda fake: fake.push(Fault(429)),
    "500": lambda fake: fake.push(Fault(500)),
    "401": lambda fake: fake.push(Fault(401)),
    "timeout": lambda fake: fake.push(Reply(text="late", delay=1.0)),
    "dropped": lambda fake: fake.push(Reply(text=LONG, drop_after=6)),
    "malformed": lambda fake: fake.push(Reply(text=LONG, malformed_after=3)),
    "error_frame": lambda fake: fake.push(Reply(text=LONG, error_after=3, error_status=500)),
}


@pytest.mark.parametrize("fault", FALLBACK_FAULTS)
def test_fault_falls_back_to_the_next_model(
    gate: LLMGate, fake: FakeVendor, target: Target, fault: str
) -> None:
    FALLBACK_FAULTS[fault](fake)
    models = [target.model, "mock/backup"]
    with scripted("backup answer") as backup:
        stream = gate.completion(models, USER, stream=True, timeout=0.1, max_retries=0)
        response = stream.until_done()
    assert response.text == "backup answer"
    assert response.fallback_attempts == [target.model]
    assert response.attempts == len(fake.requests) + 1
    assert len(backup.requests) == 1


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_every_model_failing_lists_every_error(
    gate: LLMGate, fake: FakeVendor, target: Target, kind: str
) -> None:
    fake.push(Fault(401, request_id="req-auth"))
    with scripted(
        MockReply(error_status=503), MockReply(error_status=503), MockReply(error_status=503)
    ):
        with pytest.raises(AllProvidersFailedError) as info:
            _complete(gate, [target.model, "mock/backup"], kind)
    (first_model, first), (second_model, second) = info.value.errors
    assert (first_model, second_model) == (target.model, "mock/backup")
    assert isinstance(first, AuthError) and first.status_code == 401
    assert isinstance(second, ServerError)
    if target.request_ids:
        assert first.request_id == "req-auth"


def _last_assistant_text(target: Target, request: RecordedRequest) -> str:
    for role, text in reversed(target.wire.turns(request)):
        if role == "assistant":
            return text
    return ""


def _continuing(target: Target) -> Callable[[RecordedRequest], Reply]:
    """The next model: it continues the partial answer it was given, repeating its last word."""

    def script(request: RecordedRequest) -> Reply:
        partial = _last_assistant_text(target, request)
        assert LONG.startswith(partial), f"the partial answer sent is not a prefix: {partial!r}"
        return Reply(text=LONG[max(partial.rfind(" "), 0) :] if partial else LONG)

    return script


MODES = ("restart", "prefill", "user_turn")


def _switch(chunks: list[StreamChunk]) -> int:
    return next(i for i, chunk in enumerate(chunks) if chunk.fallback_attempts)


SWITCH_CASES = [(fault, mode, False) for fault in STREAM_FAULTS for mode in MODES] + [
    ("dropped", mode, True) for mode in MODES
]


@pytest.mark.parametrize(
    ("fault", "mode", "is_async"),
    SWITCH_CASES,
    ids=[f"{'async-' if a else ''}{fault}-{mode}" for fault, mode, a in SWITCH_CASES],
)
def test_no_text_lost_or_repeated_across_a_mid_stream_switch(
    gate: LLMGate, fake: FakeVendor, target: Target, fault: str, mode: str, is_async: bool
) -> None:
    fake.set_default(_continuing(target))
    fake.push(Reply(text=LONG, **STREAM_FAULTS[fault]))
    models = [target.model, target.model]

    async def collect_async() -> tuple[list[StreamChunk], Any]:
        stream = await gate.acompletion(models, USER, stream=True, stream_fallback_mode=mode)
        chunks = [chunk async for chunk in stream]
        return chunks, stream.final_response()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # prefill where a vendor has none
        if is_async:
            chunks, response = asyncio.run(collect_async())
        else:
            stream = gate.completion(models, USER, stream=True, stream_fallback_mode=mode)
            chunks = list(stream)
            response = stream.final_response()

    assert response.text == LONG
    assert len(fake.requests) == 2
    switch = _switch(chunks)
    before = "".join(chunk.delta for chunk in chunks[:switch])
    after = "".join(chunk.delta for chunk in chunks[switch:])
    assert before and LONG.startswith(before), "part of the answer went out before the cut"
    assert all(chunk.fallback_attempts == [target.model] for chunk in chunks[switch:])
    if mode == "restart":
        assert chunks[switch].restarted
        assert after == LONG
    else:
        assert before + after == LONG, "each word delivered exactly once"
        assert all(chunk.resumed_from_partial for chunk in chunks[switch:])
        assert _last_assistant_text(target, fake.requests[1]) == before.rstrip()


# --------------------------------------------------------------------------- secrets


def _credentials(target: Target, base_url: str) -> list[str]:
    options = target.gate_kwargs(base_url).get("provider_options", {})
    found = [
        value
        for settings in options.values()
        for name, value in settings.items()
        if isinstance(value, str) and ("key" in name or "secret" in name)
    ]
    assert found, f"{target.id}: no credential in its gate kwargs"
    return found


def test_credentials_echoed_by_the_vendor_never_leave_llmgate(
    fake: FakeVendor, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = _credentials(target, fake.base_url)
    caplog.set_level(logging.INFO, logger="llmgate")
    fake.push(Fault(401, message=f"Incorrect key provided: {' / '.join(secrets)}"))
    kwargs = target.gate_kwargs(fake.base_url)
    with LLMGate(max_retries=0, middleware=[LoggingMiddleware()], **kwargs) as gate:
        with pytest.raises(AuthError) as info:
            gate.completion(target.model, USER)
        outputs = [str(info.value), repr(info.value), str(info.value.args), repr(gate), caplog.text]
        outputs += [repr(provider) for provider in gate._providers.values()]
    assert "Incorrect key provided" in str(info.value), "the vendor's message is kept"
    for secret in secrets:
        for output in outputs:
            assert secret not in output
