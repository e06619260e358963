"""Structured output: the vendor's native mode on the wire, a validated object back."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from llmgate import LLMGate
from llmgate.exceptions import StructuredOutputError
from tests.fakes.server import FakeVendor, Reply

from .helpers import USER
from .target import Target


class Address(BaseModel):
    city: str
    zip_code: str | None = None


class Person(BaseModel):
    name: str
    age: int
    tags: list[str]
    address: Address


PERSON_JSON = (
    '{"name": "Ada", "age": 36, "tags": ["math", "code"], '
    '"address": {"city": "London", "zip_code": null}}'
)


def test_parse_model(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text=PERSON_JSON))
    response = gate.completion(target.model, USER, response_format=Person)
    assert response.parsed == Person(
        name="Ada", age=36, tags=["math", "code"], address=Address(city="London")
    )
    schema = target.wire.response_schema(fake.last)
    assert schema is not None
    assert {"name", "age", "tags", "address"} <= set(schema["properties"])


def test_parse_function(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text=PERSON_JSON))
    person = gate.parse(target.model, USER, response_format=Person)
    assert isinstance(person, Person) and person.address.city == "London"


def test_json_schema_dict(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    schema = {
        "title": "Point",
        "type": "object",
        "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
        "required": ["x", "y"],
    }
    fake.push(Reply(text='{"x": 1, "y": 2}'))
    response = gate.completion(target.model, USER, response_format=schema)
    assert response.parsed == {"x": 1, "y": 2}
    sent = target.wire.response_schema(fake.last)
    assert sent is not None and set(sent["properties"]) == {"x", "y"}


def test_validation_failure_keeps_raw_text(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text='{"name": "Ada"}'))
    with pytest.raises(StructuredOutputError) as info:
        gate.completion(target.model, USER, response_format=Person)
    assert info.value.raw_text == '{"name": "Ada"}'
    assert info.value.errors


def test_streamed_partials(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text=PERSON_JSON, chunks=8))
    stream = gate.completion(target.model, USER, response_format=Person, stream=True)
    chunks = list(stream)
    partials = [c.parsed for c in chunks if c.delta]
    assert any(isinstance(p, dict) and p.get("name") == "Ada" for p in partials)
    assert isinstance(chunks[-1].parsed, Person) or isinstance(
        stream.final_response().parsed, Person
    )
    assert stream.final_response().parsed.age == 36


def test_reask_with_validation_errors(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(
        Reply(text='{"name": "Ada"}', prompt_tokens=10, completion_tokens=5),
        Reply(text=PERSON_JSON, prompt_tokens=20, completion_tokens=8),
    )
    response = gate.completion(target.model, USER, response_format=Person, max_validation_retries=1)
    assert isinstance(response.parsed, Person)
    assert len(fake.requests) == 2
    assert response.usage.prompt_tokens == 30 and response.usage.completion_tokens == 13
    assert response.attempts == 2
    turns = target.wire.turns(fake.last)
    assert [role for role, _ in turns] == ["user", "assistant", "user"]
    assert '"name": "Ada"' in turns[1][1]
    assert "age" in turns[2][1]


def test_tools_and_response_format_together(
    gate: LLMGate, fake: FakeVendor, target: Target
) -> None:
    from tests.fakes.server import FakeToolCall

    from .helpers import WEATHER_TOOL

    fake.push(Reply(tool_calls=[FakeToolCall("get_weather", {"city": "Paris"}, id="call_1")]))
    response = gate.completion(target.model, USER, response_format=Person, tools=[WEATHER_TOOL])
    assert response.tool_calls and response.parsed is None
    assert target.wire.tool_names(fake.last) == ["get_weather"]
