"""Error plumbing every provider shares: Retry-After, status classes, transport errors, pickling."""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import pytest

import llmgate
from llmgate._errors import (
    caller_stacklevel,
    drop_parameter,
    header,
    make_provider_error,
    map_transport_error,
    parse_retry_after,
)
from llmgate.exceptions import (
    AllProvidersFailedError,
    AuthError,
    BadRequestError,
    BatchTimeoutError,
    DroppedParameterWarning,
    InvalidRequestError,
    ProviderAPIError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
    StructuredOutputError,
    error_for_status,
    is_retryable_status,
)

# --------------------------------------------------------------------------- headers


class _Headers:
    """A headers object that is not a Mapping (like httpx's) and answers .get only."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = {k.lower(): v for k, v in values.items()}

    def get(self, name: str) -> str | None:
        return self._values.get(name.lower())


class _BrokenHeaders:
    def get(self, name: str) -> str:
        raise RuntimeError("headers object exploded")


def test_header_lookup_is_case_insensitive_for_plain_dicts() -> None:
    assert header({"Retry-After": "3"}, "retry-after") == "3"
    assert header({"X-Request-Id": 42}, "x-request-id") == "42"
    assert header({"other": "1"}, "retry-after") is None


def test_header_lookup_survives_odd_header_objects() -> None:
    assert header(None, "retry-after") is None
    assert header(_Headers({"Retry-After": "2"}), "retry-after") == "2"
    assert header(_BrokenHeaders(), "retry-after") is None


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"x-amz-retry-after": "250"}, 0.25),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after-ms": "soon", "retry-after": "4"}, 4.0),  # a bad ms value falls through
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: now
    ],
)
def test_retry_after_forms(headers: dict[str, str], seconds: float) -> None:
    assert parse_retry_after(headers) == pytest.approx(seconds)


def test_retry_after_http_date_in_the_future_is_a_positive_wait() -> None:
    wait = parse_retry_after({"retry-after": "Fri, 31 Dec 2999 23:59:59 GMT"})
    assert wait is not None and wait > 365 * 24 * 3600


@pytest.mark.parametrize("value", ["", "whenever", "Thu, 99 Foo 2024 25:61:61 GMT"])
def test_unreadable_retry_after_is_ignored(value: str) -> None:
    assert parse_retry_after({"retry-after": value}) is None
    assert parse_retry_after(None) is None


# --------------------------------------------------------------------------- status → class


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (None, ProviderAPIError, False),
        (302, ProviderAPIError, False),
        (400, BadRequestError, False),
        (401, AuthError, False),
        (403, AuthError, False),
        (404, BadRequestError, False),
        (408, ProviderTimeoutError, True),
        (409, BadRequestError, True),  # conflict: a 4xx that is still worth retrying
        (418, BadRequestError, False),
        (429, RateLimitError, True),
        (500, ServerError, True),
        (529, ServerError, True),
        (599, ServerError, True),
    ],
)
def test_status_decides_class_and_retryability(
    status: int | None, cls: type[ProviderError], retryable: bool
) -> None:
    assert error_for_status(status) is cls
    error = make_provider_error("boom", status=status, provider="p", model="m")
    assert type(error) is cls
    assert error.retryable is retryable
    assert is_retryable_status(status) is retryable


def test_provider_error_takes_details_from_headers() -> None:
    error = make_provider_error(
        "",
        status=503,
        provider="openai",
        model="gpt-4o",
        headers={"X-Amzn-RequestId": "amzn-1", "retry-after-ms": "20"},
        body={"error": "overloaded"},
    )
    assert isinstance(error, ServerError)
    assert error.message == "HTTP 503"
    assert error.request_id == "amzn-1"
    assert error.retry_after == pytest.approx(0.02)
    assert error.body == {"error": "overloaded"}
    assert str(error) == "[openai/gpt-4o] HTTP 503 (status 503) (request id amzn-1)"


def test_explicit_details_win_over_headers_and_class_can_be_forced() -> None:
    error = make_provider_error(
        "slow down",
        status=None,
        provider="x",
        model="y",
        headers={"x-request-id": "from-header", "retry-after": "9"},
        request_id="given",
        retry_after=1.0,
        cls=RateLimitError,
    )
    assert isinstance(error, RateLimitError)
    assert (error.request_id, error.retry_after, error.retryable) == ("given", 1.0, True)


def test_error_text_without_provider_or_status() -> None:
    error = ProviderAPIError("bare")
    assert str(error) == "bare"
    assert repr(error) == (
        "ProviderAPIError('bare', provider='', model='', status_code=None, "
        "request_id=None, retry_after=None)"
    )


# --------------------------------------------------------------------------- transport errors


class ReadTimeout(Exception):
    """Named like httpx's: mapping goes by class name, so any HTTP stack is understood."""


class _VendorConnectError(ConnectionResetError):
    pass


def test_transport_errors_are_mapped_by_class_name() -> None:
    timeout = map_transport_error(ReadTimeout("read took too long"), provider="p", model="m")
    assert isinstance(timeout, ProviderTimeoutError)
    assert str(timeout) == "[p/m] timed out: read took too long"
    assert timeout.retryable

    silent = map_transport_error(ReadTimeout(), provider="p", model="m")
    assert isinstance(silent, ProviderTimeoutError) and silent.message == "timed out"

    reset = map_transport_error(_VendorConnectError(), provider="p", model="m")
    assert isinstance(reset, ProviderConnectionError)
    assert reset.message == "connection failed"

    refused = map_transport_error(ConnectionRefusedError("nobody home"), provider="p", model="m")
    assert isinstance(refused, ProviderConnectionError)
    assert refused.message == "connection failed: nobody home"

    assert map_transport_error(KeyError("x"), provider="p", model="m") is None


# --------------------------------------------------------------------------- dropped parameters


def test_dropped_parameter_warning_points_at_the_callers_line() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drop_parameter("vendor", "'top_k'", "it has no such knob", strict=False)
    assert len(caught) == 1
    warning = caught[0]
    assert warning.category is DroppedParameterWarning is llmgate.DroppedParameterWarning
    assert "vendor does not accept 'top_k': it has no such knob" in str(warning.message)
    assert warning.filename == __file__


def test_dropped_parameter_is_an_error_when_strict() -> None:
    with pytest.raises(InvalidRequestError, match="strict_params is on"):
        drop_parameter("vendor", "'seed'", strict=True)


def test_caller_stacklevel_counts_only_frames_inside_llmgate() -> None:
    assert caller_stacklevel() == 1


# --------------------------------------------------------------------------- pickling


def test_provider_errors_survive_pickling() -> None:
    error = make_provider_error(
        "slow down",
        status=429,
        provider="anthropic",
        model="claude",
        headers={"request-id": "req-9", "retry-after": "3"},
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is RateLimitError
    assert (copy.message, copy.provider, copy.model) == ("slow down", "anthropic", "claude")
    assert (copy.status_code, copy.request_id, copy.retry_after) == (429, "req-9", 3.0)
    assert copy.retryable is True
    assert str(copy) == str(error)


def _unpickled(error: BaseException) -> Any:
    return pickle.loads(pickle.dumps(error))


def test_structured_output_error_survives_pickling() -> None:
    copy = _unpickled(StructuredOutputError("not JSON", raw_text="{oops", errors=["x"]))
    assert (copy.raw_text, copy.errors) == ("{oops", ["x"])


def test_batch_timeout_error_survives_pickling() -> None:
    copy = _unpickled(BatchTimeoutError(3, 1.5))
    assert (copy.index, copy.timeout) == (3, 1.5)


def test_all_providers_failed_error_survives_pickling() -> None:
    copy = _unpickled(AllProvidersFailedError([("a/m", ServerError("down"))]))
    assert [model for model, _ in copy.errors] == ["a/m"]
