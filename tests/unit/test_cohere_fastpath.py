"""Cohere's whole chat replies read from the wire agree with ``ClientV2.chat``.

llmgate sends a non-streamed chat through ``with_raw_response.chat_stream`` with
``stream`` set back to false, reads the JSON itself and builds the SDK's
``V2ChatResponse`` only when ``.raw`` is read. These tests drive the raw SDK and llmgate
against the same fake and compare what each sends and returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cohere
import pytest
from cohere.core.api_error import ApiError

from llmgate import LLMGate
from llmgate.exceptions import LLMGateError
from llmgate.providers.cohere.provider import map_cohere_error
from tests.fakes.cohere import CohereFake, RawJSON
from tests.fakes.server import FakeServer, FakeToolCall, Fault, Reply

MODEL = "command-a-03-2025"
USER = [{"role": "user", "content": "Hi"}]
NO_RETRIES: Any = {"max_retries": 0}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(CohereFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[CohereFake]:
    vendor = server.vendor
    assert isinstance(vendor, CohereFake)
    vendor.reset()
    yield vendor
    vendor.reset()


@pytest.fixture
def gate(fake: CohereFake) -> Iterator[LLMGate]:
    options = {"cohere": {"api_key": "fake-cohere-key", "base_url": fake.base_url}}
    with LLMGate(max_retries=0, provider_options=options) as g:
        yield g


@pytest.fixture
def sdk(fake: CohereFake) -> cohere.ClientV2:
    return cohere.ClientV2(api_key="fake-cohere-key", base_url=fake.base_url, max_retries=0)


def test_the_request_is_the_one_chat_sends(
    gate: LLMGate, sdk: cohere.ClientV2, fake: CohereFake
) -> None:
    fake.push(Reply(text="one"), Reply(text="two"))
    gate.completion(f"cohere/{MODEL}", USER, max_tokens=5, temperature=0.5)
    sdk.chat(
        model=MODEL,
        messages=USER,  # type: ignore[arg-type]
        max_tokens=5,
        temperature=0.5,
        request_options=NO_RETRIES,
    )
    ours, theirs = fake.requests
    assert (ours.method, ours.path) == (theirs.method, theirs.path)
    assert ours.body == theirs.body
    assert ours.json["stream"] is False
    for name in ("content-type", "authorization", "x-fern-sdk-name", "x-fern-sdk-version"):
        assert ours.headers.get(name) == theirs.headers.get(name)


def test_raw_is_the_sdks_reply_built_on_first_read(
    gate: LLMGate, sdk: cohere.ClientV2, fake: CohereFake
) -> None:
    reply = Reply(
        text="Checking.",
        tool_calls=[FakeToolCall(name="get_weather", arguments={"city": "Paris"})],
        prompt_tokens=7,
        completion_tokens=3,
    )
    fake.push(reply, reply)
    response = gate.completion(f"cohere/{MODEL}", USER)
    expected = sdk.chat(model=MODEL, messages=USER, request_options=NO_RETRIES)  # type: ignore[arg-type]
    assert response._raw is None
    raw = response.raw
    assert type(raw) is type(expected)
    assert raw.model_dump() == expected.model_dump()
    assert response.raw is raw
    assert response.tool_calls is not None
    assert response.tool_calls[0].arguments == {"city": "Paris"}
    assert (response.usage.prompt_tokens, response.usage.total_tokens) == (7, 10)


def test_caller_body_parameters_are_kept(gate: LLMGate, fake: CohereFake) -> None:
    fake.push(Reply(text="ok"))
    options = {"additional_body_parameters": {"safety_mode": "OFF"}, "max_retries": 3}
    gate.completion(f"cohere/{MODEL}", USER, request_options=options)
    body = fake.last.json
    assert (body["safety_mode"], body["stream"]) == ("OFF", False)
    assert options == {"additional_body_parameters": {"safety_mode": "OFF"}, "max_retries": 3}


def _sdk_error(sdk: cohere.ClientV2) -> LLMGateError:
    with pytest.raises(ApiError) as info:
        sdk.chat(model=MODEL, messages=USER, request_options=NO_RETRIES)  # type: ignore[arg-type]
    mapped = map_cohere_error(info.value, MODEL)
    assert mapped is not None
    return mapped


@pytest.mark.parametrize(
    "script",
    [
        Fault(status=200, body="this is not JSON"),
        Fault(status=429, headers={"retry-after": "3"}),
        Fault(status=498),
        RawJSON({"message": "model not found"}, status=404),
    ],
)
def test_errors_are_the_ones_chat_raises(
    gate: LLMGate, sdk: cohere.ClientV2, fake: CohereFake, script: Any
) -> None:
    fake.push(script, script)
    with pytest.raises(LLMGateError) as info:
        gate.completion(f"cohere/{MODEL}", USER)
    ours, theirs = info.value, _sdk_error(sdk)
    assert type(ours) is type(theirs)
    assert str(ours) == str(theirs)
    for name in ("status_code", "request_id", "retry_after", "retryable"):
        assert getattr(ours, name, None) == getattr(theirs, name, None)
