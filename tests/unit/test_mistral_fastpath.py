"""Mistral's whole chat replies sent and read as ``Chat.complete`` sends and reads them.

llmgate builds the request with the SDK's own request builder and sends it through the
SDK's hooks and transport, without ``complete``'s per-argument throwaway pydantic
classes. These tests drive ``Mistral.chat.complete`` and llmgate against the same fake
and compare the requests, the raw replies and the errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mistralai.client import Mistral

from llmgate import LLMGate
from llmgate.exceptions import LLMGateError
from llmgate.providers.mistral.provider import map_mistral_error
from tests.fakes.mistral import MistralFake, RawChat
from tests.fakes.server import FakeServer, FakeToolCall, Fault, Reply

MODEL = "mistral-large-latest"
USER = [{"role": "user", "content": "Hi"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(MistralFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[MistralFake]:
    vendor = server.vendor
    assert isinstance(vendor, MistralFake)
    vendor.reset()
    yield vendor
    vendor.reset()


@pytest.fixture
def gate(fake: MistralFake) -> Iterator[LLMGate]:
    options = {"mistral": {"api_key": "fake-mistral-key", "base_url": fake.base_url}}
    with LLMGate(max_retries=0, provider_options=options) as g:
        yield g


@pytest.fixture
def sdk(fake: MistralFake) -> Mistral:
    return Mistral(api_key="fake-mistral-key", server_url=fake.base_url)


CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "plain": ({}, {}),
    "sampling and stop": (
        {"max_tokens": 7, "temperature": 0.2, "top_p": 0.9, "stop": ["END"]},
        {"max_tokens": 7, "temperature": 0.2, "top_p": 0.9, "stop": ["END"]},
    ),
    "tools": (
        {"tools": [WEATHER], "tool_choice": "required"},
        {"tools": [WEATHER], "tool_choice": "any"},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_request_is_the_one_complete_sends(
    gate: LLMGate, sdk: Mistral, fake: MistralFake, case: str
) -> None:
    ours_kwargs, sdk_kwargs = CASES[case]
    fake.push(Reply(text="one"), Reply(text="two"))
    gate.completion(f"mistral/{MODEL}", USER, **ours_kwargs)
    sdk.chat.complete(model=MODEL, messages=USER, **sdk_kwargs)  # type: ignore[arg-type]
    ours, theirs = fake.requests
    assert (ours.method, ours.path, ours.query) == (theirs.method, theirs.path, theirs.query)
    assert ours.json == theirs.json
    for name in ("content-type", "accept", "authorization", "user-agent"):
        assert ours.headers.get(name) == theirs.headers.get(name)


def test_raw_is_the_sdks_reply(gate: LLMGate, sdk: Mistral, fake: MistralFake) -> None:
    reply = Reply(
        text="Checking.",
        tool_calls=[FakeToolCall(name="get_weather", arguments={"city": "Paris"})],
        prompt_tokens=7,
        completion_tokens=3,
    )
    fake.push(reply, reply)
    response = gate.completion(f"mistral/{MODEL}", USER, tools=[WEATHER])
    expected = sdk.chat.complete(model=MODEL, messages=USER, tools=[WEATHER])  # type: ignore[arg-type]
    assert type(response.raw) is type(expected)
    assert response.raw.model_dump() == expected.model_dump()
    assert response.tool_calls is not None
    assert response.tool_calls[0].arguments == {"city": "Paris"}
    assert (response.usage.prompt_tokens, response.usage.total_tokens) == (7, 10)


async def test_async_calls_take_the_same_path(gate: LLMGate, fake: MistralFake) -> None:
    fake.push(Reply(text="async hello"))
    response = await gate.acompletion(f"mistral/{MODEL}", USER)
    assert response.text == "async hello"
    assert fake.last.path == "/v1/chat/completions"


def _sdk_error(sdk: Mistral) -> LLMGateError:
    with pytest.raises(Exception) as info:
        sdk.chat.complete(model=MODEL, messages=USER)  # type: ignore[arg-type]
    mapped = map_mistral_error(info.value, MODEL)
    assert mapped is not None
    return mapped


@pytest.mark.parametrize(
    "script",
    [
        Fault(status=429, headers={"retry-after": "3"}),
        Fault(status=401),
        Fault(status=503, body="<html>down</html>"),
        Fault(status=422, body={"detail": [{"loc": ["body", "model"], "msg": "bad model"}]}),
        RawChat(body={"id": "x", "choices": "not a list"}),
    ],
    ids=["429", "401", "503 html", "422", "malformed reply"],
)
def test_errors_are_the_ones_complete_raises(
    gate: LLMGate, sdk: Mistral, fake: MistralFake, script: Any
) -> None:
    fake.push(script, script)
    with pytest.raises(LLMGateError) as info:
        gate.completion(f"mistral/{MODEL}", USER)
    ours, theirs = info.value, _sdk_error(sdk)
    assert type(ours) is type(theirs)
    assert str(ours) == str(theirs)
    for name in ("status_code", "request_id", "retry_after", "retryable"):
        assert getattr(ours, name, None) == getattr(theirs, name, None)


def test_an_sdk_without_the_internals_is_called_through_complete(
    gate: LLMGate, sdk: Mistral, fake: MistralFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmgate.providers.mistral.provider as mistral_provider

    assert mistral_provider._WIRE, "the installed mistralai has every internal the fast path uses"
    monkeypatch.setattr(mistral_provider, "_WIRE", False)
    monkeypatch.setattr(
        mistral_provider, "_chat_request", lambda *a: pytest.fail("the fast path was taken")
    )
    fake.push(Reply(text="one"), Reply(text="two"))
    response = gate.completion(f"mistral/{MODEL}", USER, max_tokens=5)
    sdk.chat.complete(model=MODEL, messages=USER, max_tokens=5)  # type: ignore[arg-type]
    assert response.text == "one"
    ours, theirs = fake.requests
    assert ours.json == theirs.json
