"""Cohere error bodies of every shape, through the real cohere SDK and the loopback fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llmgate import LLMGate
from llmgate.exceptions import BadRequestError, ProviderError, ServerError
from tests.fakes.cohere import CohereFake
from tests.fakes.server import FakeServer, FakeVendor, Fault

USER = [{"role": "user", "content": "Hi"}]
MODEL = "cohere/command-a-03-2025"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(CohereFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[FakeVendor]:
    server.vendor.reset()
    yield server.vendor
    server.vendor.reset()


def gate_for(fake: FakeVendor) -> LLMGate:
    options = {"cohere": {"api_key": "fake-cohere-key", "base_url": fake.base_url}}
    return LLMGate(max_retries=0, provider_options=options)


@pytest.mark.parametrize(
    ("status", "body", "cls", "message", "retryable"),
    [
        (400, {"error": {"message": "nested message"}}, BadRequestError, "nested message", False),
        (422, {"detail": "unprocessable prompt"}, BadRequestError, "unprocessable prompt", False),
        (500, "<html>proxy error</html>", ServerError, "<html>proxy error</html>", True),
        (503, {"message": ""}, ServerError, "Cohere returned HTTP 503", True),
        (501, {"message": "not implemented"}, ServerError, "not implemented", False),
    ],
)
def test_error_message_is_read_from_every_body_shape(
    fake: FakeVendor,
    status: int,
    body: Any,
    cls: type[ProviderError],
    message: str,
    retryable: bool,
) -> None:
    fake.push(Fault(status=status, body=body))
    with gate_for(fake) as gate, pytest.raises(cls) as info:
        gate.completion(MODEL, USER)
    assert info.value.message == message
    assert info.value.status_code == status
    assert info.value.retryable is retryable
