"""The public types: one shape for every vendor's requests, results and stream chunks.

Messages may be given as these models or as plain dicts, OpenAI-shaped ones included
(``image_url`` parts, ``tool_calls`` whose ``arguments`` is a JSON string): the validators
below turn them into the same objects, so code written for OpenAI moves over unchanged.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

__all__ = [
    "BatchError",
    "BatchResult",
    "Choice",
    "CompletionRequest",
    "CompletionResponse",
    "ContentPart",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "FunctionDefinition",
    "ImageBytes",
    "ImagePart",
    "ImageURL",
    "Message",
    "StreamChunk",
    "TextPart",
    "TokenUsage",
    "ToolCall",
    "ToolCallDelta",
    "ToolDefinition",
]

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


_M = TypeVar("_M", bound=BaseModel)
_new = object.__new__
_set = object.__setattr__
# BaseModel's slots, set through their descriptors (the fastest way around __setattr__).
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
# per class: every field in order (with its default), the fields with a default factory,
# and the defaults of the private attributes
_Template = tuple[dict[str, Any], tuple[tuple[str, Callable[[], Any]], ...], dict[str, Any] | None]
_TEMPLATES: dict[type[Any], _Template] = {}


def _template(cls: type[BaseModel]) -> _Template:
    fields: dict[str, Any] = {}
    factories: list[tuple[str, Callable[[], Any]]] = []
    for name, info in cls.model_fields.items():
        fields[name] = None if info.is_required() else info.default
        if info.default_factory is not None:
            factories.append((name, info.default_factory))  # type: ignore[arg-type]
    private = {name: attr.get_default() for name, attr in cls.__private_attributes__.items()}
    template = _TEMPLATES[cls] = (fields, tuple(factories), private or None)
    return template


def trusted(cls: type[_M], **values: Any) -> _M:
    """An instance built without validation, from values already of the right types.

    For the hot paths of providers and the gate, where every value comes from llmgate's
    own code or was checked already: the result equals what ``cls(**values)`` gives for
    valid input (model validators do not run, so the caller supplies what they would fill
    in, such as ``TokenUsage.total_tokens``). About twice as fast as validating, and unlike
    pydantic's ``model_construct`` it inspects no default factory per call.
    """
    fields, factories, private = _TEMPLATES.get(cls) or _template(cls)
    data = fields.copy()  # every field, in declaration order (repr and dumps follow it)
    data.update(values)
    if len(data) != len(fields):
        raise TypeError(f"{cls.__name__} has no field {sorted(set(values) - set(fields))}")
    for name, factory in factories:
        if name not in values:
            data[name] = factory()
    instance: _M = _new(cls)
    _set(instance, "__dict__", data)
    _set_fields_set(instance, set(values))
    _set_extra(instance, None)
    _set_private(instance, None if private is None else private.copy())
    return instance


def _store_raw(instance: BaseModel, raw: Any, factory: Callable[[], Any] | None) -> None:
    """Set the ``_raw`` / ``_raw_factory`` private attributes straight into their dict (what
    pydantic's ``__setattr__`` does for private attributes, without its dispatch)."""
    private = instance.__pydantic_private__
    if private is None:
        instance._raw = raw  # type: ignore[attr-defined]
        instance._raw_factory = factory  # type: ignore[attr-defined]
    else:
        private["_raw"] = raw
        private["_raw_factory"] = factory


# --------------------------------------------------------------------------- content


class TextPart(_Model):
    """A piece of text inside a message."""

    type: Literal["text"] = "text"
    text: str


class ImageURL(_Model):
    """An image the vendor fetches itself (``https://`` or a ``data:`` URI)."""

    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImageBytes(_Model):
    """An image sent inline: base64 text without a ``data:`` prefix."""

    data: str
    mime_type: str = "image/png"

    def raw_bytes(self) -> bytes:
        return base64.b64decode(self.data)


class ImagePart(_Model):
    """An image inside a message, by URL or by bytes."""

    type: Literal["image_url", "image_bytes"]
    image_url: ImageURL | None = None
    image_bytes: ImageBytes | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_openai_shape(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        data = dict(value)
        url = data.get("image_url")
        if isinstance(url, str):
            data["image_url"] = url = {"url": url}
        if isinstance(url, Mapping) and isinstance(url.get("url"), str):
            inline = _parse_data_uri(url["url"])
            if inline is not None:
                data.pop("image_url")
                data["type"] = "image_bytes"
                data["image_bytes"] = {"data": inline[1], "mime_type": inline[0]}
        return data

    @model_validator(mode="after")
    def _check_payload(self) -> ImagePart:
        if self.type == "image_url" and self.image_url is None:
            raise ValueError("an image_url part needs image_url={'url': ...}")
        if self.type == "image_bytes" and self.image_bytes is None:
            raise ValueError(
                "an image_bytes part needs image_bytes={'data': ..., 'mime_type': ...}"
            )
        return self

    @classmethod
    def from_url(cls, url: str, detail: Literal["auto", "low", "high"] | None = None) -> ImagePart:
        return cls(type="image_url", image_url=ImageURL(url=url, detail=detail))

    @classmethod
    def from_bytes(cls, data: bytes, mime_type: str = "image/png") -> ImagePart:
        encoded = base64.b64encode(data).decode("ascii")
        return cls(type="image_bytes", image_bytes=ImageBytes(data=encoded, mime_type=mime_type))

    def data_uri(self) -> str:
        """The image as a URL a vendor accepts: the URL itself, or a ``data:`` URI."""
        if self.image_url is not None:
            return self.image_url.url
        assert self.image_bytes is not None
        return f"data:{self.image_bytes.mime_type};base64,{self.image_bytes.data}"


def _parse_data_uri(url: str) -> tuple[str, str] | None:
    if not url.startswith("data:") or ";base64," not in url:
        return None
    header, _, data = url.partition(";base64,")
    return header[len("data:") :] or "image/png", data


ContentPart = TextPart | ImagePart


def _content_part(value: Any) -> Any:
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind in ("image_url", "image_bytes", "image"):
            data = dict(value)
            if kind == "image":
                data["type"] = "image_url"
            return ImagePart.model_validate(data)
        if kind in (None, "text", "input_text"):
            return TextPart(text=str(value.get("text", "")))
        raise ValueError(
            f"unsupported content part type {kind!r}: use 'text', 'image_url' or 'image_bytes'"
        )
    if isinstance(value, str):
        return TextPart(text=value)
    return value


# --------------------------------------------------------------------------- tools


class FunctionDefinition(_Model):
    """A function the model may call: its name, what it does, and a JSON Schema of its input."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


class ToolDefinition(_Model):
    """A tool offered to the model. Accepts OpenAI's shape and the flat ``{name, ...}`` one."""

    type: Literal["function"] = "function"
    function: FunctionDefinition

    @model_validator(mode="before")
    @classmethod
    def _accept_flat(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and "function" not in value and "name" in value:
            data = dict(value)
            data.pop("type", None)
            params = data.pop("input_schema", None)
            if params is not None and "parameters" not in data:
                data["parameters"] = params
            return {"type": "function", "function": data}
        return value

    @property
    def name(self) -> str:
        return self.function.name


class ToolCall(_Model):
    """A call the model made to a tool; ``arguments`` is already parsed into a dict."""

    id: str
    type: Literal["function"] = "function"
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _accept_openai_shape(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        data = dict(value)
        function = data.pop("function", None)
        if isinstance(function, Mapping):
            data.setdefault("name", function.get("name"))
            data.setdefault("arguments", function.get("arguments"))
        arguments = data.get("arguments")
        if isinstance(arguments, (str, bytes)):
            data["arguments"] = parse_tool_arguments(arguments)
        elif arguments is None:
            data["arguments"] = {}
        return data

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"), ensure_ascii=False)


def parse_tool_arguments(text: str | bytes) -> dict[str, Any]:
    """Tool arguments from a JSON string; an empty string means no arguments."""
    if not text or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"tool call arguments are not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError("tool call arguments must be a JSON object")
    return value


class ToolCallDelta(_Model):
    """A fragment of a streamed tool call. ``index`` orders calls; ``id``/``name`` come first."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments_delta: str = ""


# --------------------------------------------------------------------------- messages


class Message(_Model):
    """One turn of a conversation.

    ``reasoning`` carries the model's visible thinking; ``provider_details`` keeps opaque
    vendor blocks (thinking signatures, cache controls) keyed by provider name, so that a
    conversation sent back to the same vendor round-trips exactly.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    reasoning: str | None = None
    provider_details: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_dicts(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        data = dict(value)
        role = data.get("role")
        if role == "developer":
            data["role"] = "system"
        elif role == "function":
            data["role"] = "tool"
        content = data.get("content")
        if isinstance(content, list):
            data["content"] = [_content_part(part) for part in content]
        if data.get("tool_calls") == []:
            data["tool_calls"] = None
        if "reasoning_content" in data and "reasoning" not in data:
            data["reasoning"] = data.pop("reasoning_content")
        for unused in ("refusal", "annotations", "audio", "function_call"):
            if data.get(unused) is None:
                data.pop(unused, None)
        return data

    @model_validator(mode="after")
    def _check_role(self) -> Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a 'tool' message needs tool_call_id: the id of the call it answers")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only an 'assistant' message can carry tool_calls")
        return self

    @property
    def text(self) -> str:
        """All text parts joined; images are left out."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def images(self) -> list[ImagePart]:
        if isinstance(self.content, list):
            return [part for part in self.content if isinstance(part, ImagePart)]
        return []


# --------------------------------------------------------------------------- results


class TokenUsage(_Model):
    """Tokens spent. Cached-prompt and reasoning counts are filled where the vendor reports them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_prompt_tokens: int | None = None
    reasoning_tokens: int | None = None

    @model_validator(mode="after")
    def _fill_total(self) -> TokenUsage:
        if not self.total_tokens and (self.prompt_tokens or self.completion_tokens):
            self.total_tokens = self.prompt_tokens + self.completion_tokens
        return self

    def __add__(self, other: TokenUsage | None) -> TokenUsage:
        if other is None:
            return self
        return make_usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
            _add_optional(self.cached_prompt_tokens, other.cached_prompt_tokens),
            _add_optional(self.reasoning_tokens, other.reasoning_tokens),
        )

    __radd__ = __add__


def make_usage(
    prompt: Any = 0,
    completion: Any = 0,
    total: Any = 0,
    cached: Any = None,
    reasoning: Any = None,
) -> TokenUsage:
    """A TokenUsage of these counts, equal to ``TokenUsage(prompt_tokens=..., ...)`` with all
    five given: unvalidated when they are ints (or None for the optional two), as a vendor's
    JSON has them; validated (and so coerced or refused) otherwise."""
    if (
        type(prompt) is int
        and type(completion) is int
        and type(total) is int
        and (cached is None or type(cached) is int)
        and (reasoning is None or type(reasoning) is int)
    ):
        if not total and (prompt or completion):
            total = prompt + completion
        return trusted(
            TokenUsage,
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=total,
            cached_prompt_tokens=cached,
            reasoning_tokens=reasoning,
        )
    return TokenUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cached_prompt_tokens=cached,
        reasoning_tokens=reasoning,
    )


def _add_optional(a: int | None, b: int | None) -> int | None:
    if a is None and b is None:
        return None
    return (a or 0) + (b or 0)


class Choice(_Model):
    index: int = 0
    message: Message
    finish_reason: str | None = None


class CompletionResponse(_Model):
    """The result of a completion, the same for every vendor.

    ``raw`` is the vendor SDK's own result object; ``provider_details`` holds vendor-only data
    that has no unified field. ``attempts`` counts calls made (retries included) and ``usage``
    adds up every attempt's tokens, failed stream attempts included.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, defer_build=True)

    id: str = ""
    model: str
    provider: str
    choices: list[Choice]
    usage: TokenUsage = Field(default_factory=TokenUsage)
    parsed: Any = None
    fallback_attempts: list[str] = Field(default_factory=list)
    attempts: int = 1
    provider_details: dict[str, Any] = Field(default_factory=dict)
    _raw: Any = PrivateAttr(default=None)
    _raw_factory: Callable[[], Any] | None = PrivateAttr(default=None)

    @property
    def raw(self) -> Any:
        """The vendor SDK's own response object (built on first access where that is costly)."""
        if self._raw is None and self._raw_factory is not None:
            self._raw = self._raw_factory()
            self._raw_factory = None
        return self._raw

    def set_raw(self, raw: Any = None, *, factory: Callable[[], Any] | None = None) -> None:
        _store_raw(self, raw, factory)

    @property
    def message(self) -> Message:
        return self.choices[0].message

    @property
    def text(self) -> str:
        """The first choice's text ("" when the model only called tools)."""
        return self.choices[0].message.text if self.choices else ""

    @property
    def tool_calls(self) -> list[ToolCall] | None:
        return self.choices[0].message.tool_calls if self.choices else None

    @property
    def reasoning(self) -> str | None:
        return self.choices[0].message.reasoning if self.choices else None

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason if self.choices else None


class StreamChunk(_Model):
    """One piece of a streamed completion.

    ``delta`` is new text; ``tool_call_deltas`` and ``reasoning_delta`` carry the other kinds
    of output; ``finish_reason`` and ``usage`` arrive on the last chunk. After a mid-stream
    fallback, ``fallback_attempts`` names the models that failed, ``resumed_from_partial`` says
    the text continues what was already delivered, and ``restarted`` says the answer starts over
    (a UI should clear what it showed). ``parsed`` holds the partial structured object so far.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, defer_build=True)

    id: str = ""
    model: str = ""
    provider: str = ""
    delta: str = ""
    finish_reason: str | None = None
    index: int = 0
    usage: TokenUsage | None = None
    tool_call_deltas: list[ToolCallDelta] | None = None
    reasoning_delta: str | None = None
    fallback_attempts: list[str] = Field(default_factory=list)
    resumed_from_partial: bool = False
    restarted: bool = False
    parsed: Any = None
    provider_details: dict[str, Any] | None = None


_CHUNK_FIELDS: dict[str, Any] | None = None


def text_chunk(id: str, model: str, provider: str, delta: str) -> StreamChunk:
    """``StreamChunk(id=id, model=model, provider=provider, delta=delta)``, unvalidated.

    A piece of text is the commonest chunk of every stream, so providers build it here,
    from values they know to be strings, at about half the cost of validating.
    """
    global _CHUNK_FIELDS
    if _CHUNK_FIELDS is None:
        _CHUNK_FIELDS = _template(StreamChunk)[0]
    data = _CHUNK_FIELDS.copy()
    data["id"] = id
    data["model"] = model
    data["provider"] = provider
    data["delta"] = delta
    data["fallback_attempts"] = []
    chunk: StreamChunk = _new(StreamChunk)
    _set(chunk, "__dict__", data)
    _set_fields_set(chunk, {"id", "model", "provider", "delta"})
    _set_extra(chunk, None)
    _set_private(chunk, None)
    return chunk


# --------------------------------------------------------------------------- requests


class CompletionRequest(_Model):
    """Everything a completion needs. ``api_key`` is a secret: it never shows in a repr."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, defer_build=True)

    model: str | list[str]
    messages: list[Message]
    provider: str | None = None
    api_key: SecretStr | None = None
    base_url: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    stream: bool = False
    tools: list[ToolDefinition] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: Any = None
    max_validation_retries: int = 0
    timeout: float | None = None
    max_retries: int | None = None
    stream_fallback_mode: Literal["restart", "prefill", "user_turn"] = "restart"
    stream_resume_prompt: str | None = None
    extra_kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        data = dict(value)
        stop = data.get("stop")
        if isinstance(stop, str):
            data["stop"] = [stop]
        known = set(cls.model_fields)
        extras = {k: data.pop(k) for k in list(data) if k not in known}
        if extras:
            data["extra_kwargs"] = {**dict(data.get("extra_kwargs") or {}), **extras}
        return data

    @property
    def api_key_value(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None

    @property
    def model_name(self) -> str:
        """The single model of this request (after any fallback list was split)."""
        if isinstance(self.model, list):
            raise TypeError("this request names several models; pick one first")
        return self.model


_FLOAT_FIELDS = frozenset({"temperature", "top_p", "timeout"})
_INT_FIELDS = frozenset({"max_tokens", "max_retries", "max_validation_retries"})
_TEXT_FIELDS = frozenset({"provider", "base_url", "stream_resume_prompt"})
_FALLBACK_MODES = frozenset({"restart", "prefill", "user_turn"})
_NULLABLE_FIELDS = frozenset(
    {"api_key", "max_tokens", "max_retries", "temperature", "top_p", "timeout"} | _TEXT_FIELDS
)


def fast_request(data: dict[str, Any]) -> CompletionRequest | None:
    """The CompletionRequest for ``data`` without validation, when every value already has
    its field's exact type (messages as Message objects, plain numbers and strings); None
    when anything needs validating or normalising (then ``model_validate`` does it all).
    The result equals what ``CompletionRequest.model_validate(data)`` returns."""
    for name, value in data.items():
        if value is None:
            if name not in _NULLABLE_FIELDS:
                return None
        elif name in _FLOAT_FIELDS:
            kind = type(value)
            if kind is int:
                data[name] = float(value)
            elif kind is not float:
                return None
        elif name in _INT_FIELDS or name in _TEXT_FIELDS:
            if type(value) is not (int if name in _INT_FIELDS else str):
                return None
        elif name == "model":
            if type(value) is not str and not (
                type(value) is list and all(type(m) is str for m in value)
            ):
                return None
        elif name == "messages":
            if type(value) is not list or not all(type(m) is Message for m in value):
                return None
        elif name == "stream":
            if type(value) is not bool:
                return None
        elif name == "stream_fallback_mode":
            if value not in _FALLBACK_MODES or type(value) is not str:
                return None
        elif name == "api_key":
            if type(value) is not str:
                return None
            data[name] = SecretStr(value)
        else:
            return None  # tools, response_format, stop, extra keywords...: validate
    return trusted(CompletionRequest, **data)


def fast_message(value: Any) -> Message | None:
    """A plain ``{"role": ..., "content": "text"}`` dict as a Message without validation
    (equal to what validation gives); None for anything else."""
    if type(value) is not dict or len(value) != 2:
        return None
    role = value.get("role")
    content = value.get("content")
    if type(content) is not str or type(role) is not str:
        return None
    if role not in ("user", "system", "assistant"):
        return None
    return trusted(Message, role=role, content=content)


class EmbeddingRequest(_Model):
    """Everything an embedding call needs; vendor-specific options are mapped per provider."""

    model: str
    input: list[str]
    provider: str | None = None
    api_key: SecretStr | None = None
    base_url: str | None = None
    dimensions: int | None = None
    task_type: str | None = None
    title: str | None = None
    input_type: str | None = None
    truncate: str | None = None
    encoding_format: str | None = None
    user: str | None = None
    timeout: float | None = None
    max_retries: int | None = None
    extra_kwargs: dict[str, Any] = Field(default_factory=dict)

    @property
    def api_key_value(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None


class EmbeddingResponse(_Model):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, defer_build=True)

    embeddings: list[list[float]]
    model: str
    provider: str
    usage: TokenUsage = Field(default_factory=TokenUsage)
    attempts: int = 1
    provider_details: dict[str, Any] = Field(default_factory=dict)
    _raw: Any = PrivateAttr(default=None)
    _raw_factory: Callable[[], Any] | None = PrivateAttr(default=None)

    @property
    def raw(self) -> Any:
        """The vendor SDK's own response object (built on first access where that is costly)."""
        if self._raw is None and self._raw_factory is not None:
            self._raw = self._raw_factory()
            self._raw_factory = None
        return self._raw

    def set_raw(self, raw: Any = None, *, factory: Callable[[], Any] | None = None) -> None:
        _store_raw(self, raw, factory)


class BatchError(_Model):
    """A failed batch item: its position in the input, the error's class name and message."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, defer_build=True)

    index: int
    error_type: str
    error: str
    status_code: int | None = None
    exception: Any = Field(default=None, exclude=True, repr=False)


class BatchResult(_Model):
    results: list[CompletionResponse | None]
    errors: list[BatchError] = Field(default_factory=list)
    successful: int = 0
    failed: int = 0
    total_tokens: int = 0
    success_rate: float = 0.0
