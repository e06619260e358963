"""Shared inputs and checks of the conformance suite."""

from __future__ import annotations

import base64
from typing import Any

from llmgate.types import CompletionResponse

from .target import Target

USER = [{"role": "user", "content": "Hi there"}]

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Local time in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

# A 1x1 transparent PNG.
PNG_BYTES = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def vendor_model(target: Target) -> str:
    return target.model.split("/", 1)[1]


def provider_name(target: Target) -> str:
    return target.model.split("/", 1)[0]


def comparable(response: CompletionResponse) -> dict[str, Any]:
    """What must be equal between a streamed and a non-streamed response."""
    message = response.message
    return {
        "text": response.text,
        "tool_calls": [(c.id, c.name, c.arguments) for c in response.tool_calls or []],
        "finish_reason": response.finish_reason,
        "usage": response.usage.model_dump(),
        "reasoning": message.reasoning,
        "provider_details": message.provider_details,
        "model": response.model,
        "provider": response.provider,
    }
