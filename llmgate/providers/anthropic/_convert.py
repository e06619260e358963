"""Anthropic Messages: request translation and result translation.

Pure functions over plain data, no SDK import: a :class:`CompletionRequest` becomes the
keyword arguments of ``client.messages.create``, and the wire JSON of a ``Message`` (or of
its stream events) becomes llmgate types. Streaming and non-streaming share the helpers
that map finish reasons, usage and thinking blocks, so the two cannot drift.

Opaque data that must go back to Anthropic unchanged (thinking blocks with their
signatures, redacted thinking) rides on ``Message.provider_details["anthropic"]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pydantic_core

from ... import _structured
from ..._errors import drop_parameter
from ...exceptions import InvalidRequestError
from ...types import (
    Choice,
    CompletionRequest,
    CompletionResponse,
    ImagePart,
    Message,
    StreamChunk,
    TextPart,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolDefinition,
    make_usage,
    text_chunk,
    trusted,
)

DETAILS_KEY = "anthropic"
DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

SchemaTransform = Callable[[dict[str, Any]], dict[str, Any]]


# =========================================================================== 1. requests


def call_kwargs(
    request: CompletionRequest,
    model: str,
    *,
    accepted: frozenset[str],
    transform_schema: SchemaTransform,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    strict: bool = False,
) -> dict[str, Any]:
    """The keyword arguments of ``messages.create`` for this request.

    ``accepted`` names what ``create`` takes; any other extra keyword, and ``temperature``
    / ``top_p`` (absent from anthropic 2.x), is dropped with a warning, or refused when
    ``strict`` is true.
    """
    system, messages = translate_messages(request.messages)
    kwargs: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens if request.max_tokens is not None else default_max_tokens,
        "messages": messages,
    }
    if system is not None:
        kwargs["system"] = system
    if request.stop:
        kwargs["stop_sequences"] = list(request.stop)
    if request.tools:
        kwargs["tools"] = [tool_param(tool) for tool in request.tools]
        choice = tool_choice_param(request.tool_choice, request.parallel_tool_calls)
        if choice is not None:
            kwargs["tool_choice"] = choice
    if request.response_format is not None:
        schema = transform_schema(_structured.json_schema(request.response_format))
        kwargs["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    if request.timeout is not None:
        kwargs["timeout"] = request.timeout

    unsupported = [name for name in ("temperature", "top_p") if getattr(request, name) is not None]
    for key, value in request.extra_kwargs.items():
        if key == "user":
            kwargs["metadata"] = {"user_id": value, **kwargs.get("metadata", {})}
        elif key == "metadata" and isinstance(value, Mapping):
            kwargs["metadata"] = {**kwargs.get("metadata", {}), **value}
        elif key == "output_config" and "output_config" in kwargs and isinstance(value, Mapping):
            kwargs["output_config"] = {**value, **kwargs["output_config"]}
        elif key in accepted:
            kwargs[key] = value
        else:
            unsupported.append(key)
    if unsupported:
        drop_unsupported(unsupported, strict=strict)
    return kwargs


def drop_unsupported(names: Sequence[str], *, strict: bool) -> None:
    drop_parameter(
        "anthropic",
        ", ".join(repr(name) for name in names),
        "the Messages API (anthropic SDK 2.x) has no such parameter; "
        "send it raw with extra_body={...} if you must",
        strict=strict,
    )


def translate_messages(
    messages: Iterable[Message],
) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """``(system, messages)``: system turns are hoisted, tool results become user turns."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    tool_turn: list[dict[str, Any]] | None = None
    for message in messages:
        role = message.role
        if role == "system":
            text = message.text
            if text:
                system.append(text)
            continue
        if role == "tool":
            block = tool_result_block(message)
            if tool_turn is None:
                tool_turn = [block]
                out.append({"role": "user", "content": tool_turn})
            else:
                tool_turn.append(block)
            continue
        tool_turn = None
        if role == "user":
            out.append({"role": "user", "content": user_content(message)})
        else:
            out.append({"role": "assistant", "content": assistant_content(message)})
    if out and out[-1]["role"] == "assistant":
        out[-1]["content"] = _strip_prefill(out[-1]["content"])
    if not system:
        return None, out
    if len(system) == 1:
        return system[0], out
    return [{"type": "text", "text": text} for text in system], out


def _strip_prefill(content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    # The API refuses a final assistant turn that ends in whitespace.
    if isinstance(content, str):
        return content.rstrip()
    if content and content[-1].get("type") == "text":
        content[-1] = {**content[-1], "text": content[-1]["text"].rstrip()}
    return content


def user_content(message: Message) -> str | list[dict[str, Any]]:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return [content_block(part) for part in content]


def content_block(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    return image_block(part)


def image_block(part: ImagePart) -> dict[str, Any]:
    if part.image_bytes is not None:
        source = {
            "type": "base64",
            "media_type": part.image_bytes.mime_type,
            "data": part.image_bytes.data,
        }
        return {"type": "image", "source": source}
    assert part.image_url is not None
    url = part.image_url.url
    if url.startswith("data:") and ";base64," in url:
        header, _, data = url.partition(";base64,")
        source = {"type": "base64", "media_type": header[5:] or "image/png", "data": data}
        return {"type": "image", "source": source}
    return {"type": "image", "source": {"type": "url", "url": url}}


def assistant_content(message: Message) -> str | list[dict[str, Any]]:
    """An assistant turn; thinking blocks kept from an Anthropic reply go first, unchanged."""
    details = (message.provider_details or {}).get(DETAILS_KEY) or {}
    blocks = [dict(block) for block in details.get("thinking_blocks") or ()]
    text = message.text
    if not blocks and not message.tool_calls:
        return text
    if text:
        blocks.append({"type": "text", "text": text})
    for call in message.tool_calls or ():
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        )
    return blocks


def tool_result_block(message: Message) -> dict[str, Any]:
    content = message.content
    result: str | list[dict[str, Any]]
    if isinstance(content, list) and any(isinstance(part, ImagePart) for part in content):
        result = [content_block(part) for part in content]
    else:
        result = message.text
    return {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": result}


def tool_param(tool: ToolDefinition) -> dict[str, Any]:
    function = tool.function
    schema = dict(function.parameters or {})
    schema.setdefault("type", "object")
    param: dict[str, Any] = {"name": function.name, "input_schema": schema}
    if function.description:
        param["description"] = function.description
    if function.strict is not None:
        param["strict"] = function.strict
    return param


_NATIVE_CHOICES = frozenset({"auto", "any", "none", "tool"})


def tool_choice_param(
    choice: str | dict[str, Any] | None, parallel: bool | None
) -> dict[str, Any] | None:
    """llmgate's tool_choice (and ``parallel_tool_calls=False``) as Anthropic's ``tool_choice``."""
    result: dict[str, Any] | None
    if choice is None:
        result = None
    elif isinstance(choice, str):
        if choice in ("auto", "none"):
            result = {"type": choice}
        elif choice in ("required", "any"):
            result = {"type": "any"}
        else:
            result = {"type": "tool", "name": choice}
    else:
        kind = choice.get("type")
        function = choice.get("function")
        if kind == "function" or isinstance(function, Mapping):
            name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
            if not name:
                raise InvalidRequestError(f"tool_choice {choice!r} names no function")
            result = {"type": "tool", "name": name}
        elif kind == "required":
            result = {"type": "any"}
        elif kind in _NATIVE_CHOICES:
            result = dict(choice)
        else:
            raise InvalidRequestError(
                f"unsupported tool_choice {choice!r}: use 'auto', 'none', 'required', a function "
                f"name, or {{'type': 'function', 'function': {{'name': ...}}}}"
            )
    if parallel is False:
        if result is None:
            result = {"type": "auto"}
        if result["type"] != "none":
            result["disable_parallel_tool_use"] = True
    return result


# =========================================================================== 2. results


def finish_reason(stop_reason: str | None) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(stop_reason, "stop")


def usage_from(wire: Mapping[str, Any]) -> TokenUsage:
    """TokenUsage from Anthropic usage; prompt tokens include cache reads and writes."""
    cache_read = wire.get("cache_read_input_tokens")
    prompt = (
        (wire.get("input_tokens") or 0)
        + (cache_read or 0)
        + (wire.get("cache_creation_input_tokens") or 0)
    )
    completion = wire.get("output_tokens") or 0
    details = wire.get("output_tokens_details")
    thinking = details.get("thinking_tokens") if isinstance(details, Mapping) else None
    return make_usage(prompt, completion, prompt + completion, cache_read, thinking)


def thinking_details(blocks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """``message.provider_details`` that carries thinking blocks back to Anthropic."""
    if not blocks:
        return None
    return {DETAILS_KEY: {"thinking_blocks": blocks}}


def assistant_message(
    text: str,
    tool_calls: list[ToolCall],
    reasoning: str | None,
    thinking_blocks: list[dict[str, Any]],
) -> Message:
    # Unvalidated: every value is of its field's type by construction (see types.trusted).
    return trusted(
        Message,
        role="assistant",
        content=text if (text or not tool_calls) else None,
        tool_calls=tool_calls or None,
        reasoning=reasoning or None,
        provider_details=thinking_details(thinking_blocks),
    )


def response_from_json(
    data: Mapping[str, Any], provider: str, request_id: str | None = None
) -> CompletionResponse:
    """A CompletionResponse from the wire JSON of a ``Message``."""
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    thinking: list[dict[str, Any]] = []
    for block in data.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            calls.append(
                ToolCall(id=block["id"], name=block["name"], arguments=block.get("input") or {})
            )
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
            thinking.append(
                {
                    "type": "thinking",
                    "thinking": block.get("thinking") or "",
                    "signature": block.get("signature") or "",
                }
            )
        elif kind == "redacted_thinking":
            thinking.append({"type": "redacted_thinking", "data": block.get("data") or ""})
    stop_reason = data.get("stop_reason")
    details: dict[str, Any] = {
        "stop_reason": stop_reason,
        "stop_sequence": data.get("stop_sequence"),
    }
    if request_id:
        details["request_id"] = request_id
    message = assistant_message("".join(texts), calls, "".join(reasoning), thinking)
    fields: dict[str, Any] = {
        "id": data.get("id") or "",
        "model": data.get("model") or "",
        "provider": provider,
        "choices": [
            trusted(Choice, index=0, message=message, finish_reason=finish_reason(stop_reason))
        ],
        "usage": usage_from(data.get("usage") or {}),
        "provider_details": details,
    }
    if type(fields["id"]) is str and type(fields["model"]) is str:
        return trusted(CompletionResponse, **fields)
    return CompletionResponse(**fields)  # odd ids or model names: validated (and refused)


class StreamTranslator:
    """Turns the decoded JSON of Anthropic stream events into StreamChunks.

    Tool calls are numbered by their order among tool_use blocks (not by block index);
    the finish reason, usage and kept thinking blocks come on the chunk of ``message_delta``.
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.id = ""
        self.model = ""
        self._plain = True  # id and model are strings: chunks can be built unvalidated
        self._start_usage: dict[str, Any] = {}
        self._tool_ordinals: dict[int, int] = {}
        self._thinking_parts: dict[int, tuple[list[str], list[str]]] = {}
        self._thinking: list[dict[str, Any]] = []

    def _chunk(self, **fields: Any) -> StreamChunk:
        if (
            self._plain
            and type(fields.get("delta", "")) is str
            and type(fields.get("reasoning_delta") or "") is str
        ):
            # Unvalidated: the wire's strings are strings, and the other values are of
            # their fields' types by construction (see types.trusted).
            return trusted(
                StreamChunk, id=self.id, model=self.model, provider=self.provider, **fields
            )
        return StreamChunk(id=self.id, model=self.model, provider=self.provider, **fields)

    def feed_data(self, data: bytes) -> StreamChunk | None:
        """The chunk of one event's JSON data; a text delta is read without ``feed``'s dispatch."""
        try:
            payload = pydantic_core.from_json(data)
        except ValueError:
            payload = json.loads(data)  # raises json's own error, as the SDK's reader does
        if self._plain and type(payload) is dict:
            delta = payload.get("delta")
            if (
                type(delta) is dict
                and delta.get("type") == "text_delta"
                and payload.get("type") == "content_block_delta"
            ):
                text = delta.get("text")
                if type(text) is str:
                    return text_chunk(self.id, self.model, self.provider, text) if text else None
        return self.feed(payload)

    def feed(self, event: Mapping[str, Any]) -> StreamChunk | None:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if self._plain and delta.get("type") == "text_delta":  # the commonest event
                text = delta.get("text")
                if type(text) is str:
                    return text_chunk(self.id, self.model, self.provider, text) if text else None
            return self._delta(event.get("index", 0), delta)
        if kind == "content_block_start":
            return self._start(event.get("index", 0), event.get("content_block") or {})
        if kind == "content_block_stop":
            self._stop(event.get("index", 0))
            return None
        if kind == "message_start":
            message = event.get("message") or {}
            self.id = message.get("id") or ""
            self.model = message.get("model") or ""
            self._plain = type(self.id) is str and type(self.model) is str
            self._start_usage = dict(message.get("usage") or {})
            return None
        if kind == "message_delta":
            delta = event.get("delta") or {}
            late = {k: v for k, v in (event.get("usage") or {}).items() if v is not None}
            return self._chunk(
                finish_reason=finish_reason(delta.get("stop_reason")),
                usage=usage_from({**self._start_usage, **late}),
                provider_details=thinking_details(self._thinking),
            )
        return None

    def _start(self, index: int, block: Mapping[str, Any]) -> StreamChunk | None:
        kind = block.get("type")
        if kind == "text":
            text = block.get("text") or ""
            return self._chunk(delta=text) if text else None
        if kind == "tool_use":
            ordinal = self._tool_ordinals[index] = len(self._tool_ordinals)
            initial = block.get("input")
            arguments = _json_text(initial) if initial else ""
            delta = ToolCallDelta(
                index=ordinal, id=block.get("id"), name=block.get("name"), arguments_delta=arguments
            )
            return self._chunk(tool_call_deltas=[delta])
        if kind == "thinking":
            text = block.get("thinking") or ""
            self._thinking_parts[index] = ([text], [block.get("signature") or ""])
            return self._chunk(reasoning_delta=text) if text else None
        if kind == "redacted_thinking":
            self._thinking.append({"type": "redacted_thinking", "data": block.get("data") or ""})
        return None

    def _delta(self, index: int, delta: Mapping[str, Any]) -> StreamChunk | None:
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text") or ""
            return self._chunk(delta=text) if text else None
        if kind == "input_json_delta":
            partial = delta.get("partial_json") or ""
            ordinal = self._tool_ordinals.get(index)
            if not partial or ordinal is None:
                return None
            return self._chunk(
                tool_call_deltas=[ToolCallDelta(index=ordinal, arguments_delta=partial)]
            )
        if kind == "thinking_delta":
            text = delta.get("thinking") or ""
            parts = self._thinking_parts.get(index)
            if parts is not None:
                parts[0].append(text)
            return self._chunk(reasoning_delta=text) if text else None
        if kind == "signature_delta":
            parts = self._thinking_parts.get(index)
            if parts is not None:
                parts[1].append(delta.get("signature") or "")
        return None

    def _stop(self, index: int) -> None:
        parts = self._thinking_parts.pop(index, None)
        if parts is not None:
            self._thinking.append(
                {"type": "thinking", "thinking": "".join(parts[0]), "signature": "".join(parts[1])}
            )


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
