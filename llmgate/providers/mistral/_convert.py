"""Pure translation between llmgate types and the ``mistralai`` SDK's calls and results.

Part 1 turns a CompletionRequest / EmbeddingRequest into SDK keyword arguments (plain
dicts the SDK validates itself); part 2 turns SDK results and stream chunks into llmgate
types. Streaming and non-streaming share :class:`ContentParts`, so they cannot drift.

Reasoning models (Magistral) answer with ``thinking`` content chunks: their text becomes
``reasoning``, and the native chunks (with any signature) are kept in
``message.provider_details["mistral"]["content"]`` so the turn can be sent back as is.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import struct
from collections.abc import Collection, Mapping
from typing import Any

from mistralai.client.types.basemodel import Unset

from ... import _structured
from ..._errors import drop_parameter
from ...exceptions import InvalidRequestError
from ...types import (
    Choice,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImagePart,
    Message,
    StreamChunk,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    make_usage,
    parse_tool_arguments,
    trusted,
)

PROVIDER = "mistral"


def given(value: Any) -> bool:
    """False for the SDK's ``Unset()`` sentinel and for None."""
    return value is not None and not isinstance(value, Unset)


# --------------------------------------------------------------------------- 1. requests


def _content_chunks(message: Message) -> str | list[dict[str, Any]]:
    if isinstance(message.content, str) or not message.images:
        return message.text
    chunks: list[dict[str, Any]] = []
    for part in message.content or []:
        if isinstance(part, ImagePart):
            url = part.data_uri()
            detail = part.image_url.detail if part.image_url is not None else None
            image: Any = {"url": url, "detail": detail} if detail else url
            chunks.append({"type": "image_url", "image_url": image})
        else:
            chunks.append({"type": "text", "text": part.text})
    return chunks


def _native_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        c.get("text", "")
        for c in content or ()
        if isinstance(c, Mapping) and c.get("type") == "text"
    )


def _assistant_message(message: Message) -> dict[str, Any]:
    native = (message.provider_details or {}).get(PROVIDER) or {}
    content: Any = native.get("content")
    # Native chunks (thinking + signature) are replayed only while the text still matches them.
    if not isinstance(content, list) or _native_text(content) != message.text:
        content = message.text
    out: dict[str, Any] = {"role": "assistant", "content": content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for call in message.tool_calls
        ]
    return out


def prefill_of(messages: list[dict[str, Any]]) -> str | None:
    """The text of the trailing prefix turn of translated messages, if there is one."""
    last = messages[-1] if messages else None
    if last is None or not last.get("prefix"):
        return None
    return _native_text(last.get("content"))


def messages_param(messages: list[Message]) -> list[dict[str, Any]]:
    """llmgate messages as Mistral chat messages; a trailing assistant turn is a prefix."""
    tool_names = {c.id: c.name for m in messages for c in m.tool_calls or ()}
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            out.append({"role": "system", "content": message.text})
        elif message.role == "user":
            out.append({"role": "user", "content": _content_chunks(message)})
        elif message.role == "assistant":
            out.append(_assistant_message(message))
        else:
            tool: dict[str, Any] = {
                "role": "tool",
                "content": _content_chunks(message),
                "tool_call_id": message.tool_call_id,
            }
            name = message.name or tool_names.get(message.tool_call_id or "")
            if name:
                tool["name"] = name
            out.append(tool)
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant" and "tool_calls" not in last:
        last["prefix"] = True
    return out


def tool_choice_param(choice: str | Mapping[str, Any]) -> str | dict[str, Any]:
    """``auto`` | ``none`` | ``required`` (Mistral's ``any``) | a function name or dict."""
    if isinstance(choice, str):
        if choice in ("auto", "none"):
            return choice
        if choice in ("required", "any"):
            return "any"
        return {"type": "function", "function": {"name": choice}}
    function = choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
    if isinstance(name, str) and name:
        return {"type": "function", "function": {"name": name}}
    kind = choice.get("type")
    if isinstance(kind, str) and kind in ("auto", "none", "required", "any"):
        return tool_choice_param(kind)
    raise InvalidRequestError(f"tool_choice {dict(choice)!r} names no function")


def response_format_param(response_format: Any) -> dict[str, Any]:
    """Mistral's native strict JSON-schema mode."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", _structured.schema_name(response_format))[:64]
    schema, strict = _structured.strict_or_plain(_structured.json_schema(response_format))
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": schema, "strict": strict},
    }


def chat_kwargs(request: CompletionRequest, model: str) -> dict[str, Any]:
    """The keyword arguments of ``chat.complete`` / ``chat.stream`` for a request."""
    kwargs: dict[str, Any] = {"model": model, "messages": messages_param(request.messages)}
    if request.max_tokens is not None:
        kwargs["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.top_p is not None:
        kwargs["top_p"] = request.top_p
    if request.stop:
        kwargs["stop"] = list(request.stop)
    if request.tools:
        kwargs["tools"] = [
            {"type": "function", "function": tool.function.model_dump(exclude_none=True)}
            for tool in request.tools
        ]
    if request.tool_choice is not None:
        kwargs["tool_choice"] = tool_choice_param(request.tool_choice)
    if request.parallel_tool_calls is not None:
        kwargs["parallel_tool_calls"] = request.parallel_tool_calls
    if request.response_format is not None:
        kwargs["response_format"] = response_format_param(request.response_format)
    if request.timeout is not None:
        kwargs["timeout_ms"] = max(1, int(request.timeout * 1000))
    extras = dict(request.extra_kwargs)
    if "seed" in extras and "random_seed" not in extras:
        extras["random_seed"] = extras.pop("seed")
    kwargs.update(extras)
    return kwargs


def drop_unaccepted(
    kwargs: dict[str, Any], accepted: Collection[str], *, strict: bool
) -> dict[str, Any]:
    """``kwargs`` without the keywords the SDK method does not take (warned, or refused)."""
    for name in [k for k in kwargs if k not in accepted]:
        _unsupported(name, strict=strict)
        del kwargs[name]
    return kwargs


_UNSUPPORTED_EMBEDDING_PARAMS = ("task_type", "title", "input_type", "truncate", "user")


def embedding_kwargs(request: EmbeddingRequest, model: str, *, strict: bool) -> dict[str, Any]:
    """The keyword arguments of ``embeddings.create``; options Mistral lacks are dropped."""
    for name in _UNSUPPORTED_EMBEDDING_PARAMS:
        if getattr(request, name) is not None:
            _unsupported(name, strict=strict)
    kwargs: dict[str, Any] = {"model": model, "inputs": list(request.input)}
    if request.dimensions is not None:
        kwargs["output_dimension"] = request.dimensions
    if request.encoding_format is not None:
        if request.encoding_format not in ("float", "base64"):
            raise InvalidRequestError(
                "mistral encoding_format must be 'float' or 'base64', "
                f"not {request.encoding_format!r}"
            )
        kwargs["encoding_format"] = request.encoding_format
    if request.timeout is not None:
        kwargs["timeout_ms"] = max(1, int(request.timeout * 1000))
    kwargs.update(request.extra_kwargs)
    return kwargs


def _unsupported(name: str, *, strict: bool) -> None:
    drop_parameter("mistral", repr(name), strict=strict)


# --------------------------------------------------------------------------- 2. results

_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "model_length": "length",
    "tool_calls": "tool_calls",
    "error": "error",
    "content_filter": "content_filter",
}


def finish_reason(native: Any) -> str | None:
    if not given(native) or not native:
        return None
    return _FINISH_REASONS.get(str(native), "stop")


def usage_from(info: Any) -> TokenUsage | None:
    if not given(info):
        return None
    extra = getattr(info, "additional_properties", None) or {}
    prompt_details = extra.get("prompt_tokens_details") or {}
    completion_details = extra.get("completion_tokens_details") or {}
    return make_usage(
        info.prompt_tokens or 0,
        info.completion_tokens or 0,
        info.total_tokens or 0,
        prompt_details.get("cached_tokens"),
        completion_details.get("reasoning_tokens"),
    )


def arguments_text(arguments: Any) -> str:
    """Tool-call arguments as a JSON string (the SDK gives a str or a dict)."""
    if isinstance(arguments, str):
        return arguments
    if not given(arguments):
        return ""
    return json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)


def _call_id(call: Any) -> str | None:
    value = getattr(call, "id", None)
    return value if isinstance(value, str) and value and value != "null" else None


class PrefillEcho:
    """Drops the prefill when the model repeats it at the start of its answer.

    Mistral answers a prefix turn with text that starts with the prefix itself; llmgate
    returns only the continuation, as for every vendor. Text is held back only while it
    could still be that echo; anything else passes through unchanged.
    """

    def __init__(self, prefill: str) -> None:
        self.prefill = prefill
        self.pending = ""
        self.done = not prefill

    def feed(self, text: str, *, end: bool = False) -> str:
        if self.done:
            return text
        self.pending += text
        if len(self.pending) < len(self.prefill):
            if self.prefill.startswith(self.pending) and not end:
                return ""
            return self._release(self.pending)
        if self.pending.startswith(self.prefill):
            return self._release(self.pending[len(self.prefill) :])
        return self._release(self.pending)

    def _release(self, text: str) -> str:
        self.done = True
        self.pending = ""
        return text


class ContentParts:
    """Text, reasoning and the native chunk list, built from content as it arrives.

    Streaming and non-streaming results both go through :meth:`add`, so the accumulated
    stream and the whole response carry the same text, reasoning and provider details.
    """

    def __init__(self, prefill: str | None = None) -> None:
        self.native: list[dict[str, Any]] = []
        self.thinking = False
        self._echo = PrefillEcho(prefill or "")

    def add(self, content: Any) -> tuple[str, str]:
        """Record one piece of content; returns its ``(text, reasoning)``."""
        if not given(content):
            return "", ""
        if isinstance(content, str):
            return self._text(content), ""
        texts: list[str] = []
        thoughts: list[str] = []
        for chunk in content:
            kind = getattr(chunk, "type", None)
            if kind == "text":
                texts.append(self._text(chunk.text))
            elif kind == "thinking":
                thought = "".join(
                    part.text for part in chunk.thinking if getattr(part, "type", None) == "text"
                )
                thoughts.append(thought)
                signature = chunk.signature if given(chunk.signature) else None
                self._append("thinking", thought, signature)
        return "".join(texts), "".join(thoughts)

    def finish(self) -> str:
        """Text held back while it could still be the echo of the prefill."""
        return self._text("", end=True)

    def _text(self, text: str, *, end: bool = False) -> str:
        text = self._echo.feed(text, end=end)
        self._append("text", text, None)
        return text

    def _append(self, kind: str, text: str, signature: str | None) -> None:
        if kind == "thinking":
            self.thinking = True
        last = self.native[-1] if self.native else None
        if last is not None and last["type"] == kind:
            if kind == "text":
                last["text"] += text
            else:
                last["thinking"][0]["text"] += text
                if signature is not None:
                    last["signature"] = signature
            return
        if not text and signature is None:
            return
        if kind == "text":
            self.native.append({"type": "text", "text": text})
        else:
            block: dict[str, Any] = {
                "type": "thinking",
                "thinking": [{"type": "text", "text": text}],
            }
            if signature is not None:
                block["signature"] = signature
            self.native.append(block)

    def details(self) -> dict[str, Any] | None:
        """Provider details for the message: only needed when there was thinking to replay."""
        if not self.thinking:
            return None
        return {PROVIDER: {"content": copy.deepcopy(self.native)}}


def response_from_sdk(result: Any, model: str, prefill: str | None = None) -> CompletionResponse:
    """A ``ChatCompletionResponse`` as a CompletionResponse (``prefill``: the prefix sent)."""
    choices = []
    for choice in result.choices:
        parts = ContentParts(prefill)
        message_in = choice.message
        text, reasoning = parts.add(message_in.content if message_in is not None else None)
        text += parts.finish()
        calls = [
            ToolCall(
                id=_call_id(call) or f"call_{i}",
                name=call.function.name,
                arguments=parse_tool_arguments(arguments_text(call.function.arguments)),
            )
            for i, call in enumerate(
                message_in.tool_calls
                if message_in is not None and given(message_in.tool_calls)
                else ()
            )
        ] or None
        # Unvalidated: the SDK validated its response, so every value has its field's type
        # (and llmgate's validators, built on first use, stay unbuilt for a plain call).
        message = trusted(
            Message,
            role="assistant",
            content=text if (text or not calls) else None,
            tool_calls=calls,
            reasoning=reasoning or None,
            provider_details=parts.details(),
        )
        choices.append(
            trusted(
                Choice,
                index=choice.index,
                message=message,
                finish_reason=finish_reason(choice.finish_reason),
            )
        )
    response = trusted(
        CompletionResponse,
        id=result.id,
        model=result.model or model,
        provider=PROVIDER,
        choices=choices,
        usage=usage_from(result.usage) or make_usage(),
    )
    response.set_raw(result)
    return response


class StreamTranslator:
    """Turns ``CompletionChunk``s into StreamChunks (tool calls keyed by id, then index)."""

    def __init__(self, model: str, prefill: str | None = None) -> None:
        self.model = model
        self.parts = ContentParts(prefill)
        self.id = ""
        self.finished = False
        self._slots_by_id: dict[str, int] = {}
        self._slots_by_index: dict[int, int] = {}
        self._calls = 0

    def _slot(self, call: Any) -> tuple[int, bool]:
        """Our index for a tool call, and whether it is new in this stream."""
        call_id = _call_id(call)
        index = call.index if isinstance(getattr(call, "index", None), int) else 0
        if call_id is not None and call_id in self._slots_by_id:
            return self._slots_by_id[call_id], False
        if call_id is None and index in self._slots_by_index:
            return self._slots_by_index[index], False
        slot = self._calls
        self._calls += 1
        if call_id is not None:
            self._slots_by_id[call_id] = slot
        self._slots_by_index[index] = slot
        return slot, True

    def feed(self, chunk: Any) -> StreamChunk | None:
        """The StreamChunk for one SDK chunk, or None when it carries nothing."""
        text = reasoning = ""
        deltas: list[ToolCallDelta] = []
        finish: str | None = None
        if chunk.choices:
            choice = chunk.choices[0]
            delta = choice.delta
            text, reasoning = self.parts.add(delta.content)
            if given(delta.tool_calls):
                for call in delta.tool_calls:
                    slot, new = self._slot(call)
                    deltas.append(
                        ToolCallDelta(
                            index=slot,
                            id=_call_id(call) if new else None,
                            name=call.function.name or None,
                            arguments_delta=arguments_text(call.function.arguments),
                        )
                    )
            finish = finish_reason(choice.finish_reason)
        if finish:
            text += self.parts.finish()
            self.finished = True
        usage = usage_from(chunk.usage)
        self.id = chunk.id or self.id
        self.model = chunk.model or self.model
        if not (text or reasoning or deltas or finish or usage):
            return None
        return StreamChunk(
            id=self.id,
            model=self.model,
            provider=PROVIDER,
            delta=text,
            reasoning_delta=reasoning or None,
            tool_call_deltas=deltas or None,
            finish_reason=finish,
            usage=usage,
            provider_details=self.parts.details() if finish else None,
        )

    def end(self) -> StreamChunk | None:
        """A last chunk with held-back text, when the stream ended without a finish reason."""
        text = "" if self.finished else self.parts.finish()
        if not text:
            return None
        return StreamChunk(id=self.id, model=self.model, provider=PROVIDER, delta=text)


def embedding_response_from_sdk(result: Any, model: str) -> EmbeddingResponse:
    rows = sorted(result.data, key=lambda row: row.index or 0)
    response = EmbeddingResponse(
        embeddings=[list(row.embedding or ()) for row in rows],
        model=result.model or model,
        provider=PROVIDER,
        usage=usage_from(result.usage) or TokenUsage(),
    )
    response.set_raw(result)
    return response


def embedding_response_from_json(body: str, model: str) -> EmbeddingResponse:
    """An embeddings answer with base64 vectors (little-endian float32), which the SDK
    cannot validate: it types every embedding as a list of floats."""
    payload = json.loads(body)
    rows = sorted(payload.get("data") or [], key=lambda row: row.get("index") or 0)
    vectors = []
    for row in rows:
        value = row.get("embedding")
        if isinstance(value, str):
            raw = base64.b64decode(value)
            value = list(struct.unpack(f"<{len(raw) // 4}f", raw))
        vectors.append([float(x) for x in value or ()])
    usage = payload.get("usage") or {}
    response = EmbeddingResponse(
        embeddings=vectors,
        model=payload.get("model") or model,
        provider=PROVIDER,
        usage=TokenUsage(
            prompt_tokens=usage.get("prompt_tokens") or 0,
            total_tokens=usage.get("total_tokens") or 0,
        ),
    )
    response.set_raw(payload)
    return response
