"""Structured output edge cases: schema forms, fenced answers, the strict and Gemini dialects."""

from __future__ import annotations

from enum import Enum
from typing import Any

import pytest
from pydantic import BaseModel

import llmgate
from llmgate._structured import (
    StreamParser,
    gemini_schema,
    inline_refs,
    json_schema,
    schema_name,
    strict_or_plain,
    strict_schema,
)
from llmgate.exceptions import InvalidRequestError, StructuredOutputError
from llmgate.testing import MockReply, scripted
from llmgate.types import StreamChunk

USER = [{"role": "user", "content": "a city please"}]
CITY_SCHEMA = {
    "title": "City",
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
}


class Colour(str, Enum):
    red = "red"
    blue = "blue"


class City(BaseModel):
    name: str


class Paint(BaseModel):
    colour: Colour | None = None
    shade: int = 3
    code: Any = None


def test_a_fenced_json_answer_is_parsed() -> None:
    with scripted('```json\n{"name": "Oslo"}\n```'):
        response = llmgate.completion("mock/a", USER, response_format=CITY_SCHEMA)
    assert response.parsed == {"name": "Oslo"}


def test_a_fence_without_a_closing_line_is_still_parsed() -> None:
    with scripted('```\n{"name": "Rome"}'):
        response = llmgate.completion("mock/a", USER, response_format=CITY_SCHEMA)
    assert response.parsed == {"name": "Rome"}


def test_openai_style_response_format_dict_is_understood() -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "City", "schema": CITY_SCHEMA},
    }
    assert json_schema(response_format) == CITY_SCHEMA
    with scripted('{"name": "Bern"}'):
        response = llmgate.completion("mock/a", USER, response_format=response_format)
    assert response.parsed == {"name": "Bern"}


def test_not_json_for_a_schema_dict_is_a_structured_output_error() -> None:
    with scripted("Sorry, I cannot do JSON today."), pytest.raises(StructuredOutputError) as info:
        llmgate.completion("mock/a", USER, response_format=CITY_SCHEMA)
    assert "not valid JSON" in str(info.value)
    assert info.value.raw_text == "Sorry, I cannot do JSON today."
    assert info.value.errors and isinstance(info.value.errors[0], str)


@pytest.mark.parametrize("bad", [str, "a string", 42, ["list"]])
def test_response_format_of_the_wrong_kind_is_refused_before_sending(bad: Any) -> None:
    with scripted() as script, pytest.raises(InvalidRequestError, match="response_format must be"):
        llmgate.completion("mock/a", USER, response_format=bad)
    assert script.requests == []
    with pytest.raises(InvalidRequestError, match="response_format must be"):
        schema_name(bad)


def test_schema_names() -> None:
    assert schema_name(Paint) == "Paint"
    assert schema_name(CITY_SCHEMA) == "City"
    assert schema_name({"type": "object"}) == "response"


def test_unknown_reference_is_refused() -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}}
    with pytest.raises(InvalidRequestError, match="unknown definition '#/\\$defs/Missing'"):
        inline_refs(schema)
    with pytest.raises(InvalidRequestError, match="unknown definition"):
        gemini_schema(schema)


def test_strict_dialect_makes_optional_fields_nullable_in_every_form() -> None:
    schema = strict_schema(Paint.model_json_schema())
    properties = schema["properties"]
    assert schema["required"] == ["colour", "shade", "code"]
    assert schema["additionalProperties"] is False
    # an optional enum reference already allows null (anyOf with null): left alone
    assert {"type": "null"} in properties["colour"]["anyOf"]
    # a field with a real default stays as it is (the model must give a value)
    assert properties["shade"]["type"] == "integer"
    # a field without any type gets an explicit null option
    assert properties["code"] == {"anyOf": [{"title": "Code"}, {"type": "null"}]}


@pytest.mark.parametrize(
    ("prop", "nullable"),
    [
        (
            {"type": "string", "enum": ["a", "b"]},
            {"type": ["string", "null"], "enum": ["a", "b", None]},
        ),
        ({"type": "null"}, {"type": "null"}),
        ({"type": ["string", "integer"]}, {"type": ["string", "integer", "null"]}),
        ({"type": ["string", "null"]}, {"type": ["string", "null"]}),
        (
            {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
        ),
        (
            {"$ref": "#/$defs/X", "type": "object"},
            {
                "anyOf": [
                    {
                        "$ref": "#/$defs/X",
                        "type": "object",
                        "properties": {},
                        "required": [],
                        "additionalProperties": False,
                    },
                    {"type": "null"},
                ]
            },
        ),
    ],
)
def test_strict_dialect_nullable_forms(prop: dict[str, Any], nullable: dict[str, Any]) -> None:
    schema = strict_schema({"type": "object", "properties": {"p": prop}, "$defs": {"X": {}}})
    assert schema["properties"]["p"] == nullable


def test_open_maps_keep_the_plain_schema_and_turn_strict_off() -> None:
    schema = {
        "type": "object",
        "properties": {"scores": {"type": "object", "additionalProperties": {"type": "integer"}}},
    }
    assert strict_or_plain(schema) == (schema, False)
    nested = {"type": "object", "properties": {"rows": {"type": "array", "items": [schema]}}}
    assert strict_or_plain(nested)[1] is False
    closed, strict = strict_or_plain(CITY_SCHEMA)
    assert strict is True and closed["additionalProperties"] is False


def test_gemini_dialect_turns_one_of_into_any_of_and_drops_unknown_keys() -> None:
    schema = {
        "type": "object",
        "properties": {
            "pet": {"oneOf": [{"type": "string"}, {"type": "integer"}], "examples": [1]}
        },
        "$schema": "https://json-schema.org/draft/2020-12/schema",
    }
    assert gemini_schema(schema) == {
        "type": "object",
        "properties": {"pet": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
    }


def test_stream_parser_keeps_the_last_good_partial_on_garbage() -> None:
    parser = StreamParser(CITY_SCHEMA)
    first = parser.feed(StreamChunk(delta='{"name": "Pa'))
    assert first.parsed == {}
    second = parser.feed(StreamChunk(delta='ris", '))
    assert second.parsed == {"name": "Paris"}
    third = parser.feed(StreamChunk(delta="]]] not json"))
    assert third.parsed == {"name": "Paris"}
    empty = StreamParser(CITY_SCHEMA).feed(StreamChunk(delta=""))
    assert empty.parsed is None


def test_structured_stream_restart_discards_the_partial_answer() -> None:
    parser = StreamParser(CITY_SCHEMA)
    parser.feed(StreamChunk(delta='{"name": "Wr'))
    restarted = parser.feed(StreamChunk(delta='{"name": "Kyiv"', restarted=True))
    assert restarted.parsed == {"name": "Kyiv"}  # "Wr" from the cut attempt is gone
    final = parser.feed(StreamChunk(delta="}", finish_reason="stop"))
    assert final.parsed == {"name": "Kyiv"}


def test_structured_stream_that_fails_validation_raises_at_the_end() -> None:
    with scripted(MockReply(text='{"city": 1}')):
        stream = llmgate.completion("mock/a", USER, stream=True, response_format=City)
        with pytest.raises(StructuredOutputError):
            list(stream)
