"""The Mistral error table, fed with the SDK's own exception classes.

The exceptions are built the way the SDK builds them, from real ``httpx2`` responses, so
every attribute the mapping reads (status, headers, body) is the SDK's.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from mistralai.client.errors import (
    HTTPValidationError,
    HTTPValidationErrorData,
    NoResponseError,
    ResponseValidationError,
    SDKError,
)
from mistralai.client.models import CompletionEvent
from pydantic import ValidationError

from llmgate.exceptions import (
    AuthError,
    BadRequestError,
    InvalidRequestError,
    ProviderAPIError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from llmgate.providers.mistral.provider import map_mistral_error

MODEL = "mistral-large-latest"


def response(status: int, body: Any, **headers: str) -> httpx2.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx2.Response(
        status,
        headers={"content-type": "application/json", **headers},
        content=content,
        request=httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions"),
    )


def sdk_error(status: int, body: Any, **headers: str) -> SDKError:
    raw = response(status, body, **headers)
    return SDKError("API error occurred", raw, raw.text)


def validation_failure(raw_event: Any) -> ResponseValidationError:
    """What the SDK raises when a stream event does not fit its model."""
    text = json.dumps({"data": raw_event})
    try:
        CompletionEvent.model_validate_json(text)
    except ValidationError as cause:
        return ResponseValidationError(
            "Response validation failed", response(200, b""), cause, text
        )
    raise AssertionError("the event was valid")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthError),
        (429, RateLimitError),
        (503, ServerError),
        (408, ProviderTimeoutError),
    ],
)
def test_http_statuses(status: int, cls: type) -> None:
    body = {"object": "error", "message": f"failed {status}", "type": "x", "code": str(status)}
    error = map_mistral_error(
        sdk_error(status, body, **{"mistral-correlation-id": "corr-1"}), MODEL
    )
    assert type(error) is cls
    assert (error.status_code, error.request_id, error.message) == (
        status,
        "corr-1",
        f"failed {status}",
    )
    assert error.provider == "mistral" and error.model == MODEL


def test_retry_after_headers() -> None:
    error = map_mistral_error(
        sdk_error(429, {"message": "slow down"}, **{"retry-after-ms": "250"}), MODEL
    )
    assert isinstance(error, RateLimitError) and error.retry_after == pytest.approx(0.25)


def test_a_body_that_is_not_json_is_kept() -> None:
    error = map_mistral_error(sdk_error(502, b"<html>bad gateway</html>"), MODEL)
    assert isinstance(error, ServerError)
    assert error.body == "<html>bad gateway</html>"
    assert error.message == "HTTP 502"


def test_422_lists_the_invalid_fields() -> None:
    body = {"detail": [{"type": "missing", "loc": ["body", "model"], "msg": "Field required"}]}
    raw = response(422, body, **{"x-request-id": "r-9"})
    exc = HTTPValidationError(HTTPValidationErrorData.model_validate(body), raw, raw.text)
    error = map_mistral_error(exc, MODEL)
    assert isinstance(error, BadRequestError)
    assert (error.status_code, error.request_id) == (422, "r-9")
    assert error.message == "body.model: Field required"


@pytest.mark.parametrize(
    ("event", "cls", "status"),
    [
        ({"object": "error", "message": "busy", "raw_status_code": 429}, RateLimitError, 429),
        ({"object": "error", "message": "boom", "code": "500"}, ServerError, 500),
        ({"error": {"message": "overloaded", "status": 529}}, ServerError, 529),
        ({"object": "error", "message": "odd"}, ProviderAPIError, None),
    ],
)
def test_error_events_inside_a_stream(event: dict[str, Any], cls: type, status: int | None) -> None:
    error = map_mistral_error(validation_failure(event), MODEL)
    assert type(error) is cls
    assert error.status_code == status


def test_garbage_inside_a_stream() -> None:
    error = map_mistral_error(validation_failure("{not json"), MODEL)
    assert type(error) is ProviderAPIError
    assert "could not read" in error.message


def test_no_response() -> None:
    error = map_mistral_error(NoResponseError(), MODEL)
    assert isinstance(error, ProviderConnectionError) and error.retryable


def test_request_the_sdk_refuses() -> None:
    try:
        CompletionEvent.model_validate({"data": 1})
    except ValidationError as exc:
        error = map_mistral_error(exc, MODEL)
    assert isinstance(error, InvalidRequestError)


def test_other_exceptions_are_left_to_the_base() -> None:
    assert map_mistral_error(httpx2.ReadTimeout("slow"), MODEL) is None
    assert map_mistral_error(ValueError("x"), MODEL) is None
