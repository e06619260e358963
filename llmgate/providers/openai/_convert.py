"""OpenAI Chat Completions wire format <-> llmgate types, without importing the SDK.

Request translation builds the keyword arguments of ``chat.completions.create`` and
``embeddings.create``. Result translation reads the wire JSON (a parsed dict), so the
non-streaming and streaming paths share one mapping of messages, tool calls, reasoning,
finish reasons and usage. Azure OpenAI and every OpenAI-compatible preset use the same
functions.
"""

from __future__ import annotations

import array
import base64
import inspect
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pydantic_core

from ... import _structured
from ..._errors import drop_parameter as drop_vendor_parameter
from ..._sse import one_event
from ...exceptions import InvalidRequestError
from ...types import (
    Choice,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    StreamChunk,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    make_usage,
    parse_tool_arguments,
    text_chunk,
    trusted,
)

# --------------------------------------------------------------------------- 1. requests

# The wire fields an assistant message's reasoning may come in: DeepSeek and older vLLM
# use ``reasoning_content``; OpenRouter, Groq and newer vLLM use ``reasoning``.
REASONING_FIELDS = ("reasoning_content", "reasoning")


def drop_parameter(name: str, provider: str, *, strict: bool, why: str = "") -> None:
    """Warn that ``name`` is not sent (or raise, when the gate runs with strict_params)."""
    drop_vendor_parameter(provider, repr(name), why, strict=strict)


def _user_content(message: Message) -> str | list[dict[str, Any]]:
    if not message.images:
        return message.text
    parts: list[dict[str, Any]] = []
    for part in message.content or ():
        if isinstance(part, str):
            parts.append({"type": "text", "text": part})
        elif part.type == "text":
            parts.append({"type": "text", "text": part.text})
        else:
            image: dict[str, Any] = {"url": part.data_uri()}
            if part.image_url is not None and part.image_url.detail:
                image["detail"] = part.image_url.detail
            parts.append({"type": "image_url", "image_url": image})
    return parts


def _assistant_message(message: Message, provider: str) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": "assistant"}
    text = message.text
    wire["content"] = text if (text or not message.tool_calls) else None
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for call in message.tool_calls
        ]
    details = (message.provider_details or {}).get(provider)
    if isinstance(details, Mapping):
        if details.get("refusal"):
            wire["refusal"] = details["refusal"]
        field = details.get("reasoning_field")
        # Reasoning goes back only inside a tool-call loop: DeepSeek requires it there and
        # rejects or ignores it on finished turns.
        if message.reasoning and message.tool_calls and field in REASONING_FIELDS:
            wire[field] = message.reasoning
    if message.name:
        wire["name"] = message.name
    return wire


def wire_message(message: Message, provider: str) -> dict[str, Any]:
    """One llmgate message as an OpenAI chat message."""
    role = message.role
    if role == "assistant":
        return _assistant_message(message, provider)
    if role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    wire: dict[str, Any] = {
        "role": role,
        "content": _user_content(message) if role == "user" else message.text,
    }
    if message.name:
        wire["name"] = message.name
    return wire


def wire_tools(request: CompletionRequest) -> list[dict[str, Any]]:
    tools = []
    for tool in request.tools or ():
        function: dict[str, Any] = {
            "name": tool.function.name,
            "parameters": tool.function.parameters,
        }
        if tool.function.description:
            function["description"] = tool.function.description
        if tool.function.strict is not None:
            function["strict"] = tool.function.strict
        tools.append({"type": "function", "function": function})
    return tools


def wire_tool_choice(choice: str | Mapping[str, Any]) -> str | dict[str, Any]:
    """``auto``/``none``/``required``, a bare function name, or a named-function dict."""
    if isinstance(choice, str):
        if choice in ("auto", "none", "required"):
            return choice
        if choice == "any":
            return "required"
        return {"type": "function", "function": {"name": choice}}
    function = choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
    if isinstance(name, str) and name:
        return {"type": "function", "function": {"name": name}}
    kind = choice.get("type")
    if kind in ("auto", "none", "required", "any"):
        return wire_tool_choice(str(kind))
    raise InvalidRequestError(f"tool_choice {dict(choice)!r} names no function")


_SCHEMA_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def wire_response_format(response_format: Any) -> dict[str, Any]:
    """OpenAI's native structured output: a strict json_schema in OpenAI's strict dialect."""
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_object":
        return {"type": "json_object"}
    schema, strict = _structured.strict_or_plain(_structured.json_schema(response_format))
    name = _SCHEMA_NAME.sub("_", _structured.schema_name(response_format))[:64] or "response"
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": schema, "strict": strict},
    }


def _add_schema_instructions(messages: list[dict[str, Any]], response_format: Any) -> None:
    instructions = _structured.schema_instruction(response_format)
    if messages and messages[0]["role"] == "system" and isinstance(messages[0]["content"], str):
        messages[0] = {**messages[0], "content": f"{messages[0]['content']}\n\n{instructions}"}
    else:
        messages.insert(0, {"role": "system", "content": instructions})


def sdk_parameters(method: Callable[..., Any]) -> frozenset[str]:
    """The keyword arguments an SDK method accepts."""
    return frozenset(inspect.signature(method).parameters) - {"self"}


def chat_kwargs(
    request: CompletionRequest,
    model: str,
    *,
    provider: str,
    accepted: frozenset[str],
    compatible: bool,
    strict: bool,
    stream: bool,
    structured_output: str = "json_schema",
) -> dict[str, Any]:
    """The arguments of ``chat.completions.create`` for a request.

    ``compatible`` marks an OpenAI-compatible vendor: it gets ``max_tokens`` (what such
    servers accept) and extra parameters unknown to the SDK travel in ``extra_body``. For
    OpenAI and Azure proper, ``max_completion_tokens`` is sent (o-series models need it) and
    parameters the SDK does not know are dropped with a warning. ``structured_output`` is
    ``"json_schema"`` (native structured output) or ``"json_object"`` for vendors that only
    have a JSON mode: the schema then travels as an instruction in the system prompt.
    """
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": [wire_message(m, provider) for m in request.messages],
    }
    if request.max_tokens is not None:
        kwargs["max_tokens" if compatible else "max_completion_tokens"] = request.max_tokens
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.top_p is not None:
        kwargs["top_p"] = request.top_p
    if request.stop:
        kwargs["stop"] = list(request.stop)
    if request.tools:
        kwargs["tools"] = wire_tools(request)
        if request.parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = request.parallel_tool_calls
    if request.tool_choice is not None and request.tools:
        kwargs["tool_choice"] = wire_tool_choice(request.tool_choice)
    if request.response_format is not None:
        if structured_output == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
            _add_schema_instructions(kwargs["messages"], request.response_format)
        else:
            kwargs["response_format"] = wire_response_format(request.response_format)
    if stream:
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
    if request.timeout is not None:
        kwargs["timeout"] = request.timeout
    _add_extra(kwargs, request.extra_kwargs, provider, accepted, compatible, strict)
    return kwargs


def _add_extra(
    kwargs: dict[str, Any],
    extra: Mapping[str, Any],
    provider: str,
    accepted: frozenset[str],
    compatible: bool,
    strict: bool,
) -> None:
    body: dict[str, Any] = {}
    for key, value in extra.items():
        if key in accepted:
            kwargs[key] = value
        elif compatible:
            body[key] = value
        else:
            drop_parameter(key, provider, strict=strict, why="the openai SDK does not accept it")
    if body:
        kwargs["extra_body"] = {**body, **(kwargs.get("extra_body") or {})}


_UNSUPPORTED_EMBEDDING_FIELDS = ("task_type", "title", "input_type", "truncate")


def embedding_kwargs(
    request: EmbeddingRequest,
    model: str,
    *,
    provider: str,
    accepted: frozenset[str],
    compatible: bool,
    strict: bool,
) -> dict[str, Any]:
    """The arguments of ``embeddings.create``; vectors travel as base64 unless floats are asked."""
    for field in _UNSUPPORTED_EMBEDDING_FIELDS:
        if getattr(request, field) is not None:
            drop_parameter(field, provider, strict=strict)
    kwargs: dict[str, Any] = {
        "model": model,
        "input": list(request.input),
        "encoding_format": "float" if request.encoding_format == "float" else "base64",
    }
    if request.dimensions is not None:
        kwargs["dimensions"] = request.dimensions
    if request.user is not None:
        kwargs["user"] = request.user
    if request.timeout is not None:
        kwargs["timeout"] = request.timeout
    _add_extra(kwargs, request.extra_kwargs, provider, accepted, compatible, strict)
    return kwargs


# --------------------------------------------------------------------------- 2. results


class WireError(Exception):
    """The vendor reported an error inside a 200 response: an SSE error frame or body."""

    def __init__(self, error: Any, *, headers: Any = None) -> None:
        self.error = error
        self.headers = headers
        message = error.get("message") if isinstance(error, Mapping) else None
        super().__init__(message if isinstance(message, str) and message else str(error))


class MalformedFrame(Exception):
    """The vendor sent data that is not the JSON it promised."""


def load_json(data: bytes | str) -> Any:
    try:
        return pydantic_core.from_json(data)
    except ValueError as exc:
        snippet = data[:200] if isinstance(data, str) else data[:200].decode("utf-8", "replace")
        raise MalformedFrame(f"malformed JSON from the server ({exc}): {snippet!r}") from exc


def check_error(payload: Any, headers: Any = None) -> None:
    """Raise WireError for ``{"error": ...}`` where a result was expected."""
    if type(payload) is dict or isinstance(payload, Mapping):
        error = payload.get("error")
        if error:
            raise WireError(error, headers=headers)
    else:
        raise MalformedFrame(f"expected a JSON object from the server, got {payload!r:.200}")


_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
    "eos": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_length": "length",
    "tool_use": "tool_calls",
}


def finish_reason(value: Any) -> str | None:
    if not value:
        return None
    return _FINISH_REASONS.get(str(value), "stop")


def usage_from_wire(usage: Any) -> TokenUsage | None:
    if usage is None or not (type(usage) is dict or isinstance(usage, Mapping)):
        return None
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cached = prompt_details.get("cached_tokens")
    if cached is None:
        cached = usage.get("prompt_cache_hit_tokens")
    return make_usage(
        usage.get("prompt_tokens") or 0,
        usage.get("completion_tokens") or 0,
        usage.get("total_tokens") or 0,
        cached,
        completion_details.get("reasoning_tokens"),
    )


def _stream_usage(payload: Mapping[str, Any]) -> Any:
    usage = payload.get("usage")
    if usage is None:
        groq = payload.get("x_groq")
        if isinstance(groq, Mapping):
            usage = groq.get("usage")
    return usage


def _content_text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text") or "") for part in content if isinstance(part, Mapping))
    return str(content)


def _reasoning(message: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(reasoning text, the wire field it came in)."""
    for field in REASONING_FIELDS:
        value = message.get(field)
        if isinstance(value, str) and value:
            return value, field
    return None, None


def _index(item: Mapping[str, Any], position: int) -> int:
    """An item's ``index``, or its position where a server leaves it out (or null)."""
    index = item.get("index")
    return index if isinstance(index, int) else position


def _arguments_text(arguments: Any) -> str:
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)


def message_details(
    provider: str, reasoning_field: str | None, refusal: str | None
) -> dict[str, Any] | None:
    """What an assistant message needs to go back to this vendor unchanged."""
    details: dict[str, Any] = {}
    if reasoning_field:
        details["reasoning_field"] = reasoning_field
    if refusal:
        details["refusal"] = refusal
    return {provider: details} if details else None


def message_from_wire(message: Mapping[str, Any], provider: str) -> Message:
    text = _content_text(message.get("content"))
    calls = None
    raw_calls = message.get("tool_calls")
    if raw_calls:
        calls = []
        for index, call in enumerate(raw_calls):
            function = call.get("function") or {}
            calls.append(
                ToolCall(
                    id=call.get("id") or f"call_{index}",
                    name=function.get("name") or "",
                    arguments=parse_tool_arguments(_arguments_text(function.get("arguments"))),
                )
            )
    reasoning, field = _reasoning(message)
    refusal = message.get("refusal")
    # Unvalidated: every value is of its field's type by construction (see types.trusted).
    return trusted(
        Message,
        role="assistant",
        content=text if (text or not calls) else None,
        tool_calls=calls,
        reasoning=reasoning,
        provider_details=message_details(
            provider, field, refusal if isinstance(refusal, str) else None
        ),
    )


_RESPONSE_DETAILS = ("system_fingerprint", "service_tier", "prompt_filter_results")


def response_from_wire(data: Mapping[str, Any], *, provider: str, model: str) -> CompletionResponse:
    """A CompletionResponse from a ChatCompletion JSON body."""
    choices = []
    filters = []
    for position, choice in enumerate(data.get("choices") or ()):
        choices.append(
            trusted(
                Choice,
                index=_index(choice, position),
                message=message_from_wire(choice.get("message") or {}, provider),
                finish_reason=finish_reason(choice.get("finish_reason")),
            )
        )
        if choice.get("content_filter_results"):
            filters.append(choice["content_filter_results"])
    details = {key: data[key] for key in _RESPONSE_DETAILS if data.get(key) is not None}
    if filters:
        details["content_filter_results"] = filters
    fields: dict[str, Any] = {
        "id": data.get("id") or "",
        "model": data.get("model") or model,
        "provider": provider,
        "choices": choices,
        "usage": usage_from_wire(data.get("usage")) or TokenUsage(),
        "provider_details": details,
    }
    if type(fields["id"]) is str and type(fields["model"]) is str:
        return trusted(CompletionResponse, **fields)
    return CompletionResponse(**fields)  # odd ids or model names: validated (and refused)


def completion_as_chunk(data: Any) -> dict[str, Any]:
    """A whole ``chat.completion`` body as one chunk, for servers that answer a stream request
    with plain JSON; an error body raises."""
    check_error(data)
    choices = [
        {
            "index": _index(choice, position),
            "delta": choice.get("message") or {},
            "finish_reason": choice.get("finish_reason"),
        }
        for position, choice in enumerate(data.get("choices") or ())
    ]
    return {**data, "choices": choices}


class ChunkTranslator:
    """ChatCompletionChunk payloads in, StreamChunks out.

    Text, reasoning and tool-call fragments go out as they come. The finish reason is held
    back until the usage arrives (OpenAI sends it in a later chunk whose ``choices`` is
    empty) or the stream ends, so the last StreamChunk carries both.
    """

    def __init__(self, *, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.id = ""
        self._finish: dict[int, str] = {}
        self._usage: TokenUsage | None = None
        self._reasoning_field: str | None = None
        self._refusal: list[str] = []
        self._finished = False

    def feed(self, payload: Mapping[str, Any]) -> list[StreamChunk]:
        if not self.id and payload.get("id"):
            self.id = str(payload["id"])
        model = payload.get("model")
        if model and model != self.model:
            self.model = str(model)
        out: list[StreamChunk] = []
        for position, choice in enumerate(payload.get("choices") or ()):
            index = _index(choice, position)
            chunk = self._delta_chunk(choice.get("delta") or {}, index)
            if chunk is not None:
                out.append(chunk)
            if choice.get("finish_reason"):
                reason = finish_reason(choice["finish_reason"])
                if reason:
                    self._finish[index] = reason
        raw_usage = payload.get("usage")
        usage = usage_from_wire(raw_usage if raw_usage is not None else _stream_usage(payload))
        if usage is not None:
            self._usage = usage
            if self._finished:
                out.append(self._chunk(usage=usage))
        if self._finish and self._usage is not None and not self._finished:
            out.extend(self._final())
        return out

    def finish(self) -> list[StreamChunk]:
        """The held-back last chunk, when the stream has ended."""
        if self._finished or (not self._finish and self._usage is None):
            return []
        return self._final()

    def _delta_chunk(self, delta: Mapping[str, Any], index: int) -> StreamChunk | None:
        content = delta.get("content")
        text = content if type(content) is str else _content_text(content)
        reasoning: str | None = None
        if not delta.keys().isdisjoint(REASONING_FIELDS):
            reasoning, field = _reasoning(delta)
            if field:
                self._reasoning_field = field
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._refusal.append(refusal)
        tool_deltas: list[ToolCallDelta] | None = None
        raw_calls = delta.get("tool_calls")
        if raw_calls:
            tool_deltas = []
            for position, call in enumerate(raw_calls):
                function = call.get("function") or {}
                tool_deltas.append(
                    ToolCallDelta(
                        index=_index(call, position),
                        id=call.get("id") or None,
                        name=function.get("name") or None,
                        arguments_delta=_arguments_text(function.get("arguments")),
                    )
                )
        if not (text or reasoning or tool_deltas):
            return None
        if reasoning is None and tool_deltas is None and index == 0:
            return text_chunk(self.id, self.model, self.provider, text)  # the commonest chunk
        return self._chunk(
            delta=text, reasoning_delta=reasoning, tool_call_deltas=tool_deltas, index=index
        )

    def _final(self) -> list[StreamChunk]:
        self._finished = True
        finishes: list[tuple[int, str | None]] = [*sorted(self._finish.items())] or [(0, None)]
        details = message_details(self.provider, self._reasoning_field, "".join(self._refusal))
        out = []
        for position, (index, reason) in enumerate(finishes):
            last = position == len(finishes) - 1
            out.append(
                self._chunk(
                    finish_reason=reason,
                    index=index,
                    usage=self._usage if last else None,
                    provider_details=details if position == 0 else None,
                )
            )
        return out

    def _chunk(self, **fields: Any) -> StreamChunk:
        # Unvalidated: every value is of its field's type by construction.
        return trusted(StreamChunk, id=self.id, model=self.model, provider=self.provider, **fields)


_DONE = object()


class SSEDecoder:
    """Server-sent events from byte pieces: yields each event's parsed JSON data.

    Comment lines (``: keep-alive``) are skipped, ``data: [DONE]`` ends the stream, and an
    error event or ``{"error": ...}`` data raises WireError.
    """

    def __init__(self, headers: Any = None) -> None:
        self.headers = headers
        self.done = False
        self._buffer = b""
        self._data: list[bytes] = []
        self._event: bytes | None = None

    def feed(self, piece: bytes) -> list[Any]:
        if not (self._buffer or self._data or self.done) and self._event is None:
            whole = one_event(piece)  # the usual piece: one whole event
            if whole is not None:
                name, data = whole
                self._event = None if name is None else name.strip()
                try:
                    payload = self._dispatch(data)
                finally:
                    self._event = None
                if payload is _DONE:
                    self.done = True
                    return []
                return [payload]
        if self._buffer:
            piece = self._buffer + piece
        lines = piece.split(b"\n")
        self._buffer = lines.pop()
        return self._lines(lines)

    def close(self) -> list[Any]:
        """Whatever the stream held when it ended without a blank line."""
        lines = [self._buffer, b""] if self._buffer else [b""]
        self._buffer = b""
        return self._lines(lines)

    def _lines(self, lines: Iterable[bytes]) -> list[Any]:
        payloads: list[Any] = []
        for raw in lines:
            if self.done:
                break
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                if self._data:
                    payload = self._dispatch(b"\n".join(self._data))
                    if payload is _DONE:
                        self.done = True
                    else:
                        payloads.append(payload)
                self._data = []
                self._event = None
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                self._event = line[6:].strip()
        return payloads

    def _dispatch(self, data: bytes) -> Any:
        if data.startswith(b"[DONE]"):
            return _DONE
        payload = load_json(data)
        if self._event == b"error" and not (isinstance(payload, Mapping) and "error" in payload):
            raise WireError(payload, headers=self.headers)
        check_error(payload, self.headers)
        return payload


def _decode_base64_floats(data: str) -> list[float]:
    values = array.array("f", base64.b64decode(data))
    if sys.byteorder != "little":
        values.byteswap()
    return values.tolist()


def embeddings_from_wire(
    data: Mapping[str, Any], *, provider: str, model: str
) -> EmbeddingResponse:
    items = sorted(data.get("data") or (), key=lambda item: _index(item, 0))
    vectors: list[list[float]] = []
    for item in items:
        vector = item.get("embedding")
        vectors.append(_decode_base64_floats(vector) if isinstance(vector, str) else vector)
    usage = data.get("usage") or {}
    # model_construct: the vectors are already lists of floats; validating them again is
    # the slowest part of a large embeddings call.
    return EmbeddingResponse.model_construct(
        embeddings=vectors,
        model=data.get("model") or model,
        provider=provider,
        usage=TokenUsage(
            prompt_tokens=usage.get("prompt_tokens") or 0,
            total_tokens=usage.get("total_tokens") or 0,
        ),
        attempts=1,
        provider_details={},
    )
