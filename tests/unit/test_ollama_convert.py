"""Ollama's pure translation: requests to chat/embed arguments, SDK results to llmgate types."""

from __future__ import annotations

import base64
import warnings
from typing import Any

import ollama
import pytest
from pydantic import BaseModel

from llmgate._streaming import accumulate
from llmgate.exceptions import InvalidRequestError
from llmgate.providers.ollama._convert import (
    OPTION_NAMES,
    StreamTranslator,
    chat_kwargs,
    embed_kwargs,
    finish_reason,
    messages_to_ollama,
    normalise_tool_choice,
    parse_truncate,
    response_from_chat,
    schema_losses,
    think_setting,
    tool_call_id,
    tools_to_ollama,
)
from llmgate.types import CompletionRequest, EmbeddingRequest, ImagePart, Message, TextPart

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {"name": "get_time", "parameters": {"type": "object", "properties": {}}}


def request(**kwargs: Any) -> CompletionRequest:
    data: dict[str, Any] = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "Hi"}]}
    data.update(kwargs)
    return CompletionRequest.model_validate(data)


# --------------------------------------------------------------------------- messages


def test_roles_text_reasoning_and_tool_names() -> None:
    messages = [
        Message(role="system", content="Be brief."),
        Message(role="user", content=[TextPart(text="Hi "), TextPart(text="there")]),
        Message.model_validate(
            {
                "role": "assistant",
                "content": None,
                "reasoning": "They want weather.",
                "tool_calls": [
                    {
                        "id": "call_x",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                    }
                ],
            }
        ),
        Message(role="tool", tool_call_id="call_x", content="21C"),
        Message(role="tool", tool_call_id="unknown", name="get_time", content="09:00"),
    ]
    assert messages_to_ollama(messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi there"},
        {
            "role": "assistant",
            "thinking": "They want weather.",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Rome"}}}],
        },
        {"role": "tool", "content": "21C", "tool_name": "get_weather"},
        {"role": "tool", "content": "09:00", "tool_name": "get_time"},
    ]


def test_images_go_as_bytes_and_urls_need_a_download() -> None:
    by_bytes = Message(role="user", content=[TextPart(text="What?"), ImagePart.from_bytes(PNG)])
    assert messages_to_ollama([by_bytes])[0]["images"] == [PNG]
    url = "https://img.test/cat.png"
    by_url = Message(role="user", content=[ImagePart.from_url(url)])
    assert messages_to_ollama([by_url], {url: b"downloaded"})[0]["images"] == [b"downloaded"]
    with pytest.raises(Exception, match="bytes"):
        messages_to_ollama([by_url])


def test_data_uri_is_sent_as_bytes() -> None:
    encoded = base64.b64encode(PNG).decode()
    message = Message.model_validate(
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}}
            ],
        }
    )
    assert messages_to_ollama([message])[0]["images"] == [PNG]


# --------------------------------------------------------------------------- tools


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("any", "required"),
        ("get_time", ("named", "get_time")),
        ({"type": "function", "function": {"name": "get_time"}}, ("named", "get_time")),
        ({"type": "tool", "name": "get_time"}, ("named", "get_time")),
        ({"type": "auto"}, "auto"),
    ],
)
def test_tool_choice_shapes(choice: Any, expected: Any) -> None:
    assert normalise_tool_choice(choice) == expected


def test_unknown_tool_choice_dict_is_rejected() -> None:
    with pytest.raises(InvalidRequestError):
        normalise_tool_choice({"type": "something"})


def test_tools_are_json_schema_dicts() -> None:
    tools = tools_to_ollama(request(tools=[WEATHER, TIME]), strict=False)
    assert tools == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER["function"]["parameters"],
            },
        },
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        },
    ]


def test_tool_choice_none_sends_no_tools() -> None:
    assert tools_to_ollama(request(tools=[WEATHER], tool_choice="none"), strict=False) is None


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"tool_choice": "required"}, "tool_choice='required'"),
        ({"tool_choice": "get_weather"}, "tool_choice='get_weather'"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls=False"),
    ],
)
def test_inexpressible_tool_options_warn_or_raise(extra: dict[str, Any], needle: str) -> None:
    with pytest.warns(UserWarning, match=needle):
        tools = tools_to_ollama(request(tools=[WEATHER], **extra), strict=False)
    assert tools is not None and len(tools) == 1
    with pytest.raises(InvalidRequestError, match=needle):
        tools_to_ollama(request(tools=[WEATHER], **extra), strict=True)


def test_auto_and_parallel_true_are_silent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tools_to_ollama(
            request(tools=[WEATHER], tool_choice="auto", parallel_tool_calls=True), strict=True
        )


class Address(BaseModel):
    city: str


class Order(BaseModel):
    address: Address
    note: str | None = None
    quantity: int = 1


def test_schema_losses_name_what_the_sdk_drops() -> None:
    assert schema_losses(WEATHER["function"]["parameters"]) == []
    assert schema_losses(Order.model_json_schema()) == [
        "address.$ref",
        "note.anyOf",
        "note.default",
        "quantity.default",
    ]
    assert schema_losses({"type": "object", "additionalProperties": False}) == [
        "additionalProperties"
    ]


def test_lossy_tool_schema_warns_or_raises() -> None:
    tool = {"name": "order", "parameters": Order.model_json_schema()}
    with pytest.warns(UserWarning, match=r"tool 'order': address\.\$ref"):
        tools = tools_to_ollama(request(tools=[tool]), strict=False)
    assert tools is not None and tools[0]["function"]["parameters"] == Order.model_json_schema()
    with pytest.raises(InvalidRequestError, match=r"note\.anyOf"):
        tools_to_ollama(request(tools=[tool]), strict=True)


def test_named_tool_choice_must_name_an_offered_tool() -> None:
    with pytest.raises(InvalidRequestError, match="not among the tools"):
        tools_to_ollama(request(tools=[WEATHER], tool_choice="nope"), strict=False)


# --------------------------------------------------------------------------- chat kwargs


def test_sampling_goes_into_options() -> None:
    kwargs = chat_kwargs(
        request(max_tokens=64, temperature=0.2, top_p=0.9, stop=["END"]), "llama3.2:3b"
    )
    assert kwargs["model"] == "llama3.2:3b"
    assert kwargs["options"] == {
        "num_predict": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
    }
    assert "tools" not in kwargs and "format" not in kwargs


def test_extra_kwargs_route_to_call_or_options() -> None:
    kwargs = chat_kwargs(
        request(keep_alive="5m", think="high", seed=7, options={"num_ctx": 4096, "top_k": 3}),
        "m",
    )
    assert kwargs["keep_alive"] == "5m"
    assert kwargs["think"] == "high"
    assert kwargs["options"] == {"seed": 7, "num_ctx": 4096, "top_k": 3}


def test_extra_options_override_unified_ones() -> None:
    kwargs = chat_kwargs(request(temperature=0.1, options={"temperature": 0.7}), "m")
    assert kwargs["options"] == {"temperature": 0.7}


def test_unknown_extra_kwarg_warns_or_raises() -> None:
    with pytest.warns(UserWarning, match="'frobnicate'"):
        kwargs = chat_kwargs(request(frobnicate=1), "m")
    assert "frobnicate" not in kwargs and "options" not in kwargs
    with pytest.raises(InvalidRequestError, match="'frobnicate'"):
        chat_kwargs(request(frobnicate=1), "m", strict=True)


def test_options_must_be_a_mapping() -> None:
    with pytest.raises(InvalidRequestError):
        chat_kwargs(request(options=[1, 2]), "m")


@pytest.mark.parametrize(
    ("effort", "think"),
    [
        ("none", False),
        ("minimal", "low"),
        ("low", "low"),
        ("high", "high"),
        ("max", "high"),
        (True, True),
    ],
)
def test_reasoning_effort_becomes_think(effort: Any, think: Any) -> None:
    assert think_setting(effort) == think
    assert chat_kwargs(request(reasoning_effort=effort), "m")["think"] == think


def test_explicit_think_wins_over_reasoning_effort() -> None:
    assert chat_kwargs(request(reasoning_effort="low", think=False), "m")["think"] is False


def test_bad_reasoning_effort() -> None:
    with pytest.raises(InvalidRequestError):
        think_setting("extreme")


class City(BaseModel):
    name: str
    population: int | None = None


def test_response_format_is_the_json_schema() -> None:
    kwargs = chat_kwargs(request(response_format=City), "m")
    assert kwargs["format"] == City.model_json_schema()
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    assert chat_kwargs(request(response_format=schema), "m")["format"] == schema


# --------------------------------------------------------------------------- embeddings


def embedding_request(**kwargs: Any) -> EmbeddingRequest:
    return EmbeddingRequest.model_validate(
        {"model": "nomic-embed-text", "input": ["a", "b"], **kwargs}
    )


def test_embed_kwargs() -> None:
    kwargs = embed_kwargs(
        embedding_request(
            truncate="false", dimensions=256, extra_kwargs={"keep_alive": 0, "num_ctx": 512}
        ),
        "nomic-embed-text",
    )
    assert kwargs == {
        "model": "nomic-embed-text",
        "input": ["a", "b"],
        "truncate": False,
        "dimensions": 256,
        "keep_alive": 0,
        "options": {"num_ctx": 512},
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("true", True),
        ("TRUE", True),
        ("END", True),
        ("false", False),
        ("NONE", False),
    ],
)
def test_truncate_values(value: str | None, expected: bool | None) -> None:
    assert parse_truncate(value) is expected


def test_truncate_start_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="truncate"):
        parse_truncate("START")


@pytest.mark.parametrize(
    "field",
    [
        {"task_type": "RETRIEVAL_QUERY"},
        {"title": "t"},
        {"input_type": "search_query"},
        {"user": "u"},
    ],
)
def test_embedding_fields_ollama_lacks(field: dict[str, str]) -> None:
    name = next(iter(field))
    with pytest.warns(UserWarning, match=name):
        kwargs = embed_kwargs(embedding_request(**field), "m")
    assert name not in kwargs
    with pytest.raises(InvalidRequestError):
        embed_kwargs(embedding_request(**field), "m", strict=True)


def test_float_or_base64_encoding_is_accepted_silently() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        embed_kwargs(embedding_request(encoding_format="base64"), "m", strict=True)
        embed_kwargs(embedding_request(encoding_format="float"), "m", strict=True)


def test_option_names_cover_the_sdk_options() -> None:
    assert set(ollama.Options.model_fields) <= OPTION_NAMES


# --------------------------------------------------------------------------- results


def chat_response(message: dict[str, Any], **extra: Any) -> ollama.ChatResponse:
    return ollama.ChatResponse.model_validate(
        {"model": "llama3.2:3b", "message": {"role": "assistant", **message}, **extra}
    )


def test_tool_call_ids_are_stable_and_distinct() -> None:
    first = tool_call_id(0, "get_weather", {"city": "Paris"})
    assert first == tool_call_id(0, "get_weather", {"city": "Paris"})
    assert first.startswith("call_")
    assert first != tool_call_id(1, "get_weather", {"city": "Paris"})
    assert first != tool_call_id(0, "get_weather", {"city": "Rome"})


@pytest.mark.parametrize(
    ("done_reason", "tools", "expected"),
    [
        ("stop", False, "stop"),
        ("stop", True, "tool_calls"),
        ("length", False, "length"),
        ("length", True, "length"),
        (None, False, "stop"),
        ("unload", False, "stop"),
    ],
)
def test_finish_reasons(done_reason: str | None, tools: bool, expected: str) -> None:
    assert finish_reason(done_reason, tools) == expected


def test_response_from_chat() -> None:
    result = chat_response(
        {
            "content": "",
            "thinking": "Hmm.",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        done=True,
        done_reason="stop",
        prompt_eval_count=20,
        eval_count=5,
        total_duration=123,
    )
    response = response_from_chat(result, model="fallback")
    assert response.model == "llama3.2:3b"
    assert response.text == ""
    assert response.message.content is None
    assert response.reasoning == "Hmm."
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls is not None
    assert response.tool_calls[0].id == tool_call_id(0, "get_weather", {"city": "Paris"})
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (20, 5)
    assert response.usage.total_tokens == 25
    assert response.provider_details["ollama"]["total_duration"] == 123
    assert response.raw is result


def test_stream_translator_matches_the_whole_response() -> None:
    calls = [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"function": {"name": "get_time", "arguments": {"city": "Oslo"}}},
    ]
    pieces = [
        chat_response({"content": "", "thinking": "Let me "}, done=False),
        chat_response({"content": "", "thinking": "think."}, done=False),
        chat_response({"content": "Checking"}, done=False),
        chat_response({"content": "", "tool_calls": calls[:1]}, done=False),
        chat_response({"content": "", "tool_calls": calls[1:]}, done=False),
        chat_response(
            {"content": ""}, done=True, done_reason="stop", prompt_eval_count=3, eval_count=4
        ),
    ]
    translator = StreamTranslator("llama3.2:3b")
    chunks = [c for c in (translator.feed(p) for p in pieces) if c is not None]
    assert translator.done
    assert len(chunks) == 6
    assert [d.index for c in chunks for d in c.tool_call_deltas or []] == [0, 1]
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].finish_reason == "tool_calls"
    whole = response_from_chat(
        chat_response(
            {"content": "Checking", "thinking": "Let me think.", "tool_calls": calls},
            done=True,
            done_reason="stop",
            prompt_eval_count=3,
            eval_count=4,
        ),
        model="llama3.2:3b",
    )
    streamed = accumulate(chunks)
    assert streamed.tool_calls == whole.tool_calls
    assert (streamed.text, streamed.reasoning, streamed.finish_reason, streamed.usage) == (
        whole.text,
        whole.reasoning,
        whole.finish_reason,
        whole.usage,
    )


def test_empty_pieces_make_no_chunk() -> None:
    translator = StreamTranslator("m")
    assert translator.feed(chat_response({"content": ""}, done=False)) is None
    assert not translator.done
