"""The public types on odd input: OpenAI-shaped dicts, invalid turns, and the unvalidated fast
paths (``fast_request``, ``make_usage``, ``trusted``) agreeing with full validation."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from llmgate import LLMGate
from llmgate.exceptions import InvalidRequestError
from llmgate.testing import scripted
from llmgate.types import (
    CompletionRequest,
    ImagePart,
    Message,
    TextPart,
    TokenUsage,
    ToolCall,
    fast_request,
    make_usage,
    trusted,
)

USER = [{"role": "user", "content": "hi"}]

# --------------------------------------------------------------------------- messages


def test_openai_dict_shapes_are_normalised() -> None:
    developer = Message.model_validate({"role": "developer", "content": "rules"})
    assert developer.role == "system"
    function = Message.model_validate({"role": "function", "content": "42", "tool_call_id": "c1"})
    assert function.role == "tool"
    assistant = Message.model_validate(
        {
            "role": "assistant",
            "content": "done",
            "tool_calls": [],
            "reasoning_content": "thought about it",
            "refusal": None,
            "annotations": None,
        }
    )
    assert assistant.tool_calls is None and assistant.reasoning == "thought about it"


def test_content_parts_in_every_accepted_form() -> None:
    message = Message.model_validate(
        {
            "role": "user",
            "content": [
                "plain string",
                {"text": "no type"},
                {"type": "input_text", "text": " responses-style"},
                {"type": "image", "image_url": "https://example.test/a.png"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
            ],
        }
    )
    assert message.text == "plain stringno type responses-style"
    first, second = message.images
    assert first.image_url is not None and first.image_url.url == "https://example.test/a.png"
    assert second.image_bytes is not None and second.image_bytes.mime_type == "image/jpeg"
    assert second.data_uri() == "data:image/jpeg;base64,/9j/"


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (
            {"role": "user", "content": [{"type": "audio", "data": "x"}]},
            "unsupported content part type 'audio'",
        ),
        ({"role": "user", "content": [{"type": "image_url"}]}, "needs image_url"),
        ({"role": "user", "content": [{"type": "image_bytes"}]}, "needs image_bytes"),
        ({"role": "tool", "content": "42"}, "needs tool_call_id"),
        (
            {
                "role": "user",
                "content": "x",
                "tool_calls": [{"id": "c", "name": "f", "arguments": {}}],
            },
            "only an 'assistant' message can carry tool_calls",
        ),
        (
            {"role": "assistant", "tool_calls": [{"id": "c", "name": "f", "arguments": "[1, 2]"}]},
            "must be a JSON object",
        ),
        (
            {"role": "assistant", "tool_calls": [{"id": "c", "name": "f", "arguments": "{oops"}]},
            "not valid JSON",
        ),
    ],
)
def test_malformed_turns_are_refused_before_sending(message: dict[str, Any], problem: str) -> None:
    with scripted() as script, pytest.raises(InvalidRequestError, match=problem):
        LLMGate().completion("mock/a", [message])
    assert script.requests == []


def test_tool_call_accepts_openai_shape_and_missing_arguments() -> None:
    call = ToolCall.model_validate({"id": "c1", "function": {"name": "f", "arguments": None}})
    assert (call.name, call.arguments, call.arguments_json) == ("f", {}, "{}")
    blank = ToolCall.model_validate({"id": "c2", "name": "g", "arguments": b"  "})
    assert blank.arguments == {}


def test_a_request_with_several_models_has_no_single_model_name() -> None:
    request = CompletionRequest(model=["mock/a", "mock/b"], messages=USER)
    with pytest.raises(TypeError, match="several models"):
        request.model_name  # noqa: B018
    assert CompletionRequest(model="mock/a", messages=USER).model_name == "mock/a"


# --------------------------------------------------------------------------- fast paths


def _messages() -> list[Message]:
    return [Message(role="user", content="hi")]


FAST_INPUTS: list[dict[str, Any]] = [
    {"model": "mock/a", "messages": _messages()},
    {"model": "mock/a", "messages": _messages(), "temperature": 1, "top_p": 0.5, "timeout": 3},
    {"model": ["mock/a", "mock/b"], "messages": _messages(), "max_tokens": 5, "stream": True},
    {"model": "mock/a", "messages": _messages(), "api_key": "sk-x", "provider": "mock"},
    {
        "model": "mock/a",
        "messages": _messages(),
        "stream_fallback_mode": "prefill",
        "max_retries": None,
    },
]
SLOW_INPUTS: list[dict[str, Any]] = [
    {"model": "mock/a", "messages": _messages(), "temperature": "0.5"},
    {"model": "mock/a", "messages": _messages(), "max_tokens": 5.0},
    {"model": "mock/a", "messages": _messages(), "stream": None},
    {"model": "mock/a", "messages": _messages(), "stream": 1},
    {"model": ("mock/a",), "messages": _messages()},
    {"model": "mock/a", "messages": [{"role": "user", "content": "hi"}]},
    {"model": "mock/a", "messages": _messages(), "stream_fallback_mode": "rewind"},
    {"model": "mock/a", "messages": _messages(), "api_key": 42},
    {"model": "mock/a", "messages": _messages(), "stop": "END"},
    {"model": "mock/a", "messages": _messages(), "vendor_knob": True},
]


@pytest.mark.parametrize("data", FAST_INPUTS)
def test_fast_request_equals_full_validation(data: dict[str, Any]) -> None:
    fast = fast_request(copy.deepcopy(data))
    assert fast is not None
    validated = CompletionRequest.model_validate(copy.deepcopy(data))
    assert fast == validated
    assert fast.api_key_value == validated.api_key_value


@pytest.mark.parametrize("data", SLOW_INPUTS)
def test_fast_request_leaves_anything_odd_to_validation(data: dict[str, Any]) -> None:
    assert fast_request(copy.deepcopy(data)) is None
    try:
        CompletionRequest.model_validate(copy.deepcopy(data))
    except ValidationError:
        pass  # refused by validation, as the gate reports it


@pytest.mark.parametrize(
    "counts",
    [
        (3, 4, 0, None, None),
        (3, 4, 9, 1, 2),
        (0, 0, 0, None, None),
        (3.0, 4, 0, None, None),
        ("3", 4, 7, None, 1),
    ],
)
def test_make_usage_equals_the_validated_usage(counts: tuple[Any, ...]) -> None:
    prompt, completion, total, cached, reasoning = counts
    made = make_usage(prompt, completion, total, cached, reasoning)
    expected = TokenUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cached_prompt_tokens=cached,
        reasoning_tokens=reasoning,
    )
    assert made == expected
    assert made.total_tokens == (total or int(prompt) + completion)


def test_trusted_refuses_unknown_fields() -> None:
    with pytest.raises(TypeError, match=r"TextPart has no field \['colour'\]"):
        trusted(TextPart, text="x", colour="red")
    assert trusted(TextPart, text="x") == TextPart(text="x")


def test_image_part_round_trips_bytes() -> None:
    part = ImagePart.from_bytes(b"\x89PNG", "image/png")
    assert part.image_bytes is not None and part.image_bytes.raw_bytes() == b"\x89PNG"


def test_embedding_raw_is_built_once_on_first_access() -> None:
    from llmgate.types import EmbeddingResponse

    built: list[int] = []

    def factory() -> dict[str, int]:
        built.append(1)
        return {"sdk": 1}

    response = EmbeddingResponse(embeddings=[[0.5]], model="m", provider="p")
    response.set_raw(factory=factory)
    assert built == []
    assert response.raw == {"sdk": 1}
    assert response.raw == {"sdk": 1}
    assert built == [1]
