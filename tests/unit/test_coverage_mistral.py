"""Mistral error bodies of every shape, through the real mistralai SDK and the loopback fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llmgate import LLMGate
from llmgate.exceptions import BadRequestError, ProviderError, ServerError
from tests.fakes.mistral import MistralFake
from tests.fakes.server import FakeServer, FakeVendor, Fault

USER = [{"role": "user", "content": "Hi"}]
MODEL = "mistral/mistral-large-latest"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(MistralFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[FakeVendor]:
    server.vendor.reset()
    yield server.vendor
    server.vendor.reset()


def gate_for(fake: FakeVendor) -> LLMGate:
    options = {"mistral": {"api_key": "fake-mistral-key", "base_url": fake.base_url}}
    return LLMGate(max_retries=0, provider_options=options)


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (
            422,
            {
                "detail": [
                    {"loc": ["body", "messages", 0], "msg": "Field required", "type": "missing"}
                ]
            },
            BadRequestError,
            "body.messages.0: Field required",
        ),
        (
            400,
            {"detail": [{"loc": ["body", "top_p"], "msg": "too big"}, "and something else"]},
            BadRequestError,
            "body.top_p: too big; and something else",
        ),
        (
            400,
            {"detail": {"reason": "bad temperature"}},
            BadRequestError,
            '{"reason": "bad temperature"}',
        ),
        (400, {"detail": "model does not exist"}, BadRequestError, "model does not exist"),
        (503, "<html>upstream unavailable</html>", ServerError, "HTTP 503"),
        (500, {"message": "", "detail": None}, ServerError, "HTTP 500"),
    ],
)
def test_error_message_is_read_from_every_body_shape(
    fake: FakeVendor, status: int, body: Any, cls: type[ProviderError], message: str
) -> None:
    fake.push(Fault(status=status, body=body))
    with gate_for(fake) as gate, pytest.raises(cls) as info:
        gate.completion(MODEL, USER)
    assert info.value.message == message
    assert info.value.status_code == status
    assert info.value.request_id == "req-fault-1"


async def test_async_error_body_is_read_the_same_way(fake: FakeVendor) -> None:
    detail = [{"loc": ["body", "model"], "msg": "missing", "type": "missing"}]
    fake.push(Fault(status=422, body={"detail": detail}))
    async with gate_for(fake) as gate:
        with pytest.raises(BadRequestError, match=r"body\.model: missing"):
            await gate.acompletion(MODEL, USER)
