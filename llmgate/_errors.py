"""Shared pieces of error mapping: Retry-After parsing, status → class, transport errors.

Each provider maps its own SDK's exceptions (part 3 of a provider module) and falls back on
:func:`map_transport_error` for the raw ``httpx``/``httpx2`` errors several SDKs leak.
"""

from __future__ import annotations

import email.utils
import os
import sys
import time
import warnings
from collections.abc import Mapping
from typing import Any

from .exceptions import (
    DroppedParameterWarning,
    InvalidRequestError,
    LLMGateError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    error_for_status,
    is_retryable_status,
)

_TIMEOUT_NAMES = frozenset(
    {
        "ReadTimeout",
        "WriteTimeout",
        "ConnectTimeout",
        "PoolTimeout",
        "TimeoutException",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "TimeoutError",
    }
)
_CONNECTION_NAMES = frozenset(
    {
        "ConnectError",
        "RemoteProtocolError",
        "ReadError",
        "WriteError",
        "NetworkError",
        "ProtocolError",
        "LocalProtocolError",
        "EndpointConnectionError",
        "ConnectionClosedError",
        "IncompleteRead",
        "IncompleteReadError",
        "ResponseStreamingError",
        "ConnectionError",
        "ConnectionResetError",
        "ConnectionRefusedError",
        "BrokenPipeError",
    }
)


def header(headers: Any, name: str) -> str | None:
    """A header value from any mapping-like headers object, case-insensitively."""
    if headers is None:
        return None
    try:
        value = headers.get(name)
        if value is None and isinstance(headers, Mapping):
            lowered = name.lower()
            for key, item in headers.items():
                if str(key).lower() == lowered:
                    return str(item)
    except Exception:
        return None
    return None if value is None else str(value)


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``retry-after`` or ``x-amz-retry-after``."""
    for name, scale in (("retry-after-ms", 0.001), ("x-amz-retry-after", 0.001)):
        raw = header(headers, name)
        if raw:
            try:
                return max(0.0, float(raw) * scale)
            except ValueError:
                pass
    raw = header(headers, "retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def make_provider_error(
    message: str,
    *,
    status: int | None,
    provider: str,
    model: str,
    headers: Any = None,
    request_id: str | None = None,
    body: Any = None,
    retry_after: float | None = None,
    cls: type[ProviderError] | None = None,
) -> ProviderError:
    """A provider error of the class the status calls for, with every known detail."""
    error_cls = cls or error_for_status(status)
    if retry_after is None:
        retry_after = parse_retry_after(headers)
    if request_id is None:
        for name in ("x-request-id", "request-id", "x-amzn-requestid", "x-goog-request-id"):
            request_id = header(headers, name)
            if request_id:
                break
    retryable = is_retryable_status(status) or error_cls.retryable_by_default
    return error_cls(
        message or f"HTTP {status}",
        provider=provider,
        model=model,
        status_code=status,
        request_id=request_id,
        retry_after=retry_after,
        body=body,
        retryable=retryable,
    )


def map_transport_error(exc: BaseException, *, provider: str, model: str) -> LLMGateError | None:
    """Timeouts and connection failures from httpx, httpx2, botocore, urllib3 or the stdlib."""
    for cls in type(exc).__mro__:
        name = cls.__name__
        if name in _TIMEOUT_NAMES:
            return ProviderTimeoutError(
                f"timed out: {exc}" if str(exc) else "timed out",
                provider=provider,
                model=model,
            )
        if name in _CONNECTION_NAMES:
            return ProviderConnectionError(
                f"connection failed: {exc}" if str(exc) else "connection failed",
                provider=provider,
                model=model,
            )
    return None


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside llmgate."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def drop_parameter(provider: str, name: str, reason: str = "", *, strict: bool) -> None:
    """A parameter the vendor cannot take: warn that it was not sent, or refuse when strict.

    ``name`` is shown as given (quote it, or list several); ``reason`` says why.
    """
    message = f"{provider} does not accept {name}" + (f": {reason}" if reason else "")
    if strict:
        raise InvalidRequestError(f"{message} (strict_params is on; remove it)")
    warnings.warn(
        f"{message}; it was not sent (LLMGate(strict_params=True) makes this an error)",
        DroppedParameterWarning,
        stacklevel=caller_stacklevel(),
    )
