"""Anthropic request translation: CompletionRequest -> messages.create keyword arguments."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from pydantic import BaseModel

from llmgate.exceptions import InvalidRequestError
from llmgate.providers.anthropic._convert import (
    DEFAULT_MAX_TOKENS,
    call_kwargs,
    tool_choice_param,
    translate_messages,
)
from llmgate.providers.anthropic.provider import ACCEPTED_KWARGS
from llmgate.types import CompletionRequest, ImagePart, Message, TextPart, ToolCall


def _request(messages: list[Any], **fields: Any) -> CompletionRequest:
    return CompletionRequest(model="anthropic/claude-x", messages=messages, **fields)


def _kwargs(request: CompletionRequest, *, strict: bool = False, **options: Any) -> dict[str, Any]:
    return call_kwargs(
        request,
        "claude-x",
        accepted=ACCEPTED_KWARGS,
        transform_schema=lambda schema: {"transformed": True, **schema},
        strict=strict,
        **options,
    )


USER = [{"role": "user", "content": "Hi"}]


def test_minimal_call_defaults_max_tokens() -> None:
    kwargs = _kwargs(_request(USER))
    assert kwargs == {
        "model": "claude-x",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    assert DEFAULT_MAX_TOKENS == 4096


def test_max_tokens_default_option_and_explicit_zero() -> None:
    assert _kwargs(_request(USER), default_max_tokens=900)["max_tokens"] == 900
    assert _kwargs(_request(USER, max_tokens=0))["max_tokens"] == 0


def test_stop_and_timeout() -> None:
    kwargs = _kwargs(_request(USER, stop="END", timeout=2.5))
    assert kwargs["stop_sequences"] == ["END"]
    assert kwargs["timeout"] == 2.5


def test_system_messages_are_hoisted() -> None:
    one, messages = translate_messages([Message(role="system", content="Be brief."), *_msgs(USER)])
    assert one == "Be brief."
    assert messages == [{"role": "user", "content": "Hi"}]
    many, _ = translate_messages(
        [
            Message(role="system", content="A."),
            *_msgs(USER),
            Message(role="system", content="B."),
        ]
    )
    assert many == [{"type": "text", "text": "A."}, {"type": "text", "text": "B."}]


def _msgs(raw: list[Any]) -> list[Message]:
    return [Message.model_validate(m) for m in raw]


def test_consecutive_tool_results_share_one_user_turn() -> None:
    history = _msgs(
        [
            {"role": "user", "content": "Weather and time?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "t1", "name": "weather", "arguments": {"city": "Paris"}},
                    {"id": "t2", "name": "time", "arguments": {}},
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "18C"},
            {"role": "tool", "tool_call_id": "t2", "content": "09:00"},
            {"role": "user", "content": "Thanks"},
        ]
    )
    _, messages = translate_messages(history)
    assert messages[1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "t2", "name": "time", "input": {}},
        ],
    }
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "t2", "content": "09:00"},
        ],
    }
    assert messages[3] == {"role": "user", "content": "Thanks"}


def test_tool_result_with_an_image_keeps_blocks() -> None:
    result = Message(
        role="tool",
        tool_call_id="t1",
        content=[TextPart(text="chart:"), ImagePart.from_bytes(b"\x89PNG", "image/png")],
    )
    _, messages = translate_messages([*_msgs(USER), result])
    block = messages[1]["content"][0]
    assert block["content"][0] == {"type": "text", "text": "chart:"}
    assert block["content"][1]["source"]["type"] == "base64"


def test_images_by_url_bytes_and_data_uri() -> None:
    message = Message.model_validate(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look"},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
            ],
        }
    )
    _, messages = translate_messages([message])
    assert messages[0]["content"] == [
        {"type": "text", "text": "Look"},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"},
        },
    ]


def test_trailing_assistant_is_a_prefill_without_trailing_space() -> None:
    _, messages = translate_messages(
        _msgs([*USER, {"role": "assistant", "content": "The answer is "}])
    )
    assert messages[-1] == {"role": "assistant", "content": "The answer is"}


def test_thinking_blocks_go_back_first_and_unchanged() -> None:
    blocks = [
        {"type": "thinking", "thinking": "Hmm.", "signature": "sig-A"},
        {"type": "redacted_thinking", "data": "opaque"},
    ]
    assistant = Message(
        role="assistant",
        content="42",
        reasoning="Hmm.",
        tool_calls=[ToolCall(id="t1", name="calc", arguments={"x": 6})],
        provider_details={"anthropic": {"thinking_blocks": blocks}},
    )
    _, messages = translate_messages([*_msgs(USER), assistant])
    assert messages[1]["content"] == [
        *blocks,
        {"type": "text", "text": "42"},
        {"type": "tool_use", "id": "t1", "name": "calc", "input": {"x": 6}},
    ]


def test_reasoning_without_a_signature_is_not_sent() -> None:
    assistant = Message(role="assistant", content="42", reasoning="from another vendor")
    _, messages = translate_messages([*_msgs(USER), assistant, *_msgs(USER)])
    assert messages[1] == {"role": "assistant", "content": "42"}


def test_tools_and_strict_flag() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather now",
                "parameters": {"properties": {"city": {"type": "string"}}},
                "strict": True,
            },
        }
    ]
    kwargs = _kwargs(_request(USER, tools=tools))
    assert kwargs["tools"] == [
        {
            "name": "weather",
            "description": "Weather now",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": True,
        }
    ]
    assert "tool_choice" not in kwargs


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ("weather", None, {"type": "tool", "name": "weather"}),
        ({"type": "function", "function": {"name": "w"}}, None, {"type": "tool", "name": "w"}),
        ({"type": "any"}, None, {"type": "any"}),
        (None, None, None),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        ("auto", True, {"type": "auto"}),
    ],
)
def test_tool_choice(choice: Any, parallel: bool | None, expected: Any) -> None:
    assert tool_choice_param(choice, parallel) == expected


def test_bad_tool_choice_is_refused() -> None:
    with pytest.raises(InvalidRequestError):
        tool_choice_param({"type": "bogus"}, None)
    with pytest.raises(InvalidRequestError):
        tool_choice_param({"type": "function", "function": {}}, None)


class Point(BaseModel):
    x: int
    y: int


def test_structured_output_uses_output_config() -> None:
    kwargs = _kwargs(_request(USER, response_format=Point, output_config={"effort": "low"}))
    config = kwargs["output_config"]
    assert config["effort"] == "low"
    assert config["format"]["type"] == "json_schema"
    schema = config["format"]["schema"]
    assert schema["transformed"] is True
    assert set(schema["properties"]) == {"x", "y"}


def test_sampling_parameters_are_dropped_with_a_warning() -> None:
    request = _request(USER, temperature=0.2, top_p=0.9, top_k=5)
    with pytest.warns(UserWarning, match="'temperature', 'top_p', 'top_k'") as caught:
        kwargs = _kwargs(request)
    assert len(caught) == 1
    assert not {"temperature", "top_p", "top_k"} & set(kwargs)


def test_sampling_parameters_are_refused_when_strict() -> None:
    with pytest.raises(InvalidRequestError, match="'temperature'"):
        _kwargs(_request(USER, temperature=0.2), strict=True)
    with pytest.raises(InvalidRequestError, match="'seed'"):
        _kwargs(_request(USER, seed=1), strict=True)


def test_sdk_keywords_pass_through_and_user_becomes_metadata() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kwargs = _kwargs(
            _request(
                USER,
                thinking={"type": "adaptive"},
                extra_headers={"x-trace": "1"},
                user="user-7",
                metadata={"tag": "a"},
            )
        )
    assert kwargs["thinking"] == {"type": "adaptive"}
    assert kwargs["extra_headers"] == {"x-trace": "1"}
    assert kwargs["metadata"] == {"user_id": "user-7", "tag": "a"}


def test_accepted_keywords_follow_the_installed_sdk() -> None:
    assert {"thinking", "metadata", "extra_body", "service_tier"} <= ACCEPTED_KWARGS
    assert not {"temperature", "top_p", "top_k", "self", "stream"} & ACCEPTED_KWARGS
