"""Anthropic Messages on the official ``anthropic`` SDK: error mapping and the provider class.

The SDK does auth, headers, HTTP and error raising; the provider reads the wire JSON of
``messages.with_raw_response.create`` straight into llmgate types (and the raw SSE events
of a stream), building the SDK's own ``Message`` only when a caller reads ``response.raw``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar

import anthropic
import httpx2
import pydantic_core
from anthropic.resources.messages import Messages
from typing_extensions import override

from ..._errors import make_provider_error, map_transport_error
from ..._registry import Capabilities
from ..._sse import SSEParser, aiter_body, iter_body
from ...exceptions import (
    ConfigError,
    InvalidRequestError,
    LLMGateError,
    ProviderAPIError,
    ProviderConnectionError,
    ProviderTimeoutError,
)
from ...types import CompletionRequest, CompletionResponse, StreamChunk
from ..base import Provider
from . import _wire
from ._convert import (
    DEFAULT_MAX_TOKENS,
    StreamTranslator,
    call_kwargs,
    response_from_json,
)

# =========================================================================== 3. errors

# An ``event: error`` frame arrives inside a 200 response: the SDK raises APIStatusError
# with status_code 200, so the HTTP status is recovered from the error type.
STREAM_ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def _status_error(exc: BaseException, provider: str, model: str) -> LLMGateError:
    assert isinstance(exc, anthropic.APIStatusError)
    status = exc.status_code
    kind = exc.type if isinstance(exc.type, str) else None
    if status < 400:
        status = STREAM_ERROR_STATUS.get(kind or "", 500)
    message = exc.api_message or exc.message
    if kind and kind not in message:
        message = f"{kind}: {message}"
    return make_provider_error(
        message,
        status=status,
        provider=provider,
        model=model,
        headers=exc.response.headers,
        request_id=exc.request_id,
        body=exc.body,
    )


def _timeout(exc: BaseException, provider: str, model: str) -> LLMGateError:
    return ProviderTimeoutError("the request timed out", provider=provider, model=model)


def _connection(exc: BaseException, provider: str, model: str) -> LLMGateError:
    cause = exc.__cause__ or exc.__context__
    detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
    return ProviderConnectionError(
        f"connection to Anthropic failed{detail}", provider=provider, model=model
    )


def _invalid_response(exc: BaseException, provider: str, model: str) -> LLMGateError:
    status = getattr(exc, "status_code", None)
    return ProviderAPIError(
        f"Anthropic sent a response the SDK cannot read: {exc}",
        provider=provider,
        model=model,
        status_code=status,
    )


def _malformed_event(exc: BaseException, provider: str, model: str) -> LLMGateError:
    return ProviderAPIError(
        f"Anthropic sent a malformed stream event: {exc}", provider=provider, model=model
    )


def _credentials(exc: BaseException, provider: str, model: str) -> LLMGateError:
    return ConfigError(f"anthropic could not load credentials: {exc}")


ErrorHandler = Callable[[BaseException, str, str], LLMGateError]

# First match wins: subclasses before their bases.
ERROR_TABLE: tuple[tuple[type[BaseException], ErrorHandler], ...] = (
    (anthropic.APIStatusError, _status_error),
    (anthropic.APITimeoutError, _timeout),
    (anthropic.APIConnectionError, _connection),
    (anthropic.APIResponseValidationError, _invalid_response),
    (anthropic.CredentialsError, _credentials),
    (json.JSONDecodeError, _malformed_event),
)


def map_anthropic_error(exc: BaseException, provider: str, model: str) -> LLMGateError:
    if isinstance(exc, LLMGateError):
        return exc
    for cls, handler in ERROR_TABLE:
        if isinstance(exc, cls):
            return handler(exc, provider, model)
    mapped = map_transport_error(exc, provider=provider, model=model)
    if mapped is not None:
        return mapped
    if isinstance(exc, ValueError) and "Streaming is required" in str(exc):
        # The SDK refuses non-streaming calls whose max_tokens could outlast its timeout.
        return InvalidRequestError(f"{exc} (call with stream=True, or lower max_tokens)")
    return ProviderAPIError(f"{type(exc).__name__}: {exc}", provider=provider, model=model)


def _stream_error(data: str, response: httpx2.Response) -> anthropic.APIStatusError:
    """The error an ``event: error`` frame stands for, raised as the SDK's own stream does."""
    body: object = data
    try:
        body = json.loads(data)
        message = f"{body}"
    except ValueError:
        message = data or f"Error code: {response.status_code}"
    return anthropic.APIStatusError(message, response=response, body=body)


# =========================================================================== 4. the provider


def _translate(
    translator: StreamTranslator, event: bytes | None, data: bytes, response: httpx2.Response
) -> StreamChunk | None:
    """One server-sent event of a Messages stream (the SDK's ``raw_events``, read as bytes)."""
    if event is None or event == b"ping":
        return None
    if event == b"error":
        raise _stream_error(data.decode("utf-8", "replace"), response)
    if not data:
        return None
    return translator.feed_data(data)


# Most pieces of a stream are one whole text-delta event: this name line, one data line, a
# blank line. Such a piece, arriving while no event is half read, is read without the SSE
# parser; any other piece goes through it.
_DELTA_HEAD = b"event: content_block_delta\ndata: "
_DELTA_START = len(_DELTA_HEAD)


def _delta_data(piece: bytes) -> bytes | None:
    """The data of ``piece`` when it is exactly one whole ``content_block_delta`` event."""
    if piece.startswith(_DELTA_HEAD) and piece.endswith(b"\n\n"):
        data = piece[_DELTA_START:-2]
        if b"\n" not in data and b"\r" not in data:
            return data
    return None


class _EventReader:
    """The chunks of one Messages stream, piece by piece of its body (sync and async alike)."""

    def __init__(self, provider: str, response: httpx2.Response) -> None:
        self.translator = StreamTranslator(provider)
        self.events = SSEParser()
        self.response = response
        self.idle = True  # no event is half read

    def read(self, piece: bytes) -> Iterable[StreamChunk]:
        if self.idle:
            data = _delta_data(piece)
            if data is not None:
                chunk = self.translator.feed_data(data)
                return () if chunk is None else (chunk,)
        self.idle = piece.endswith(b"\n\n")
        return self._chunks(self.events.feed(piece))

    def close(self) -> Iterable[StreamChunk]:
        return self._chunks(self.events.close())

    def _chunks(self, events: Iterable[tuple[bytes | None, bytes]]) -> Iterator[StreamChunk]:
        # lazily: a chunk read before an in-stream error in the same piece still reaches the caller
        for event, data in events:
            chunk = _translate(self.translator, event, data, self.response)
            if chunk is not None:
                yield chunk


def _sdk_message(data: Mapping[str, Any], request_id: str | None) -> anthropic.types.Message:
    """The SDK's own Message for ``response.raw``, built as the SDK builds it (unvalidated)."""
    message = anthropic.types.Message.construct(**data)
    message._request_id = request_id
    return message


ACCEPTED_KWARGS: frozenset[str] = frozenset(
    name for name in inspect.signature(Messages.create).parameters if name not in ("self", "stream")
)


class AnthropicProvider(Provider):
    """Anthropic Messages. No embeddings: ``embed`` raises EmbeddingsNotSupported unsent.

    Provider options: ``default_max_tokens`` (default 4096; the API requires max_tokens),
    ``default_headers``.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(prefill=True, reasoning=True)

    # clients ----------------------------------------------------------------------
    def _client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "api_key": self.api_key(),
            "base_url": self.base_url,
            "max_retries": 0,
        }
        headers = self.settings.option("default_headers")
        if headers:
            kwargs["default_headers"] = dict(headers)
        return kwargs

    @override
    def create_client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(**self._client_kwargs())

    @override
    def create_async_client(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(**self._client_kwargs())

    # translation ------------------------------------------------------------------
    def _kwargs(self, request: CompletionRequest, model: str) -> dict[str, Any]:
        return call_kwargs(
            request,
            model,
            accepted=ACCEPTED_KWARGS,
            transform_schema=anthropic.transform_schema,
            default_max_tokens=int(self.settings.option("default_max_tokens", DEFAULT_MAX_TOKENS)),
            strict=self.strict_params,
        )

    def _response(self, http: httpx2.Response) -> CompletionResponse:
        try:
            data = pydantic_core.from_json(http.content)
        except ValueError:
            data = http.json()  # another charset, or json's own error as raw.json() raises it
        if not isinstance(data, Mapping):
            raise anthropic.APIResponseValidationError(http, data)
        request_id: str | None = http.headers.get("request-id")
        response = response_from_json(data, self.name, request_id)
        response.set_raw(factory=lambda: _sdk_message(data, request_id))
        return response

    # calls ------------------------------------------------------------------------
    def _send(self, kwargs: dict[str, Any], stream: bool) -> httpx2.Response:
        client = self.client
        arguments = _wire.post_arguments(client, kwargs, stream=stream)
        if arguments is None:
            if stream:
                raw = client.messages.with_raw_response.create(stream=True, **kwargs)
            else:
                raw = client.messages.with_raw_response.create(**kwargs)
            response: httpx2.Response = raw.http_response
            return response
        body, options = arguments
        http: httpx2.Response = client.post(
            _wire.MESSAGES_PATH, cast_to=httpx2.Response, body=body, options=options, stream=stream
        )
        return http

    async def _asend(self, kwargs: dict[str, Any], stream: bool) -> httpx2.Response:
        client = self.async_client
        arguments = _wire.post_arguments(client, kwargs, stream=stream)
        if arguments is None:
            if stream:
                raw = await client.messages.with_raw_response.create(stream=True, **kwargs)
            else:
                raw = await client.messages.with_raw_response.create(**kwargs)
            response: httpx2.Response = raw.http_response
            return response
        body, options = arguments
        http: httpx2.Response = await client.post(
            _wire.MESSAGES_PATH, cast_to=httpx2.Response, body=body, options=options, stream=stream
        )
        return http

    @override
    def complete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        http = self._send(self._kwargs(request, model), False)
        return self._response(http)

    @override
    async def acomplete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        http = await self._asend(self._kwargs(request, model), False)
        return self._response(http)

    @override
    def stream(self, request: CompletionRequest, model: str) -> Iterator[StreamChunk]:
        response = self._send(self._kwargs(request, model), True)
        reader = _EventReader(self.name, response)
        try:
            for piece in iter_body(response):
                yield from reader.read(piece)
            yield from reader.close()
        finally:
            response.close()

    @override
    async def astream(self, request: CompletionRequest, model: str) -> AsyncIterator[StreamChunk]:
        response = await self._asend(self._kwargs(request, model), True)
        reader = _EventReader(self.name, response)
        try:
            async for piece in aiter_body(response):
                for chunk in reader.read(piece):
                    yield chunk
            for chunk in reader.close():
                yield chunk
        finally:
            await response.aclose()

    # errors -----------------------------------------------------------------------
    @override
    def map_error(self, exc: BaseException, model: str) -> LLMGateError:
        return map_anthropic_error(exc, self.name, model)
