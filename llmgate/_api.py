"""The module-level functions: each hands its call to one default :class:`LLMGate`."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from ._gate import LLMGate
from .middleware.base import BaseMiddleware
from .types import BatchResult, CompletionRequest, EmbeddingResponse

if TYPE_CHECKING:
    from ._batch import ProgressCallback

_M = TypeVar("_M", bound=BaseModel)
_default: LLMGate | None = None
_default_lock = threading.Lock()


def default_gate() -> LLMGate:
    """The gate the module-level functions use (made on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = LLMGate()
    return _default


def completion(
    model: str | Sequence[str],
    messages: Any,
    *,
    provider: str | None = None,
    api_key: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    stream: bool = False,
    tools: Sequence[Any] | None = None,
    tool_choice: str | dict[str, Any] | None = None,
    response_format: Any = None,
    middleware: Sequence[BaseMiddleware] | None = None,
    stream_fallback_mode: str | None = None,
    stream_resume_prompt: str | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    base_url: str | None = None,
    **extra_kwargs: Any,
) -> Any:
    """A completion from any vendor; ``stream=True`` returns a :class:`~llmgate.Stream`."""
    return default_gate().completion(
        model,
        messages,
        provider=provider,
        api_key=api_key,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        stream=stream,
        tools=tools,
        tool_choice=tool_choice,
        response_format=response_format,
        middleware=middleware,
        stream_fallback_mode=stream_fallback_mode,
        stream_resume_prompt=stream_resume_prompt,
        timeout=timeout,
        max_retries=max_retries,
        base_url=base_url,
        **extra_kwargs,
    )


async def acompletion(
    model: str | Sequence[str],
    messages: Any,
    *,
    provider: str | None = None,
    api_key: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    stream: bool = False,
    tools: Sequence[Any] | None = None,
    tool_choice: str | dict[str, Any] | None = None,
    response_format: Any = None,
    middleware: Sequence[BaseMiddleware] | None = None,
    stream_fallback_mode: str | None = None,
    stream_resume_prompt: str | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    base_url: str | None = None,
    **extra_kwargs: Any,
) -> Any:
    """The async completion; ``stream=True`` returns an :class:`~llmgate.AsyncStream`."""
    return await default_gate().acompletion(
        model,
        messages,
        provider=provider,
        api_key=api_key,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        stream=stream,
        tools=tools,
        tool_choice=tool_choice,
        response_format=response_format,
        middleware=middleware,
        stream_fallback_mode=stream_fallback_mode,
        stream_resume_prompt=stream_resume_prompt,
        timeout=timeout,
        max_retries=max_retries,
        base_url=base_url,
        **extra_kwargs,
    )


def parse(
    model: str | Sequence[str], messages: Any, *, response_format: type[_M], **kwargs: Any
) -> _M:
    """``completion(..., response_format=Model).parsed``, typed as ``Model``."""
    return default_gate().parse(model, messages, response_format=response_format, **kwargs)


async def aparse(
    model: str | Sequence[str], messages: Any, *, response_format: type[_M], **kwargs: Any
) -> _M:
    return await default_gate().aparse(model, messages, response_format=response_format, **kwargs)


def embed(
    model: str,
    input: str | Sequence[str],
    *,
    api_key: str | None = None,
    dimensions: int | None = None,
    task_type: str | None = None,
    title: str | None = None,
    input_type: str | None = None,
    truncate: str | None = None,
    encoding_format: str | None = None,
    user: str | None = None,
    **extra_kwargs: Any,
) -> EmbeddingResponse:
    """Embeddings for one text or a list of texts."""
    return default_gate().embed(
        model,
        input,
        api_key=api_key,
        dimensions=dimensions,
        task_type=task_type,
        title=title,
        input_type=input_type,
        truncate=truncate,
        encoding_format=encoding_format,
        user=user,
        **extra_kwargs,
    )


async def aembed(
    model: str,
    input: str | Sequence[str],
    *,
    api_key: str | None = None,
    dimensions: int | None = None,
    task_type: str | None = None,
    title: str | None = None,
    input_type: str | None = None,
    truncate: str | None = None,
    encoding_format: str | None = None,
    user: str | None = None,
    **extra_kwargs: Any,
) -> EmbeddingResponse:
    return await default_gate().aembed(
        model,
        input,
        api_key=api_key,
        dimensions=dimensions,
        task_type=task_type,
        title=title,
        input_type=input_type,
        truncate=truncate,
        encoding_format=encoding_format,
        user=user,
        **extra_kwargs,
    )


def batch(
    requests: Sequence[CompletionRequest | Mapping[str, Any]],
    *,
    max_concurrency: int = 10,
    fail_fast: bool = False,
    middleware: Sequence[BaseMiddleware] | None = None,
    timeout: float | None = None,
    progress: ProgressCallback | None = None,
    **extra_kwargs: Any,
) -> BatchResult:
    """Many completions at once, results in input order; failed items keep index and error.

    ``timeout`` bounds each item, counted from when that item started
    (:class:`~llmgate.exceptions.BatchTimeoutError`); ``progress`` is called with a
    :class:`BatchProgress` after every item; other keywords are defaults for every request.
    """
    return default_gate().batch(
        requests,
        max_concurrency=max_concurrency,
        fail_fast=fail_fast,
        middleware=middleware,
        timeout=timeout,
        progress=progress,
        **extra_kwargs,
    )


async def abatch(
    requests: Sequence[CompletionRequest | Mapping[str, Any]],
    *,
    max_concurrency: int = 10,
    fail_fast: bool = False,
    middleware: Sequence[BaseMiddleware] | None = None,
    timeout: float | None = None,
    progress: ProgressCallback | None = None,
    **extra_kwargs: Any,
) -> BatchResult:
    return await default_gate().abatch(
        requests,
        max_concurrency=max_concurrency,
        fail_fast=fail_fast,
        middleware=middleware,
        timeout=timeout,
        progress=progress,
        **extra_kwargs,
    )
