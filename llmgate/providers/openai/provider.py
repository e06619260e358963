"""The OpenAI provider: OpenAI Chat Completions and every OpenAI-compatible endpoint.

The SDK sends every request (URL, auth, timeout, typed HTTP errors), through its
documented generic ``client.post(..., cast_to=httpx2.Response)``; llmgate reads the wire
JSON, and the SSE stream, straight into its own types (see ``_convert``), and builds the
SDK's ``ChatCompletion`` only if a caller reads ``response.raw``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, ClassVar

import anyio
import httpx2
import openai
from openai.resources.chat.completions import Completions
from openai.resources.embeddings import Embeddings
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion
from typing_extensions import override

from ..._errors import header, make_provider_error
from ..._registry import Capabilities
from ..._sse import aiter_body, iter_body
from ...exceptions import (
    LLMGateError,
    ProviderAPIError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
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
    ChunkTranslator,
    MalformedFrame,
    SSEDecoder,
    WireError,
    chat_kwargs,
    check_error,
    completion_as_chunk,
    embedding_kwargs,
    embeddings_from_wire,
    load_json,
    response_from_wire,
    sdk_parameters,
)

__all__ = ["ERROR_TABLE", "OpenAIProvider", "error_body_status", "map_openai_error"]

# --------------------------------------------------------------------------- 3. errors

_REQUEST_ID_HEADERS = ("x-request-id", "apim-request-id", "request-id")

# Words in an in-stream error's ``type``/``code`` and the HTTP status they stand for.
_ERROR_WORDS: tuple[tuple[str, int], ...] = (
    ("rate_limit", 429),
    ("rate limit", 429),
    ("too_many_requests", 429),
    ("throttl", 429),
    ("quota", 429),
    ("overloaded", 503),
    ("unavailable", 503),
    ("timeout", 408),
    ("authentication", 401),
    ("invalid_api_key", 401),
    ("unauthorized", 401),
    ("permission", 403),
    ("not_found", 404),
    ("invalid_request", 400),
    ("bad_request", 400),
    ("context_length", 400),
    ("server_error", 500),
    ("internal", 500),
    ("api_error", 500),
)


def _request_id(headers: Any) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value = header(headers, name)
        if value:
            return value
    return None


def error_body_status(error: Any) -> int | None:
    """The HTTP status an error body stands for: its numeric code, else its type's words."""
    if not isinstance(error, Mapping):
        return None
    for key in ("status", "code", "status_code"):
        value = error.get(key)
        if isinstance(value, int) and 400 <= value < 600:
            return value
        if isinstance(value, str) and value.isdigit() and 400 <= int(value) < 600:
            return int(value)
    words = " ".join(str(error.get(key) or "") for key in ("type", "code")).lower()
    for word, status in _ERROR_WORDS:
        if word in words:
            return status
    return None


def _from_error_body(
    error: Any, headers: Any, provider: str, model: str, default: type[ProviderError]
) -> ProviderError:
    status = error_body_status(error)
    message = error.get("message") if isinstance(error, Mapping) else None
    return make_provider_error(
        message if isinstance(message, str) and message else f"error from the server: {error}",
        status=status,
        provider=provider,
        model=model,
        headers=headers,
        request_id=_request_id(headers),
        body=error,
        cls=None if status is not None else default,
    )


def _status_error(exc: openai.APIStatusError, provider: str, model: str) -> LLMGateError:
    headers = exc.response.headers
    return make_provider_error(
        exc.message,
        status=exc.status_code,
        provider=provider,
        model=model,
        headers=headers,
        request_id=exc.request_id or _request_id(headers),
        body=exc.body,
    )


def _timeout(exc: openai.APITimeoutError, provider: str, model: str) -> LLMGateError:
    return ProviderTimeoutError(f"timed out: {exc}", provider=provider, model=model)


def _connection(exc: openai.APIConnectionError, provider: str, model: str) -> LLMGateError:
    cause = exc.__cause__
    detail = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
    return ProviderConnectionError(f"connection failed: {detail}", provider=provider, model=model)


def _api_error(exc: openai.APIError, provider: str, model: str) -> LLMGateError:
    body = exc.body if exc.body is not None else {"message": exc.message}
    return _from_error_body(body, None, provider, model, ServerError)


def _wire_error(exc: WireError, provider: str, model: str) -> LLMGateError:
    return _from_error_body(exc.error, exc.headers, provider, model, ServerError)


def _malformed(exc: MalformedFrame, provider: str, model: str) -> LLMGateError:
    return ProviderAPIError(str(exc), provider=provider, model=model)


def _sdk_error(exc: openai.OpenAIError, provider: str, model: str) -> LLMGateError:
    return ProviderAPIError(f"{type(exc).__name__}: {exc}", provider=provider, model=model)


# Most specific first: the first matching class wins.
ERROR_TABLE: tuple[tuple[type[BaseException], Callable[[Any, str, str], LLMGateError]], ...] = (
    (openai.APITimeoutError, _timeout),
    (openai.APIConnectionError, _connection),
    (openai.APIStatusError, _status_error),
    (openai.APIError, _api_error),
    (WireError, _wire_error),
    (MalformedFrame, _malformed),
    (openai.OpenAIError, _sdk_error),
)


def map_openai_error(exc: BaseException, *, provider: str, model: str) -> LLMGateError | None:
    """The llmgate error for an openai SDK (or wire) exception; None if not one of those."""
    for cls, handler in ERROR_TABLE:
        if isinstance(exc, cls):
            return handler(exc, provider, model)
    return None


# --------------------------------------------------------------------------- 4. the class


def _is_json(http: httpx2.Response) -> bool:
    """A JSON body where a stream was asked for: a server that ignored ``stream`` or failed."""
    return http.headers.get("content-type", "").startswith("application/json")


def _drain(pieces: Iterator[bytes]) -> None:
    """Read what follows ``[DONE]`` (the end of the chunked body) so the connection is reused."""
    try:
        for _ in pieces:
            pass
    except Exception:
        pass  # the answer is complete; a failure while tidying up is not the caller's


async def _adrain(pieces: AsyncIterator[bytes]) -> None:
    try:
        with anyio.move_on_after(_DRAIN_TIMEOUT):
            async for _ in pieces:
                pass
    except Exception:
        pass


_DRAIN_TIMEOUT = 0.1

# Sent to keyless local servers (vLLM, LM Studio, llama.cpp) so the SDK neither refuses to
# start nor picks up OPENAI_API_KEY from the environment and leaks it to another host.
PLACEHOLDER_KEY = "llmgate-no-key"

_CHAT_PARAMETERS = sdk_parameters(Completions.create)
_EMBEDDING_PARAMETERS = sdk_parameters(Embeddings.create)
_CLIENT_OPTIONS = ("organization", "project", "default_headers", "default_query")
_CHAT_PATH = "/chat/completions"
_EMBEDDINGS_PATH = "/embeddings"


def post_arguments(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``create()``-style keyword arguments as the JSON body and request options of ``post``."""
    body = dict(kwargs)
    options: dict[str, Any] = {"security": {"bearer_auth": True}}
    if "timeout" in body:
        options["timeout"] = body.pop("timeout")
    headers = body.pop("extra_headers", None)
    if headers:
        options["headers"] = headers
    query = body.pop("extra_query", None)
    if query:
        options["params"] = query
    extra_body = body.pop("extra_body", None)
    if extra_body:
        body.update(extra_body)
    return body, options


class OpenAIProvider(Provider):
    """OpenAI and OpenAI-compatible vendors (a preset is a registry row pointing here).

    Requests go through the client's documented generic ``post(path, cast_to=httpx2.Response)``:
    the SDK still resolves the URL (Azure's deployment paths included), authenticates, applies
    the timeout and raises its typed HTTP errors, but neither re-validates the body llmgate
    built nor builds response models llmgate would discard. ``response.raw`` builds the SDK's
    ``ChatCompletion`` on first access.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(embeddings=True, reasoning=True)
    embedding_batch_size: ClassVar[int] = 2048

    # clients -----------------------------------------------------------------------
    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "api_key": self.api_key() or PLACEHOLDER_KEY,
            "base_url": self.base_url,
            "max_retries": 0,
        }
        for name in _CLIENT_OPTIONS:
            value = self.settings.option(name)
            if value is not None:
                kwargs[name] = value
        return kwargs

    @override
    def create_client(self) -> openai.OpenAI:
        return openai.OpenAI(**self.client_kwargs())

    @override
    def create_async_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(**self.client_kwargs())

    # translation ---------------------------------------------------------------------
    @property
    def compatible(self) -> bool:
        """True for OpenAI-compatible vendors (not OpenAI or Azure themselves)."""
        return self.spec.openai_compatible

    def _chat(
        self, request: CompletionRequest, model: str, stream: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        kwargs = chat_kwargs(
            request,
            model,
            provider=self.name,
            accepted=_CHAT_PARAMETERS,
            compatible=self.compatible,
            strict=self.strict_params,
            stream=stream,
            structured_output=str(self.settings.option("structured_output", "json_schema")),
        )
        return post_arguments(kwargs)

    def _embedding(
        self, request: EmbeddingRequest, model: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        kwargs = embedding_kwargs(
            request,
            model,
            provider=self.name,
            accepted=_EMBEDDING_PARAMETERS,
            compatible=self.compatible,
            strict=self.strict_params,
        )
        return post_arguments(kwargs)

    def _response(self, http: httpx2.Response, model: str) -> CompletionResponse:
        data = load_json(http.content)
        check_error(data, http.headers)
        response = response_from_wire(data, provider=self.name, model=model)
        request_id = _request_id(http.headers)
        if request_id:
            response.provider_details["request_id"] = request_id
        response.set_raw(factory=lambda: ChatCompletion.construct(**data))
        return response

    def _embeddings(self, http: httpx2.Response, model: str) -> EmbeddingResponse:
        data = load_json(http.content)
        check_error(data, http.headers)
        response = embeddings_from_wire(data, provider=self.name, model=model)
        response.set_raw(CreateEmbeddingResponse.construct(**data))
        return response

    # calls -----------------------------------------------------------------------------
    @override
    def complete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        body, options = self._chat(request, model, stream=False)
        http = self.client.post(_CHAT_PATH, cast_to=httpx2.Response, body=body, options=options)
        return self._response(http, model)

    @override
    async def acomplete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        body, options = self._chat(request, model, stream=False)
        http = await self.async_client.post(
            _CHAT_PATH, cast_to=httpx2.Response, body=body, options=options
        )
        return self._response(http, model)

    @override
    def stream(self, request: CompletionRequest, model: str) -> Iterator[StreamChunk]:
        body, options = self._chat(request, model, stream=True)
        http = self.client.post(
            _CHAT_PATH, cast_to=httpx2.Response, body=body, options=options, stream=True
        )
        decoder = SSEDecoder(http.headers)
        translator = ChunkTranslator(provider=self.name, model=model)
        try:
            if _is_json(http):
                yield from translator.feed(completion_as_chunk(load_json(http.read())))
                yield from translator.finish()
                return
            pieces = iter_body(http)
            for piece in pieces:
                for payload in decoder.feed(piece):
                    yield from translator.feed(payload)
                if decoder.done:
                    break
            else:
                for payload in decoder.close():
                    yield from translator.feed(payload)
            yield from translator.finish()
            if decoder.done:
                _drain(pieces)
        finally:
            http.close()

    @override
    async def astream(self, request: CompletionRequest, model: str) -> AsyncIterator[StreamChunk]:
        body, options = self._chat(request, model, stream=True)
        http = await self.async_client.post(
            _CHAT_PATH, cast_to=httpx2.Response, body=body, options=options, stream=True
        )
        decoder = SSEDecoder(http.headers)
        translator = ChunkTranslator(provider=self.name, model=model)
        try:
            if _is_json(http):
                for chunk in translator.feed(completion_as_chunk(load_json(await http.aread()))):
                    yield chunk
                for chunk in translator.finish():
                    yield chunk
                return
            pieces = aiter_body(http)
            async for piece in pieces:
                for payload in decoder.feed(piece):
                    for chunk in translator.feed(payload):
                        yield chunk
                if decoder.done:
                    break
            else:
                for payload in decoder.close():
                    for chunk in translator.feed(payload):
                        yield chunk
            for chunk in translator.finish():
                yield chunk
            if decoder.done:
                await _adrain(pieces)
        finally:
            await http.aclose()

    @override
    def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        body, options = self._embedding(request, model)
        http = self.client.post(
            _EMBEDDINGS_PATH, cast_to=httpx2.Response, body=body, options=options
        )
        return self._embeddings(http, model)

    @override
    async def aembed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        body, options = self._embedding(request, model)
        http = await self.async_client.post(
            _EMBEDDINGS_PATH, cast_to=httpx2.Response, body=body, options=options
        )
        return self._embeddings(http, model)

    # errors ------------------------------------------------------------------------------
    @override
    def map_error(self, exc: BaseException, model: str) -> LLMGateError:
        if isinstance(exc, LLMGateError):
            return exc
        mapped = map_openai_error(exc, provider=self.name, model=model)
        return mapped if mapped is not None else super().map_error(exc, model)
