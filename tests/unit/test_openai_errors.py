"""The OpenAI provider's error table: SDK exceptions and wire errors to llmgate errors.

The SDK exceptions are the real classes, built around real ``httpx2`` responses the way
the SDK builds them; nothing is mocked.
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest

from llmgate.exceptions import (
    AuthError,
    BadRequestError,
    ProviderAPIError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from llmgate.providers.openai._convert import MalformedFrame, WireError
from llmgate.providers.openai.provider import error_body_status, map_openai_error

REQUEST = httpx2.Request("POST", "https://api.openai.test/v1/chat/completions")


def status_error(
    cls: type[openai.APIStatusError], status: int, headers: dict[str, str], body: Any
) -> openai.APIStatusError:
    response = httpx2.Response(status, headers=headers, json={"error": body}, request=REQUEST)
    return cls(body.get("message", "failed"), response=response, body=body)


def mapped(exc: BaseException) -> ProviderError:
    error = map_openai_error(exc, provider="openai", model="gpt-4o-mini")
    assert isinstance(error, ProviderError)
    return error


@pytest.mark.parametrize(
    ("cls", "status", "expected"),
    [
        (openai.BadRequestError, 400, BadRequestError),
        (openai.AuthenticationError, 401, AuthError),
        (openai.PermissionDeniedError, 403, AuthError),
        (openai.NotFoundError, 404, BadRequestError),
        (openai.UnprocessableEntityError, 422, BadRequestError),
        (openai.RateLimitError, 429, RateLimitError),
        (openai.InternalServerError, 500, ServerError),
        (openai.InternalServerError, 503, ServerError),
    ],
)
def test_status_errors_keep_status_request_id_and_retry_after(
    cls: type[openai.APIStatusError], status: int, expected: type
) -> None:
    exc = status_error(
        cls, status, {"x-request-id": "req_9", "retry-after": "4"}, {"message": "nope"}
    )
    error = mapped(exc)
    assert type(error) is expected
    assert (error.status_code, error.request_id, error.retry_after) == (status, "req_9", 4.0)
    assert (error.provider, error.model, error.message) == ("openai", "gpt-4o-mini", "nope")
    assert error.body == {"message": "nope"}


def test_azure_request_id_and_retry_after_ms() -> None:
    exc = status_error(
        openai.RateLimitError,
        429,
        {"apim-request-id": "apim-1", "retry-after-ms": "250"},
        {"message": "slow down", "code": "429"},
    )
    error = mapped(exc)
    assert error.request_id == "apim-1"
    assert error.retry_after == pytest.approx(0.25)
    assert error.retryable


def test_timeouts_and_connection_failures() -> None:
    timeout = mapped(openai.APITimeoutError(request=REQUEST))
    assert isinstance(timeout, ProviderTimeoutError) and timeout.retryable
    try:
        try:
            raise httpx2.ConnectError("refused", request=REQUEST)
        except httpx2.ConnectError as cause:
            raise openai.APIConnectionError(request=REQUEST) from cause
    except openai.APIConnectionError as exc:
        connection = mapped(exc)
    assert isinstance(connection, ProviderConnectionError)
    assert "ConnectError" in connection.message


@pytest.mark.parametrize(
    ("body", "expected", "status"),
    [
        (
            {"message": "slow", "type": "requests", "code": "rate_limit_exceeded"},
            RateLimitError,
            429,
        ),
        ({"message": "oops", "type": "server_error", "code": None}, ServerError, 500),
        ({"message": "busy", "type": "server_error", "code": "overloaded"}, ServerError, 503),
        ({"message": "bad", "type": "BadRequestError", "code": 400}, BadRequestError, 400),
        (
            {"message": "who", "type": "invalid_request_error", "code": "invalid_api_key"},
            AuthError,
            401,
        ),
        ({"message": "?"}, ServerError, None),
    ],
)
def test_in_stream_error_frames(body: dict[str, Any], expected: type, status: int | None) -> None:
    error = mapped(openai.APIError(body["message"], REQUEST, body=body))
    assert type(error) is expected
    assert error.status_code == status
    wire = mapped(WireError(body, headers={"x-request-id": "req_s"}))
    assert type(wire) is expected
    assert wire.request_id == "req_s"


def test_malformed_frames_and_other_sdk_errors() -> None:
    assert type(mapped(MalformedFrame("bad json"))) is ProviderAPIError
    assert type(mapped(openai.OpenAIError("weird"))) is ProviderAPIError
    assert map_openai_error(ValueError("not ours"), provider="openai", model="m") is None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"code": 429}, 429),
        ({"code": "503"}, 503),
        ({"status": 400}, 400),
        ({"type": "rate_limit_error"}, 429),
        ({"type": "overloaded_error"}, 503),
        ({"code": "context_length_exceeded", "type": "invalid_request_error"}, 400),
        ({"code": "model_not_found"}, 404),
        ({"type": "mystery"}, None),
        ("plain text", None),
    ],
)
def test_error_body_status(body: Any, status: int | None) -> None:
    assert error_body_status(body) == status
