"""The one retry policy: which errors are retried, how long to wait, how many times.

Vendor SDK retries are switched off, so this is the only retry loop. ``RetryMiddleware``
configures it; it never adds a second loop. Which policy a call uses, most specific first:
the call's ``max_retries=``, the last ``RetryMiddleware`` in its chain, the gate's
``max_retries=``, the gate's ``retry_policy=``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from .exceptions import InvalidRequestError, ProviderError

DEFAULT_MAX_RETRIES = 2


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter that honours ``Retry-After`` up to a cap.

    ``max_retries`` counts retries, so a call makes at most ``max_retries + 1`` attempts.
    An error is retried when it says so (``ProviderError.retryable``: 408, 409, 429, 5xx,
    529, timeouts and connection failures). A ``Retry-After`` (or ``retry-after-ms``)
    longer than ``max_retry_after`` is clamped to it: llmgate waits the cap and tries
    again rather than sleeping for an hour or giving up.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_factor: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise InvalidRequestError("max_retries must be 0 or more")
        for name in ("backoff_factor", "max_backoff", "max_retry_after"):
            if getattr(self, name) < 0:
                raise InvalidRequestError(f"{name} must be 0 or more")
        if not 0 <= self.jitter <= 1:
            raise InvalidRequestError("jitter must be between 0 and 1")

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether to try again after ``attempt`` (1-based) failed with ``error``."""
        if attempt > self.max_retries:
            return False
        return isinstance(error, ProviderError) and error.retryable

    def delay(self, error: BaseException, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        retry_after = error.retry_after if isinstance(error, ProviderError) else None
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base = min(self.backoff_factor * 2.0 ** (attempt - 1), self.max_backoff)
        return base * (1 - self.jitter * random.random())

    def with_max_retries(self, max_retries: int | None) -> RetryPolicy:
        if max_retries is None or max_retries == self.max_retries:
            return self
        return replace(self, max_retries=max_retries)
