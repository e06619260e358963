"""Bedrock translation: llmgate requests to Converse / InvokeModel arguments, results back.

Pure functions over plain dicts (boto3 speaks dicts), so this module imports no SDK.
Non-streaming and streaming results share the part mappers below (finish reasons, usage,
reasoning blocks, tool calls), so the two cannot drift apart.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import from_json

from ... import _structured
from ..._images import sniff_mime_type, url_not_supported
from ...exceptions import InvalidRequestError, ProviderConnectionError
from ...types import (
    Choice,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    ImagePart,
    Message,
    StreamChunk,
    TextPart,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    make_usage,
    trusted,
)

PROVIDER = "bedrock"

# (parameter name, why it was dropped) -> warn, or raise under strict_params.
Unsupported = Callable[[str, str], None]
# An image URL -> (raw bytes, mime type); only given when the caller allowed downloads.
ImageLoader = Callable[[str], "tuple[bytes, str]"]

_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_model_output": "error",
    "malformed_tool_use": "error",
}

_SCHEMA_NAME = re.compile(r"[^A-Za-z0-9_-]")


# =========================================================================== 1. requests


@dataclass
class ConverseCall:
    """The keyword arguments of one converse / converse_stream call.

    ``structured_tool`` names the tool that carries structured output when the installed
    botocore has no ``outputConfig`` (or the caller chose tool mode): its input is the answer.
    """

    kwargs: dict[str, Any]
    structured_tool: str | None = None


def converse_call(
    request: CompletionRequest,
    model: str,
    *,
    unsupported: Unsupported,
    image_loader: ImageLoader | None = None,
    native_structured: bool = True,
) -> ConverseCall:
    """The Converse arguments for a request (``model`` is the Bedrock model id)."""
    system, messages = convert_messages(request.messages, model, image_loader)
    kwargs: dict[str, Any] = {"modelId": model, "messages": messages}
    if system:
        kwargs["system"] = system
    inference = inference_config(request)
    if inference:
        kwargs["inferenceConfig"] = inference
    structured_tool: str | None = None
    tools = [tool_spec(tool.function.model_dump()) for tool in request.tools or []]
    choice = normalise_tool_choice(request.tool_choice)
    if request.response_format is not None:
        schema = bedrock_schema(request.response_format)
        name = _SCHEMA_NAME.sub("_", _structured.schema_name(request.response_format))[:64]
        if native_structured:
            kwargs["outputConfig"] = output_config(schema, name)
        else:
            structured_tool = name or "response"
            tools.append(
                {
                    "toolSpec": {
                        "name": structured_tool,
                        "description": "Give the final answer as this tool's input.",
                        "inputSchema": {"json": schema},
                    }
                }
            )
            choice = ("named", structured_tool)
    config = tool_config(tools, choice, messages, unsupported)
    if config is not None:
        kwargs["toolConfig"] = config
    if request.parallel_tool_calls is False:
        unsupported(
            "parallel_tool_calls",
            "Converse has no switch to turn off parallel tool calls",
        )
    for key, value in request.extra_kwargs.items():
        current = kwargs.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            kwargs[key] = {**current, **value}
        else:
            kwargs[key] = value
    return ConverseCall(kwargs=kwargs, structured_tool=structured_tool)


def inference_config(request: CompletionRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.max_tokens is not None:
        config["maxTokens"] = request.max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop:
        config["stopSequences"] = list(request.stop)
    return config


def convert_messages(
    messages: Iterable[Message], model: str, image_loader: ImageLoader | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(system blocks, turns)``. Adjacent turns of one role are merged into one turn, as
    Converse requires alternating roles (so consecutive tool results become one user turn).
    """
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            if message.text:
                system.append({"text": message.text})
            continue
        if message.role == "assistant":
            role, blocks = "assistant", assistant_blocks(message, model, image_loader)
        elif message.role == "tool":
            role, blocks = "user", [tool_result_block(message, model, image_loader)]
        else:
            role, blocks = "user", content_blocks(message.content, model, image_loader)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if turns and turns[-1]["role"] == "assistant":
        _trim_prefill(turns[-1]["content"])
        if not turns[-1]["content"]:
            turns.pop()
    return system, turns


def _trim_prefill(blocks: list[dict[str, Any]]) -> None:
    # Models behind Converse refuse a final assistant turn that ends in whitespace.
    last = blocks[-1]
    if "text" in last:
        trimmed = last["text"].rstrip()
        if trimmed:
            last["text"] = trimmed
        else:
            blocks.pop()


def content_blocks(
    content: str | list[TextPart | ImagePart] | None,
    model: str,
    image_loader: ImageLoader | None = None,
) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            if part.text:
                blocks.append({"text": part.text})
        else:
            blocks.append(image_block(part, model, image_loader))
    return blocks


def image_block(
    part: ImagePart, model: str, image_loader: ImageLoader | None = None
) -> dict[str, Any]:
    """An image as Converse takes it: raw bytes and a format (boto3 base64-encodes them)."""
    if part.image_bytes is not None:
        raw = part.image_bytes.raw_bytes()
        declared = part.image_bytes.mime_type
    else:
        assert part.image_url is not None
        if image_loader is None:
            raise url_not_supported(PROVIDER, model)
        raw, declared = image_loader(part.image_url.url)
    mime = sniff_mime_type(raw, declared.lower())
    image_format = _IMAGE_FORMATS.get(mime)
    if image_format is None:
        raise InvalidRequestError(f"Bedrock accepts png, jpeg, gif and webp images, not {mime!r}")
    return {"image": {"format": image_format, "source": {"bytes": raw}}}


def assistant_blocks(
    message: Message, model: str, image_loader: ImageLoader | None = None
) -> list[dict[str, Any]]:
    """Reasoning (only the signed blocks Bedrock gave us), text, then tool calls."""
    details = (message.provider_details or {}).get(PROVIDER) or {}
    blocks = [reasoning_block_to_wire(entry) for entry in details.get("reasoning_content", [])]
    blocks.extend(content_blocks(message.content, model, image_loader))
    for call in message.tool_calls or []:
        blocks.append(
            {"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.arguments}}
        )
    return blocks


def tool_result_block(
    message: Message, model: str, image_loader: ImageLoader | None = None
) -> dict[str, Any]:
    return {
        "toolResult": {
            "toolUseId": message.tool_call_id,
            "content": content_blocks(message.content, model, image_loader),
        }
    }


def tool_spec(function: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": function["name"],
        "inputSchema": {"json": function.get("parameters") or {"type": "object"}},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    if function.get("strict") is not None:
        spec["strict"] = bool(function["strict"])
    return {"toolSpec": spec}


def normalise_tool_choice(choice: str | Mapping[str, Any] | None) -> Any:
    """``None | "auto" | "none" | "required" | ("named", name)`` from any accepted shape."""
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice in ("auto", "none", "required"):
            return choice
        if choice == "any":
            return "required"
        return ("named", choice)
    function = choice.get("function")
    if isinstance(function, Mapping) and function.get("name"):
        return ("named", str(function["name"]))
    if choice.get("name"):
        return ("named", str(choice["name"]))
    kind = choice.get("type")
    if kind in ("auto", "none", "required", "any"):
        return normalise_tool_choice(str(kind))
    raise InvalidRequestError(f"unsupported tool_choice {dict(choice)!r}")


def tool_config(
    tools: list[dict[str, Any]],
    choice: Any,
    turns: list[dict[str, Any]],
    unsupported: Unsupported,
) -> dict[str, Any] | None:
    """The toolConfig, or None.

    Converse has no "none" choice: the tools are left out, unless the conversation already
    holds tool calls (Converse then insists on a toolConfig), in which case they are sent
    with no toolChoice and a warning says "none" could not be enforced.
    """
    if not tools:
        return None
    if choice == "none":
        if not _has_tool_blocks(turns):
            return None
        unsupported(
            "tool_choice",
            "'none' cannot be enforced: the conversation holds tool calls, so Converse "
            "needs the tools declared and may call them",
        )
        return {"tools": tools}
    config: dict[str, Any] = {"tools": tools}
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, tuple):
        config["toolChoice"] = {"tool": {"name": choice[1]}}
    return config


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any(
        "toolUse" in block or "toolResult" in block
        for message in messages
        for block in message["content"]
    )


def bedrock_schema(response_format: Any) -> dict[str, Any]:
    """The schema Bedrock's structured output takes: no ``$ref``; closed objects where the
    schema has no free-form maps (a ``dict[str, X]`` field keeps its open object)."""
    schema = _structured.inline_refs(_structured.json_schema(response_format))
    return schema if _structured.has_open_maps(schema) else _structured.strict_schema(schema)


def output_config(schema: dict[str, Any], name: str) -> dict[str, Any]:
    definition: dict[str, Any] = {"schema": json.dumps(schema), "name": name or "response"}
    if isinstance(schema.get("description"), str):
        definition["description"] = schema["description"]
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": definition}}}


# --------------------------------------------------------------------------- embeddings

TITAN = "titan"
COHERE = "cohere"
EMBEDDING_BATCH_LIMITS = {TITAN: 1, COHERE: 96}

# invoke_model's own parameters; any other extra_kwargs key goes into the JSON body.
INVOKE_MODEL_PARAMS = frozenset(
    {
        "accept",
        "contentType",
        "trace",
        "guardrailIdentifier",
        "guardrailVersion",
        "performanceConfigLatency",
        "serviceTier",
        "requestMetadata",
        "projectIdentifier",
    }
)

_COHERE_INPUT_TYPES = {
    "RETRIEVAL_QUERY": "search_query",
    "RETRIEVAL_DOCUMENT": "search_document",
    "CLASSIFICATION": "classification",
    "CLUSTERING": "clustering",
}


def embedding_family(model: str) -> str | None:
    """Which body an embedding model takes, from its id (ARNs and profiles included)."""
    lowered = model.lower()
    if "titan-embed" in lowered:
        return TITAN
    if "cohere.embed" in lowered:
        return COHERE
    return None


def split_embedding_extras(extra: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(invoke_model kwargs, JSON body fields)`` from an embedding request's extra_kwargs."""
    call = {k: v for k, v in extra.items() if k in INVOKE_MODEL_PARAMS}
    body = {k: v for k, v in extra.items() if k not in INVOKE_MODEL_PARAMS}
    return call, body


def _check_encoding(request: EmbeddingRequest, unsupported: Unsupported) -> None:
    if request.encoding_format not in (None, "float", "base64"):
        unsupported("encoding_format", "llmgate asks Bedrock for float vectors only")


def titan_body(request: EmbeddingRequest, model: str, unsupported: Unsupported) -> dict[str, Any]:
    """A Titan body without ``inputText`` (Titan embeds one text per call)."""
    body: dict[str, Any] = {}
    if request.dimensions is not None:
        if "text-v1" in model or "g1-text" in model:
            unsupported("dimensions", f"{model} has a fixed size")
        else:
            body["dimensions"] = request.dimensions
    for name in ("task_type", "title", "input_type", "truncate", "user"):
        if getattr(request, name) is not None:
            unsupported(name, "Titan embeddings take no such parameter")
    _check_encoding(request, unsupported)
    return body


def cohere_body(request: EmbeddingRequest, model: str, unsupported: Unsupported) -> dict[str, Any]:
    """A Cohere-on-Bedrock body without ``texts``."""
    input_type = request.input_type
    if input_type is None and request.task_type is not None:
        input_type = _COHERE_INPUT_TYPES.get(request.task_type.upper())
        if input_type is None:
            unsupported("task_type", f"{request.task_type!r} has no Cohere input_type")
    body: dict[str, Any] = {
        "input_type": input_type or "search_document",
        "embedding_types": ["float"],
    }
    if request.truncate is not None:
        body["truncate"] = request.truncate.upper()
    if request.dimensions is not None:
        if "embed-v4" in model:
            body["output_dimension"] = request.dimensions
        else:
            unsupported("dimensions", f"{model} has a fixed size")
    for name in ("title", "user"):
        if getattr(request, name) is not None:
            unsupported(name, "Cohere embeddings on Bedrock take no such parameter")
    _check_encoding(request, unsupported)
    return body


def titan_vector(payload: Mapping[str, Any]) -> tuple[list[float], int]:
    vector = payload.get("embedding")
    if vector is None:
        vector = (payload.get("embeddingsByType") or {}).get("float")
    if not isinstance(vector, list):
        raise InvalidRequestError("the Titan response holds no float embedding")
    return list(map(float, vector)), int(payload.get("inputTextTokenCount") or 0)


def cohere_vectors(payload: Mapping[str, Any]) -> list[list[float]]:
    embeddings = payload.get("embeddings")
    if isinstance(embeddings, Mapping):
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list):
        raise InvalidRequestError("the Cohere response holds no float embeddings")
    return [list(map(float, vector)) for vector in embeddings]


# =========================================================================== 2. results


def finish_reason(stop_reason: str | None) -> str | None:
    if stop_reason is None:
        return None
    return _FINISH_REASONS.get(stop_reason, "stop")


def token_usage(usage: Mapping[str, Any] | None) -> TokenUsage:
    """Converse counts cache reads and writes apart from ``inputTokens``; prompt = all three."""
    if not usage:
        return TokenUsage()
    cache_read = usage.get("cacheReadInputTokens")
    prompt = (
        int(usage.get("inputTokens") or 0)
        + int(cache_read or 0)
        + int(usage.get("cacheWriteInputTokens") or 0)
    )
    completion = int(usage.get("outputTokens") or 0)
    return make_usage(
        prompt,
        completion,
        int(usage.get("totalTokens") or prompt + completion),
        None if cache_read is None else int(cache_read),
    )


def reasoning_block_from_wire(block: Mapping[str, Any]) -> dict[str, Any]:
    """A reasoningContent block as kept in provider_details (bytes become base64 text)."""
    if "redactedContent" in block:
        raw = block["redactedContent"]
        data = raw if isinstance(raw, str) else base64.b64encode(raw).decode("ascii")
        return {"redactedContent": data}
    text_block = block.get("reasoningText") or {}
    entry: dict[str, Any] = {"text": text_block.get("text", "")}
    if text_block.get("signature") is not None:
        entry["signature"] = text_block["signature"]
    return {"reasoningText": entry}


def reasoning_block_to_wire(entry: Mapping[str, Any]) -> dict[str, Any]:
    if "redactedContent" in entry:
        return {"reasoningContent": {"redactedContent": base64.b64decode(entry["redactedContent"])}}
    return {"reasoningContent": {"reasoningText": dict(entry["reasoningText"])}}


def message_details(reasoning: list[dict[str, Any]]) -> dict[str, Any] | None:
    return {PROVIDER: {"reasoning_content": reasoning}} if reasoning else None


def reasoning_text(reasoning: list[dict[str, Any]]) -> str | None:
    texts = [entry["reasoningText"]["text"] for entry in reasoning if "reasoningText" in entry]
    return "".join(texts) or None


_PLAIN_RESULT_KEYS = frozenset({"output", "stopReason", "usage", "metrics"})


def plain_converse_json(body: bytes) -> dict[str, Any] | None:
    """A Converse response body as JSON when it holds only what botocore's parse would give
    back unchanged (text and tool-use blocks, stop reason, usage, metrics); None otherwise,
    and then botocore parses it."""
    try:
        data = from_json(body)
    except ValueError:
        return None
    if type(data) is not dict or not _PLAIN_RESULT_KEYS.issuperset(data):
        return None
    if "output" in data:
        output = data["output"]  # a union: exactly one member, set
        if type(output) is not dict or len(output) != 1:
            return None
        message = output.get("message")
        if type(message) is not dict or message.keys() - {"role", "content"}:
            return None
        content = message.get("content")
        if content is not None and (type(content) is not list or not _plain_blocks(content)):
            return None
    for key in ("usage", "metrics"):
        if type(data.get(key, {})) is not dict:
            return None
    stop_reason = data.get("stopReason")
    if stop_reason is not None and type(stop_reason) is not str:
        return None
    return data


def _plain_blocks(blocks: list[Any]) -> bool:
    for block in blocks:
        if type(block) is not dict or len(block) != 1:
            return False
        if "text" in block:
            if type(block["text"]) is not str:
                return False
        elif "toolUse" in block:
            use = block["toolUse"]
            if (
                type(use) is not dict
                or use.keys() - {"toolUseId", "name", "input"}
                or type(use.get("toolUseId")) is not str
                or type(use.get("name")) is not str
            ):
                return False
        else:
            return False
    return True


def completion_response(
    result: Mapping[str, Any], model: str, structured_tool: str | None = None
) -> CompletionResponse:
    """A CompletionResponse from a converse() result dict."""
    blocks = ((result.get("output") or {}).get("message") or {}).get("content") or []
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[dict[str, Any]] = []
    for block in blocks:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            if structured_tool is not None and use.get("name") == structured_tool:
                texts.append(json.dumps(use.get("input") or {}))
                continue
            calls.append(
                ToolCall(id=use["toolUseId"], name=use["name"], arguments=use.get("input") or {})
            )
        elif "reasoningContent" in block:
            reasoning.append(reasoning_block_from_wire(block["reasoningContent"]))
    text = "".join(texts)
    stop_reason = result.get("stopReason")
    finish = finish_reason(stop_reason)
    if structured_tool is not None and finish == "tool_calls" and not calls:
        finish = "stop"
    fields: dict[str, Any] = {
        "role": "assistant",
        "content": text if (text or not calls) else None,
        "tool_calls": calls or None,
        "reasoning": reasoning_text(reasoning),
        "provider_details": message_details(reasoning),
    }
    plain = type(text) is str and type(fields["reasoning"] or "") is str
    # Unvalidated when the wire's strings are strings: the other values are of their
    # fields' types by construction (see types.trusted).
    message = trusted(Message, **fields) if plain else Message(**fields)
    metadata = result.get("ResponseMetadata") or {}
    details: dict[str, Any] = {"stop_reason": stop_reason}
    latency = (result.get("metrics") or {}).get("latencyMs")
    if latency is not None:
        details["latency_ms"] = latency
    for key, name in (
        ("additionalModelResponseFields", "additional_model_response_fields"),
        ("trace", "trace"),
        ("performanceConfig", "performance_config"),
        ("serviceTier", "service_tier"),
    ):
        if result.get(key) is not None:
            details[name] = result[key]
    return trusted(
        CompletionResponse,
        id=str(metadata.get("RequestId") or ""),
        model=model,
        provider=PROVIDER,
        choices=[trusted(Choice, index=0, message=message, finish_reason=finish)],
        usage=token_usage(result.get("usage")),
        provider_details=details,
    )


@dataclass
class _ReasoningBuffer:
    text: list[str] = field(default_factory=list)
    signature: str | None = None
    redacted: bytes | str | None = None

    def entry(self) -> dict[str, Any]:
        if self.redacted is not None:
            return reasoning_block_from_wire({"redactedContent": self.redacted})
        text_block: dict[str, Any] = {"text": "".join(self.text)}
        if self.signature is not None:
            text_block["signature"] = self.signature
        return reasoning_block_from_wire({"reasoningText": text_block})


def text_delta(payload: bytes) -> str | None:
    """The text of a contentBlockDelta event's JSON when text is all it carries (the
    commonest event of a stream); None for anything else."""
    try:
        body = from_json(payload)
    except ValueError:
        return None
    if type(body) is dict:
        delta = body.get("delta")
        if type(delta) is dict and len(delta) == 1:
            text = delta.get("text")
            if type(text) is str:
                return text
    return None


class StreamTranslator:
    """ConverseStream events to StreamChunks.

    ``messageStop`` (the finish reason) comes before ``metadata`` (usage): the finish
    reason is held back and sent with the usage on one last chunk.
    """

    def __init__(self, model: str, response_id: str = "", structured_tool: str | None = None):
        self.model = model
        self.response_id = response_id
        self.structured_tool = structured_tool
        self._tool_index: dict[int, int] = {}
        self._structured_blocks: set[int] = set()
        self._reasoning: dict[int, _ReasoningBuffer] = {}
        self._stop_reason: str | None = None
        self._stopped = False
        self._finished = False
        self._answered_with_tools = False

    def _chunk(self, **fields: Any) -> StreamChunk:
        if type(fields.get("delta", "")) is str and type(fields.get("reasoning_delta", "")) is str:
            # Unvalidated: the wire's strings are strings, and the other values are of their
            # fields' types by construction (see types.trusted).
            return trusted(
                StreamChunk, id=self.response_id, model=self.model, provider=PROVIDER, **fields
            )
        return StreamChunk(id=self.response_id, model=self.model, provider=PROVIDER, **fields)

    def feed(self, event: Mapping[str, Any]) -> StreamChunk | None:
        if "contentBlockDelta" in event:
            body = event["contentBlockDelta"]
            return self._delta(int(body.get("contentBlockIndex", 0)), body.get("delta") or {})
        if "contentBlockStart" in event:
            body = event["contentBlockStart"]
            use = (body.get("start") or {}).get("toolUse")
            if use is None:
                return None
            index = int(body.get("contentBlockIndex", 0))
            if self.structured_tool is not None and use.get("name") == self.structured_tool:
                self._structured_blocks.add(index)
                return None
            ordinal = self._tool_ordinal(index)
            return self._chunk(
                tool_call_deltas=[
                    ToolCallDelta(index=ordinal, id=use.get("toolUseId"), name=use.get("name"))
                ]
            )
        if "messageStop" in event:
            self._stop_reason = event["messageStop"].get("stopReason")
            self._stopped = True
            return None
        if "metadata" in event:
            return self._final(event["metadata"].get("usage"))
        return None

    def _tool_ordinal(self, block_index: int) -> int:
        ordinal = self._tool_index.get(block_index)
        if ordinal is None:
            ordinal = self._tool_index[block_index] = len(self._tool_index)
            self._answered_with_tools = True
        return ordinal

    def _delta(self, index: int, delta: Mapping[str, Any]) -> StreamChunk | None:
        if "text" in delta:
            return self._chunk(delta=delta["text"]) if delta["text"] else None
        if "toolUse" in delta:
            fragment = (delta["toolUse"] or {}).get("input") or ""
            if index in self._structured_blocks:
                return self._chunk(delta=fragment) if fragment else None
            ordinal = self._tool_ordinal(index)
            return self._chunk(
                tool_call_deltas=[ToolCallDelta(index=ordinal, arguments_delta=fragment)]
            )
        if "reasoningContent" in delta:
            part = delta["reasoningContent"] or {}
            buffer = self._reasoning.setdefault(index, _ReasoningBuffer())
            if part.get("text"):
                buffer.text.append(part["text"])
                return self._chunk(reasoning_delta=part["text"])
            if part.get("signature") is not None:
                buffer.signature = part["signature"]
            if part.get("redactedContent") is not None:
                buffer.redacted = part["redactedContent"]
        return None

    def _final(self, usage: Mapping[str, Any] | None) -> StreamChunk:
        self._finished = True
        finish = finish_reason(self._stop_reason)
        answered_in_text = self.structured_tool is not None and not self._answered_with_tools
        if finish == "tool_calls" and answered_in_text:
            finish = "stop"
        reasoning = [self._reasoning[i].entry() for i in sorted(self._reasoning)]
        return self._chunk(
            finish_reason=finish,
            usage=token_usage(usage),
            provider_details=message_details(reasoning),
        )

    def close(self) -> StreamChunk | None:
        """The last chunk when the stream ended without ``metadata``; an error when it was cut."""
        if self._finished:
            return None
        if not self._stopped:
            raise ProviderConnectionError(
                "the Bedrock stream ended before messageStop", provider=PROVIDER, model=self.model
            )
        return self._final(None)
