"""Gemini error details (RetryInfo, ErrorInfo) through the real google-genai SDK and the fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("google.genai", minversion="3", reason="google-genai 3.x needs Python 3.11")

from llmgate import LLMGate
from llmgate.exceptions import AuthError, BadRequestError, RateLimitError
from llmgate.providers.gemini._convert import retry_delay
from tests.fakes.gemini import FAKE_KEY, GeminiFake
from tests.fakes.server import FakeServer, FakeVendor, Fault

USER = [{"role": "user", "content": "Hi"}]
MODEL = "gemini/gemini-2.5-flash"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(GeminiFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[FakeVendor]:
    server.vendor.reset()
    yield server.vendor
    server.vendor.reset()


def gate_for(fake: FakeVendor) -> LLMGate:
    options = {"gemini": {"api_key": FAKE_KEY, "base_url": fake.base_url}}
    return LLMGate(max_retries=0, provider_options=options)


def google_error(code: int, status: str, *details: dict[str, Any]) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": f"{status} here",
            "status": status,
            "details": list(details),
        }
    }


def test_retry_delay_from_retry_info_is_the_retry_after(fake: FakeVendor) -> None:
    body = google_error(429, "RESOURCE_EXHAUSTED", {"@type": RETRY_INFO, "retryDelay": "1.5s"})
    fake.push(Fault(status=429, body=body, request_id=None))
    with gate_for(fake) as gate, pytest.raises(RateLimitError) as info:
        gate.completion(MODEL, USER)
    assert info.value.retry_after == 1.5
    assert info.value.message == "RESOURCE_EXHAUSTED here"


def test_a_refused_key_reported_as_invalid_argument_is_an_auth_error(fake: FakeVendor) -> None:
    detail = {"@type": ERROR_INFO, "reason": "API_KEY_INVALID", "domain": "googleapis.com"}
    fake.push(Fault(status=400, body=google_error(400, "INVALID_ARGUMENT", detail)))
    with gate_for(fake) as gate, pytest.raises(AuthError) as info:
        gate.completion(MODEL, USER)
    assert info.value.status_code == 400 and not info.value.retryable


def test_other_invalid_arguments_stay_bad_requests(fake: FakeVendor) -> None:
    detail = {"@type": ERROR_INFO, "reason": "SOMETHING_ELSE"}
    fake.push(Fault(status=400, body=google_error(400, "INVALID_ARGUMENT", detail)))
    with gate_for(fake) as gate, pytest.raises(BadRequestError):
        gate.completion(MODEL, USER)


@pytest.mark.parametrize(
    ("details", "seconds"),
    [
        ([{"@type": RETRY_INFO, "retryDelay": "37s"}], 37.0),
        ([{"@type": RETRY_INFO, "retryDelay": "-2s"}], 0.0),
        ([{"@type": RETRY_INFO, "retryDelay": {"seconds": 2, "nanos": 500_000_000}}], 2.5),
        ([{"@type": RETRY_INFO, "retryDelay": "soons"}], None),
        ([{"@type": RETRY_INFO, "retryDelay": 12}], None),
        (["not a mapping", {"@type": ERROR_INFO}], None),
        ("not a list", None),
    ],
)
def test_retry_delay_forms(details: Any, seconds: float | None) -> None:
    assert retry_delay({"error": {"details": details}}) == seconds
    assert retry_delay(None) is None
