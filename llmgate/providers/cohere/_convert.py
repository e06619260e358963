"""Cohere v2 chat and embed: request translation and result translation.

Pure functions, no SDK import: a :class:`CompletionRequest` becomes the keyword arguments
of ``ClientV2.chat`` / ``chat_stream``, an :class:`EmbeddingRequest` those of
``ClientV2.embed``; the wire JSON of a chat reply, the server-sent events of a chat stream
and the SDK's embed result become llmgate types. Streaming and non-streaming share the
helpers that map finish reasons, usage, tool calls and ``provider_details``, so the two
cannot drift.

Vendor facts encoded here:

- Cohere has no named tool choice: a named choice becomes ``tool_choice="REQUIRED"`` with
  ``tools`` restricted to that one function.
- ``tool_plan`` (the plan the model writes before calling tools) and citations ride on
  ``message.provider_details["cohere"]`` and are sent back with the assistant turn;
  thinking goes to ``reasoning`` and back as a ``thinking`` content item.
- The SDK's own stream parser turns an event it does not know into *some other* event (a
  frame without ``type``, as an error frame is, becomes a ``message-start``; one with an
  unknown ``type`` or broken JSON is skipped with a log warning), and it spends most of a
  stream's CPU validating every event against all twelve event models. So streams are read
  from the wire (:class:`SSEDecoder`), and :class:`StreamTranslator` raises the mapped error
  for every error-frame shape, and for a stream that ends without ``message-end``.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any

from ... import _structured
from ..._errors import drop_parameter, make_provider_error
from ...exceptions import (
    InvalidRequestError,
    ProviderAPIError,
    ProviderConnectionError,
    ProviderError,
    ServerError,
)
from ...types import (
    Choice,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImagePart,
    Message,
    StreamChunk,
    TextPart,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolDefinition,
    make_usage,
    trusted,
)

PROVIDER = "cohere"
DEFAULT_EMBED_INPUT_TYPE = "search_document"

# --------------------------------------------------------------------------- requests


def _drop_unsupported(name: str, strict: bool, why: str = "") -> None:
    drop_parameter("cohere", name, why, strict=strict)


def _text_only(message: Message, role: str) -> str:
    if message.images:
        raise InvalidRequestError(
            f"cohere accepts images only in user messages, not in {role} messages"
        )
    return message.text


def _user_content(message: Message) -> str | list[dict[str, Any]]:
    if not isinstance(message.content, list):
        return message.content or ""
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        else:
            parts.append({"type": "image_url", "image_url": _image_url(part)})
    return parts


def _image_url(part: ImagePart) -> dict[str, Any]:
    image: dict[str, Any] = {"url": part.data_uri()}
    if part.image_url is not None and part.image_url.detail is not None:
        image["detail"] = part.image_url.detail
    return image


def _native_details(message: Message) -> dict[str, Any]:
    details = (message.provider_details or {}).get(PROVIDER)
    return dict(details) if isinstance(details, Mapping) else {}


def _assistant_message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant"}
    text = _text_only(message, "assistant")
    if message.reasoning:
        content: list[dict[str, Any]] = [{"type": "thinking", "thinking": message.reasoning}]
        if text:
            content.append({"type": "text", "text": text})
        out["content"] = content
    elif text or not message.tool_calls:
        out["content"] = text
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for call in message.tool_calls
        ]
    native = _native_details(message)
    if native.get("tool_plan"):
        out["tool_plan"] = native["tool_plan"]
    if native.get("citations"):
        out["citations"] = native["citations"]
    return out


def to_cohere_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """llmgate messages as Cohere v2 chat messages (system turns stay where they are)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            out.append({"role": "system", "content": _text_only(message, "system")})
        elif message.role == "user":
            out.append({"role": "user", "content": _user_content(message)})
        elif message.role == "assistant":
            out.append(_assistant_message(message))
        else:
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": message.tool_call_id,
                    "content": _text_only(message, "tool"),
                }
            )
    return out


def to_cohere_tools(tools: Sequence[ToolDefinition]) -> list[dict[str, Any]]:
    out = []
    for tool in tools:
        function: dict[str, Any] = {
            "name": tool.function.name,
            "parameters": tool.function.parameters,
        }
        if tool.function.description:
            function["description"] = tool.function.description
        out.append({"type": "function", "function": function})
    return out


def parse_tool_choice(choice: str | Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """``(mode, function name)``: mode is auto | none | required | named (or None)."""
    if choice is None:
        return None, None
    if isinstance(choice, str):
        lowered = choice.lower()
        if lowered in ("auto", "none", "required"):
            return lowered, None
        if lowered == "any":
            return "required", None
        return "named", choice
    function = choice.get("function")
    if isinstance(function, Mapping) and function.get("name"):
        return "named", str(function["name"])
    if choice.get("name"):
        return "named", str(choice["name"])
    kind = str(choice.get("type", "")).lower()
    if kind in ("auto", "none", "required", "any"):
        return ("required" if kind == "any" else kind), None
    raise InvalidRequestError(f"tool_choice {dict(choice)!r} is not understood")


def _apply_tools(request: CompletionRequest, kwargs: dict[str, Any], strict: bool) -> None:
    tools = to_cohere_tools(request.tools or [])
    mode, name = parse_tool_choice(request.tool_choice)
    if mode == "named":
        chosen = [tool for tool in tools if tool["function"]["name"] == name]
        if not chosen:
            raise InvalidRequestError(
                f"tool_choice names {name!r}, which is not among the tools given"
            )
        tools = chosen
        kwargs["tool_choice"] = "REQUIRED"
    elif mode == "required":
        kwargs["tool_choice"] = "REQUIRED"
    elif mode == "none":
        kwargs["tool_choice"] = "NONE"
    if tools:
        kwargs["tools"] = tools
    if request.parallel_tool_calls is False:
        _drop_unsupported(
            "parallel_tool_calls=False", strict, "the model may always call several tools"
        )


def response_format_param(response_format: Any) -> dict[str, Any]:
    """Cohere's native structured-output mode: a JSON object constrained by a JSON Schema."""
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_object":
        schema = response_format.get("json_schema") or response_format.get("schema")
        return {"type": "json_object", **({"json_schema": dict(schema)} if schema else {})}
    schema = _structured.json_schema(response_format)
    try:
        schema = _structured.inline_refs(schema)
    except InvalidRequestError:
        pass  # a recursive schema keeps its $refs
    return {"type": "json_object", "json_schema": schema}


def _request_options(timeout: float | None, extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = dict(extra) if isinstance(extra, Mapping) else {}
    options["max_retries"] = 0
    if timeout is not None:
        options["timeout"] = timeout
    return options


def _with_extra(
    kwargs: dict[str, Any], timeout: float | None, extra_kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    extra = dict(extra_kwargs)
    kwargs["request_options"] = _request_options(timeout, extra.pop("request_options", None))
    kwargs.update(extra)
    return kwargs


def chat_kwargs(request: CompletionRequest, model: str, *, strict: bool = False) -> dict[str, Any]:
    """The keyword arguments of ``ClientV2.chat`` / ``chat_stream`` for a request."""
    kwargs: dict[str, Any] = {"model": model, "messages": to_cohere_messages(request.messages)}
    if request.tools or request.tool_choice is not None:
        _apply_tools(request, kwargs, strict)
    if request.max_tokens is not None:
        kwargs["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.top_p is not None:
        kwargs["p"] = request.top_p
    if request.stop:
        kwargs["stop_sequences"] = list(request.stop)
    if request.response_format is not None:
        kwargs["response_format"] = response_format_param(request.response_format)
    return _with_extra(kwargs, request.timeout, request.extra_kwargs)


_INPUT_TYPES = {
    "search_document": "search_document",
    "document": "search_document",
    "retrieval_document": "search_document",
    "search_query": "search_query",
    "query": "search_query",
    "retrieval_query": "search_query",
    "question_answering": "search_query",
    "fact_verification": "search_query",
    "code_retrieval_query": "search_query",
    "classification": "classification",
    "clustering": "clustering",
    "image": "image",
}
_EMBEDDING_TYPES = ("float", "base64", "int8", "uint8", "binary", "ubinary")


def embed_input_type(input_type: str | None, task_type: str | None) -> str:
    """Cohere's ``input_type`` from ``input_type`` or a Gemini-style ``task_type``.

    Defaults to ``search_document``: texts are embedded as documents to be searched.
    """
    for value, field in ((input_type, "input_type"), (task_type, "task_type")):
        if value is None:
            continue
        mapped = _INPUT_TYPES.get(value.lower())
        if mapped is None and field == "input_type":
            return value
        if mapped is None:
            raise InvalidRequestError(
                f"task_type {value!r} has no Cohere input_type; pass input_type= one of "
                "search_document, search_query, classification, clustering"
            )
        return mapped
    return DEFAULT_EMBED_INPUT_TYPE


def embed_kwargs(request: EmbeddingRequest, model: str, *, strict: bool = False) -> dict[str, Any]:
    """The keyword arguments of ``ClientV2.embed`` for a request."""
    embedding_type = (request.encoding_format or "float").lower()
    if embedding_type not in _EMBEDDING_TYPES:
        raise InvalidRequestError(
            f"encoding_format {request.encoding_format!r} is not one of "
            + ", ".join(_EMBEDDING_TYPES)
        )
    kwargs: dict[str, Any] = {
        "model": model,
        "texts": list(request.input),
        "input_type": embed_input_type(request.input_type, request.task_type),
        "embedding_types": [embedding_type],
    }
    if request.dimensions is not None:
        kwargs["output_dimension"] = request.dimensions
    if request.truncate is not None:
        kwargs["truncate"] = request.truncate.upper()
    if request.title is not None:
        _drop_unsupported("title", strict)
    if request.user is not None:
        _drop_unsupported("user", strict)
    return _with_extra(kwargs, request.timeout, request.extra_kwargs)


# --------------------------------------------------------------------------- results

_FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR": "error",
    "TIMEOUT": "error",
}


def finish_reason(raw: Any) -> str | None:
    if raw is None:
        return None
    return _FINISH_REASONS.get(str(raw).upper(), "stop")


def _count(value: Any) -> int | None:
    return None if value is None else round(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def usage_from(usage: Any) -> TokenUsage:
    """Token counts from the wire ``usage`` (``billed_units`` stand in for missing ``tokens``)."""
    usage = _mapping(usage)
    tokens = _mapping(usage.get("tokens"))
    billed = _mapping(usage.get("billed_units"))
    prompt = _count(tokens.get("input_tokens"))
    completion = _count(tokens.get("output_tokens"))
    if prompt is None:
        prompt = _count(billed.get("input_tokens"))
    if completion is None:
        completion = _count(billed.get("output_tokens"))
    return make_usage(prompt or 0, completion or 0, 0, _count(usage.get("cached_tokens")))


def native_details(
    tool_plan: str | None, citations: Sequence[Any], error: str | None = None
) -> dict[str, Any] | None:
    """What goes into ``provider_details["cohere"]``: the same for streamed and whole replies."""
    details: dict[str, Any] = {}
    if tool_plan:
        details["tool_plan"] = tool_plan
    if citations:
        details["citations"] = list(citations)
    if error:
        details["error"] = error
    return {PROVIDER: details} if details else None


def tool_call_from(call: Mapping[str, Any]) -> ToolCall:
    function = _mapping(call.get("function"))
    return ToolCall.model_validate(
        {
            "id": call.get("id") or "",
            "name": function.get("name") or "",
            "arguments": function.get("arguments") or "",
        }
    )


def response_from_wire(payload: Mapping[str, Any], model: str) -> CompletionResponse:
    """The JSON of a ``/v2/chat`` reply as a CompletionResponse."""
    reply = _mapping(payload.get("message"))
    texts: list[str] = []
    thinking: list[str] = []
    for item in reply.get("content") or []:
        kind = item.get("type")
        if kind == "text":
            texts.append(item.get("text") or "")
        elif kind == "thinking":
            thinking.append(item.get("thinking") or "")
    text = "".join(texts)
    calls = [tool_call_from(call) for call in reply.get("tool_calls") or []] or None
    # Unvalidated: every value is of its field's type by construction (see types.trusted).
    message = trusted(
        Message,
        role="assistant",
        content=text if (text or not calls) else None,
        tool_calls=calls,
        reasoning="".join(thinking) or None,
        provider_details=native_details(reply.get("tool_plan"), reply.get("citations") or []),
    )
    choice = trusted(
        Choice, index=0, message=message, finish_reason=finish_reason(payload.get("finish_reason"))
    )
    response_id = payload.get("id") or ""
    usage = usage_from(payload.get("usage"))
    if type(response_id) is str:
        return trusted(
            CompletionResponse,
            id=response_id,
            model=model,
            provider=PROVIDER,
            choices=[choice],
            usage=usage,
        )
    return CompletionResponse(  # an odd id: validated (and refused)
        id=response_id, model=model, provider=PROVIDER, choices=[choice], usage=usage
    )


def _int_status(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


_STATUS_WORDS = (
    ("rate", 429),
    ("too_many", 429),
    ("throttl", 429),
    ("overload", 529),
    ("unavailable", 503),
    ("internal", 500),
)


def stream_error_from(frame: Mapping[str, Any], model: str) -> ProviderError:
    """The error an in-stream error frame reports, mapped like an HTTP error of that status."""
    error = frame.get("error")
    nested = _mapping(error)
    message = (
        nested.get("message")
        or (error if isinstance(error, str) else None)
        or frame.get("message")
        or "Cohere reported an error inside the stream"
    )
    status = None
    for source in (nested, frame):
        for key in ("status", "status_code", "http_status", "code"):
            status = status or _int_status(source.get(key))
    if status is None:
        kind = " ".join(
            str(source.get(key, "")) for source in (nested, frame) for key in ("type", "code")
        )
        status = next((code for word, code in _STATUS_WORDS if word in kind.lower()), None)
    return make_provider_error(
        str(message),
        status=status,
        provider=PROVIDER,
        model=model,
        body=dict(frame),
        cls=None if status is not None else ServerError,
    )


_EVENT_TYPES = frozenset(
    {
        "message-start",
        "content-start",
        "content-delta",
        "content-end",
        "tool-plan-delta",
        "tool-call-start",
        "tool-call-delta",
        "tool-call-end",
        "citation-start",
        "citation-end",
        "message-end",
        "debug",
    }
)


def _is_error_frame(event: str, payload: Mapping[str, Any]) -> bool:
    kind = payload.get("type")
    if event == "error" or kind == "error" or "error" in payload:
        return True
    return kind is None and event not in _EVENT_TYPES


class SSEDecoder:
    """Server-sent events from text lines: ``(event name, data)`` per dispatched event."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def line(self, line: str) -> tuple[str, str] | None:
        if not line:
            return self.flush()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def flush(self) -> tuple[str, str] | None:
        event, data = self._event, self._data
        self._event, self._data = "", []
        return (event, "\n".join(data)) if data else None


def iter_sse(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    decoder = SSEDecoder()
    for line in lines:
        event = decoder.line(line)
        if event is not None:
            yield event
    event = decoder.flush()
    if event is not None:
        yield event


async def aiter_sse(lines: AsyncIterable[str]) -> AsyncIterator[tuple[str, str]]:
    decoder = SSEDecoder()
    async for line in lines:
        event = decoder.line(line)
        if event is not None:
            yield event
    event = decoder.flush()
    if event is not None:
        yield event


class StreamTranslator:
    """Cohere v2 stream events (event name and data text) → StreamChunks, one per stream.

    ``tool_plan`` and citations are collected and sent, whole, on the last chunk's
    ``provider_details``, which is where the non-streaming reply has them too.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = ""
        self.finished = False
        self._tool_indexes: dict[int, int] = {}
        self._tool_plan: list[str] = []
        self._citations: list[Any] = []

    def _chunk(self, **fields: Any) -> StreamChunk:
        return StreamChunk(id=self.id, model=self.model, provider=PROVIDER, **fields)

    def _tool_index(self, event_index: Any) -> int:
        key = event_index if isinstance(event_index, int) else len(self._tool_indexes)
        index = self._tool_indexes.get(key)
        if index is None:
            index = self._tool_indexes[key] = len(self._tool_indexes)
        return index

    def feed(self, event: str, data: str) -> StreamChunk | None:
        """The chunk for one event (None for events that carry nothing to show)."""
        if not data or data == "[DONE]":
            return None
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ProviderAPIError(
                f"Cohere sent a stream frame that is not JSON ({exc}): {data[:200]!r}",
                provider=PROVIDER,
                model=self.model,
            ) from exc
        if not isinstance(payload, Mapping):
            raise ProviderAPIError(
                f"Cohere sent a stream frame that is not an object: {data[:200]!r}",
                provider=PROVIDER,
                model=self.model,
            )
        if _is_error_frame(event, payload):
            raise stream_error_from(payload, self.model)
        return self.feed_event(payload.get("type") or event, payload)

    def feed_event(self, kind: str, payload: Mapping[str, Any]) -> StreamChunk | None:
        message = _mapping(_mapping(payload.get("delta")).get("message"))
        if kind == "content-delta" or kind == "content-start":
            content = _mapping(message.get("content"))
            text = content.get("text") or ""
            thinking = content.get("thinking") or None
            if not (text or thinking):
                return None
            return self._chunk(delta=text, reasoning_delta=thinking)
        if kind == "tool-call-start":
            call = _mapping(message.get("tool_calls"))
            function = _mapping(call.get("function"))
            delta = ToolCallDelta(
                index=self._tool_index(payload.get("index")),
                id=call.get("id"),
                name=function.get("name"),
                arguments_delta=function.get("arguments") or "",
            )
            return self._chunk(tool_call_deltas=[delta])
        if kind == "tool-call-delta":
            function = _mapping(_mapping(message.get("tool_calls")).get("function"))
            piece = function.get("arguments")
            if not piece:
                return None
            delta = ToolCallDelta(
                index=self._tool_index(payload.get("index")), arguments_delta=piece
            )
            return self._chunk(tool_call_deltas=[delta])
        if kind == "tool-plan-delta":
            if message.get("tool_plan"):
                self._tool_plan.append(message["tool_plan"])
            return None
        if kind == "citation-start":
            if message.get("citations"):
                self._citations.append(message["citations"])
            return None
        if kind == "message-start":
            self.id = payload.get("id") or self.id
            return None
        if kind == "message-end":
            self.finished = True
            self.id = payload.get("id") or self.id
            end = _mapping(payload.get("delta"))
            return self._chunk(
                finish_reason=finish_reason(end.get("finish_reason")) or "stop",
                usage=usage_from(end.get("usage")),
                provider_details=native_details(
                    "".join(self._tool_plan) or None, self._citations, end.get("error")
                ),
            )
        return None

    def end(self) -> None:
        """Call when the events run out: a stream without ``message-end`` was cut short."""
        if not self.finished:
            raise ProviderConnectionError(
                "the Cohere stream ended before its message-end event",
                provider=PROVIDER,
                model=self.model,
            )


def _decode_base64_floats(encoded: str) -> list[float]:
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def embedding_response_from(
    result: Any, model: str, embedding_type: str, input_type: str
) -> EmbeddingResponse:
    """The SDK's ``EmbedByTypeResponse`` as an EmbeddingResponse (every type as floats)."""
    embeddings = result.embeddings
    vectors: list[list[float]]
    if embedding_type == "float":
        vectors = [list(v) for v in embeddings.float_ or []]
    elif embedding_type == "base64":
        vectors = [_decode_base64_floats(v) for v in embeddings.base64 or []]
    else:
        vectors = [[float(x) for x in v] for v in getattr(embeddings, embedding_type) or []]
    meta = result.meta
    billed = meta.billed_units if meta is not None else None
    tokens = _count(billed.input_tokens) if billed is not None else None
    if tokens is None and meta is not None and meta.tokens is not None:
        tokens = _count(meta.tokens.input_tokens)
    response = EmbeddingResponse(
        embeddings=vectors,
        model=model,
        provider=PROVIDER,
        usage=TokenUsage(prompt_tokens=tokens or 0, total_tokens=tokens or 0),
        provider_details={"id": result.id, "input_type": input_type},
    )
    response.set_raw(result)
    return response
