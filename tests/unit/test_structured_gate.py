"""Structured output through the gate: parsing, re-asking with the errors, usage of every try."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from llmgate import LLMGate
from llmgate.exceptions import InvalidRequestError, StructuredOutputError
from llmgate.testing import MockReply, scripted
from llmgate.types import TokenUsage

USER = [{"role": "user", "content": "Who?"}]


class Person(BaseModel):
    name: str
    age: int


def usage(n: int) -> TokenUsage:
    return TokenUsage(prompt_tokens=n, completion_tokens=n)


def test_reask_sends_errors_and_adds_usage() -> None:
    replies = [
        MockReply(text='{"name": "Ada"}', usage=usage(1)),
        MockReply(text='{"name": "Ada", "age": 36}', usage=usage(2)),
    ]
    with scripted(*replies) as script:
        response = LLMGate().completion(
            "mock/m", USER, response_format=Person, max_validation_retries=1
        )
    assert response.parsed == Person(name="Ada", age=36)
    assert response.usage.total_tokens == 6
    assert response.attempts == 2
    second = script.requests[1]
    assert [m.role for m in second.messages] == ["user", "assistant", "user"]  # type: ignore[union-attr]
    assert "age" in second.messages[-1].text  # type: ignore[union-attr]


def test_no_reask_by_default() -> None:
    with (
        scripted(MockReply(text="not json")) as script,
        pytest.raises(StructuredOutputError) as info,
    ):
        LLMGate().completion("mock/m", USER, response_format=Person)
    assert len(script.requests) == 1
    assert info.value.raw_text == "not json"


def test_all_reasks_fail_reports_total_usage() -> None:
    bad = [MockReply(text="{}", usage=usage(1)) for _ in range(3)]
    with scripted(*bad), pytest.raises(StructuredOutputError) as info:
        LLMGate().completion("mock/m", USER, response_format=Person, max_validation_retries=2)
    assert info.value.usage.total_tokens == 6
    assert info.value.attempts == 3


async def test_async_reask() -> None:
    with scripted(MockReply(text="{}"), MockReply(text='{"name": "B", "age": 1}')):
        person = await LLMGate().aparse(
            "mock/m", USER, response_format=Person, max_validation_retries=1
        )
    assert person == Person(name="B", age=1)


def test_tool_call_leaves_parsed_empty() -> None:
    tool = {"name": "lookup", "parameters": {"type": "object", "properties": {}}}
    with scripted(MockReply(tool_calls=[{"id": "c", "name": "lookup", "arguments": {}}])):
        response = LLMGate().completion("mock/m", USER, response_format=Person, tools=[tool])
    assert response.parsed is None and response.tool_calls


def test_bad_response_format_is_rejected_before_sending() -> None:
    with scripted() as script, pytest.raises(InvalidRequestError, match="response_format"):
        LLMGate().completion("mock/m", USER, response_format=42)
    assert script.requests == []


def test_partials_cost_stays_linear() -> None:
    """Partial parses are refreshed geometrically: a long object is parsed O(log n) times."""
    from llmgate._structured import StreamParser
    from llmgate.types import StreamChunk

    parser = StreamParser({"type": "object"})
    body = '{"items": [' + '{"id": 1}, ' * 20000 + '{"id": 2}]}'
    for i in range(0, len(body), 20):
        chunk = parser.feed(StreamChunk(delta=body[i : i + 20]))
    assert isinstance(chunk.parsed, dict)
    assert parser.parses < 300  # ~11,000 chunks, so not one full parse per chunk
    final = parser.feed(StreamChunk(finish_reason="stop"))
    assert len(final.parsed["items"]) == 20001


def test_strict_dialect() -> None:
    from llmgate._structured import json_schema, strict_or_plain

    class Inner(BaseModel):
        x: int
        note: str | None = None
        size: int = 3

    class Outer(BaseModel):
        inner: Inner
        items: list[Inner]

    schema, strict = strict_or_plain(json_schema(Outer))
    assert strict
    inner = schema["$defs"]["Inner"]
    assert inner["additionalProperties"] is False
    assert inner["required"] == ["x", "note", "size"]
    assert {"type": "null"} in inner["properties"]["note"]["anyOf"]
    assert inner["properties"]["size"]["type"] == "integer"  # a real default stays non-null
    assert "default" not in inner["properties"]["size"]


def test_open_maps_are_sent_non_strict() -> None:
    from llmgate._structured import json_schema, strict_or_plain

    class Scores(BaseModel):
        by_name: dict[str, int]

    schema, strict = strict_or_plain(json_schema(Scores))
    assert not strict
    assert schema["properties"]["by_name"]["additionalProperties"] == {"type": "integer"}


def test_recursive_schema_cannot_be_inlined() -> None:
    from llmgate._structured import gemini_schema, json_schema

    class Node(BaseModel):
        children: list[Node]

    with pytest.raises(InvalidRequestError, match="recursive"):
        gemini_schema(json_schema(Node))


def test_gemini_schema_keeps_unions_and_tuples() -> None:
    from typing import Literal

    from pydantic import Field

    from llmgate._structured import gemini_schema, json_schema

    class Cat(BaseModel):
        kind: Literal["cat"]
        lives: int

    class Dog(BaseModel):
        kind: Literal["dog"]
        good: bool

    class Owner(BaseModel):
        pet: Cat | Dog = Field(discriminator="kind")
        point: tuple[int, int]

    schema = gemini_schema(json_schema(Owner))
    pet = schema["properties"]["pet"]
    assert "anyOf" in pet and {o["properties"]["kind"]["const"] for o in pet["anyOf"]} == {
        "cat",
        "dog",
    }
    assert "$ref" not in str(schema) and "oneOf" not in str(schema)
    assert len(schema["properties"]["point"]["prefixItems"]) == 2
