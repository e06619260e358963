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


def schema_instruction(response_format: Any) -> str:
    """Asks, in words, for output matching the schema: for models with no native JSON mode."""
    schema = json.dumps(json_schema(response_format), separators=(",", ":"))
    asked = "Reply with one JSON object only, no other text, that conforms to this JSON Schema"
    return f"{asked}: {schema}"


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


# --------------------------------------------------------------------------- dialects

_GEMINI_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "properties",
        "required",
        "propertyOrdering",
        "anyOf",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "additionalProperties",
        "default",
        "const",
    }
)


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every local ``$ref`` replaced by its definition (no ``$defs`` left).

    A recursive model cannot be inlined: that is an InvalidRequestError naming the model.
    """
    definitions: dict[str, Any] = {**schema.get("definitions", {}), **schema.get("$defs", {})}

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name in seen:
                raise InvalidRequestError(
                    f"the schema of {name!r} is recursive; this vendor's structured output "
                    "cannot express recursion: use a non-recursive model"
                )
            if name not in definitions:
                raise InvalidRequestError(f"the schema refers to an unknown definition {ref!r}")
            merged = {**definitions[name], **{k: v for k, v in node.items() if k != "$ref"}}
            return resolve(merged, (*seen, name))
        return {
            key: resolve(value, seen)
            for key, value in node.items()
            if key not in ("$defs", "definitions")
        }

    result: dict[str, Any] = resolve(schema, ())
    return result


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI strict mode: closed objects, every property required, optional ones nullable.

    A field with a non-null default stays non-nullable (the model must give a value), so
    the validated object never receives a null the model class would refuse.

    ``$ref``/``$defs`` are kept (strict mode accepts them); ``default`` is dropped, which
    strict mode refuses.
    """

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: walk(value) for key, value in node.items() if key != "default"}
        if out.get("type") == "object" or "properties" in out:
            properties: dict[str, Any] = out.get("properties", {})
            original: dict[str, Any] = node.get("properties", {})
            required = set(out.get("required", []))
            for name, prop in list(properties.items()):
                source = original.get(name)
                has_real_default = isinstance(source, dict) and source.get("default") is not None
                if name not in required and not has_real_default:
                    properties[name] = _nullable(prop)
            out["properties"] = properties
            out["required"] = list(properties)
            out["additionalProperties"] = False
        return out

    result: dict[str, Any] = walk(schema)
    return result


def has_open_maps(schema: Any) -> bool:
    """True when some object takes arbitrary keys (``dict[str, X]`` fields): strict mode
    (closed objects only) cannot express it."""
    if isinstance(schema, list):
        return any(has_open_maps(item) for item in schema)
    if not isinstance(schema, dict):
        return False
    extra = schema.get("additionalProperties")
    if extra is True or isinstance(extra, dict):
        return True
    return any(has_open_maps(value) for value in schema.values())


def strict_or_plain(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``(schema, strict)`` for vendors with a strict flag: the strict dialect when it can
    express the schema, else the schema as given with ``strict`` off (so a ``dict[str, X]``
    field is not silently turned into an always-empty object)."""
    if has_open_maps(schema):
        return schema, False
    return strict_schema(schema), True


def _nullable(prop: Any) -> Any:
    if not isinstance(prop, dict):
        return prop
    options = prop.get("anyOf")
    if isinstance(options, list):
        if any(isinstance(o, dict) and o.get("type") == "null" for o in options):
            return prop
        return {**prop, "anyOf": [*options, {"type": "null"}]}
    kind = prop.get("type")
    if isinstance(kind, str) and "$ref" not in prop:
        if kind == "null":
            return prop
        if "enum" in prop:
            return {**prop, "type": [kind, "null"], "enum": [*prop["enum"], None]}
        return {**prop, "type": [kind, "null"]}
    if isinstance(kind, list):
        return prop if "null" in kind else {**prop, "type": [*kind, "null"]}
    return {"anyOf": [prop, {"type": "null"}]}


def gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Gemini's JSON Schema subset: references inlined, unsupported keywords removed."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "oneOf":  # a discriminated union: Gemini knows it as anyOf
                key = "anyOf"
            if key not in _GEMINI_KEYS:
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: walk(prop) for name, prop in value.items()}
            else:
                out[key] = walk(value)
        return out

    result: dict[str, Any] = walk(inline_refs(schema))
    return result


# --------------------------------------------------------------------------- streaming

PARTIAL_PARSE_ALWAYS_BELOW = 4096
PARTIAL_PARSE_GROWTH = 1.25


class StreamParser:
    """Adds the partial object parsed so far to each streamed chunk.

    pydantic_core parses the incomplete JSON (``allow_partial``). Re-parsing the whole text
    on every chunk would cost O(n²) for a long object, so past a few KB the parse is only
    refreshed when the text has grown by a quarter since the last one; chunks in between
    carry the latest parse. Total work stays linear in the output length. The last chunk
    (the one with a finish reason) carries the validated object.
    """

    def __init__(self, response_format: Any) -> None:
        self.response_format = response_format
        self._parts: list[str] = []
        self._length = 0
        self._parsed_at = 0
        self._latest: Any = None
        self.parses = 0

    def feed(self, chunk: StreamChunk) -> StreamChunk:
        if chunk.restarted:
            self._parts.clear()
            self._length = self._parsed_at = 0
            self._latest = None
        if chunk.delta:
            self._parts.append(chunk.delta)
            self._length += len(chunk.delta)
        if chunk.finish_reason and self._length and not chunk.tool_call_deltas:
            chunk.parsed = parse_output(self._text(), self.response_format)
            return chunk
        if chunk.delta and self._due():
            self.parses += 1
            self._parsed_at = self._length
            try:
                self._latest = pydantic_core.from_json(self._text(), allow_partial=True)
            except ValueError:
                pass
        if self._length:
            chunk.parsed = self._latest
        return chunk

    def _due(self) -> bool:
        return (
            self._length < PARTIAL_PARSE_ALWAYS_BELOW
            or self._length >= self._parsed_at * PARTIAL_PARSE_GROWTH
        )

    def _text(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""
