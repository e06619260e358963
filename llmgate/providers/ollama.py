"""Ollama: local (or hosted) models through the official ``ollama`` SDK.

The SDK speaks Ollama's native API: ``POST /api/chat`` (one JSON object, or NDJSON lines
when streaming) and ``POST /api/embed``. Sampling parameters live in ``options``; images are
sent as base64 only (an image URL is downloaded only when the caller opts in with the
provider option ``allow_image_download=True``); tool calls come back whole, with dict
arguments and no ids, so stable ids are derived from each call's position, name and
arguments, identical for streamed and non-streamed answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
import uuid
import warnings
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

import httpx
import ollama
from pydantic import ValidationError
from typing_extensions import override

from .. import _structured
from .._errors import make_provider_error, map_transport_error
from .._images import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, fetch_image, url_not_supported
from .._registry import Capabilities
from ..exceptions import (
    AuthError,
    BadRequestError,
    InvalidRequestError,
    LLMGateError,
    ProviderAPIError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from ..types import (
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
)
from .base import Provider, ProviderSettings, ProviderSpec

__all__ = ["OllamaProvider"]

PROVIDER = "ollama"
DEFAULT_HOST = "http://127.0.0.1:11434"

# Keyword arguments of Client.chat / Client.embed that extra_kwargs may set directly.
CHAT_PARAMETERS = frozenset({"think", "logprobs", "top_logprobs", "format", "keep_alive"})
EMBED_PARAMETERS = frozenset({"keep_alive"})
# Everything else Ollama accepts goes into ``options`` (seed, top_k, num_ctx, ...).
OPTION_NAMES = frozenset(ollama.Options.model_fields)

_EFFORT_TO_THINK: dict[str, bool | str] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}
_TRUNCATE_VALUES = {"true": True, "end": True, "false": False, "none": False}


# =========================================================================== 1. requests


def drop_parameter(name: str, reason: str, *, strict: bool) -> None:
    """A parameter Ollama cannot honour: a warning, or an error under ``strict_params``."""
    message = f"ollama does not support {name}: {reason}"
    if strict:
        raise InvalidRequestError(message)
    warnings.warn(f"{message}; it was dropped", UserWarning, stacklevel=4)


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
        function: dict[str, Any] = {"name": tool.function.name}
        if tool.function.description:
            function["description"] = tool.function.description
        function["parameters"] = tool.function.parameters
        tools.append({"type": "function", "function": function})
    return tools


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


# =========================================================================== 2. results


def tool_call_id(index: int, name: str, arguments: Mapping[str, Any]) -> str:
    """A stable id for a call Ollama returned without one (same streamed or not)."""
    key = json.dumps([index, name, arguments], sort_keys=True, ensure_ascii=False, default=str)
    return "call_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def tool_calls_from(
    calls: Iterable[ollama.Message.ToolCall] | None, start: int = 0
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


def usage_from(result: ollama.ChatResponse | ollama.EmbedResponse) -> TokenUsage:
    return TokenUsage(
        prompt_tokens=result.prompt_eval_count or 0, completion_tokens=result.eval_count or 0
    )


def response_details(result: ollama.ChatResponse) -> dict[str, Any]:
    """Ollama's timings and raw done reason (response-level provider_details)."""
    names = (
        "done_reason",
        "created_at",
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    )
    return {name: getattr(result, name) for name in names if getattr(result, name) is not None}


def response_from_chat(
    result: ollama.ChatResponse, *, model: str, provider: str = PROVIDER, response_id: str = ""
) -> CompletionResponse:
    calls = tool_calls_from(result.message.tool_calls)
    text = result.message.content or ""
    message = Message(
        role="assistant",
        content=text if (text or not calls) else None,
        tool_calls=calls or None,
        reasoning=result.message.thinking or None,
    )
    response = CompletionResponse(
        id=response_id or new_response_id(),
        model=result.model or model,
        provider=provider,
        choices=[
            Choice(
                index=0,
                message=message,
                finish_reason=finish_reason(result.done_reason, bool(calls)),
            )
        ],
        usage=usage_from(result),
        provider_details={provider: response_details(result)},
    )
    response.set_raw(result)
    return response


def new_response_id() -> str:
    return f"ollama-{uuid.uuid4().hex}"


class StreamTranslator:
    """NDJSON ``ChatResponse`` pieces → StreamChunks; the ``done`` line brings finish and usage."""

    def __init__(self, model: str, provider: str = PROVIDER, response_id: str = "") -> None:
        self.model = model
        self.provider = provider
        self.response_id = response_id or new_response_id()
        self.tool_calls = 0
        self.done = False

    def feed(self, part: ollama.ChatResponse) -> StreamChunk | None:
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
        return StreamChunk(
            id=self.response_id,
            model=part.model or self.model,
            provider=self.provider,
            delta=text,
            reasoning_delta=thinking,
            tool_call_deltas=deltas,
            finish_reason=finish,
            usage=usage,
        )


def embedding_response(
    result: ollama.EmbedResponse, *, model: str, expected: int, provider: str = PROVIDER
) -> EmbeddingResponse:
    vectors = [list(map(float, vector)) for vector in result.embeddings]
    if len(vectors) != expected:
        raise ProviderAPIError(
            f"ollama returned {len(vectors)} embeddings for {expected} inputs",
            provider=provider,
            model=model,
        )
    response = EmbeddingResponse(
        embeddings=vectors,
        model=result.model or model,
        provider=provider,
        usage=usage_from(result),
    )
    response.set_raw(result)
    return response


# =========================================================================== 3. errors

# An error line inside a stream has no status (the SDK reports -1): classify by its text.
_IN_STREAM_CLASSES: tuple[tuple[tuple[str, ...], type[ProviderError]], ...] = (
    (("rate limit", "too many requests", "quota"), RateLimitError),
    (("unauthorized", "forbidden", "invalid api key"), AuthError),
    (("not found", "invalid", "context length", "exceeds"), BadRequestError),
)


def _error_response(exc: BaseException) -> httpx.Response | None:
    # The SDK raises ResponseError ``from None``; the httpx error (with the response and its
    # headers) is still its __context__.
    context = exc.__context__
    if isinstance(context, httpx.HTTPStatusError):
        return context.response
    return None


def map_ollama_error(exc: BaseException, *, provider: str, model: str) -> LLMGateError:
    """The ordered mapping from the SDK's exceptions to llmgate's."""
    if isinstance(exc, LLMGateError):
        return exc
    if isinstance(exc, ollama.ResponseError):
        message = str(exc.error)
        if exc.status_code > 0:
            response = _error_response(exc)
            return make_provider_error(
                message,
                status=exc.status_code,
                provider=provider,
                model=model,
                headers=response.headers if response is not None else None,
                body=exc.error,
            )
        lowered = message.lower()
        error_cls: type[ProviderError] = ServerError
        for needles, cls in _IN_STREAM_CLASSES:
            if any(needle in lowered for needle in needles):
                error_cls = cls
                break
        return make_provider_error(
            message, status=None, provider=provider, model=model, body=exc.error, cls=error_cls
        )
    if isinstance(exc, ollama.RequestError):
        return InvalidRequestError(f"ollama rejected the request: {exc.error}")
    if isinstance(exc, ValidationError):
        if exc.title.endswith("Response"):
            return ProviderAPIError(
                f"ollama sent a response the SDK cannot read: {exc}", provider=provider, model=model
            )
        return InvalidRequestError(f"invalid request for ollama: {exc}")
    if isinstance(exc, json.JSONDecodeError):
        return ProviderAPIError(
            f"ollama sent malformed JSON: {exc}", provider=provider, model=model, retryable=True
        )
    mapped = map_transport_error(exc, provider=provider, model=model)
    if mapped is not None:
        return mapped
    return ProviderAPIError(f"{type(exc).__name__}: {exc}", provider=provider, model=model)


# =========================================================================== 4. the provider


class OllamaProvider(Provider):
    """Ollama's chat and embeddings through ``ollama.Client`` / ``ollama.AsyncClient``.

    The SDK fixes a client's timeout when it is built, so clients are cached per timeout
    value (a few at most). Provider options: ``allow_image_download`` (fetch image URLs and
    send their bytes), ``image_max_bytes`` (the download cap).
    """

    capabilities = Capabilities(
        embeddings=True,
        reasoning=True,
        image_urls=False,
        tool_choice_required=False,
    )
    # Ollama sets no limit on inputs per /api/embed call; bound each request so one call
    # stays a modest amount of work for a local server (the gate splits larger inputs).
    embedding_batch_size = 512
    max_cached_clients = 8

    def __init__(self, spec: ProviderSpec, settings: ProviderSettings) -> None:
        super().__init__(spec, settings)
        self._sync_clients: OrderedDict[float | None, ollama.Client] = OrderedDict()
        self._loop_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, OrderedDict[float | None, ollama.AsyncClient]
        ] = weakref.WeakKeyDictionary()
        self._cache_lock = threading.Lock()

    # clients -----------------------------------------------------------------------
    def _client_kwargs(self, timeout: float | None) -> dict[str, Any]:
        key = self.api_key(required=False)
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return {"host": self.base_url or DEFAULT_HOST, "timeout": timeout, "headers": headers}

    @override
    def create_client(self) -> ollama.Client:
        return ollama.Client(**self._client_kwargs(None))

    @override
    def create_async_client(self) -> ollama.AsyncClient:
        return ollama.AsyncClient(**self._client_kwargs(None))

    def sync_client(self, timeout: float | None) -> ollama.Client:
        """The sync client whose timeout is ``timeout`` (built on first use)."""
        with self._cache_lock:
            client = self._sync_clients.get(timeout)
            if client is None:
                client = ollama.Client(**self._client_kwargs(timeout))
                self._sync_clients[timeout] = client
                if len(self._sync_clients) > self.max_cached_clients:
                    # Dropped, not closed: another thread may still be using it.
                    self._sync_clients.popitem(last=False)
            else:
                self._sync_clients.move_to_end(timeout)
            return client

    def async_client_for(self, timeout: float | None) -> ollama.AsyncClient:
        """The running loop's async client whose timeout is ``timeout``."""
        loop = asyncio.get_running_loop()
        with self._cache_lock:
            clients = self._loop_clients.get(loop)
            if clients is None:
                clients = self._loop_clients[loop] = OrderedDict()
            client = clients.get(timeout)
            if client is None:
                client = ollama.AsyncClient(**self._client_kwargs(timeout))
                clients[timeout] = client
                if len(clients) > self.max_cached_clients:
                    clients.popitem(last=False)
            else:
                clients.move_to_end(timeout)
            return client

    @override
    def close(self) -> None:
        with self._cache_lock:
            clients = list(self._sync_clients.values())
            self._sync_clients.clear()
            self._loop_clients.clear()
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()  # type: ignore[no-untyped-call]
        super().close()

    # checks and images -------------------------------------------------------------
    @property
    def strict(self) -> bool:
        return bool(getattr(self, "strict_params", False))

    @override
    def check_request(self, request: CompletionRequest, model: str) -> None:
        super().check_request(request, model)
        if self.settings.option("allow_image_download", False):
            return
        for message in request.messages:
            if any(part.image_url is not None for part in message.images):
                raise url_not_supported(self.name, model)

    def download_images(self, request: CompletionRequest) -> dict[str, bytes]:
        """The bytes of every image URL in the request (only with allow_image_download)."""
        urls = image_urls(request)
        if not urls:
            return {}
        if not self.settings.option("allow_image_download", False):
            raise url_not_supported(self.name, request.model_name)
        max_bytes = int(self.settings.option("image_max_bytes", DEFAULT_MAX_BYTES))
        timeout = request.timeout or DEFAULT_TIMEOUT
        return {
            url: fetch_image(url, max_bytes=max_bytes, timeout=timeout)[0]
            for url in dict.fromkeys(urls)
        }

    async def adownload_images(self, request: CompletionRequest) -> dict[str, bytes]:
        if not image_urls(request):
            return {}
        return await asyncio.to_thread(self.download_images, request)

    def _chat_kwargs(
        self, request: CompletionRequest, model: str, downloaded: Mapping[str, bytes]
    ) -> dict[str, Any]:
        return chat_kwargs(request, model, downloaded=downloaded, strict=self.strict)

    # calls -------------------------------------------------------------------------
    @override
    def complete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        kwargs = self._chat_kwargs(request, model, self.download_images(request))
        result = self.sync_client(request.timeout).chat(**kwargs, stream=False)
        return response_from_chat(result, model=model, provider=self.name)

    @override
    async def acomplete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        kwargs = self._chat_kwargs(request, model, await self.adownload_images(request))
        result = await self.async_client_for(request.timeout).chat(**kwargs, stream=False)
        return response_from_chat(result, model=model, provider=self.name)

    @override
    def stream(self, request: CompletionRequest, model: str) -> Iterator[StreamChunk]:
        kwargs = self._chat_kwargs(request, model, self.download_images(request))
        parts = self.sync_client(request.timeout).chat(**kwargs, stream=True)
        translator = StreamTranslator(model, self.name)
        try:
            for part in parts:
                chunk = translator.feed(part)
                if chunk is not None:
                    yield chunk
        finally:
            close = getattr(parts, "close", None)
            if close is not None:
                close()
        if not translator.done:
            raise ProviderConnectionError(
                "the ollama stream ended before its final (done) line",
                provider=self.name,
                model=model,
            )

    @override
    async def astream(self, request: CompletionRequest, model: str) -> AsyncIterator[StreamChunk]:
        kwargs = self._chat_kwargs(request, model, await self.adownload_images(request))
        parts = await self.async_client_for(request.timeout).chat(**kwargs, stream=True)
        translator = StreamTranslator(model, self.name)
        try:
            async for part in parts:
                chunk = translator.feed(part)
                if chunk is not None:
                    yield chunk
        finally:
            aclose = getattr(parts, "aclose", None)
            if aclose is not None:
                await aclose()
        if not translator.done:
            raise ProviderConnectionError(
                "the ollama stream ended before its final (done) line",
                provider=self.name,
                model=model,
            )

    @override
    def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        kwargs = embed_kwargs(request, model, strict=self.strict)
        result = self.sync_client(request.timeout).embed(**kwargs)
        return embedding_response(
            result, model=model, expected=len(request.input), provider=self.name
        )

    @override
    async def aembed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        kwargs = embed_kwargs(request, model, strict=self.strict)
        result = await self.async_client_for(request.timeout).embed(**kwargs)
        return embedding_response(
            result, model=model, expected=len(request.input), provider=self.name
        )

    # errors ------------------------------------------------------------------------
    @override
    def map_error(self, exc: BaseException, model: str) -> LLMGateError:
        return map_ollama_error(exc, provider=self.name, model=model)
