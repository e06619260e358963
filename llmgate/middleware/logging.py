"""LoggingMiddleware: one structured log record per call, secrets redacted.

Each call (each model of a fallback list) gives exactly one record, when it ends: done,
failed, or closed early by the caller. The record's message is one readable line; its
``llmgate`` attribute holds the fields for structured handlers (JSON formatters read
``record.llmgate``)::

    kind, async, provider, model, outcome ("ok" | "error" | "cancelled"), latency_ms,
    attempts, fallback_attempts, finish_reason, prompt_tokens, completion_tokens,
    total_tokens, cached_prompt_tokens, reasoning_tokens, cache ("hit" | "miss"),
    rate_limit_wait_ms, and for streams chunks and first_chunk_ms; for errors error_type,
    error, status_code, request_id, retry_after.

Message contents are never logged. Error text is redacted: the call's API key, the
provider's key variables and anything shaped like a key or a bearer token become
``[redacted]``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from typing_extensions import override

from .._registry import default_registry
from ..exceptions import ModelNotFoundError, ProviderError
from ..types import CompletionResponse, EmbeddingResponse, StreamChunk, TokenUsage
from .base import (
    AsyncCallNext,
    AsyncStreamNext,
    BaseMiddleware,
    CallContext,
    CallNext,
    StreamNext,
    _aclose,
    _close,
)

REDACTED = "[redacted]"
_KEY_SHAPES = re.compile(
    r"\b(?:sk-[A-Za-z0-9_\-]{8,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_\-]{30,}|gsk_[A-Za-z0-9]{16,})"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=\-]{6,}")
_ASSIGNED = re.compile(
    r"(?i)\b((?:api[_-]?key|access[_-]?token|secret(?:[_-]?access[_-]?key)?|password|"
    r"authorization|x-api-key|x-goog-api-key)[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;]{4,})"
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the given secrets and anything shaped like a key replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = _KEY_SHAPES.sub(REDACTED, text)
    text = _BEARER.sub(r"\1" + REDACTED, text)
    return _ASSIGNED.sub(r"\1" + REDACTED, text)


def _known_secrets(ctx: CallContext) -> list[str | None]:
    secrets: list[str | None] = [ctx.request.api_key_value]
    try:
        spec = default_registry.get(ctx.provider)
    except ModelNotFoundError:
        return secrets
    secrets.extend(os.environ.get(name) for name in spec.env_keys)
    return secrets


class LoggingMiddleware(BaseMiddleware):
    """Log one record per call to ``logger`` at ``level`` (failures at ``error_level``).

    Put it first in the list to see every call as the caller made it (cache hits and
    rate-limit waits included).
    """

    def __init__(
        self,
        level: int = logging.INFO,
        *,
        logger: logging.Logger | str = "llmgate",
        error_level: int = logging.WARNING,
    ) -> None:
        self.level = level
        self.error_level = error_level
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger

    @override
    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"LoggingMiddleware(level={level!r}, logger={self.logger.name!r})"

    # the record -------------------------------------------------------------------
    def fields(
        self,
        ctx: CallContext,
        outcome: str,
        result: Any = None,
        error: BaseException | None = None,
        stream: _StreamStats | None = None,
    ) -> dict[str, Any]:
        """The structured fields of one call's record."""
        fields: dict[str, Any] = {
            "kind": ctx.kind,
            "async": ctx.is_async,
            "provider": ctx.provider,
            "model": ctx.model,
            "outcome": outcome,
            "latency_ms": round(ctx.elapsed * 1000, 1),
            "attempts": ctx.attempts,
            "fallback_attempts": list(ctx.fallback_attempts),
        }
        usage: TokenUsage | None = None
        if isinstance(result, (CompletionResponse, EmbeddingResponse)):
            usage = result.usage
        if isinstance(result, CompletionResponse):
            fields["finish_reason"] = result.finish_reason
        if stream is not None:
            usage = stream.usage
            fields["finish_reason"] = stream.finish_reason
            fields["chunks"] = stream.chunks
            fields["first_chunk_ms"] = stream.first_chunk_ms
        if usage is not None:
            fields.update(
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                total_tokens=usage.total_tokens,
                cached_prompt_tokens=usage.cached_prompt_tokens,
                reasoning_tokens=usage.reasoning_tokens,
            )
        if "cache" in ctx.metadata:
            fields["cache"] = ctx.metadata["cache"]
        if "rate_limit_wait" in ctx.metadata:
            fields["rate_limit_wait_ms"] = round(ctx.metadata["rate_limit_wait"] * 1000, 1)
        if error is not None:
            fields["error_type"] = type(error).__name__
            fields["error"] = redact(str(error), _known_secrets(ctx))
            if isinstance(error, ProviderError):
                fields.update(
                    status_code=error.status_code,
                    request_id=error.request_id,
                    retry_after=error.retry_after,
                )
        return fields

    def emit(self, fields: dict[str, Any]) -> None:
        failed = fields["outcome"] == "error"
        level = self.error_level if failed else self.level
        if not self.logger.isEnabledFor(level):
            return
        line = (
            f"llmgate {fields['kind']} {fields['provider']}/{fields['model']} "
            f"{fields['outcome']} in {fields['latency_ms']} ms, attempts={fields['attempts']}"
        )
        if fields.get("total_tokens") is not None:
            line += f", tokens={fields['total_tokens']}"
        if fields["fallback_attempts"]:
            line += f", after {', '.join(fields['fallback_attempts'])} failed"
        if failed:
            line += f": {fields['error_type']}: {fields['error']}"
        self.logger.log(level, "%s", line, extra={"llmgate": fields})

    def _log(self, ctx: CallContext, outcome: str, **kwargs: Any) -> None:
        self.emit(self.fields(ctx, outcome, **kwargs))

    # the four kinds of call ---------------------------------------------------------
    @override
    def wrap_call(self, ctx: CallContext, call_next: CallNext) -> Any:
        try:
            result = call_next(ctx)
        except BaseException as error:
            self._log(ctx, _outcome(error), error=error)
            raise
        self._log(ctx, "ok", result=result)
        return result

    @override
    async def awrap_call(self, ctx: CallContext, call_next: AsyncCallNext) -> Any:
        try:
            result = await call_next(ctx)
        except BaseException as error:
            self._log(ctx, _outcome(error), error=error)
            raise
        self._log(ctx, "ok", result=result)
        return result

    @override
    def wrap_stream(self, ctx: CallContext, call_next: StreamNext) -> Iterator[StreamChunk]:
        stats = _StreamStats(ctx)
        chunks = call_next(ctx)
        try:
            for chunk in chunks:
                stats.add(chunk)
                yield chunk
        except BaseException as error:
            self._log(ctx, _outcome(error), error=_cause(error), stream=stats)
            raise
        finally:
            _close(chunks)
        self._log(ctx, "ok", stream=stats)

    @override
    async def awrap_stream(
        self, ctx: CallContext, call_next: AsyncStreamNext
    ) -> AsyncIterator[StreamChunk]:
        stats = _StreamStats(ctx)
        chunks = call_next(ctx)
        try:
            async for chunk in chunks:
                stats.add(chunk)
                yield chunk
        except BaseException as error:
            self._log(ctx, _outcome(error), error=_cause(error), stream=stats)
            raise
        finally:
            await _aclose(chunks)
        self._log(ctx, "ok", stream=stats)


def _outcome(error: BaseException) -> str:
    return "error" if isinstance(error, Exception) else "cancelled"


def _cause(error: BaseException) -> BaseException | None:
    """The error to report: none for a stream the caller closed (GeneratorExit)."""
    return error if isinstance(error, Exception) or not isinstance(error, GeneratorExit) else None


class _StreamStats:
    __slots__ = ("chunks", "finish_reason", "first_chunk_ms", "started", "usage")

    def __init__(self, ctx: CallContext) -> None:
        self.started = ctx.started_at
        self.chunks = 0
        self.first_chunk_ms: float | None = None
        self.finish_reason: str | None = None
        self.usage: TokenUsage | None = None

    def add(self, chunk: StreamChunk) -> None:
        if not self.chunks:
            self.first_chunk_ms = round((time.perf_counter() - self.started) * 1000, 1)
        self.chunks += 1
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
