"""RetryMiddleware: the retry settings for the calls it is used on.

It configures the gate's one retry loop (see :mod:`llmgate._retry`); it never runs a loop of
its own, so retries never multiply. Vendor SDK retries are always off.
"""

from __future__ import annotations

from typing_extensions import override

from .._retry import DEFAULT_MAX_RETRIES, RetryPolicy
from .base import SettingsMiddleware


class RetryMiddleware(SettingsMiddleware):
    """Retry failed calls up to ``max_retries`` times with exponential backoff and jitter.

    Retried: 408, 409, 429, 5xx and 529 answers, timeouts and connection failures. The wait
    before retry *n* is ``backoff_factor * 2**(n-1)`` seconds (at most ``max_backoff``, less
    up to ``jitter`` of it), or what the vendor's ``Retry-After``/``retry-after-ms`` says,
    capped at ``max_retry_after``. A stream is retried only until its first chunk arrives.
    A call's own ``max_retries=`` still wins over this middleware.
    """

    def __init__(
        self,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_factor: float = 0.5,
        *,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        jitter: float = 0.25,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.retry_policy = policy or RetryPolicy(
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
            jitter=jitter,
        )

    @override
    def __repr__(self) -> str:
        return f"RetryMiddleware({self.retry_policy!r})"
