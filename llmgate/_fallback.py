"""Model lists: try each model in order until one answers, and recover streams cut mid-way.

A call with several models (``model=[...]``, ``FallbackMiddleware(models=...)``,
``LLMGate(fallback_chain=...)``) moves to the next model on an error in ``fallback_on``
(default: any :class:`~llmgate.exceptions.ProviderError`, after that model's own retries).
Other errors (a bad request shape, a missing key) are raised at once. When every model
fails, :class:`~llmgate.exceptions.AllProvidersFailedError` lists ``(model, error)``.

A stream that breaks after part of the answer reached the caller is recovered by the next
model, in the request's ``stream_fallback_mode``:

- ``restart``: the next model answers from scratch; its first chunk has ``restarted=True``
  so a UI clears what it showed.
- ``prefill``: the next model receives the partial answer as the start of its own turn and
  continues it (only where that model accepts a prefill; otherwise ``user_turn``, with a
  warning).
- ``user_turn``: the partial answer is sent as an assistant turn followed by a user turn
  asking to continue (``stream_resume_prompt``).

Whatever the mode, a stream cut inside a tool call (or before any text, during reasoning)
restarts: half a tool call cannot be continued. A continuation is de-overlapped: when the
next model repeats the tail of the text it was given, the repeat is dropped, so no text is
delivered twice. Chunks after a switch carry ``fallback_attempts`` and, when continuing,
``resumed_from_partial``. Usage reported by failed attempts is kept: the last usage of each
answer (each run of chunks between restarts) counts every attempt in it, and the stream
accumulator adds the answers of a restarted stream together.

The decisions live in :class:`_Plan` and :class:`_StreamRecovery`; the four drivers at the
bottom (sync and async, plain and streaming) only loop, call and relay.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .exceptions import AllProvidersFailedError, LLMGateError
from .middleware.base import BaseMiddleware, CallContext, _aclose, _close
from .types import CompletionRequest, CompletionResponse, Message, StreamChunk, TokenUsage

if TYPE_CHECKING:
    from ._gate import LLMGate

DEFAULT_RESUME_PROMPT = (
    "Your previous reply was cut off. Continue it from exactly where it stopped, without "
    "repeating anything already written and without any preamble."
)
# A repeat shorter than this is dropped only when it is whole words or the whole text: a
# continuation may legitimately start with the letter or two the text ended with.
MIN_OVERLAP = 3


@dataclass
class CallTrail:
    """One call across its models: each model's call context and each failure."""

    contexts: list[CallContext] = field(default_factory=list)
    errors: list[tuple[str, BaseException]] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        """Requests made for this call: every model, every retry (0 for a cache hit)."""
        return sum(ctx.attempts for ctx in self.contexts)

    @property
    def failed_models(self) -> list[str]:
        return [model for model, _ in self.errors]

    def finish(self, response: CompletionResponse) -> CompletionResponse:
        if self.contexts:
            response.attempts = self.attempts
        response.fallback_attempts = self.failed_models
        return response

    def finish_stream(self, response: CompletionResponse) -> CompletionResponse:
        if self.contexts:
            response.attempts = self.attempts
        return response


def fallback_on(gate: LLMGate, chain: Sequence[BaseMiddleware]) -> tuple[type[BaseException], ...]:
    """The errors that move a call to its next model: the last middleware's, or the gate's."""
    configured: tuple[type[BaseException], ...] = gate.fallback_on
    for item in chain:
        value = getattr(item, "fallback_on", None)
        if value is not None:
            configured = tuple(value)
    return configured


class _Plan:
    """The shared part of every fallback: which errors fall back, and the trail of failures."""

    def __init__(
        self,
        gate: LLMGate,
        request: CompletionRequest,
        models: Sequence[str],
        chain: Sequence[BaseMiddleware],
        trail: CallTrail | None,
    ) -> None:
        self.gate = gate
        self.request = request
        self.models = list(models)
        self.fallback_on = fallback_on(gate, chain)
        self.trail = trail if trail is not None else CallTrail()

    def request_for(self, model: str) -> CompletionRequest:
        return self.request.model_copy(update={"model": model})

    def falls_back(self, model: str, error: BaseException) -> bool:
        """Record a failed model; False means the error must be raised as it is."""
        if not isinstance(error, LLMGateError) or not isinstance(error, self.fallback_on):
            return False
        self.trail.errors.append((model, error))
        return True

    def exhausted(self) -> AllProvidersFailedError:
        return AllProvidersFailedError(self.trail.errors)


class _Overlap:
    """Drops, from the start of a continuation, the text that repeats what was delivered.

    The continuation is held back while it could still be (the start of) a repeat, that
    is while it occurs inside the delivered text, then released without the repeated part.
    """

    def __init__(self, delivered: str) -> None:
        self.delivered = delivered
        self.pending = ""
        self.done = not delivered

    def feed(self, text: str, final: bool = False) -> str:
        if self.done:
            return text
        self.pending += text
        if not final and self.pending in self.delivered:
            return ""
        pending, self.pending, self.done = self.pending, "", True
        return pending[overlap(self.delivered, pending) :]


def overlap(delivered: str, continuation: str) -> int:
    """How many leading characters of ``continuation`` repeat the end of ``delivered``.

    The partial answer is sent without trailing whitespace (vendors refuse it), so when
    the delivered text ended in whitespace, leading whitespace of the rest is dropped too.
    """
    sent = delivered.rstrip()
    size = _repeat(sent, continuation)
    if len(sent) < len(delivered):
        rest = continuation[size:]
        size += len(rest) - len(rest.lstrip())
    return size


def _repeat(sent: str, continuation: str) -> int:
    for size in range(min(len(sent), len(continuation)), 0, -1):
        if sent.endswith(continuation[:size]) and _plausible(sent, continuation, size):
            return size
    return 0


def _plausible(sent: str, continuation: str, size: int) -> bool:
    """A long repeat, the whole text, or whole words: not a couple of letters by chance."""
    if size >= MIN_OVERLAP or size == len(sent):
        return True
    starts_word = continuation[0].isspace() or sent[-size - 1].isspace()
    ends_word = size < len(continuation) and not continuation[size].isalnum()
    return starts_word and ends_word


def _has_output(chunk: StreamChunk) -> bool:
    return bool(
        chunk.delta
        or chunk.reasoning_delta
        or chunk.tool_call_deltas
        or chunk.finish_reason
        or chunk.usage is not None
        or chunk.provider_details
    )


class _StreamRecovery(_Plan):
    """Relays chunks across model switches: flags, de-overlap, usage of failed attempts."""

    def __init__(
        self,
        gate: LLMGate,
        request: CompletionRequest,
        models: Sequence[str],
        chain: Sequence[BaseMiddleware],
        trail: CallTrail | None,
    ) -> None:
        super().__init__(gate, request, models, chain, trail)
        # What the caller received since the answer last (re)started.
        self.text: list[str] = []
        self.has_reasoning = False
        self.has_tool_calls = False
        # Usage of failed attempts since the answer last (re)started.
        self.spent: TokenUsage | None = None
        self.switch = ""  # "", "restart" or "continue": how this attempt follows the last
        self.first_chunk = True
        self.overlap: _Overlap | None = None
        self.attempt_usage: TokenUsage | None = None
        self.usage_sent = False
        self.finished = False

    # before an attempt -------------------------------------------------------------
    def begin(self, model: str) -> CompletionRequest:
        """The request for ``model``, continuing or restarting what was delivered."""
        request = self.request_for(model)
        self.first_chunk = True
        self.attempt_usage = None
        self.usage_sent = False
        self.overlap = None
        self.switch = ""
        delivered = "".join(self.text)
        if not (delivered or self.has_reasoning or self.has_tool_calls):
            return request
        mode = self.request.stream_fallback_mode
        if mode == "restart" or self.has_tool_calls or not delivered:
            self.switch = "restart"
            self.text, self.has_reasoning, self.has_tool_calls = [], False, False
            self.spent = None
            return request
        prefill = mode == "prefill" and self._accepts_prefill(model)
        if mode == "prefill" and not prefill:
            warnings.warn(
                f"{model} does not accept an assistant prefill: the interrupted stream "
                "resumes with a user turn instead (stream_fallback_mode='user_turn')",
                UserWarning,
                stacklevel=2,
            )
        self.switch = "continue"
        self.overlap = _Overlap(delivered)
        return self._continuation(request, delivered, prefill)

    def _accepts_prefill(self, model: str) -> bool:
        spec, vendor_model = self.gate.registry.resolve(model, self.request.provider)
        return spec.capabilities_for(vendor_model).prefill

    def _continuation(
        self, request: CompletionRequest, delivered: str, prefill: bool
    ) -> CompletionRequest:
        messages = list(request.messages)
        partial = delivered
        last = messages[-1] if messages else None
        if last is not None and last.role == "assistant" and not last.tool_calls:
            partial = last.text + partial  # the caller's own prefill goes on
            messages.pop()
        # Vendors refuse a final assistant turn that ends in whitespace.
        messages.append(Message(role="assistant", content=partial.rstrip()))
        if not prefill:
            prompt = request.stream_resume_prompt or DEFAULT_RESUME_PROMPT
            messages.append(Message(role="user", content=prompt))
        return request.model_copy(update={"messages": messages})

    # during an attempt -------------------------------------------------------------
    def relay(self, chunk: StreamChunk) -> StreamChunk | None:
        """The chunk as the caller sees it, or None when it carries nothing yet."""
        if chunk.usage is not None:
            self.attempt_usage = chunk.usage
            if self.spent is not None:
                chunk.usage = chunk.usage + self.spent
            self.usage_sent = True
        if chunk.finish_reason and chunk.finish_reason != "error":
            self.finished = True
        if self.trail.errors:
            chunk.fallback_attempts = self.trail.failed_models
            if self.switch == "restart" and self.first_chunk:
                chunk.restarted = True
            elif self.switch == "continue":
                chunk.resumed_from_partial = True
        if self.overlap is not None and not self.overlap.done:
            had_output = _has_output(chunk)
            final = bool(chunk.finish_reason or chunk.tool_call_deltas)
            chunk.delta = self.overlap.feed(chunk.delta, final)
            if had_output and not _has_output(chunk):
                return None
        self.first_chunk = False
        if chunk.delta:
            self.text.append(chunk.delta)
        if chunk.reasoning_delta:
            self.has_reasoning = True
        if chunk.tool_call_deltas:
            self.has_tool_calls = True
        return chunk

    def end(self) -> list[StreamChunk]:
        """What is still owed when an attempt ends: held-back text, failed attempts' usage."""
        delta = self.overlap.feed("", final=True) if self.overlap is not None else ""
        usage = self.spent if not self.usage_sent else None
        if not delta and usage is None:
            return []
        chunk = StreamChunk(
            delta=delta,
            usage=usage,
            fallback_attempts=self.trail.failed_models,
            resumed_from_partial=self.switch == "continue",
        )
        if delta:
            self.text.append(delta)
        return [chunk]

    # after a failure ---------------------------------------------------------------
    def failed(self, model: str, error: BaseException) -> bool:
        """False when ``error`` must be raised; True to go on (or end, if ``finished``)."""
        if self.finished:
            return True  # the answer was complete: only the tail of the stream was lost
        if not self.falls_back(model, error):
            return False
        if self.attempt_usage is not None:
            self.spent = self.attempt_usage + self.spent
        return True


# ---------------------------------------------------------------------------- drivers


def complete(
    gate: LLMGate,
    request: CompletionRequest,
    models: Sequence[str],
    chain: Sequence[BaseMiddleware],
    trail: CallTrail | None = None,
) -> CompletionResponse:
    plan = _Plan(gate, request, models, chain, trail)
    for model in plan.models:
        try:
            response = gate.complete_one(plan.request_for(model), chain, plan.trail)
        except Exception as exc:
            if not plan.falls_back(model, exc):
                raise
            continue
        return plan.trail.finish(response)
    raise plan.exhausted()


async def acomplete(
    gate: LLMGate,
    request: CompletionRequest,
    models: Sequence[str],
    chain: Sequence[BaseMiddleware],
    trail: CallTrail | None = None,
) -> CompletionResponse:
    plan = _Plan(gate, request, models, chain, trail)
    for model in plan.models:
        try:
            response = await gate.acomplete_one(plan.request_for(model), chain, plan.trail)
        except Exception as exc:
            if not plan.falls_back(model, exc):
                raise
            continue
        return plan.trail.finish(response)
    raise plan.exhausted()


def stream(
    gate: LLMGate,
    request: CompletionRequest,
    models: Sequence[str],
    chain: Sequence[BaseMiddleware],
    trail: CallTrail | None = None,
) -> Iterator[StreamChunk]:
    recovery = _StreamRecovery(gate, request, models, chain, trail)
    for model in recovery.models:
        attempt = recovery.begin(model)
        chunks: Iterator[StreamChunk] | None = None
        try:
            chunks = gate.stream_one(attempt, chain, recovery.trail)
            for chunk in chunks:
                relayed = recovery.relay(chunk)
                if relayed is not None:
                    yield relayed
        except Exception as exc:
            if not recovery.failed(model, exc):
                raise
            if not recovery.finished:
                continue
        finally:
            if chunks is not None:
                _close(chunks)
        yield from recovery.end()
        return
    raise recovery.exhausted()


async def astream(
    gate: LLMGate,
    request: CompletionRequest,
    models: Sequence[str],
    chain: Sequence[BaseMiddleware],
    trail: CallTrail | None = None,
) -> AsyncIterator[StreamChunk]:
    recovery = _StreamRecovery(gate, request, models, chain, trail)
    for model in recovery.models:
        attempt = recovery.begin(model)
        chunks: AsyncIterator[StreamChunk] | None = None
        try:
            chunks = gate.astream_one(attempt, chain, recovery.trail)
            async for chunk in chunks:
                relayed = recovery.relay(chunk)
                if relayed is not None:
                    yield relayed
        except Exception as exc:
            if not recovery.failed(model, exc):
                raise
            if not recovery.finished:
                continue
        finally:
            if chunks is not None:
                await _aclose(chunks)
        for chunk in recovery.end():
            yield chunk
        return
    raise recovery.exhausted()
