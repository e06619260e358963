"""The Cohere provider class and its error mapping; the only module importing ``cohere``.

The SDK reads ``CO_API_URL`` when it is imported, so the base URL is always passed
explicitly; its retries are switched off (``max_retries=0`` on the client and per call).
Chat calls go through the SDK's public ``with_raw_response`` client: the SDK still builds,
authenticates and sends the request and raises its errors, while llmgate reads the reply's
JSON and the stream's events itself (see ``_convert``); ``response.raw`` is the SDK's own
``V2ChatResponse``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, ClassVar, cast

import cohere
import cohere.errors
import httpx
import pydantic_core
from cohere.core.api_error import ApiError
from cohere.core.http_response import AsyncHttpResponse, HttpResponse
from cohere.core.http_sse import SSEError
from cohere.core.parse_error import ParsingError
from cohere.core.unchecked_base_model import construct_type
from cohere.v2.types.v2chat_response import V2ChatResponse
from typing_extensions import override

from ..._errors import header, make_provider_error
from ..._registry import Capabilities
from ...exceptions import (
    AuthError,
    BadRequestError,
    LLMGateError,
    ProviderAPIError,
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
from ..base import Provider
from ._convert import (
    PROVIDER,
    StreamTranslator,
    aiter_sse,
    chat_kwargs,
    embed_kwargs,
    embedding_response_from,
    iter_sse,
    response_from_wire,
)

__all__ = ["CohereProvider", "map_cohere_error"]

DEFAULT_BASE_URL = "https://api.cohere.com"

# --------------------------------------------------------------------------- errors

_ERROR_TABLE: tuple[tuple[type[ApiError], type[ProviderError]], ...] = (
    (cohere.errors.UnauthorizedError, AuthError),
    (cohere.errors.ForbiddenError, AuthError),
    (cohere.errors.InvalidTokenError, AuthError),
    (cohere.errors.TooManyRequestsError, RateLimitError),
    (cohere.errors.BadRequestError, BadRequestError),
    (cohere.errors.NotFoundError, BadRequestError),
    (cohere.errors.UnprocessableEntityError, BadRequestError),
    (cohere.errors.ClientClosedRequestError, ProviderAPIError),
    (cohere.errors.InternalServerError, ServerError),
    (cohere.errors.NotImplementedError, ServerError),
    (cohere.errors.ServiceUnavailableError, ServerError),
    (cohere.errors.GatewayTimeoutError, ServerError),
)
_NOT_RETRYABLE_STATUSES = frozenset({501})


def _body_message(body: Any) -> str:
    if isinstance(body, Mapping):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, Mapping):
                value = value.get("message")
            if value:
                return str(value)
    if isinstance(body, (str, bytes)) and body:
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        return text[:500]
    return ""


def _request_id(headers: Any) -> str | None:
    for name in ("x-request-id", "x-debug-trace-id", "x-cohere-request-id"):
        value = header(headers, name)
        if value:
            return value
    return None


def map_cohere_error(exc: BaseException, model: str) -> LLMGateError | None:
    """The llmgate error for a Cohere SDK exception (None: not the SDK's own)."""
    if isinstance(exc, ApiError):
        status = exc.status_code
        cls = next((target for source, target in _ERROR_TABLE if isinstance(exc, source)), None)
        error = make_provider_error(
            _body_message(exc.body) or f"Cohere returned HTTP {status}",
            status=status,
            provider=PROVIDER,
            model=model,
            headers=exc.headers,
            request_id=_request_id(exc.headers),
            body=exc.body,
            cls=cls,
        )
        if status in _NOT_RETRYABLE_STATUSES:
            error.retryable = False
        return error
    if isinstance(exc, ParsingError):
        return make_provider_error(
            f"the Cohere SDK could not parse the response: {exc.cause or exc}",
            status=exc.status_code,
            provider=PROVIDER,
            model=model,
            headers=exc.headers,
            request_id=_request_id(exc.headers),
            body=exc.body,
            cls=ProviderAPIError,
        )
    if isinstance(exc, SSEError):
        return ProviderAPIError(
            f"malformed Cohere event stream: {exc}", provider=PROVIDER, model=model
        )
    return None


# --------------------------------------------------------------------------- the provider


class CohereProvider(Provider):
    """Cohere chat (v2), streaming, tools, vision, structured output and embeddings."""

    capabilities: ClassVar[Capabilities] = Capabilities(embeddings=True, reasoning=True)
    embedding_batch_size = 96

    @property
    def _strict(self) -> bool:
        return self.strict_params

    @override
    def create_client(self) -> cohere.ClientV2:
        return cohere.ClientV2(
            api_key=self.api_key(), base_url=self.base_url or DEFAULT_BASE_URL, max_retries=0
        )

    @override
    def create_async_client(self) -> cohere.AsyncClientV2:
        return cohere.AsyncClientV2(
            api_key=self.api_key(), base_url=self.base_url or DEFAULT_BASE_URL, max_retries=0
        )

    @override
    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.__exit__(None, None, None)

    # completions -------------------------------------------------------------------
    @override
    def complete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        kwargs = _whole_reply(chat_kwargs(request, model, strict=self._strict))
        with self.client.with_raw_response.chat_stream(**kwargs) as reply:
            reply.response.read()
        return _response(reply.response, model)

    @override
    async def acomplete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        kwargs = _whole_reply(chat_kwargs(request, model, strict=self._strict))
        async with self.async_client.with_raw_response.chat_stream(**kwargs) as reply:
            await reply.response.aread()
        return _response(reply.response, model)

    @override
    def stream(self, request: CompletionRequest, model: str) -> Iterator[StreamChunk]:
        kwargs = chat_kwargs(request, model, strict=self._strict)
        return _chunks(self.client.with_raw_response.chat_stream(**kwargs), model)

    @override
    def astream(self, request: CompletionRequest, model: str) -> AsyncIterator[StreamChunk]:
        kwargs = chat_kwargs(request, model, strict=self._strict)
        return _achunks(self.async_client.with_raw_response.chat_stream(**kwargs), model)

    # embeddings --------------------------------------------------------------------
    @override
    def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        kwargs = embed_kwargs(request, model, strict=self._strict)
        result = self.client.embed(**kwargs)
        return _embedding_response(result, model, kwargs)

    @override
    async def aembed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        kwargs = embed_kwargs(request, model, strict=self._strict)
        result = await self.async_client.embed(**kwargs)
        return _embedding_response(result, model, kwargs)

    # errors ------------------------------------------------------------------------
    @override
    def map_error(self, exc: BaseException, model: str) -> LLMGateError:
        if isinstance(exc, LLMGateError):
            return exc
        return map_cohere_error(exc, model) or super().map_error(exc, model)


def _embedding_response(result: Any, model: str, kwargs: Mapping[str, Any]) -> EmbeddingResponse:
    return embedding_response_from(
        result, model, kwargs["embedding_types"][0], kwargs["input_type"]
    )


def _whole_reply(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``chat_stream`` arguments that ask for the whole reply as one JSON body.

    The SDK's ``with_raw_response.chat`` builds its ``V2ChatResponse`` before it returns,
    at about a tenth of a call's cost; ``with_raw_response.chat_stream`` hands over the
    unread response. With ``stream`` set back to false (``additional_body_parameters``
    override the body's fields), the request is byte for byte the one ``chat`` sends, and
    the SDK still adds auth and headers and raises its errors for a non-2xx status.
    """
    options = kwargs["request_options"]
    extra = options.get("additional_body_parameters")
    options["additional_body_parameters"] = {**extra, "stream": False} if extra else _NOT_STREAMED
    return kwargs


_NOT_STREAMED: Mapping[str, Any] = {"stream": False}


def _response(http: httpx.Response, model: str) -> CompletionResponse:
    """The reply read from the wire; ``raw`` is the SDK's ``V2ChatResponse``, built on demand."""
    body = http.content
    try:
        payload = pydantic_core.from_json(body)
    except ValueError:
        try:
            payload = json.loads(body)
        except ValueError:
            # What the SDK's ``chat`` raises for a 2xx body that is not JSON.
            raise ApiError(
                status_code=http.status_code, headers=dict(http.headers), body=http.text
            ) from None
    if not isinstance(payload, Mapping):
        raise ProviderAPIError(
            f"Cohere answered with JSON that is not an object: {http.text[:200]!r}",
            provider=PROVIDER,
            model=model,
            status_code=http.status_code,
        )
    response = response_from_wire(payload, model)
    response.set_raw(factory=lambda: _sdk_reply(payload))
    return response


def _sdk_reply(payload: Mapping[str, Any]) -> V2ChatResponse:
    """The SDK's own ``V2ChatResponse``, built as its ``chat`` builds it (unvalidated)."""
    return cast(V2ChatResponse, construct_type(type_=V2ChatResponse, object_=payload))


def _event_stream(response: httpx.Response, model: str) -> None:
    content_type = response.headers.get("content-type", "")
    if "text/event-stream" not in content_type:
        response.read()
        raise ProviderAPIError(
            f"Cohere answered a stream request with {content_type or 'no content type'}: "
            f"{response.text[:200]!r}",
            provider=PROVIDER,
            model=model,
            status_code=response.status_code,
        )


def _chunks(opened: AbstractContextManager[HttpResponse[Any]], model: str) -> Iterator[StreamChunk]:
    translator = StreamTranslator(model)
    with opened as reply:
        _event_stream(reply.response, model)
        for event, data in iter_sse(reply.response.iter_lines()):
            chunk = translator.feed(event, data)
            if chunk is not None:
                yield chunk
    translator.end()


async def _achunks(
    opened: AbstractAsyncContextManager[AsyncHttpResponse[Any]], model: str
) -> AsyncIterator[StreamChunk]:
    translator = StreamTranslator(model)
    async with opened as reply:
        _event_stream(reply.response, model)
        async for event, data in aiter_sse(reply.response.aiter_lines()):
            chunk = translator.feed(event, data)
            if chunk is not None:
                yield chunk
    translator.end()
