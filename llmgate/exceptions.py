"""Every error llmgate raises.

    LLMGateError
    ├── ConfigError                  bad setup: missing key, region or SDK extra, bad option
    │   └── MissingDependencyError   the vendor SDK is not installed (names the extra)
    ├── ModelNotFoundError           a model string no provider claims
    ├── InvalidRequestError          malformed input caught before any network call
    ├── UnsupportedFeatureError
    │   ├── StreamingNotSupported
    │   ├── EmbeddingsNotSupported
    │   ├── VisionNotSupported
    │   └── ToolsNotSupported
    ├── ProviderError                the vendor (or the way to it) failed
    │   ├── AuthError                401 / 403
    │   ├── RateLimitError           429 (and vendor throttling codes)
    │   └── ProviderAPIError         everything else the vendor returned
    │       ├── BadRequestError      400 / 404 / 413 / 422 and similar
    │       ├── ProviderTimeoutError 408, read and connect timeouts
    │       ├── ProviderConnectionError  refused, reset or dropped connections
    │       └── ServerError          5xx, 529 overloaded
    ├── StructuredOutputError        the output did not match response_format
    ├── BatchTimeoutError            one batch item ran past its timeout
    └── AllProvidersFailedError      every model of a fallback list failed

Provider errors carry ``provider``, ``model``, ``status_code``, ``request_id`` and
``retry_after`` (seconds) where the vendor gives them, and the SDK's exception as
``__cause__``. No error message ever contains an API key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from typing_extensions import override

__all__ = [
    "AllProvidersFailedError",
    "AuthError",
    "BadRequestError",
    "BatchTimeoutError",
    "ConfigError",
    "DroppedParameterWarning",
    "EmbeddingsNotSupported",
    "InvalidRequestError",
    "LLMGateError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "ProviderAPIError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ServerError",
    "StreamingNotSupported",
    "StructuredOutputError",
    "ToolsNotSupported",
    "UnsupportedFeatureError",
    "VisionNotSupported",
]


class LLMGateError(Exception):
    """Base of every llmgate error."""


class ConfigError(LLMGateError):
    """The setup is wrong: a missing key, region, option or SDK."""


class MissingDependencyError(ConfigError, ImportError):
    """The vendor SDK a provider needs is not installed."""

    def __init__(self, provider: str, extra: str, package: str) -> None:
        self.provider = provider
        self.extra = extra
        self.package = package
        super().__init__(
            f"the {provider!r} provider needs the {package!r} package: "
            f"pip install 'llmgate[{extra}]'"
        )


class ModelNotFoundError(LLMGateError):
    """No provider claims this model string."""

    def __init__(self, message: str, *, model: str = "", suggestions: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.model = model
        self.suggestions = list(suggestions)


class InvalidRequestError(LLMGateError, ValueError):
    """The request is malformed; raised before anything is sent."""


class UnsupportedFeatureError(LLMGateError):
    """The provider or model cannot do what the request asks."""

    def __init__(self, message: str, *, provider: str = "", model: str = "") -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model


class StreamingNotSupported(UnsupportedFeatureError):
    pass


class EmbeddingsNotSupported(UnsupportedFeatureError):
    pass


class VisionNotSupported(UnsupportedFeatureError):
    pass


class ToolsNotSupported(UnsupportedFeatureError):
    pass


class DroppedParameterWarning(UserWarning):
    """A parameter the vendor does not accept was left out of the request.

    ``LLMGate(strict_params=True)`` turns it into an :class:`InvalidRequestError`.
    """


class ProviderError(LLMGateError):
    """The vendor, or the connection to it, failed."""

    retryable_by_default = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status_code: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body
        self.retryable = self.retryable_by_default if retryable is None else retryable

    @override
    def __str__(self) -> str:
        where = "/".join(p for p in (self.provider, self.model) if p)
        bits = [f"[{where}]" if where else "", self.message]
        if self.status_code is not None:
            bits.append(f"(status {self.status_code})")
        if self.request_id:
            bits.append(f"(request id {self.request_id})")
        return " ".join(b for b in bits if b)

    @override
    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, "
            f"model={self.model!r}, status_code={self.status_code!r}, "
            f"request_id={self.request_id!r}, retry_after={self.retry_after!r})"
        )

    @override
    def __reduce__(self) -> Any:
        kwargs = {
            "provider": self.provider,
            "model": self.model,
            "status_code": self.status_code,
            "request_id": self.request_id,
            "retry_after": self.retry_after,
            "retryable": self.retryable,
            "body": self.body,
        }
        return (_rebuild_provider_error, (type(self), self.message, kwargs))


def _rebuild_provider_error(
    cls: type[ProviderError], message: str, kwargs: dict[str, Any]
) -> ProviderError:
    return cls(message, **kwargs)


class AuthError(ProviderError):
    """The key was refused (401) or lacks permission (403)."""


class RateLimitError(ProviderError):
    """The vendor throttled the call (429); ``retry_after`` says how long to wait."""

    retryable_by_default = True


class ProviderAPIError(ProviderError):
    """Any other vendor failure."""


class BadRequestError(ProviderAPIError):
    """The vendor rejected the request (400, 404, 413, 422, ...)."""


class ProviderTimeoutError(ProviderAPIError):
    """The vendor did not answer in time (408 or a client-side timeout)."""

    retryable_by_default = True


class ProviderConnectionError(ProviderAPIError):
    """The connection was refused, reset, or dropped mid-stream."""

    retryable_by_default = True


class ServerError(ProviderAPIError):
    """The vendor failed (5xx) or is overloaded (529)."""

    retryable_by_default = True


class StructuredOutputError(LLMGateError):
    """The model's output did not validate against ``response_format``."""

    def __init__(self, message: str, *, raw_text: str, errors: Any = None) -> None:
        super().__init__(message)
        self.raw_text = raw_text
        self.errors = errors
        self.usage: Any = None  # TokenUsage of every attempt, set by the gate
        self.attempts = 1

    @override
    def __reduce__(self) -> Any:
        return (_rebuild_structured_error, (str(self), self.raw_text, self.errors))


def _rebuild_structured_error(message: str, raw_text: str, errors: Any) -> StructuredOutputError:
    return StructuredOutputError(message, raw_text=raw_text, errors=errors)


class BatchTimeoutError(LLMGateError, TimeoutError):
    """One batch item ran longer than its ``timeout``, counted from when it started."""

    def __init__(self, index: int, timeout: float) -> None:
        super().__init__(f"batch request {index} did not finish within {timeout} s")
        self.index = index
        self.timeout = timeout

    @override
    def __reduce__(self) -> Any:
        return (BatchTimeoutError, (self.index, self.timeout))


class AllProvidersFailedError(LLMGateError):
    """Every model of a fallback list failed; ``errors`` lists ``(model, exception)``."""

    def __init__(self, errors: Sequence[tuple[str, BaseException]]) -> None:
        self.errors = list(errors)
        lines = "; ".join(f"{model}: {type(exc).__name__}: {exc}" for model, exc in self.errors)
        super().__init__(f"all {len(self.errors)} models failed: {lines}")

    @override
    def __reduce__(self) -> Any:
        return (AllProvidersFailedError, (self.errors,))


def error_for_status(status: int | None) -> type[ProviderError]:
    """The llmgate error class for an HTTP status."""
    if status is None:
        return ProviderAPIError
    if status in (401, 403):
        return AuthError
    if status == 429:
        return RateLimitError
    if status == 408:
        return ProviderTimeoutError
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return BadRequestError
    return ProviderAPIError


RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def is_retryable_status(status: int | None) -> bool:
    return status is not None and (status in RETRYABLE_STATUSES or status >= 500)
