"""Structured output: ``response_format`` → JSON Schema, output → validated object.

``response_format`` is a pydantic model class (the result is an instance of it) or a JSON
Schema dict (the result is a dict). Providers ask :func:`json_schema` for the schema and put
it on the wire in their vendor's native mode; the gate calls :func:`parse_output` on the
text that comes back.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic_core
from pydantic import BaseModel, ValidationError

from .exceptions import InvalidRequestError, StructuredOutputError
from .types import StreamChunk


def is_model_class(response_format: Any) -> bool:
    return isinstance(response_format, type) and issubclass(response_format, BaseModel)


def schema_name(response_format: Any) -> str:
    if is_model_class(response_format):
        return str(response_format.__name__)
    if isinstance(response_format, dict):
        return str(response_format.get("title") or "response")
    raise InvalidRequestError(
        "response_format must be a pydantic model class or a JSON Schema dict, "
        f"not {type(response_format).__name__}"
    )


def json_schema(response_format: Any) -> dict[str, Any]:
    """The plain JSON Schema of a response_format (pydantic's own generator for models)."""
    if is_model_class(response_format):
        return response_format.model_json_schema()  # type: ignore[no-any-return]
    if isinstance(response_format, dict):
        if "json_schema" in response_format and isinstance(response_format["json_schema"], dict):
            inner = response_format["json_schema"]
            return dict(inner.get("schema", inner))
        return dict(response_format)
    raise InvalidRequestError(
        "response_format must be a pydantic model class or a JSON Schema dict, "
        f"not {type(response_format).__name__}"
    )


def strip_fences(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        if stripped.rstrip().endswith("```"):
            stripped = stripped.rstrip()[:-3]
    return stripped.strip()


def parse_output(text: str, response_format: Any) -> Any:
    """The validated object for ``text``; a StructuredOutputError carries text and errors."""
    body = strip_fences(text)
    if is_model_class(response_format):
        try:
            return response_format.model_validate_json(body)
        except ValidationError as exc:
            raise StructuredOutputError(
                f"the model's output does not match {response_format.__name__}: "
                f"{exc.error_count()} error(s)",
                raw_text=text,
                errors=exc.errors(include_url=False),
            ) from exc
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise StructuredOutputError(
            f"the model's output is not valid JSON: {exc}", raw_text=text, errors=[str(exc)]
        ) from exc


class StreamParser:
    """Adds the partial object parsed so far to each streamed chunk.

    The last chunk (the one with a finish reason) carries the validated object.
    """

    def __init__(self, response_format: Any) -> None:
        self.response_format = response_format
        self._parts: list[str] = []

    def feed(self, chunk: StreamChunk) -> StreamChunk:
        if chunk.restarted:
            self._parts.clear()
        if chunk.delta:
            self._parts.append(chunk.delta)
        text = "".join(self._parts)
        if chunk.finish_reason and text and not chunk.tool_call_deltas:
            chunk.parsed = parse_output(text, self.response_format)
        elif chunk.delta:
            try:
                chunk.parsed = pydantic_core.from_json(text, allow_partial=True)
            except ValueError:
                chunk.parsed = None
        return chunk
