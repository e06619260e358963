"""Capabilities a model lacks are adapted by the gate before the request reaches its SDK.

A model with no native structured output gets the schema as an instruction and its answer
is still parsed and validated; a model with no ``parallel_tool_calls`` setting has it
dropped with a warning (refused under ``strict_params``). Driven through the real SDKs
against the loopback fakes.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from llmgate import LLMGate
from llmgate.exceptions import (
    DroppedParameterWarning,
    InvalidRequestError,
    StructuredOutputError,
)
from tests.fakes.openai import OpenAIFake, OpenAIWire
from tests.fakes.server import FakeServer, FakeToolCall, FakeVendor, Reply

USER = [{"role": "user", "content": "Pick a number"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
openai_wire = OpenAIWire()


class Pick(BaseModel):
    value: int


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(OpenAIFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[FakeVendor]:
    server.vendor.reset()
    yield server.vendor
    server.vendor.reset()


def gate_for(fake: FakeVendor, **kwargs: Any) -> LLMGate:
    options = {"openai": {"api_key": "sk-fake", "base_url": f"{fake.base_url}/v1"}}
    return LLMGate(max_retries=0, provider_options=options, **kwargs)


def test_model_without_json_schema_mode_gets_the_schema_as_an_instruction(
    fake: FakeVendor,
) -> None:
    fake.push(Reply(text='{"value": 7}'))
    with gate_for(fake) as gate:
        response = gate.completion(
            "openai/gpt-3.5-turbo",
            [{"role": "system", "content": "Be brief."}, *USER],
            response_format=Pick,
        )
    assert response.parsed == Pick(value=7)
    body = fake.requests[0].json
    assert "response_format" not in body
    system = openai_wire.system(fake.requests[0])
    assert system is not None
    assert system.startswith("Be brief.\n\n")
    assert '"value"' in system and "JSON Schema" in system
    assert openai_wire.turns(fake.requests[0]) == [("user", "Pick a number")]


def test_model_with_json_schema_mode_keeps_the_native_format(fake: FakeVendor) -> None:
    fake.push(Reply(text='{"value": 7}'))
    with gate_for(fake) as gate:
        response = gate.completion("openai/gpt-4o", USER, response_format=Pick)
    assert response.parsed == Pick(value=7)
    body = fake.requests[0].json
    assert body["response_format"]["type"] == "json_schema"
    assert openai_wire.system(fake.requests[0]) is None


def test_instructed_structured_output_streams_and_validates(fake: FakeVendor) -> None:
    fake.push(Reply(text='{"value": 3}', chunks=4))
    fake.push(Reply(text="not json"))
    with gate_for(fake) as gate:
        with gate.completion(
            "openai/gpt-3.5-turbo", USER, response_format={"type": "object"}, stream=True
        ) as stream:
            chunks = list(stream)
        assert chunks[-1].parsed == {"value": 3}
        with pytest.raises(StructuredOutputError):
            gate.completion("openai/gpt-3.5-turbo", USER, response_format=Pick)
    # the system instruction is a leading system message when the caller sent none
    first = fake.requests[0].json["messages"][0]
    assert first["role"] == "system" and "JSON Schema" in first["content"]


def test_instructed_structured_output_async(fake: FakeVendor) -> None:
    fake.push(Reply(text='{"value": 11}'))

    async def main() -> Any:
        async with gate_for(fake) as gate:
            return await gate.acompletion("openai/gpt-3.5-turbo", USER, response_format=Pick)

    assert asyncio.run(main()).parsed == Pick(value=11)
    assert "response_format" not in fake.requests[0].json


def test_parallel_tool_calls_dropped_for_a_model_without_it(fake: FakeVendor) -> None:
    fake.push(Reply(tool_calls=[FakeToolCall("get_weather", {"city": "Oslo"})]))
    with gate_for(fake) as gate:
        with pytest.warns(DroppedParameterWarning, match="parallel_tool_calls") as caught:
            response = gate.completion(
                "openai/o1-mini", USER, tools=[WEATHER], parallel_tool_calls=False
            )
    assert caught[0].filename == __file__
    assert response.tool_calls and response.tool_calls[0].name == "get_weather"
    body = fake.requests[0].json
    assert "parallel_tool_calls" not in body
    assert body["tools"][0]["function"]["name"] == "get_weather"


def test_parallel_tool_calls_kept_where_supported(fake: FakeVendor) -> None:
    fake.push(Reply(text="ok"))
    with gate_for(fake) as gate:
        gate.completion("openai/gpt-4o", USER, tools=[WEATHER], parallel_tool_calls=False)
    assert fake.requests[0].json["parallel_tool_calls"] is False


def test_strict_params_refuses_parallel_tool_calls_before_sending(fake: FakeVendor) -> None:
    with gate_for(fake, strict_params=True) as gate:
        with pytest.raises(InvalidRequestError, match="parallel_tool_calls"):
            gate.completion("openai/o1-mini", USER, tools=[WEATHER], parallel_tool_calls=True)
    assert fake.requests == []


@pytest.mark.skipif(
    sys.version_info < (3, 11) or importlib.util.find_spec("google.genai") is None,
    reason="google-genai 3.x needs Python 3.11 (the gemini extra installs nothing on 3.10)",
)
def test_gemma_gets_schema_and_system_text_in_its_first_user_turn() -> None:
    from tests.fakes.gemini import FAKE_KEY, GeminiFake, GeminiWire

    with FakeServer(GeminiFake()) as server:
        server.vendor.push(Reply(text='{"value": 5}'))
        options = {"gemini": {"api_key": FAKE_KEY, "base_url": server.vendor.base_url}}
        with LLMGate(max_retries=0, provider_options=options) as gate:
            response = gate.completion("gemini/gemma-3-27b-it", USER, response_format=Pick)
        request = server.vendor.requests[0]
    assert response.parsed == Pick(value=5)
    wire = GeminiWire()
    assert wire.system(request) is None
    generation = request.json.get("generationConfig") or {}
    assert not {"responseMimeType", "responseJsonSchema", "responseSchema"} & set(generation)
    (role, text), *_ = wire.turns(request)
    assert role == "user"
    assert "JSON Schema" in text and text.rstrip().endswith("Pick a number")
