"""Cohere request and result translation: the pure functions of ``providers/cohere/_convert``."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from pydantic import BaseModel

from llmgate.exceptions import (
    InvalidRequestError,
    ProviderConnectionError,
    RateLimitError,
    ServerError,
)
from llmgate.providers.cohere._convert import (
    StreamTranslator,
    chat_kwargs,
    embed_input_type,
    embed_kwargs,
    finish_reason,
    iter_sse,
    parse_tool_choice,
    response_format_param,
    stream_error_from,
    to_cohere_messages,
)
from llmgate.types import (
    CompletionRequest,
    EmbeddingRequest,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME = {"name": "get_time", "parameters": {"type": "object", "properties": {}}}
USER = [{"role": "user", "content": "Hi"}]


def request(**fields: Any) -> CompletionRequest:
    data: dict[str, Any] = {"model": "cohere/command-a-03-2025", "messages": USER, **fields}
    return CompletionRequest.model_validate(data)


def embedding_request(**fields: Any) -> EmbeddingRequest:
    return EmbeddingRequest(model="cohere/embed-v4.0", input=["a", "b"], **fields)


# --------------------------------------------------------------------------- messages


def test_every_role_is_translated() -> None:
    messages = [
        Message(role="system", content="Be brief."),
        Message(role="user", content="Weather in Paris?"),
        Message(
            role="assistant",
            tool_calls=[ToolCall(id="c1", name="get_weather", arguments={"city": "Paris"})],
            provider_details={"cohere": {"tool_plan": "I will look it up."}},
        ),
        Message(role="tool", tool_call_id="c1", content="18C"),
        Message(role="assistant", content="18C in Paris."),
    ]
    assert to_cohere_messages(messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
            "tool_plan": "I will look it up.",
        },
        {"role": "tool", "tool_call_id": "c1", "content": "18C"},
        {"role": "assistant", "content": "18C in Paris."},
    ]


def test_user_images_by_url_and_bytes() -> None:
    message = Message(
        role="user",
        content=[
            TextPart(text="Compare"),
            ImagePart.from_url("https://example.test/a.png", detail="low"),
            ImagePart.from_bytes(b"\x89PNG", "image/png"),
        ],
    )
    [sent] = to_cohere_messages([message])
    assert sent["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "https://example.test/a.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
    ]


@pytest.mark.parametrize("role", ["system", "assistant"])
def test_images_outside_user_turns_are_refused(role: str) -> None:
    message = Message(role=role, content=[ImagePart.from_url("https://example.test/a.png")])
    with pytest.raises(InvalidRequestError, match=f"not in {role} messages"):
        to_cohere_messages([message])


def test_reasoning_and_citations_go_back_with_the_assistant_turn() -> None:
    citation = {"start": 0, "end": 2, "text": "42", "sources": []}
    message = Message(
        role="assistant",
        content="42",
        reasoning="Six times seven.",
        provider_details={"cohere": {"citations": [citation]}, "other": {"x": 1}},
    )
    assert to_cohere_messages([message]) == [
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Six times seven."},
                {"type": "text", "text": "42"},
            ],
            "citations": [citation],
        }
    ]


# --------------------------------------------------------------------------- tools


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, (None, None)),
        ("auto", ("auto", None)),
        ("NONE", ("none", None)),
        ("required", ("required", None)),
        ("any", ("required", None)),
        ("get_time", ("named", "get_time")),
        ({"type": "function", "function": {"name": "get_time"}}, ("named", "get_time")),
        ({"name": "get_time"}, ("named", "get_time")),
        ({"type": "any"}, ("required", None)),
    ],
)
def test_parse_tool_choice(choice: Any, expected: tuple[str | None, str | None]) -> None:
    assert parse_tool_choice(choice) == expected


def test_unknown_tool_choice_dict_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="not understood"):
        parse_tool_choice({"type": "sometimes"})


def test_named_choice_restricts_tools_and_requires_a_call() -> None:
    kwargs = chat_kwargs(request(tools=[WEATHER, TIME], tool_choice="get_time"), "m")
    assert kwargs["tool_choice"] == "REQUIRED"
    assert [t["function"]["name"] for t in kwargs["tools"]] == ["get_time"]


def test_auto_choice_sends_no_tool_choice() -> None:
    kwargs = chat_kwargs(request(tools=[WEATHER, TIME], tool_choice="auto"), "m")
    assert "tool_choice" not in kwargs
    assert kwargs["tools"][0] == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": WEATHER["function"]["parameters"],  # type: ignore[index]
            "description": "Weather",
        },
    }


def test_named_choice_of_an_unknown_tool_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="not among the tools"):
        chat_kwargs(request(tools=[WEATHER], tool_choice="get_time"), "m")


def test_parallel_tool_calls_false_is_dropped_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="parallel_tool_calls"):
        kwargs = chat_kwargs(request(tools=[WEATHER], parallel_tool_calls=False), "m")
    assert "parallel_tool_calls" not in kwargs


def test_parallel_tool_calls_false_is_refused_in_strict_mode() -> None:
    with pytest.raises(InvalidRequestError, match="parallel_tool_calls"):
        chat_kwargs(request(tools=[WEATHER], parallel_tool_calls=False), "m", strict=True)


def test_parallel_tool_calls_true_is_cohere_default() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chat_kwargs(request(tools=[WEATHER], parallel_tool_calls=True), "m")


# --------------------------------------------------------------------------- parameters


def test_sampling_parameters_use_cohere_names() -> None:
    kwargs = chat_kwargs(
        request(max_tokens=5, temperature=0.5, top_p=0.9, stop=["END"], timeout=2.5), "m"
    )
    assert kwargs["model"] == "m"
    assert (kwargs["max_tokens"], kwargs["temperature"], kwargs["p"]) == (5, 0.5, 0.9)
    assert kwargs["stop_sequences"] == ["END"]
    assert kwargs["request_options"] == {"max_retries": 0, "timeout": 2.5}
    assert "top_p" not in kwargs and "stop" not in kwargs


def test_extra_kwargs_pass_through_and_retries_stay_off() -> None:
    extra = {
        "seed": 3,
        "thinking": {"type": "enabled", "token_budget": 100},
        "request_options": {"max_retries": 5, "additional_headers": {"x-a": "1"}},
    }
    kwargs = chat_kwargs(request(extra_kwargs=extra), "m")
    assert kwargs["seed"] == 3
    assert kwargs["thinking"] == {"type": "enabled", "token_budget": 100}
    assert kwargs["request_options"] == {"max_retries": 0, "additional_headers": {"x-a": "1"}}


class Address(BaseModel):
    city: str


class Person(BaseModel):
    name: str
    address: Address


class Node(BaseModel):
    value: int
    children: list[Node] = []


def test_response_format_model_is_sent_inlined() -> None:
    param = response_format_param(Person)
    assert param["type"] == "json_object"
    schema = param["json_schema"]
    assert "$defs" not in schema and "$ref" not in str(schema)
    assert schema["properties"]["address"]["properties"]["city"]["type"] == "string"


def test_recursive_response_format_keeps_its_refs() -> None:
    schema = response_format_param(Node)["json_schema"]
    assert "$ref" in str(schema)


def test_plain_json_mode_sends_no_schema() -> None:
    assert response_format_param({"type": "json_object"}) == {"type": "json_object"}


# --------------------------------------------------------------------------- embeddings


def test_embed_defaults() -> None:
    kwargs = embed_kwargs(embedding_request(), "embed-v4.0")
    assert kwargs == {
        "model": "embed-v4.0",
        "texts": ["a", "b"],
        "input_type": "search_document",
        "embedding_types": ["float"],
        "request_options": {"max_retries": 0},
    }


def test_embed_parameters_on_the_wire_names() -> None:
    kwargs = embed_kwargs(
        embedding_request(
            input_type="search_query", dimensions=256, truncate="end", encoding_format="base64"
        ),
        "embed-v4.0",
    )
    assert kwargs["input_type"] == "search_query"
    assert kwargs["output_dimension"] == 256
    assert kwargs["truncate"] == "END"
    assert kwargs["embedding_types"] == ["base64"]


@pytest.mark.parametrize(
    ("input_type", "task_type", "expected"),
    [
        (None, None, "search_document"),
        ("query", None, "search_query"),
        ("document", "RETRIEVAL_QUERY", "search_document"),
        (None, "RETRIEVAL_QUERY", "search_query"),
        (None, "CLUSTERING", "clustering"),
        ("image", None, "image"),
        ("a_future_type", None, "a_future_type"),
    ],
)
def test_embed_input_type(input_type: str | None, task_type: str | None, expected: str) -> None:
    assert embed_input_type(input_type, task_type) == expected


def test_task_type_without_a_cohere_equivalent_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="SEMANTIC_SIMILARITY"):
        embed_input_type(None, "SEMANTIC_SIMILARITY")


def test_unknown_encoding_format_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="encoding_format"):
        embed_kwargs(embedding_request(encoding_format="float16"), "embed-v4.0")


@pytest.mark.parametrize("field", ["title", "user"])
def test_unsupported_embedding_parameters_warn_or_raise(field: str) -> None:
    with pytest.warns(UserWarning, match=field):
        kwargs = embed_kwargs(embedding_request(**{field: "x"}), "embed-v4.0")
    assert field not in kwargs
    with pytest.raises(InvalidRequestError, match=field):
        embed_kwargs(embedding_request(**{field: "x"}), "embed-v4.0", strict=True)


# --------------------------------------------------------------------------- results


@pytest.mark.parametrize(
    ("raw", "unified"),
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("ERROR", "error"),
        ("TIMEOUT", "error"),
        (None, None),
    ],
)
def test_finish_reasons(raw: str | None, unified: str | None) -> None:
    assert finish_reason(raw) == unified


@pytest.mark.parametrize(
    ("frame", "error_class", "status"),
    [
        ({"message": "slow down", "status": 429}, RateLimitError, 429),
        ({"error": {"message": "busy", "code": "503"}}, ServerError, 503),
        ({"error": {"message": "limit", "type": "rate_limit_exceeded"}}, RateLimitError, 429),
        ({"error": "boom"}, ServerError, None),
    ],
)
def test_stream_error_frames(frame: dict[str, Any], error_class: type, status: int | None) -> None:
    error = stream_error_from(frame, "command-a")
    assert type(error) is error_class
    assert error.status_code == status
    assert error.provider == "cohere" and error.model == "command-a"
    assert error.retryable


# --------------------------------------------------------------------------- streams


def test_server_sent_events_are_decoded() -> None:
    lines = [
        ": comment",
        "event: content-delta",
        'data: {"a":',
        "data:1}",
        "",
        "",
        "data: [DONE]",
        "",
        "event: message-end",
        'data: {"b": 2}',
    ]
    assert list(iter_sse(lines)) == [
        ("content-delta", '{"a":\n1}'),
        ("", "[DONE]"),
        ("message-end", '{"b": 2}'),
    ]


def feed_all(translator: StreamTranslator, frames: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    chunks = [translator.feed(event, json.dumps(data)) for event, data in frames]
    return [chunk for chunk in chunks if chunk is not None]


def test_tool_call_indexes_are_renumbered_from_zero() -> None:
    def start(index: int, name: str) -> tuple[str, dict[str, Any]]:
        call = {"id": f"id-{name}", "type": "function", "function": {"name": name}}
        return (
            "tool-call-start",
            {"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls": call}}},
        )

    def piece(index: int, text: str) -> tuple[str, dict[str, Any]]:
        message = {"tool_calls": {"function": {"arguments": text}}}
        return (
            "tool-call-delta",
            {"type": "tool-call-delta", "index": index, "delta": {"message": message}},
        )

    translator = StreamTranslator("m")
    chunks = feed_all(translator, [start(3, "a"), piece(3, "{}"), start(5, "b"), piece(5, "{")])
    deltas = [d for c in chunks for d in c.tool_call_deltas]
    assert [(d.index, d.id, d.name, d.arguments_delta) for d in deltas] == [
        (0, "id-a", "a", ""),
        (0, None, None, "{}"),
        (1, "id-b", "b", ""),
        (1, None, None, "{"),
    ]


def test_stream_end_without_message_end_raises() -> None:
    translator = StreamTranslator("m")
    assert translator.feed("", "[DONE]") is None
    with pytest.raises(ProviderConnectionError):
        translator.end()


@pytest.mark.parametrize(
    ("event", "data"),
    [
        ("error", {"message": "x"}),
        ("", {"message": "x", "status": 500}),
        ("message-start", {"type": "message-start", "error": "x"}),
        ("whatever", {"type": "error", "message": "x"}),
    ],
)
def test_error_frames_are_recognised(event: str, data: dict[str, Any]) -> None:
    with pytest.raises(ServerError):
        StreamTranslator("m").feed(event, json.dumps(data))


def test_event_name_stands_in_for_a_missing_type() -> None:
    frame = {"index": 0, "delta": {"message": {"content": {"text": "hi"}}}}
    chunk = StreamTranslator("m").feed("content-delta", json.dumps(frame))
    assert chunk is not None and chunk.delta == "hi"
