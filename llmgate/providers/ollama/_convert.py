"""Pure translation between llmgate's types and Ollama's chat and embed calls.

No SDK import here: requests become the keyword arguments of ``ollama.Client.chat`` /
``embed``, and results are read from the SDK's pydantic responses by attribute.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ... import _structured
from ..._errors import drop_parameter as drop_vendor_parameter
from ..._images import url_not_supported
from ...exceptions import InvalidRequestError, ProviderAPIError
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
    text_chunk,
    trusted,
)

if TYPE_CHECKING:
    from ollama import ChatResponse, EmbedResponse
    from ollama import Message as OllamaMessage

PROVIDER = "ollama"

# Keyword arguments of Client.chat / Client.embed that extra_kwargs may set directly.
CHAT_PARAMETERS = frozenset({"think", "logprobs", "top_logprobs", "format", "keep_alive"})
EMBED_PARAMETERS = frozenset({"keep_alive"})
# Model options (the SDK's ``ollama.Options`` fields, plus ``min_p``, which the server takes):
# an extra keyword with one of these names goes into ``options``.
OPTION_NAMES = frozenset(
    {
        "embedding_only", "f16_kv", "frequency_penalty", "logits_all", "low_vram", "main_gpu",
        "min_p", "mirostat", "mirostat_eta", "mirostat_tau", "num_batch", "num_ctx", "num_gpu",
        "num_keep", "num_predict", "num_thread", "numa", "penalize_newline", "presence_penalty",
        "repeat_last_n", "repeat_penalty", "seed", "stop", "temperature", "tfs_z", "top_k",
        "top_p", "typical_p", "use_mlock", "use_mmap", "vocab_only",
    }
)  # fmt: skip

_EFFORT_TO_THINK: dict[str, bool | str] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}
_KEPT_AT_TOP = frozenset({"type", "$defs", "items", "required", "properties", "title"})
_KEPT_IN_PROPERTY = frozenset({"type", "items", "description", "enum", "title"})
_TRUNCATE_VALUES = {"true": True, "end": True, "false": False, "none": False}


# --------------------------------------------------------------------------- requests


def drop_parameter(name: str, reason: str, *, strict: bool) -> None:
    """A parameter Ollama cannot honour: a warning, or an error under ``strict_params``."""
    drop_vendor_parameter("ollama", name, reason, strict=strict)


def normalise_tool_choice(choice: str | Mapping[str, Any] | None) -> str | tuple[str, str] | None:
    """``"auto"``, ``"none"``, ``"required"``, ``("named", name)`` or None."""
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice in ("auto", "none", "required"):
            return choice
        if choice == "any":
            return "required"
        return ("named", choice)
    function = choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
    if isinstance(name, str) and name:
        return ("named", name)
    kind = choice.get("type")
    if kind in ("auto", "none", "required", "any"):
        return normalise_tool_choice(str(kind))
    raise InvalidRequestError(f"unsupported tool_choice {dict(choice)!r}")


def tools_to_ollama(request: CompletionRequest, *, strict: bool) -> list[dict[str, Any]] | None:
    """Tools as Ollama's JSON-schema dicts; None when there are none (or tool_choice="none")."""
    if not request.tools:
        return None
    choice = normalise_tool_choice(request.tool_choice)
    if choice == "none":
        return None
    names = {tool.name for tool in request.tools}
    if isinstance(choice, tuple):
        if choice[1] not in names:
            raise InvalidRequestError(
                f"tool_choice names {choice[1]!r}, which is not among the tools: {sorted(names)}"
            )
        drop_parameter(
            f"tool_choice={choice[1]!r}",
            "Ollama cannot force a particular tool; the model may call any tool or none",
            strict=strict,
        )
    elif choice == "required":
        drop_parameter(
            "tool_choice='required'",
            "Ollama cannot force a tool call; the model may answer with text",
            strict=strict,
        )
    if request.parallel_tool_calls is False:
        drop_parameter(
            "parallel_tool_calls=False",
            "Ollama cannot limit a turn to one tool call",
            strict=strict,
        )
    tools = []
    for tool in request.tools:
        lost = schema_losses(tool.function.parameters)
        if lost:
            drop_parameter(
                f"these schema keywords of tool {tool.name!r}: {', '.join(lost)}",
                "the ollama SDK sends only type/description/enum/items of each parameter",
                strict=strict,
            )
        function: dict[str, Any] = {"name": tool.function.name}
        if tool.function.description:
            function["description"] = tool.function.description
        function["parameters"] = tool.function.parameters
        tools.append({"type": "function", "function": function})
    return tools


def schema_losses(parameters: Mapping[str, Any]) -> list[str]:
    """The parts of a tool's parameter schema the SDK's ``ollama.Tool`` model drops.

    It keeps ``type``, ``required``, ``items``, ``$defs`` and ``properties`` at the top, and
    ``type``, ``items``, ``description`` and ``enum`` of each property (titles are cosmetic).
    """
    lost = [key for key in parameters if key not in _KEPT_AT_TOP]
    properties = parameters.get("properties")
    if isinstance(properties, Mapping):
        for name, schema in properties.items():
            if isinstance(schema, Mapping):
                lost.extend(f"{name}.{key}" for key in schema if key not in _KEPT_IN_PROPERTY)
    return lost


def image_urls(request: CompletionRequest) -> list[str]:
    return [
        part.image_url.url
        for message in request.messages
        for part in message.images
        if part.image_url is not None
    ]


def image_data(part: ImagePart, downloaded: Mapping[str, bytes]) -> bytes:
    if part.image_bytes is not None:
        return part.image_bytes.raw_bytes()
    assert part.image_url is not None
    data = downloaded.get(part.image_url.url)
    if data is None:
        raise url_not_supported(PROVIDER, "")
    return data


def messages_to_ollama(
    messages: Sequence[Message], downloaded: Mapping[str, bytes] | None = None
) -> list[dict[str, Any]]:
    """Ollama chat messages. A tool result names its tool (found by the call id)."""
    tool_names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for message in messages:
        item: dict[str, Any] = {"role": message.role}
        text = message.text
        if text:
            item["content"] = text
        images = message.images
        if images:
            item["images"] = [image_data(part, downloaded or {}) for part in images]
        if message.role == "assistant":
            if message.reasoning:
                item["thinking"] = message.reasoning
            if message.tool_calls:
                item["tool_calls"] = [
                    {"function": {"name": call.name, "arguments": call.arguments}}
                    for call in message.tool_calls
                ]
                tool_names.update((call.id, call.name) for call in message.tool_calls)
        elif message.role == "tool":
            name = tool_names.get(message.tool_call_id or "") or message.name
            if name:
                item["tool_name"] = name
        out.append(item)
    return out


def think_setting(effort: Any) -> bool | str:
    """``think=`` from a ``reasoning_effort`` value (or a bool passed as is)."""
    if isinstance(effort, bool):
        return effort
    value = _EFFORT_TO_THINK.get(str(effort).lower())
    if value is None:
        raise InvalidRequestError(
            f"reasoning_effort={effort!r} is not one of {sorted(_EFFORT_TO_THINK)}"
        )
    return value


def split_extra_kwargs(
    extra: Mapping[str, Any], allowed: frozenset[str], *, strict: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(call keyword arguments, options)`` from extra_kwargs; anything else is dropped."""
    call: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for name, value in extra.items():
        if name == "options":
            if not isinstance(value, Mapping):
                raise InvalidRequestError("options must be a mapping of Ollama model options")
            options.update(value)
        elif name in allowed:
            call[name] = value
        elif name in OPTION_NAMES:
            options[name] = value
        else:
            drop_parameter(
                repr(name), "it is neither a request field nor a model option", strict=strict
            )
    return call, options


def chat_kwargs(
    request: CompletionRequest,
    model: str,
    *,
    downloaded: Mapping[str, bytes] | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """Keyword arguments of ``Client.chat`` for this request (``stream`` excepted)."""
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": messages_to_ollama(request.messages, downloaded),
    }
    tools = tools_to_ollama(request, strict=strict)
    if tools:
        kwargs["tools"] = tools
    if request.response_format is not None:
        kwargs["format"] = _structured.json_schema(request.response_format)
    options: dict[str, Any] = {}
    if request.max_tokens is not None:
        options["num_predict"] = request.max_tokens
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.top_p is not None:
        options["top_p"] = request.top_p
    if request.stop:
        options["stop"] = list(request.stop)
    extra = dict(request.extra_kwargs)
    effort = extra.pop("reasoning_effort", None)
    if effort is not None and "think" not in extra:
        extra["think"] = think_setting(effort)
    call, extra_options = split_extra_kwargs(extra, CHAT_PARAMETERS, strict=strict)
    kwargs.update(call)
    options.update(extra_options)
    if options:
        kwargs["options"] = options
    return kwargs


def parse_truncate(value: str | None) -> bool | None:
    if value is None:
        return None
    parsed = _TRUNCATE_VALUES.get(value.strip().lower())
    if parsed is None:
        raise InvalidRequestError(f"ollama takes truncate='true' or 'false', not {value!r}")
    return parsed


def embed_kwargs(request: EmbeddingRequest, model: str, *, strict: bool = False) -> dict[str, Any]:
    """Keyword arguments of ``Client.embed`` for this request."""
    kwargs: dict[str, Any] = {"model": model, "input": list(request.input)}
    truncate = parse_truncate(request.truncate)
    if truncate is not None:
        kwargs["truncate"] = truncate
    if request.dimensions is not None:
        kwargs["dimensions"] = request.dimensions
    for name in ("task_type", "title", "input_type", "user"):
        if getattr(request, name) is not None:
            drop_parameter(f"{name}=", "Ollama embeddings take no such parameter", strict=strict)
    if request.encoding_format not in (None, "float", "base64"):
        drop_parameter(
            f"encoding_format={request.encoding_format!r}",
            "vectors always come back as floats",
            strict=strict,
        )
    call, options = split_extra_kwargs(request.extra_kwargs, EMBED_PARAMETERS, strict=strict)
    kwargs.update(call)
    if options:
        kwargs["options"] = options
    return kwargs


# --------------------------------------------------------------------------- results


def tool_call_id(index: int, name: str, arguments: Mapping[str, Any]) -> str:
    """A stable id for a call Ollama returned without one (same streamed or not)."""
    key = json.dumps([index, name, arguments], sort_keys=True, ensure_ascii=False, default=str)
    return "call_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def tool_calls_from(
    calls: Iterable[OllamaMessage.ToolCall] | None, start: int = 0
) -> list[ToolCall]:
    result = []
    for offset, call in enumerate(calls or ()):
        arguments = dict(call.function.arguments or {})
        index = start + offset
        result.append(
            ToolCall(
                id=tool_call_id(index, call.function.name, arguments),
                name=call.function.name,
                arguments=arguments,
            )
        )
    return result


def finish_reason(done_reason: str | None, has_tool_calls: bool) -> str:
    if done_reason == "length":
        return "length"
    return "tool_calls" if has_tool_calls else "stop"


def usage_from(result: ChatResponse | EmbedResponse) -> TokenUsage:
    return make_usage(result.prompt_eval_count or 0, result.eval_count or 0)


_DETAIL_FIELDS = (
    "done_reason",
    "created_at",
    "total_duration",
    "load_duration",
    "prompt_eval_duration",
    "eval_duration",
)


def response_details(result: ChatResponse) -> dict[str, Any]:
    """Ollama's timings and raw done reason (response-level provider_details)."""
    return {
        name: getattr(result, name) for name in _DETAIL_FIELDS if getattr(result, name) is not None
    }


def response_from_chat(
    result: ChatResponse, *, model: str, provider: str = PROVIDER, response_id: str = ""
) -> CompletionResponse:
    calls = tool_calls_from(result.message.tool_calls)
    text = result.message.content or ""
    # Unvalidated: the SDK validated its ChatResponse, so every value has its field's type.
    message = trusted(
        Message,
        role="assistant",
        content=text if (text or not calls) else None,
        tool_calls=calls or None,
        reasoning=result.message.thinking or None,
    )
    response = _whole_response(
        message,
        model=result.model or model,
        provider=provider,
        finish=finish_reason(result.done_reason, bool(calls)),
        usage=usage_from(result),
        details=response_details(result),
        response_id=response_id,
    )
    response.set_raw(result)
    return response


def _whole_response(
    message: Message,
    *,
    model: str,
    provider: str,
    finish: str,
    usage: TokenUsage,
    details: dict[str, Any],
    response_id: str = "",
) -> CompletionResponse:
    """A whole reply, built unvalidated from values that already have their fields' types."""
    return trusted(
        CompletionResponse,
        id=response_id or new_response_id(),
        model=model,
        provider=provider,
        choices=[trusted(Choice, index=0, message=message, finish_reason=finish)],
        usage=usage,
        provider_details={provider: details},
    )


_PLAIN_REPLY_KEYS = frozenset(
    {
        "model",
        "created_at",
        "message",
        "done",
        "done_reason",
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    }
)
_PLAIN_REPLY_INTS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)


def _counters_plain(part: dict[str, Any], texts: tuple[str, ...]) -> bool:
    """Whether the optional text fields ``texts`` and the counters are absent, null, or of
    the exact type the SDK's model keeps unchanged."""
    for name in texts:
        if part.get(name) is not None and type(part[name]) is not str:
            return False
    for name in _PLAIN_REPLY_INTS:
        if part.get(name) is not None and type(part[name]) is not int:
            return False
    return True


def plain_reply(part: Any) -> tuple[str, str] | None:
    """``(text, model)`` of a whole chat reply (its parsed JSON) that holds only text and
    the usual counters; None for any other reply, which goes through the SDK's own
    ``ChatResponse``. A reply passes only when that model's validation would accept it and
    keep its values unchanged, so both ways give the same result."""
    if type(part) is not dict or part.get("done") is not True:
        return None
    if not part.keys() <= _PLAIN_REPLY_KEYS:
        return None
    message = part.get("message")
    if type(message) is not dict or len(message) != 2:
        return None
    content, model = message.get("content"), part.get("model")
    if type(content) is not str or message.get("role") != "assistant" or type(model) is not str:
        return None
    if not _counters_plain(part, ("created_at", "done_reason")):
        return None
    return content, model


def response_from_plain(
    part: dict[str, Any], text: str, model: str, *, provider: str = PROVIDER
) -> CompletionResponse:
    """What :func:`response_from_chat` gives for a reply :func:`plain_reply` accepted;
    ``raw`` (the SDK's ``ChatResponse``) is built when read."""
    response = _whole_response(
        trusted(Message, role="assistant", content=text),
        model=model,
        provider=provider,
        finish=finish_reason(part.get("done_reason"), False),
        usage=make_usage(part.get("prompt_eval_count") or 0, part.get("eval_count") or 0),
        details={name: part[name] for name in _DETAIL_FIELDS if part.get(name) is not None},
    )
    response.set_raw(factory=lambda: _sdk_chat_response(part))
    return response


def _sdk_chat_response(part: dict[str, Any]) -> ChatResponse:
    import ollama

    return ollama.ChatResponse(**part)


def new_response_id() -> str:
    return f"ollama-{os.urandom(16).hex()}"  # 32 random hex digits, as uuid4().hex


_PLAIN_LINE_KEYS = frozenset({"model", "created_at", "message", "done"})


def plain_text(part: Any) -> str | None:
    """The text of a stream line (its parsed JSON) that carries nothing but a text delta, as
    almost every line does; None for any other line, which goes through the SDK's own
    ``ChatResponse``. A line passes only when that model's validation would accept it and
    keep these values unchanged, so both ways give the same chunk."""
    if type(part) is not dict or part.get("done") is not False:
        return None
    if not part.keys() <= _PLAIN_LINE_KEYS:
        return None
    message = part.get("message")
    if type(message) is not dict or len(message) != 2:
        return None
    content = message.get("content")
    if type(content) is not str or type(message.get("role")) is not str:
        return None
    model = part.get("model")
    created = part.get("created_at")
    if (model is None or type(model) is str) and (created is None or type(created) is str):
        return content
    return None


class StreamTranslator:
    """NDJSON ``ChatResponse`` pieces → StreamChunks; the ``done`` line brings finish and usage."""

    def __init__(self, model: str, provider: str = PROVIDER, response_id: str = "") -> None:
        self.model = model
        self.provider = provider
        self.response_id = response_id or new_response_id()
        self.tool_calls = 0
        self.done = False

    def text(self, text: str, model: str | None) -> StreamChunk | None:
        """The chunk of a line :func:`plain_text` read (as :meth:`feed` makes it)."""
        if not text:
            return None
        return text_chunk(self.response_id, model or self.model, self.provider, text)

    def feed(self, part: ChatResponse) -> StreamChunk | None:
        message = part.message
        deltas = None
        if message.tool_calls:
            calls = tool_calls_from(message.tool_calls, start=self.tool_calls)
            deltas = [
                ToolCallDelta(
                    index=self.tool_calls + offset,
                    id=call.id,
                    name=call.name,
                    arguments_delta=call.arguments_json,
                )
                for offset, call in enumerate(calls)
            ]
            self.tool_calls += len(calls)
        text = message.content or ""
        thinking = message.thinking or None
        finish = None
        usage = None
        if part.done:
            self.done = True
            finish = finish_reason(part.done_reason, self.tool_calls > 0)
            usage = usage_from(part)
        if not (text or thinking or deltas or finish):
            return None
        if thinking is None and deltas is None and finish is None:  # the commonest chunk
            return text_chunk(self.response_id, part.model or self.model, self.provider, text)
        return trusted(
            StreamChunk,
            id=self.response_id,
            model=part.model or self.model,
            provider=self.provider,
            delta=text,
            reasoning_delta=thinking,
            tool_call_deltas=deltas,
            finish_reason=finish,
            usage=usage,
        )


def _check_count(vectors: list[list[float]], expected: int, model: str, provider: str) -> None:
    if len(vectors) != expected:
        raise ProviderAPIError(
            f"ollama returned {len(vectors)} embeddings for {expected} inputs",
            provider=provider,
            model=model,
        )


def embedding_response(
    result: EmbedResponse, *, model: str, expected: int, provider: str = PROVIDER
) -> EmbeddingResponse:
    vectors = [list(map(float, vector)) for vector in result.embeddings]
    _check_count(vectors, expected, model, provider)
    # Unvalidated: the SDK validated its EmbedResponse, and every vector is a new float list.
    response = trusted(
        EmbeddingResponse,
        embeddings=vectors,
        model=result.model or model,
        provider=provider,
        usage=usage_from(result),
    )
    response.set_raw(result)
    return response


_EMBED_STRS = ("model", "created_at", "done_reason")
_FLOATS = frozenset({float})
_NUMBERS = frozenset({float, int})


def plain_embeddings(part: Any) -> list[list[float]] | None:
    """The vectors of an embed reply (its parsed JSON) whose fields the SDK's
    ``EmbedResponse`` would accept and keep unchanged (ints in a vector become floats, as
    there); None for any other reply, which goes through that model."""
    if type(part) is not dict:
        return None
    vectors = part.get("embeddings")
    if type(vectors) is not list:
        return None
    if not _counters_plain(part, _EMBED_STRS):
        return None
    if part.get("done") is not None and type(part["done"]) is not bool:
        return None
    out: list[list[float]] = []
    for vector in vectors:
        if type(vector) is not list:
            return None
        kinds = set(map(type, vector))
        if kinds <= _FLOATS:
            out.append(vector)
        elif kinds <= _NUMBERS:
            try:
                out.append(list(map(float, vector)))
            except OverflowError:
                return None
        else:
            return None
    return out


def embedding_response_from_wire(
    part: dict[str, Any],
    vectors: list[list[float]],
    *,
    model: str,
    expected: int,
    provider: str = PROVIDER,
) -> EmbeddingResponse:
    """What :func:`embedding_response` gives for a reply :func:`plain_embeddings` read;
    ``raw`` (the SDK's ``EmbedResponse``) is built when read."""
    _check_count(vectors, expected, model, provider)
    response = trusted(
        EmbeddingResponse,
        embeddings=vectors,
        model=part.get("model") or model,
        provider=provider,
        usage=make_usage(part.get("prompt_eval_count") or 0, part.get("eval_count") or 0),
    )
    response.set_raw(factory=lambda: _sdk_embed_response(part))
    return response


def _sdk_embed_response(part: dict[str, Any]) -> EmbedResponse:
    import ollama

    return ollama.EmbedResponse(**part)
