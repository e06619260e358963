"""The Ollama provider: error mapping and the class, on ``ollama.Client`` / ``AsyncClient``.

The only module of this package that imports the ``ollama`` SDK.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx
import ollama
import pydantic_core
from pydantic import ValidationError
from typing_extensions import override

from ..._errors import make_provider_error, map_transport_error
from ..._images import fetch_image, url_not_supported
from ..._registry import Capabilities
from ..._sse import aiter_body, iter_body
from ...exceptions import (
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
from ...types import (
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamChunk,
)
from ..base import Provider, ProviderSettings, ProviderSpec
from ._convert import (
    StreamTranslator,
    chat_kwargs,
    embed_kwargs,
    embedding_response,
    embedding_response_from_wire,
    image_urls,
    plain_embeddings,
    plain_reply,
    plain_text,
    response_from_chat,
    response_from_plain,
)

if TYPE_CHECKING:
    import asyncio  # loaded only by async code paths: a sync program never imports it

__all__ = ["DEFAULT_HOST", "OllamaProvider", "map_ollama_error"]

DEFAULT_HOST = "http://127.0.0.1:11434"


# --------------------------------------------------------------------------- errors

# An error line inside a stream has no status (the SDK reports -1): classify by its text.
_IN_STREAM_CLASSES: tuple[tuple[tuple[str, ...], type[ProviderError]], ...] = (
    (("rate limit", "too many requests", "quota"), RateLimitError),
    (("unauthorized", "forbidden", "invalid api key"), AuthError),
    (("not found", "context length", "maximum context", "does not support"), BadRequestError),
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


# --------------------------------------------------------------------------- wire streams

# The SDK turns every NDJSON line of a stream into a validated ``ChatResponse``, which costs
# more than everything else llmgate does with the line. Streams are read from the SDK
# client's own httpx client instead (its host, headers, auth, timeout and TLS settings),
# with the request body built by the SDK's own ``chat`` code and its errors raised as it
# raises them; only a line that is a plain text delta skips the ``ChatResponse``. An SDK
# without these internals is used through ``chat()`` as before.
try:
    from ollama._client import _copy_messages, _copy_tools
    from ollama._types import ChatRequest

    _WIRE = True
except ImportError:  # pragma: no cover - depends on the installed SDK
    _WIRE = False
# Whole replies: sent by the SDK's own ``_request_raw`` (its status and connection errors).
_RAW_REQUESTS = hasattr(ollama.Client, "_request_raw") and hasattr(
    ollama.AsyncClient, "_request_raw"
)
# Embeddings: the body built by the SDK's own ``EmbedRequest``, sent by ``_request_raw``.
try:
    from ollama._types import EmbedRequest

    _EMBED_WIRE = _RAW_REQUESTS
except ImportError:  # pragma: no cover - depends on the installed SDK
    _EMBED_WIRE = False


_PLAIN_CHAT_KEYS = frozenset({"model", "messages", "options"})
# ``ollama.Message``'s text fields, in its field order (the order its dump keeps).
_MESSAGE_TEXT_FIELDS = ("role", "content", "thinking", "tool_name")
_MESSAGE_TEXT_KEYS = frozenset(_MESSAGE_TEXT_FIELDS)
_OPTION_SCALARS = frozenset({int, float, str, bool})


def _chat_body(kwargs: Mapping[str, Any], stream: bool) -> dict[str, Any]:
    """The JSON body ``Client.chat(**kwargs, stream=stream)`` sends."""
    return _plain_chat_body(kwargs, stream) or _sdk_chat_body(**kwargs, stream=stream)


def _plain_chat_body(kwargs: Mapping[str, Any], stream: bool) -> dict[str, Any] | None:
    """The body built directly for a request of text messages and plain options (keys in
    ``ChatRequest``'s field order, each message as ``Message``'s dump gives it); None for
    any other request, whose body the SDK's ``ChatRequest`` builds."""
    model, options = kwargs.get("model"), kwargs.get("options")
    if not kwargs.keys() <= _PLAIN_CHAT_KEYS or type(model) is not str or not model:
        return None
    messages = []
    for item in kwargs.get("messages") or ():
        if type(item) is not dict or not item.keys() <= _MESSAGE_TEXT_KEYS:
            return None
        message = {}
        for name in _MESSAGE_TEXT_FIELDS:
            value = item.get(name)
            if value:  # the SDK's copy drops every empty value
                if type(value) is not str:
                    return None
                message[name] = value
        if "role" not in message:
            return None
        messages.append(message)
    body: dict[str, Any] = {"model": model, "stream": stream}
    if options is not None:
        if type(options) is not dict:
            return None
        for key, value in options.items():
            if type(key) is not str or not (
                type(value) in _OPTION_SCALARS
                or (type(value) is list and all(type(item) is str for item in value))
            ):
                return None
        body["options"] = dict(options)
    body["messages"] = messages
    body["tools"] = []
    return body


def _sdk_chat_body(
    model: str = "",
    messages: Any = None,
    *,
    tools: Any = None,
    stream: bool = True,
    think: Any = None,
    logprobs: Any = None,
    top_logprobs: Any = None,
    format: Any = None,
    options: Any = None,
    keep_alive: Any = None,
) -> dict[str, Any]:
    """The JSON body ``Client.chat(..., stream=stream)`` sends for these arguments."""
    return ChatRequest(
        model=model,
        messages=list(_copy_messages(messages)),
        tools=list(_copy_tools(tools)),
        stream=stream,
        think=think,
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        format=format,
        options=options,
        keep_alive=keep_alive,
    ).model_dump(exclude_none=True)


_PLAIN_EMBED_KEYS = frozenset({"model", "input", "truncate", "dimensions"})
_STRS = frozenset({str})


def _embed_body(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body ``Client.embed(**kwargs)`` sends: built directly (keys in the order of
    ``EmbedRequest``'s fields) when every value is one that model keeps as it is, else by
    that model."""
    model, texts = kwargs.get("model"), kwargs.get("input")
    truncate, dimensions = kwargs.get("truncate"), kwargs.get("dimensions")
    if (
        kwargs.keys() <= _PLAIN_EMBED_KEYS
        and type(model) is str
        and model
        and type(texts) is list
        and set(map(type, texts)) <= _STRS
        and (truncate is None or type(truncate) is bool)
        and (dimensions is None or type(dimensions) is int)
    ):
        body: dict[str, Any] = {"model": model, "input": texts}
        if truncate is not None:
            body["truncate"] = truncate
        if dimensions is not None:
            body["dimensions"] = dimensions
        return body
    body = EmbedRequest(**kwargs).model_dump(exclude_none=True)
    return body


def _raise_for_status(reply: httpx.Response) -> None:
    """The SDK's ``ResponseError`` for an error status (the httpx error as its context);
    the body must have been read."""
    try:
        reply.raise_for_status()
    except httpx.HTTPStatusError as exc:
        raise ollama.ResponseError(exc.response.text, exc.response.status_code) from None


def _line_chunk(translator: StreamTranslator, line: bytes) -> StreamChunk | None:
    try:
        part = pydantic_core.from_json(line)
    except ValueError:
        part = json.loads(line)  # raises json's own error, as the SDK's reader does
    if err := part.get("error"):
        raise ollama.ResponseError(err)
    text = plain_text(part)
    if text is not None:
        return translator.text(text, part.get("model"))
    return translator.feed(ollama.ChatResponse(**part))


def _check_done(translator: StreamTranslator, provider: str, model: str) -> None:
    if not translator.done:
        raise ProviderConnectionError(
            "the ollama stream ended before its final (done) line", provider=provider, model=model
        )


# --------------------------------------------------------------------------- the provider


class OllamaProvider(Provider):
    """Ollama's chat and embeddings through ``ollama.Client`` / ``ollama.AsyncClient``.

    The SDK fixes a client's timeout when it is built, so clients are cached per timeout
    value (a few at most). Provider options: ``allow_image_download`` (fetch image URLs and
    send their bytes), ``image_max_bytes`` (the download cap), ``verify`` (httpx's TLS
    verification setting, for an Ollama behind https with a private CA).
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
        self._ssl_lock = threading.Lock()
        self._ssl_context: ssl.SSLContext | None = None

    # clients -----------------------------------------------------------------------
    def _client_kwargs(self, timeout: float | None) -> dict[str, Any]:
        key = self.api_key(required=False)
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return {
            "host": self.base_url or DEFAULT_HOST,
            "timeout": timeout,
            "headers": headers,
            "verify": self._verify(),
        }

    def _verify(self) -> Any:
        # Building an SSL context costs ~100 ms, and httpx builds one per client: every
        # client of this provider (one per timeout, per event loop) shares one instead.
        configured = self.settings.option("verify")
        if configured is not None:
            return configured
        if self._ssl_context is None:
            with self._ssl_lock:
                if self._ssl_context is None:
                    self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    @override
    def create_client(self) -> ollama.Client:
        return self.sync_client(None)

    @override
    def create_async_client(self) -> ollama.AsyncClient:
        return self.async_client_for(None)

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
        import asyncio

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

    @override
    async def aclose(self) -> None:
        """Close the running loop's async clients, then the sync ones.

        ``close()`` cannot await, so it only forgets async clients; call this from inside
        the event loop that used them to release their connections at once.
        """
        import asyncio

        loop = asyncio.get_running_loop()
        with self._cache_lock:
            clients = self._loop_clients.pop(loop, None)
        for client in (clients or {}).values():
            with contextlib.suppress(Exception):
                await client.close()  # type: ignore[no-untyped-call]
        self.close()

    # checks and images -------------------------------------------------------------
    @property
    def strict(self) -> bool:
        return self.strict_params

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
        max_bytes, timeout = self.image_download_limits(timeout=request.timeout)
        return {
            url: fetch_image(url, max_bytes=max_bytes, timeout=timeout)[0]
            for url in dict.fromkeys(urls)
        }

    async def adownload_images(self, request: CompletionRequest) -> dict[str, bytes]:
        import asyncio

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
        client = self.sync_client(request.timeout)
        if _WIRE and isinstance(getattr(client, "_client", None), httpx.Client) and _RAW_REQUESTS:
            reply = client._request_raw(  # type: ignore[no-untyped-call]
                "POST", "/api/chat", json=_chat_body(kwargs, False)
            )
            return self._whole_reply(reply.content, model)
        result = client.chat(**kwargs, stream=False)
        return response_from_chat(result, model=model, provider=self.name)

    @override
    async def acomplete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        kwargs = self._chat_kwargs(request, model, await self.adownload_images(request))
        client = self.async_client_for(request.timeout)
        if (
            _WIRE
            and isinstance(getattr(client, "_client", None), httpx.AsyncClient)
            and _RAW_REQUESTS
        ):
            body = _chat_body(kwargs, False)
            reply = await client._request_raw(  # type: ignore[no-untyped-call]
                "POST", "/api/chat", json=body
            )
            return self._whole_reply(reply.content, model)
        result = await client.chat(**kwargs, stream=False)
        return response_from_chat(result, model=model, provider=self.name)

    def _whole_reply(self, body: bytes, model: str) -> CompletionResponse:
        """A whole reply read as the SDK's ``chat`` reads it (``json`` errors included)."""
        try:
            part = pydantic_core.from_json(body)
        except ValueError:
            part = json.loads(body)
        plain = plain_reply(part)
        if plain is not None:
            return response_from_plain(part, plain[0], plain[1] or model, provider=self.name)
        return response_from_chat(ollama.ChatResponse(**part), model=model, provider=self.name)

    @override
    def stream(self, request: CompletionRequest, model: str) -> Iterator[StreamChunk]:
        kwargs = self._chat_kwargs(request, model, self.download_images(request))
        client = self.sync_client(request.timeout)
        http = getattr(client, "_client", None) if _WIRE else None
        translator = StreamTranslator(model, self.name)
        if isinstance(http, httpx.Client):
            with http.stream("POST", "/api/chat", json=_chat_body(kwargs, True)) as reply:
                if not reply.is_success:
                    reply.read()
                    _raise_for_status(reply)
                buffer = b""
                for piece in iter_body(reply):
                    lines = (buffer + piece if buffer else piece).split(b"\n")
                    buffer = lines.pop()
                    for line in lines:
                        chunk = _line_chunk(translator, line)
                        if chunk is not None:
                            yield chunk
                if buffer:
                    chunk = _line_chunk(translator, buffer)
                    if chunk is not None:
                        yield chunk
        else:
            parts = client.chat(**kwargs, stream=True)
            try:
                for part in parts:
                    chunk = translator.feed(part)
                    if chunk is not None:
                        yield chunk
            finally:
                close = getattr(parts, "close", None)
                if close is not None:
                    close()
        _check_done(translator, self.name, model)

    @override
    async def astream(self, request: CompletionRequest, model: str) -> AsyncIterator[StreamChunk]:
        kwargs = self._chat_kwargs(request, model, await self.adownload_images(request))
        client = self.async_client_for(request.timeout)
        http = getattr(client, "_client", None) if _WIRE else None
        translator = StreamTranslator(model, self.name)
        if isinstance(http, httpx.AsyncClient):
            async with http.stream("POST", "/api/chat", json=_chat_body(kwargs, True)) as reply:
                if not reply.is_success:
                    await reply.aread()
                    _raise_for_status(reply)
                buffer = b""
                async for piece in aiter_body(reply):
                    lines = (buffer + piece if buffer else piece).split(b"\n")
                    buffer = lines.pop()
                    for line in lines:
                        chunk = _line_chunk(translator, line)
                        if chunk is not None:
                            yield chunk
                if buffer:
                    chunk = _line_chunk(translator, buffer)
                    if chunk is not None:
                        yield chunk
        else:
            parts = await client.chat(**kwargs, stream=True)
            try:
                async for part in parts:
                    chunk = translator.feed(part)
                    if chunk is not None:
                        yield chunk
            finally:
                aclose = getattr(parts, "aclose", None)
                if aclose is not None:
                    await aclose()
        _check_done(translator, self.name, model)

    @override
    def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        kwargs = embed_kwargs(request, model, strict=self.strict)
        client = self.sync_client(request.timeout)
        if _EMBED_WIRE and isinstance(getattr(client, "_client", None), httpx.Client):
            reply = client._request_raw(  # type: ignore[no-untyped-call]
                "POST", "/api/embed", json=_embed_body(kwargs)
            )
            return self._embeddings(reply.content, model, len(request.input))
        result = client.embed(**kwargs)
        return embedding_response(
            result, model=model, expected=len(request.input), provider=self.name
        )

    @override
    async def aembed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        kwargs = embed_kwargs(request, model, strict=self.strict)
        client = self.async_client_for(request.timeout)
        if _EMBED_WIRE and isinstance(getattr(client, "_client", None), httpx.AsyncClient):
            body = _embed_body(kwargs)
            reply = await client._request_raw(  # type: ignore[no-untyped-call]
                "POST", "/api/embed", json=body
            )
            return self._embeddings(reply.content, model, len(request.input))
        result = await client.embed(**kwargs)
        return embedding_response(
            result, model=model, expected=len(request.input), provider=self.name
        )

    def _embeddings(self, body: bytes, model: str, expected: int) -> EmbeddingResponse:
        """An embed reply read as the SDK's ``embed`` reads it (``json`` errors included)."""
        try:
            part = pydantic_core.from_json(body)
        except ValueError:
            part = json.loads(body)
        vectors = plain_embeddings(part)
        if vectors is None:
            return embedding_response(
                ollama.EmbedResponse(**part), model=model, expected=expected, provider=self.name
            )
        return embedding_response_from_wire(
            part, vectors, model=model, expected=expected, provider=self.name
        )

    # errors ------------------------------------------------------------------------
    @override
    def map_error(self, exc: BaseException, model: str) -> LLMGateError:
        return map_ollama_error(exc, provider=self.name, model=model)
