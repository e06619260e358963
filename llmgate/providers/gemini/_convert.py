"""Gemini translation: llmgate requests to google-genai arguments, results and errors back.

Parts 1-3 of a provider module (request translation, result translation, error mapping);
``provider.py`` holds part 4, the class. Everything here is a pure function or a small
stateful translator, so it is unit-tested without a client.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import re
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import pydantic
from google.genai import errors as genai_errors
from google.genai import types as gt

from ... import _structured
from ..._errors import header, make_provider_error, map_transport_error, parse_retry_after
from ...exceptions import (
    AuthError,
    InvalidRequestError,
    LLMGateError,
    ProviderAPIError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
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
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolDefinition,
    make_usage,
    text_chunk,
    trusted,
)

PROVIDER = "gemini"

# Loads an http(s) image for the request: (bytes, mime type). Raises when downloads are off.
ImageLoader = Callable[[str], tuple[bytes, str]]

# Images already uploaded with the Files API are referenced by URI, not downloaded.
FILES_API_URL = re.compile(r"^https://generativelanguage\.googleapis\.com/[^?#]*/files/[^/?#]+$")

_CONFIG_FIELDS = frozenset(gt.GenerateContentConfig.model_fields)
_EMBED_CONFIG_FIELDS = frozenset(gt.EmbedContentConfig.model_fields)
_EMBED_TASK_TYPES = {
    "search_query": "RETRIEVAL_QUERY",
    "search_document": "RETRIEVAL_DOCUMENT",
    "classification": "CLASSIFICATION",
    "clustering": "CLUSTERING",
}


# =========================================================================== 1. requests


def is_file_uri(url: str) -> bool:
    return bool(FILES_API_URL.match(url))


def image_part(image: ImagePart, load_url: ImageLoader) -> gt.PartDict:
    if image.image_bytes is not None:
        blob: gt.BlobDict = {
            "data": image.image_bytes.raw_bytes(),
            "mime_type": image.image_bytes.mime_type,
        }
        return {"inline_data": blob}
    assert image.image_url is not None
    url = image.image_url.url
    if is_file_uri(url):
        # The Files API knows the uploaded file's type; a guess is sent only if there is one.
        uploaded: gt.FileDataDict = {"file_uri": url}
        mime_type = mimetypes.guess_type(url)[0]
        if mime_type:
            uploaded["mime_type"] = mime_type
        return {"file_data": uploaded}
    data, mime_type = load_url(url)
    return {"inline_data": {"data": data, "mime_type": mime_type}}


def _content_parts(message: Message, load_url: ImageLoader) -> list[gt.PartDict]:
    if message.content is None:
        return []
    if isinstance(message.content, str):
        return [{"text": message.content}]
    return [
        image_part(part, load_url) if isinstance(part, ImagePart) else {"text": part.text}
        for part in message.content
    ]


def stored_parts(message: Message) -> list[dict[str, Any]] | None:
    """The native parts kept on an assistant message this provider returned, if any."""
    details = (message.provider_details or {}).get(PROVIDER)
    parts = details.get("parts") if isinstance(details, Mapping) else None
    return parts if isinstance(parts, list) else None


def _matches(parts: Sequence[gt.Part], message: Message) -> bool:
    """Whether the kept parts still say what the message says (it was not edited)."""
    text = "".join(p.text for p in parts if p.text and not p.thought)
    calls = [(p.function_call.name, p.function_call.args or {}) for p in parts if p.function_call]
    expected = [(c.name, c.arguments) for c in message.tool_calls or []]
    return text == message.text and calls == expected


def assistant_parts(message: Message, load_url: ImageLoader) -> tuple[list[gt.PartDict], set[str]]:
    """A model turn, and the native call ids in it.

    The kept native parts (thought signatures included) are sent as they are, unless the
    message was edited since; then the turn is built from the message.
    """
    kept = stored_parts(message)
    if kept:
        try:
            checked = [gt.Part.model_validate(item) for item in kept]
        except pydantic.ValidationError:
            checked = []  # not parts this provider kept
        if checked and _matches(checked, message):
            ids = {p.function_call.id for p in checked if p.function_call and p.function_call.id}
            return [cast("gt.PartDict", item) for item in kept], ids
    parts = [p for p in _content_parts(message, load_url) if p.get("text") != ""]
    for call in message.tool_calls or []:
        function_call: gt.FunctionCallDict = {"name": call.name, "args": call.arguments}
        parts.append({"function_call": function_call})
    return parts, set()


def build_contents(
    messages: Sequence[Message], load_url: ImageLoader
) -> tuple[list[str], list[gt.ContentDict]]:
    """``(system texts, contents)``, contents in the SDK's dict form (cheaper for it to read).

    Tool results become one user turn of ``function_response`` parts; Gemini matches them
    to calls by function name.
    """
    system: list[str] = []
    contents: list[gt.ContentDict] = []
    call_names: dict[str, str] = {}
    native_ids: set[str] = set()
    results: list[gt.PartDict] = []

    def flush_results() -> None:
        if results:
            contents.append({"role": "user", "parts": list(results)})
            results.clear()

    for message in messages:
        if message.role == "system":
            if message.text:
                system.append(message.text)
            continue
        if message.role == "tool":
            results.append(_function_response(message, call_names, native_ids))
            continue
        flush_results()
        if message.role == "user":
            contents.append({"role": "user", "parts": _content_parts(message, load_url)})
            continue
        parts, ids = assistant_parts(message, load_url)
        call_names.update({call.id: call.name for call in message.tool_calls or []})
        native_ids |= ids
        if parts:
            contents.append({"role": "model", "parts": parts})
    flush_results()
    return system, contents


def _function_response(
    message: Message, call_names: Mapping[str, str], native_ids: set[str]
) -> gt.PartDict:
    call_id = message.tool_call_id or ""
    name = call_names.get(call_id) or message.name
    if not name:
        raise InvalidRequestError(
            f"the tool result for {call_id!r} answers no tool call of an earlier assistant "
            "message; Gemini needs the function name (set name=... on the tool message)"
        )
    response: gt.FunctionResponseDict = {"name": name, "response": {"result": message.text}}
    if call_id in native_ids:
        response["id"] = call_id
    return {"function_response": response}


def build_tools(tools: Sequence[ToolDefinition]) -> list[gt.Tool]:
    declarations = [
        gt.FunctionDeclaration(
            name=tool.function.name,
            description=tool.function.description,
            parameters_json_schema=tool.function.parameters,
        )
        for tool in tools
    ]
    return [gt.Tool(function_declarations=declarations)]


_MODES = {
    "auto": gt.FunctionCallingConfigMode.AUTO,
    "none": gt.FunctionCallingConfigMode.NONE,
    "required": gt.FunctionCallingConfigMode.ANY,
    "any": gt.FunctionCallingConfigMode.ANY,
}


def _read_tool_choice(choice: str | Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(mode, the one allowed function or None)`` from a unified tool_choice."""
    name: str | None = None
    if isinstance(choice, str):
        mode = _MODES.get(choice.lower())
        if mode is None:
            name = choice
    else:
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
        mode = None if name else _MODES.get(str(choice.get("type", "")).lower())
        if mode is None and not name:
            raise InvalidRequestError(f"cannot read tool_choice {dict(choice)!r}")
    if name:
        return gt.FunctionCallingConfigMode.ANY.value, str(name)
    return (mode.value if mode is not None else None), None


def build_tool_config(choice: str | Mapping[str, Any]) -> gt.ToolConfig:
    """From "auto", "none", "required", a function name or ``{"type": "function", ...}``."""
    mode, name = _read_tool_choice(choice)
    if name is not None:
        config = gt.FunctionCallingConfig(
            mode=gt.FunctionCallingConfigMode.ANY, allowed_function_names=[name]
        )
    else:
        config = gt.FunctionCallingConfig(
            mode=gt.FunctionCallingConfigMode(mode) if mode is not None else None
        )
    return gt.ToolConfig(function_calling_config=config)


def timeout_options(timeout: float | None) -> gt.HttpOptions | None:
    """Per-call HTTP options; google-genai takes the timeout in milliseconds."""
    if timeout is None:
        return None
    return gt.HttpOptions(timeout=max(1, round(timeout * 1000)))


def generate_config(request: CompletionRequest, *, strict: bool) -> gt.GenerateContentConfig | None:
    """The call's config, or None when there is nothing to set.

    google-genai reads a config object field by field at a cost that grows with its size,
    so a call without options sends none.
    """
    fields: dict[str, Any] = {}
    if request.max_tokens is not None:
        fields["max_output_tokens"] = request.max_tokens
    if request.temperature is not None:
        fields["temperature"] = request.temperature
    if request.top_p is not None:
        fields["top_p"] = request.top_p
    if request.stop:
        fields["stop_sequences"] = list(request.stop)
    if request.tools:
        fields["tools"] = build_tools(request.tools)
    if request.tool_choice is not None:
        fields["tool_config"] = build_tool_config(request.tool_choice)
    if request.parallel_tool_calls is False:
        unsupported("parallel_tool_calls=False", strict=strict)
    if request.response_format is not None:
        schema = _structured.json_schema(request.response_format)
        fields["response_mime_type"] = "application/json"
        fields["response_json_schema"] = _structured.gemini_schema(schema)
    options = timeout_options(request.timeout)
    if options is not None:
        fields["http_options"] = options
    for key, value in request.extra_kwargs.items():
        if key in _CONFIG_FIELDS:
            fields[key] = value
        else:
            unsupported(key, strict=strict)
    if not fields:
        return None
    # llmgate never passes callables as tools; saying so sends the SDK down its direct path
    # (its function-calling loop would deep-copy the config on every call).
    fields.setdefault("automatic_function_calling", gt.AutomaticFunctionCallingConfig(disable=True))
    try:
        return gt.GenerateContentConfig(**fields)
    except pydantic.ValidationError as exc:
        raise InvalidRequestError(f"invalid Gemini generation options: {exc}") from exc


def generate_kwargs(
    request: CompletionRequest,
    load_url: ImageLoader,
    *,
    strict: bool,
    system_instruction: bool = True,
) -> dict[str, Any]:
    """The keyword arguments of ``models.generate_content`` (without ``model``).

    For models without system instructions, system text opens the first user turn.
    """
    system, contents = build_contents(request.messages, load_url)
    config = generate_config(request, strict=strict)
    if system and system_instruction:
        instruction = gt.Content(parts=[gt.Part(text=text) for text in system])
        if config is None:
            config = gt.GenerateContentConfig(
                system_instruction=instruction,
                automatic_function_calling=gt.AutomaticFunctionCallingConfig(disable=True),
            )
        else:
            config.system_instruction = instruction
    elif system:
        contents = _fold_system(system, contents)
    return {"contents": contents, "config": config}


def _fold_system(system: list[str], contents: list[gt.ContentDict]) -> list[gt.ContentDict]:
    opening: gt.PartDict = {"text": "\n\n".join(system)}
    if contents and contents[0].get("role") == "user":
        first = contents[0]
        return [{"role": "user", "parts": [opening, *(first.get("parts") or [])]}, *contents[1:]]
    return [{"role": "user", "parts": [opening]}, *contents]


# The request as JSON, for the wire path (``_wire``): the body google-genai's converters
# write for the same call, built without its pydantic models. Requests this does not cover
# (vendor options in extra_kwargs, native parts kept for a round trip, parameters dropped
# with a warning) take the SDK's public path instead.


class WireRequest:
    """A ``generateContent`` body and what the SDK needs to build ``raw`` from the answer.

    ``schema`` is None for a call the SDK would make without config (it then reads no
    schema from the call and runs its function-calling loop), else the config it reads.
    """

    __slots__ = ("body", "options", "schema")

    def __init__(
        self,
        body: dict[str, Any],
        schema: dict[str, Any] | None,
        options: gt.HttpOptions | None,
    ) -> None:
        self.body = body
        self.schema = schema
        self.options = options


def _wire_part(part: gt.PartDict) -> dict[str, Any]:
    text = part.get("text")
    if text is not None:
        return {"text": text}
    inline = part.get("inline_data")
    if inline is not None:
        data = inline.get("data") or b""
        blob = {"data": base64.urlsafe_b64encode(data).decode("ascii")}
        blob["mime_type"] = inline.get("mime_type") or ""
        return {"inlineData": blob}
    uploaded = part.get("file_data")
    if uploaded is not None:
        return {"fileData": dict(uploaded)}
    call = part.get("function_call")
    if call is not None:
        return {"functionCall": {"args": call.get("args"), "name": call.get("name")}}
    result = part.get("function_response")
    assert result is not None
    return {"functionResponse": dict(result)}


def _wire_contents(contents: list[gt.ContentDict]) -> list[dict[str, Any]]:
    return [
        {
            "parts": [_wire_part(part) for part in content.get("parts") or []],
            "role": content.get("role"),
        }
        for content in contents
    ]


def wire_request(
    request: CompletionRequest,
    load_url: ImageLoader,
    *,
    system_instruction: bool = True,
) -> WireRequest | None:
    """The body :func:`generate_kwargs` makes the SDK send, or None where only the SDK's
    public path knows it (see above)."""
    if request.extra_kwargs or request.parallel_tool_calls is False:
        return None
    for message in request.messages:
        if message.role == "assistant" and message.provider_details and stored_parts(message):
            return None
    system, contents = build_contents(request.messages, load_url)
    if system and not system_instruction:
        contents = _fold_system(system, contents)
    body: dict[str, Any] = {"contents": _wire_contents(contents)}
    generation: dict[str, Any] = {}
    if request.temperature is not None:
        generation["temperature"] = request.temperature
    if request.top_p is not None:
        generation["topP"] = request.top_p
    if request.max_tokens is not None:
        generation["maxOutputTokens"] = request.max_tokens
    if request.stop:
        generation["stopSequences"] = list(request.stop)
    if system and system_instruction:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    if request.tools:
        declarations = []
        for tool in request.tools:
            declaration: dict[str, Any] = {}
            if tool.function.description is not None:
                declaration["description"] = tool.function.description
            declaration["name"] = tool.function.name
            if tool.function.parameters is not None:
                declaration["parameters_json_schema"] = tool.function.parameters
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
    if request.tool_choice is not None:
        mode, name = _read_tool_choice(request.tool_choice)
        calling: dict[str, Any] = {"allowedFunctionNames": [name]} if name is not None else {}
        if mode is not None:
            calling["mode"] = mode
        body["toolConfig"] = {"functionCallingConfig": calling}
    # After the tools, as generate_config reads them (so the same mistake is reported first).
    json_schema: dict[str, Any] | None = None
    if request.response_format is not None:
        json_schema = _structured.gemini_schema(_structured.json_schema(request.response_format))
        generation["responseMimeType"] = "application/json"
        generation["responseJsonSchema"] = json_schema
    options = timeout_options(request.timeout)
    has_config = bool(
        generation
        or request.tools
        or request.tool_choice is not None
        or options is not None
        or (system and system_instruction)
    )
    if not has_config:
        return WireRequest(body, None, None)
    body["generationConfig"] = generation
    return WireRequest(body, {"response_json_schema": json_schema}, options)


def embed_config(request: EmbeddingRequest, *, strict: bool) -> gt.EmbedContentConfig | None:
    fields: dict[str, Any] = {}
    task_type = request.task_type
    if task_type is None and request.input_type is not None:
        task_type = _EMBED_TASK_TYPES.get(request.input_type.lower())
        if task_type is None:
            unsupported(f"input_type={request.input_type!r}", strict=strict)
    if task_type is None and request.title is not None:
        task_type = "RETRIEVAL_DOCUMENT"  # Gemini reads a title only for documents
    if task_type is not None:
        fields["task_type"] = task_type
    if request.title is not None:
        fields["title"] = request.title
    if request.dimensions is not None:
        fields["output_dimensionality"] = request.dimensions
    if request.truncate is not None:
        unsupported("truncate", strict=strict)
    if request.user is not None:
        unsupported("user", strict=strict)
    # encoding_format is moot: Gemini always answers with float values.
    options = timeout_options(request.timeout)
    if options is not None:
        fields["http_options"] = options
    for key, value in request.extra_kwargs.items():
        if key in _EMBED_CONFIG_FIELDS:
            fields[key] = value
        else:
            unsupported(key, strict=strict)
    if not fields:
        return None
    try:
        return gt.EmbedContentConfig(**fields)
    except pydantic.ValidationError as exc:
        raise InvalidRequestError(f"invalid Gemini embedding options: {exc}") from exc


def wire_embed_request(
    request: EmbeddingRequest, model_path: str
) -> tuple[dict[str, Any], gt.HttpOptions | None] | None:
    """The ``batchEmbedContents`` body (and per-call options) :func:`embed_config` makes the
    SDK send for text inputs, or None where only the SDK's public path knows it."""
    if request.extra_kwargs or request.truncate is not None or request.user is not None:
        return None
    task_type = request.task_type
    if task_type is None and request.input_type is not None:
        task_type = _EMBED_TASK_TYPES.get(request.input_type.lower())
        if task_type is None:
            return None
    if task_type is None and request.title is not None:
        task_type = "RETRIEVAL_DOCUMENT"
    fields: dict[str, Any] = {}
    if task_type is not None:
        fields["taskType"] = task_type
    if request.title is not None:
        fields["title"] = request.title
    if request.dimensions is not None:
        fields["outputDimensionality"] = request.dimensions
    fields["model"] = model_path
    requests = [
        {"content": {"parts": [{"text": text}], "role": "user"}, **fields} for text in request.input
    ]
    return {"requests": requests}, timeout_options(request.timeout)


def unsupported(name: str, *, strict: bool) -> None:
    """A parameter Gemini does not take: dropped with a warning, or refused when strict."""
    message = f"the gemini provider does not accept {name}; it was not sent"
    if strict:
        raise InvalidRequestError(message)
    warnings.warn(message, UserWarning, stacklevel=_stacklevel_outside_llmgate())


_LLMGATE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _stacklevel_outside_llmgate() -> int:
    level = 2
    frame = sys._getframe(2)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_LLMGATE_DIR):
        frame = frame.f_back
        level += 1
    return level


# =========================================================================== 2. results

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "CONTINUATION": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter",
}


def finish_reason(native: Any, *, has_tool_calls: bool) -> str | None:
    """Gemini says STOP after function calls too; anything unknown is an error."""
    if native is None:
        return None
    name = getattr(native, "value", native)
    if name == "FINISH_REASON_UNSPECIFIED":
        return None
    unified = _FINISH_REASONS.get(str(name), "error")
    return "tool_calls" if unified == "stop" and has_tool_calls else unified


def usage_from(metadata: Any) -> TokenUsage | None:
    """Completion tokens include thinking tokens (as OpenAI counts them)."""
    if metadata is None:
        return None
    thoughts = metadata.thoughts_token_count
    prompt = metadata.prompt_token_count or 0
    completion = (metadata.candidates_token_count or 0) + (thoughts or 0)
    return TokenUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=metadata.total_token_count or prompt + completion,
        cached_prompt_tokens=metadata.cached_content_token_count,
        reasoning_tokens=thoughts,
    )


def call_id(response_id: str | None, index: int) -> str:
    """Gemini often sends calls without an id: a stable one from the response and position."""
    return f"call_{response_id}_{index}" if response_id else f"call_{index}"


_PLAIN_TEXT_FIELDS = frozenset({"text", "thought", "thought_signature"})


def _plain_text(part: gt.Part) -> bool:
    """Text, thought text or a bare signature: parts a stream may split and we may merge."""
    return part.model_fields_set <= _PLAIN_TEXT_FIELDS


class _TextRun:
    """Adjacent text (or thought) parts, joined once when the native parts are dumped."""

    __slots__ = ("pieces", "signature", "thought")

    def __init__(self, thought: bool) -> None:
        self.thought = thought
        self.pieces: list[str] = []
        self.signature: bytes | None = None

    def part(self) -> gt.Part:
        return gt.Part(
            text="".join(self.pieces),
            thought=True if self.thought else None,
            thought_signature=self.signature,
        )


class CandidateOutput:
    """One candidate's parts, added in order (whole at once, or event by event).

    Yields the text, reasoning and tool-call pieces of each part, and keeps the native
    parts for ``message.provider_details["gemini"]`` when they carry what the unified
    message cannot: thought signatures, native call ids, other part kinds. Adjacent text
    parts are merged (up to a signature), so a stream keeps what one whole response holds.
    """

    def __init__(self, response_id: str | None) -> None:
        self.response_id = response_id
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self._kept: list[_TextRun | gt.Part] = []
        self._needs_parts = False

    def add(self, part: gt.Part) -> tuple[str, str, ToolCallDelta | None]:
        """``(text delta, reasoning delta, tool-call delta)`` of one part."""
        self._keep(part)
        if part.function_call is not None:
            call = part.function_call
            index = len(self.tool_calls)
            tool_call = ToolCall(
                id=call.id or call_id(self.response_id, index),
                name=call.name or "",
                arguments=dict(call.args or {}),
            )
            self.tool_calls.append(tool_call)
            delta = ToolCallDelta(
                index=index,
                id=tool_call.id,
                name=tool_call.name,
                arguments_delta=tool_call.arguments_json,
            )
            return "", "", delta
        if part.text:
            if part.thought:
                self.reasoning.append(part.text)
                return "", part.text, None
            self.text.append(part.text)
            return part.text, "", None
        return "", "", None

    def add_text(self, text: str | None, thought: bool) -> tuple[str, str]:
        """:meth:`add` of a part with nothing but text (and the thought flag)."""
        last = self._kept[-1] if self._kept else None
        if not isinstance(last, _TextRun) or last.thought != thought or last.signature:
            if not text:
                return "", ""
            last = _TextRun(thought)
            self._kept.append(last)
        if not text:
            return "", ""
        last.pieces.append(text)
        if thought:
            self.reasoning.append(text)
            return "", text
        self.text.append(text)
        return text, ""

    def _keep(self, part: gt.Part) -> None:
        if part.thought_signature or (part.function_call and part.function_call.id):
            self._needs_parts = True
        if not _plain_text(part):
            if part.function_call is None:
                self._needs_parts = True
            self._kept.append(part)
            return
        last = self._kept[-1] if self._kept else None
        thought = bool(part.thought)
        if not isinstance(last, _TextRun) or last.thought != thought or last.signature:
            if not part.text and not part.thought_signature:
                return
            last = _TextRun(thought)
            self._kept.append(last)
        if part.text:
            last.pieces.append(part.text)
        if part.thought_signature:
            last.signature = part.thought_signature

    def details(self) -> dict[str, Any] | None:
        if not self._needs_parts:
            return None
        parts = [item.part() if isinstance(item, _TextRun) else item for item in self._kept]
        dumped = [part.model_dump(mode="json", exclude_none=True) for part in parts]
        return {PROVIDER: {"parts": dumped}}

    def message(self) -> Message:
        text = "".join(self.text)
        return Message(
            role="assistant",
            content=text if (text or not self.tool_calls) else None,
            tool_calls=list(self.tool_calls) or None,
            reasoning="".join(self.reasoning) or None,
            provider_details=self.details(),
        )


def _blocked(result: gt.GenerateContentResponse) -> bool:
    feedback = result.prompt_feedback
    return feedback is not None and feedback.block_reason is not None


def _response_details(result: gt.GenerateContentResponse, candidate: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if candidate is not None and candidate.finish_reason is not None:
        details["finish_reason"] = getattr(
            candidate.finish_reason, "value", candidate.finish_reason
        )
    if result.prompt_feedback is not None:
        details["prompt_feedback"] = result.prompt_feedback.model_dump(
            mode="json", exclude_none=True
        )
    for name in ("safety_ratings", "citation_metadata", "grounding_metadata"):
        value = getattr(candidate, name, None) if candidate is not None else None
        if value:
            details[name] = (
                [item.model_dump(mode="json", exclude_none=True) for item in value]
                if isinstance(value, list)
                else value.model_dump(mode="json", exclude_none=True)
            )
    return {PROVIDER: details} if details else {}


def response_from_sdk(result: gt.GenerateContentResponse, model: str) -> CompletionResponse:
    candidate = result.candidates[0] if result.candidates else None
    output = CandidateOutput(result.response_id)
    if candidate is not None and candidate.content is not None:
        for part in candidate.content.parts or []:
            output.add(part)
    finish = finish_reason(
        candidate.finish_reason if candidate is not None else None,
        has_tool_calls=bool(output.tool_calls),
    )
    if finish is None and _blocked(result):
        finish = "content_filter"
    response = CompletionResponse(
        id=result.response_id or "",
        model=result.model_version or model,
        provider=PROVIDER,
        choices=[Choice(index=0, message=output.message(), finish_reason=finish)],
        usage=usage_from(result.usage_metadata) or TokenUsage(),
        provider_details=_response_details(result, candidate),
    )
    response.set_raw(result)
    return response


# Reading the wire JSON directly (the ``_wire`` path): the common shapes of an answer are
# translated here, each value checked to be what the SDK's models would accept unchanged;
# anything else (safety ratings, prompt feedback, signatures, unknown fields or values) is
# handed to the SDK's models and the functions above, so both paths say the same.

_WIRE_RESPONSE_KEYS = frozenset({"candidates", "usageMetadata", "modelVersion", "responseId"})
_WIRE_CANDIDATE_KEYS = frozenset({"content", "finishReason", "index", "avgLogprobs"})
_WIRE_CONTENT_KEYS = frozenset({"parts", "role"})
_WIRE_TEXT_KEYS = frozenset({"text", "thought"})
_WIRE_CALL_KEYS = frozenset({"name", "args"})
_WIRE_COUNTS = frozenset(
    {
        "promptTokenCount",
        "candidatesTokenCount",
        "totalTokenCount",
        "thoughtsTokenCount",
        "cachedContentTokenCount",
        "toolUsePromptTokenCount",
    }
)
_WIRE_COUNT_DETAILS = frozenset(
    {
        "promptTokensDetails",
        "candidatesTokensDetails",
        "cacheTokensDetails",
        "toolUsePromptTokensDetails",
    }
)
_WIRE_DETAIL_KEYS = frozenset({"modality", "tokenCount"})
_COUNT_TYPES = frozenset({int, type(None)})
_MODALITIES = frozenset(member.value for member in gt.MediaModality)
_WIRE_FINISH = frozenset(member.value for member in gt.FinishReason)


def _optional(value: Any, kind: type) -> bool:
    return value is None or type(value) is kind


def _member(value: Any, values: frozenset[str]) -> bool:
    """None, or one of an SDK enum's values as it is spelled (others make it warn)."""
    return value is None or (type(value) is str and value in values)


def _plain_usage(usage: Any) -> bool:
    if usage is None:
        return True
    if type(usage) is not dict:
        return False
    if usage.keys() <= _WIRE_COUNTS:
        return set(map(type, usage.values())) <= _COUNT_TYPES
    for key, value in usage.items():
        if key in _WIRE_COUNTS:
            if not _optional(value, int):
                return False
        elif key in _WIRE_COUNT_DETAILS:
            if value is None:
                continue
            if type(value) is not list:
                return False
            for item in value:
                if (
                    type(item) is not dict
                    or not item.keys() <= _WIRE_DETAIL_KEYS
                    or not _optional(item.get("tokenCount"), int)
                    or not _member(item.get("modality"), _MODALITIES)
                ):
                    return False
        else:
            return False
    return True


def _plain_part(part: Any) -> bool:
    if type(part) is not dict:
        return False
    keys = part.keys()
    if keys <= _WIRE_TEXT_KEYS:
        text = part.get("text")
        thought = part.get("thought")
        return (text is None or type(text) is str) and (thought is None or type(thought) is bool)
    call = part.get("functionCall")
    return (
        len(keys) == 1
        and type(call) is dict
        and call.keys() <= _WIRE_CALL_KEYS
        and _optional(call.get("name"), str)
        and _optional(call.get("args"), dict)
    )


def _plain_content(content: Any) -> bool:
    if type(content) is not dict or not content.keys() <= _WIRE_CONTENT_KEYS:
        return False
    role = content.get("role")
    if role is not None and type(role) is not str:
        return False
    parts = content.get("parts")
    if parts is None:
        return True
    return type(parts) is list and all(map(_plain_part, parts))


def _plain_candidate(candidate: Any) -> bool:
    if type(candidate) is not dict or not candidate.keys() <= _WIRE_CANDIDATE_KEYS:
        return False
    finish = candidate.get("finishReason")
    if finish is not None and (type(finish) is not str or finish not in _WIRE_FINISH):
        return False
    index = candidate.get("index")
    if index is not None and type(index) is not int:
        return False
    logprobs = candidate.get("avgLogprobs")
    if logprobs is not None and type(logprobs) is not float:
        return False
    content = candidate.get("content")
    return content is None or _plain_content(content)


def plain_candidate(data: Any) -> tuple[bool, dict[str, Any] | None]:
    """``(plain, first candidate)``: whether this JSON answer (or stream event) is one the
    wire path translates itself, and its first candidate."""
    if type(data) is not dict or not data.keys() <= _WIRE_RESPONSE_KEYS:
        return False, None
    version = data.get("modelVersion")
    response_id = data.get("responseId")
    if (version is not None and type(version) is not str) or (
        response_id is not None and type(response_id) is not str
    ):
        return False, None
    if not _plain_usage(data.get("usageMetadata")):
        return False, None
    candidates = data.get("candidates")
    if candidates is None:
        return True, None
    if type(candidates) is not list:
        return False, None
    for candidate in candidates:
        if not _plain_candidate(candidate):
            return False, None
    return True, candidates[0] if candidates else None


def _wire_parts(candidate: dict[str, Any] | None) -> list[dict[str, Any]]:
    content = candidate.get("content") if candidate is not None else None
    return (content.get("parts") or []) if content is not None else []


def usage_from_wire(usage: dict[str, Any] | None) -> TokenUsage | None:
    """:func:`usage_from` of a plain ``usageMetadata`` object."""
    if usage is None:
        return None
    thoughts = usage.get("thoughtsTokenCount")
    prompt = usage.get("promptTokenCount") or 0
    completion = (usage.get("candidatesTokenCount") or 0) + (thoughts or 0)
    return make_usage(
        prompt,
        completion,
        usage.get("totalTokenCount") or prompt + completion,
        usage.get("cachedContentTokenCount"),
        thoughts,
    )


def _wire_call(part: dict[str, Any]) -> gt.Part:
    call = part["functionCall"]
    return gt.Part(function_call=gt.FunctionCall(name=call.get("name"), args=call.get("args")))


def response_from_wire(
    data: Any, model: str, raw: Callable[[], gt.GenerateContentResponse]
) -> CompletionResponse:
    """A CompletionResponse from a ``generateContent`` JSON body, equal to what
    :func:`response_from_sdk` makes of the SDK's object (``raw`` builds that object)."""
    plain, candidate = plain_candidate(data)
    if not plain:
        return response_from_sdk(raw(), model)
    response_id = data.get("responseId")
    output = CandidateOutput(response_id)
    for part in _wire_parts(candidate):
        if "functionCall" in part:
            output.add(_wire_call(part))
        else:
            output.add_text(part.get("text"), bool(part.get("thought")))
    native = candidate.get("finishReason") if candidate is not None else None
    finish = finish_reason(native, has_tool_calls=bool(output.tool_calls))
    text = "".join(output.text)
    message = trusted(
        Message,
        role="assistant",
        content=text if (text or not output.tool_calls) else None,
        tool_calls=list(output.tool_calls) or None,
        reasoning="".join(output.reasoning) or None,
        provider_details=output.details(),
    )
    choice = trusted(Choice, index=0, message=message, finish_reason=finish)
    response = trusted(
        CompletionResponse,
        id=response_id or "",
        model=data.get("modelVersion") or model,
        provider=PROVIDER,
        choices=[choice],
        usage=usage_from_wire(data.get("usageMetadata")) or TokenUsage(),
        provider_details={PROVIDER: {"finish_reason": native}} if native is not None else {},
    )
    response.set_raw(factory=raw)
    return response


class StreamTranslator:
    """Stream events (each a partial ``GenerateContentResponse``) to StreamChunks.

    Gemini repeats running usage on every event and sends function calls whole; the finish
    reason and usage go on one last chunk, with the native parts kept for round trips.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = ""
        self.output: CandidateOutput | None = None
        self.native_finish: Any = None
        self.usage: TokenUsage | None = None
        # The last usageMetadata of the wire path, read once at the end (every event has one).
        self._wire_usage: dict[str, Any] | None = None
        self.blocked = False
        # The wire events google-genai's stream continuation takes note of (the first with
        # parts or prompt feedback, the last with a finish reason or usage), by position.
        self.noted: dict[str, tuple[int, Any]] = {}
        self._events = 0

    def feed(self, event: gt.GenerateContentResponse) -> StreamChunk | None:
        if event.response_id and not self.id:
            self.id = event.response_id
        if event.model_version:
            self.model = event.model_version
        if self.output is None:
            self.output = CandidateOutput(event.response_id)
        if event.usage_metadata is not None:
            self.usage = usage_from(event.usage_metadata)
            self._wire_usage = None
        self.blocked = self.blocked or _blocked(event)
        candidate = event.candidates[0] if event.candidates else None
        if candidate is None:
            return None
        if candidate.finish_reason is not None:
            self.native_finish = candidate.finish_reason
        text: list[str] = []
        reasoning: list[str] = []
        calls: list[ToolCallDelta] = []
        parts = candidate.content.parts if candidate.content is not None else None
        for part in parts or []:
            text_delta, reasoning_delta, call = self.output.add(part)
            text.append(text_delta)
            reasoning.append(reasoning_delta)
            if call is not None:
                calls.append(call)
        if not (any(text) or any(reasoning) or calls):
            return None
        return StreamChunk(
            id=self.id,
            model=self.model,
            provider=PROVIDER,
            delta="".join(text),
            reasoning_delta="".join(reasoning) or None,
            tool_call_deltas=calls or None,
        )

    def feed_wire(
        self, event: Any, to_sdk: Callable[[Any], gt.GenerateContentResponse]
    ) -> StreamChunk | None:
        """:meth:`feed` of a stream event's JSON; ``to_sdk`` builds the SDK's object of an
        event that is not plain (see :func:`plain_candidate`)."""
        self._events += 1
        plain, candidate = plain_candidate(event)
        if not plain:
            result = to_sdk(event)
            self._note(event, result)
            return self.feed(result)
        response_id = event.get("responseId")
        if response_id and not self.id:
            self.id = response_id
        model = event.get("modelVersion")
        if model:
            self.model = model
        output = self.output
        if output is None:
            output = self.output = CandidateOutput(response_id)
        usage = event.get("usageMetadata")
        if usage is not None:
            self._wire_usage = usage
            self.noted["usage"] = (self._events, event)
        if candidate is None:
            return None
        native = candidate.get("finishReason")
        if native is not None:
            self.native_finish = native
            self.noted["finish"] = (self._events, event)
        parts = _wire_parts(candidate)
        if parts and "content" not in self.noted:
            self.noted["content"] = (self._events, event)
        if len(parts) == 1 and "functionCall" not in parts[0]:
            # The commonest event: one piece of text.
            part = parts[0]
            text, reasoning = output.add_text(part.get("text"), bool(part.get("thought")))
            if text:
                return text_chunk(self.id, self.model, PROVIDER, text)
            if not reasoning:
                return None
        texts: list[str] = []
        reasonings: list[str] = []
        calls: list[ToolCallDelta] = []
        if len(parts) == 1 and "functionCall" not in parts[0]:
            reasonings.append(reasoning)
        else:
            for part in parts:
                if "functionCall" in part:
                    call = output.add(_wire_call(part))[2]
                    if call is not None:
                        calls.append(call)
                    continue
                text, reasoning = output.add_text(part.get("text"), bool(part.get("thought")))
                texts.append(text)
                reasonings.append(reasoning)
        if not (any(texts) or any(reasonings) or calls):
            return None
        return StreamChunk(
            id=self.id,
            model=self.model,
            provider=PROVIDER,
            delta="".join(texts),
            reasoning_delta="".join(reasonings) or None,
            tool_call_deltas=calls or None,
        )

    def _note(self, event: Any, result: gt.GenerateContentResponse) -> None:
        noted = (self._events, event)
        candidate = result.candidates[0] if result.candidates else None
        if result.usage_metadata is not None:
            self.noted["usage"] = noted
        if result.prompt_feedback is not None:
            self.noted.setdefault("feedback", noted)
        if candidate is not None:
            if candidate.finish_reason:
                self.noted["finish"] = noted
            if candidate.content and candidate.content.parts:
                self.noted.setdefault("content", noted)

    def noted_events(self) -> list[Any]:
        """The noted events, in the order they came (each once)."""
        by_position = dict(self.noted.values())
        return [by_position[position] for position in sorted(by_position)]

    def finish(self) -> StreamChunk:
        if self._wire_usage is not None:
            self.usage = usage_from_wire(self._wire_usage)
            self._wire_usage = None
        output = self.output or CandidateOutput(None)
        finish = finish_reason(self.native_finish, has_tool_calls=bool(output.tool_calls))
        if finish is None and self.blocked:
            finish = "content_filter"
        return StreamChunk(
            id=self.id,
            model=self.model,
            provider=PROVIDER,
            finish_reason=finish,
            usage=self.usage or TokenUsage(),
            provider_details=output.details(),
        )


def embedding_response_from_sdk(result: gt.EmbedContentResponse, model: str) -> EmbeddingResponse:
    vectors = [list(item.values or []) for item in result.embeddings or []]
    metadata = result.usage_metadata
    prompt = (metadata.prompt_token_count or 0) if metadata is not None else 0
    details: dict[str, Any] = {}
    if result.metadata is not None and result.metadata.billable_character_count is not None:
        details["billable_character_count"] = result.metadata.billable_character_count
    response = EmbeddingResponse(
        embeddings=vectors,
        model=model,
        provider=PROVIDER,
        usage=TokenUsage(prompt_tokens=prompt, total_tokens=prompt),
        provider_details={PROVIDER: details} if details else {},
    )
    response.set_raw(result)
    return response


_WIRE_EMBEDDING_KEYS = frozenset({"embeddings", "usageMetadata"})
_FLOATS = pydantic.TypeAdapter(list[float])


def embedding_response_from_wire(
    data: Any, model: str, raw: Callable[[], gt.EmbedContentResponse]
) -> EmbeddingResponse:
    """:func:`embedding_response_from_sdk` of a ``batchEmbedContents`` JSON body, read
    directly where it holds only vectors and a prompt token count."""
    plain = type(data) is dict and data.keys() <= _WIRE_EMBEDDING_KEYS
    usage = data.get("usageMetadata") if plain else None
    items = data.get("embeddings") if plain else None
    if plain:
        plain = (usage is None or (type(usage) is dict and _plain_usage(usage))) and (
            items is None or type(items) is list
        )
    vectors: list[list[float]] = []
    if plain:
        for item in items or []:
            values = item.get("values") if type(item) is dict else None
            if (
                type(item) is not dict
                or not item.keys() <= {"values"}
                or (values is not None and type(values) is not list)
            ):
                plain = False
                break
            try:
                vectors.append(_FLOATS.validate_python(values) if values else [])
            except pydantic.ValidationError:
                plain = False
                break
    if not plain:
        return embedding_response_from_sdk(raw(), model)
    prompt = (usage.get("promptTokenCount") or 0) if usage is not None else 0
    response = trusted(
        EmbeddingResponse,
        embeddings=vectors,
        model=model,
        provider=PROVIDER,
        usage=make_usage(prompt, 0, prompt),
        provider_details={},
    )
    response.set_raw(factory=raw)
    return response


# =========================================================================== 3. errors

# gRPC status names, for error bodies without a usable HTTP code.
_STATUS_CODES = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})
# aiohttp connection failures: google-genai uses aiohttp for async calls when it is installed
# and no httpx2 transport is given (llmgate gives one; this is a safety net).
_AIOHTTP_CONNECTION_ERRORS = frozenset(
    {"ClientConnectionError", "ClientPayloadError", "ServerDisconnectedError"}
)


def _error_details(body: Any) -> list[Mapping[str, Any]]:
    error = body.get("error", body) if isinstance(body, Mapping) else None
    details = error.get("details") if isinstance(error, Mapping) else None
    return [d for d in details or [] if isinstance(d, Mapping)] if isinstance(details, list) else []


def _detail_of_type(body: Any, type_suffix: str) -> Mapping[str, Any] | None:
    for detail in _error_details(body):
        if str(detail.get("@type", "")).endswith(type_suffix):
            return detail
    return None


def retry_delay(body: Any) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``"retryDelay": "37s"``)."""
    info = _detail_of_type(body, "google.rpc.RetryInfo")
    delay = info.get("retryDelay") if info is not None else None
    if isinstance(delay, str) and delay.endswith("s"):
        try:
            return max(0.0, float(delay[:-1]))
        except ValueError:
            return None
    if isinstance(delay, Mapping):
        return float(delay.get("seconds", 0)) + float(delay.get("nanos", 0)) / 1e9
    return None


def _error_class(
    status: int | None, status_name: str | None, body: Any
) -> type[ProviderError] | None:
    info = _detail_of_type(body, "google.rpc.ErrorInfo")
    if info is not None and info.get("reason") in _AUTH_REASONS:
        return AuthError  # Gemini refuses a bad key with 400 INVALID_ARGUMENT
    if status is None and status_name == "DEADLINE_EXCEEDED":
        return ProviderTimeoutError
    return None


def map_api_error(exc: genai_errors.APIError, model: str) -> ProviderError:
    status_name = exc.status if isinstance(exc.status, str) else None
    code = exc.code if isinstance(exc.code, int) and exc.code > 0 else None
    status = code or _STATUS_CODES.get(status_name or "")
    headers = getattr(exc.response, "headers", None)
    body = exc.details
    retry_after = parse_retry_after(headers)
    if retry_after is None:
        retry_after = retry_delay(body)
    message = exc.message or (f"{status_name}" if status_name else f"{type(exc).__name__}")
    return make_provider_error(
        str(message),
        status=status,
        provider=PROVIDER,
        model=model,
        headers=headers,
        request_id=header(headers, "x-goog-request-id"),
        body=body,
        retry_after=retry_after,
        cls=_error_class(code, status_name, body),
    )


def _malformed(exc: BaseException, model: str) -> ProviderError:
    return ProviderAPIError(
        f"Gemini sent a response the SDK could not read: {exc}", provider=PROVIDER, model=model
    )


def _invalid(exc: BaseException, model: str) -> LLMGateError:
    return InvalidRequestError(f"the Gemini SDK refused the request: {exc}")


# Checked in order: the first class the exception is an instance of decides.
_ERROR_TABLE: tuple[tuple[type[BaseException], Callable[[Any, str], LLMGateError]], ...] = (
    (LLMGateError, lambda exc, model: exc),
    (genai_errors.APIError, map_api_error),
    (genai_errors.UnknownApiResponseError, _malformed),
    (json.JSONDecodeError, _malformed),
    (pydantic.ValidationError, _malformed),
    (ValueError, _invalid),
)


def map_gemini_error(exc: BaseException, model: str) -> LLMGateError:
    for cls, convert in _ERROR_TABLE:
        if isinstance(exc, cls):
            return convert(exc, model)
    mapped = map_transport_error(exc, provider=PROVIDER, model=model)
    if mapped is not None:
        return mapped
    if any(cls.__name__ in _AIOHTTP_CONNECTION_ERRORS for cls in type(exc).__mro__):
        return ProviderConnectionError(f"connection failed: {exc}", provider=PROVIDER, model=model)
    return ProviderAPIError(f"{type(exc).__name__}: {exc}", provider=PROVIDER, model=model)


__all__ = [
    "PROVIDER",
    "CandidateOutput",
    "ImageLoader",
    "StreamTranslator",
    "build_contents",
    "build_tool_config",
    "build_tools",
    "embed_config",
    "embedding_response_from_sdk",
    "finish_reason",
    "generate_config",
    "generate_kwargs",
    "is_file_uri",
    "map_api_error",
    "map_gemini_error",
    "response_from_sdk",
    "retry_delay",
    "usage_from",
]
