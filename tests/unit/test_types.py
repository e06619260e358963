"""The public types: dict inputs (OpenAI-shaped too), validation, secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from llmgate import LLMGate
from llmgate.exceptions import InvalidRequestError
from llmgate.types import (
    CompletionRequest,
    ImagePart,
    Message,
    TextPart,
    TokenUsage,
    ToolCall,
    ToolDefinition,
)


def test_openai_shaped_message() -> None:
    message = Message.model_validate(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
            ],
        }
    )
    assert message.tool_calls == [ToolCall(id="c1", name="f", arguments={"a": 1})]


def test_image_url_parts() -> None:
    message = Message.model_validate(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://x.test/a.png", "detail": "low"},
                },
                {"type": "image_url", "image_url": "https://x.test/b.png"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
            ],
        }
    )
    assert message.text == "look"
    images = message.images
    assert images[0].image_url is not None and images[0].image_url.detail == "low"
    assert images[1].image_url is not None and images[1].image_url.url == "https://x.test/b.png"
    assert images[2].type == "image_bytes"
    assert images[2].image_bytes is not None
    assert (images[2].image_bytes.mime_type, images[2].image_bytes.data) == ("image/jpeg", "AAAA")


def test_developer_role_is_system() -> None:
    assert Message.model_validate({"role": "developer", "content": "x"}).role == "system"


def test_tool_message_needs_id() -> None:
    with pytest.raises(ValidationError, match="tool_call_id"):
        Message(role="tool", content="x")


def test_bad_arguments_json() -> None:
    with pytest.raises(ValidationError, match="not valid JSON"):
        ToolCall.model_validate({"id": "1", "function": {"name": "f", "arguments": "{oops"}})


def test_unknown_part_type() -> None:
    with pytest.raises(ValidationError, match="unsupported content part"):
        Message.model_validate({"role": "user", "content": [{"type": "video", "url": "x"}]})


def test_tool_definition_shapes() -> None:
    flat = ToolDefinition.model_validate(
        {"name": "f", "description": "d", "parameters": {"type": "object"}}
    )
    anthropic_like = ToolDefinition.model_validate(
        {"name": "f", "input_schema": {"type": "object"}}
    )
    assert flat.function.name == anthropic_like.function.name == "f"


def test_usage_addition() -> None:
    total = TokenUsage(prompt_tokens=1, completion_tokens=2) + TokenUsage(
        prompt_tokens=3, completion_tokens=4, cached_prompt_tokens=2
    )
    assert (total.prompt_tokens, total.completion_tokens, total.total_tokens) == (4, 6, 10)
    assert total.cached_prompt_tokens == 2 and total.reasoning_tokens is None


def test_api_key_is_secret() -> None:
    request = CompletionRequest(
        model="m", messages=[Message(role="user", content="x")], api_key="sk-SECRET"
    )
    assert "sk-SECRET" not in repr(request)
    assert "sk-SECRET" not in str(request.model_dump())
    assert request.api_key_value == "sk-SECRET"


def test_unknown_request_fields_become_extra_kwargs() -> None:
    request = CompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": 7, "stop": "END"}
    )
    assert request.extra_kwargs == {"seed": 7}
    assert request.stop == ["END"]


def test_malformed_message_is_clear_error() -> None:
    gate = LLMGate()
    with pytest.raises(InvalidRequestError, match=r"messages\[1\]"):
        gate.completion(
            "mock/x", [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]
        )
    with pytest.raises(InvalidRequestError, match="list of messages"):
        gate.completion("mock/x", "hello")
    with pytest.raises(InvalidRequestError, match="empty"):
        gate.completion("mock/x", [])


def test_image_helpers() -> None:
    part = ImagePart.from_bytes(b"\x89PNG", "image/png")
    assert part.data_uri().startswith("data:image/png;base64,")
    assert Message(role="user", content=[TextPart(text="a"), part]).images == [part]
