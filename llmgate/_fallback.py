"""Model lists: try each model in order until one succeeds.

Non-streaming calls move to the next model on any error in ``gate.fallback_on``. Streams
move on too; once text has reached the caller, the next model restarts the answer and its
first chunk says so (``restarted=True``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING

from .exceptions import AllProvidersFailedError, LLMGateError
from .middleware.base import BaseMiddleware
from .types import CompletionRequest, CompletionResponse, StreamChunk, TokenUsage

if TYPE_CHECKING:
    from ._gate import LLMGate


def _for_model(request: CompletionRequest, model: str) -> CompletionRequest:
    return request.model_copy(update={"model": model})


def _falls_back(gate: LLMGate, error: BaseException) -> bool:
    return isinstance(error, gate.fallback_on) and isinstance(error, LLMGateError)


def complete(
    gate: LLMGate, request: CompletionRequest, models: Sequence[str], chain: Sequence[BaseMiddleware]
) -> CompletionResponse:
    errors: list[tuple[str, BaseException]] = []
    for model in models:
        try:
            response = gate.complete_one(_for_model(request, model), chain)
        except Exception as exc:
            if not _falls_back(gate, exc):
                raise
            errors.append((model, exc))
            continue
        response.fallback_attempts = [m for m, _ in errors]
        return response
    raise AllProvidersFailedError(errors)


async def acomplete(
    gate: LLMGate, request: CompletionRequest, models: Sequence[str], chain: Sequence[BaseMiddleware]
) -> CompletionResponse:
    errors: list[tuple[str, BaseException]] = []
    for model in models:
        try:
            response = await gate.acomplete_one(_for_model(request, model), chain)
        except Exception as exc:
            if not _falls_back(gate, exc):
                raise
            errors.append((model, exc))
            continue
        response.fallback_attempts = [m for m, _ in errors]
        return response
    raise AllProvidersFailedError(errors)


def stream(
    gate: LLMGate, request: CompletionRequest, models: Sequence[str], chain: Sequence[BaseMiddleware]
) -> Iterator[StreamChunk]:
    errors: list[tuple[str, BaseException]] = []
    delivered = False
    spent = TokenUsage()
    for model in models:
        restart = delivered
        chunks: Iterator[StreamChunk] | None = None
        try:
            chunks = gate.stream_one(_for_model(request, model), chain)
            for chunk in chunks:
                if errors:
                    chunk.fallback_attempts = [m for m, _ in errors]
                if restart:
                    chunk.restarted = True
                    restart = False
                if chunk.usage is not None and errors:
                    chunk.usage = chunk.usage + spent
                delivered = True
                yield chunk
            return
        except GeneratorExit:
            raise
        except Exception as exc:
            if not _falls_back(gate, exc):
                raise
            errors.append((model, exc))
        finally:
            if chunks is not None:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
    raise AllProvidersFailedError(errors)


async def astream(
    gate: LLMGate, request: CompletionRequest, models: Sequence[str], chain: Sequence[BaseMiddleware]
) -> AsyncIterator[StreamChunk]:
    errors: list[tuple[str, BaseException]] = []
    delivered = False
    for model in models:
        restart = delivered
        chunks: AsyncIterator[StreamChunk] | None = None
        try:
            chunks = gate.astream_one(_for_model(request, model), chain)
            async for chunk in chunks:
                if errors:
                    chunk.fallback_attempts = [m for m, _ in errors]
                if restart:
                    chunk.restarted = True
                    restart = False
                delivered = True
                yield chunk
            return
        except GeneratorExit:
            raise
        except Exception as exc:
            if not _falls_back(gate, exc):
                raise
            errors.append((model, exc))
        finally:
            if chunks is not None:
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
    raise AllProvidersFailedError(errors)
