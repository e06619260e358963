"""The Mistral provider class and its error mapping (``mistralai.client.Mistral``).

One ``Mistral`` object serves sync and async calls; llmgate still builds one per event
loop for async use, so its httpx2 async client never crosses loops. SDK retries are off
(``retry_config=None``) and the per-call timeout goes in ``timeout_ms``.
"""

from __future__ import annotations

import inspect
import json
import ssl
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx2
import pydantic
import pydantic_core
from mistralai.client import Mistral
from mistralai.client import errors as mistral_errors
from mistralai.client import models as mistral_models
from mistralai.client import utils as mistral_utils
from mistralai.client._hooks import HookContext
from mistralai.client.chat import Chat
from mistralai.client.utils.unmarshal_json_response import unmarshal_json_response
from typing_extensions import override

from ..._errors import header, make_provider_error
from ..._registry import Capabilities
from ...exceptions import (
    BadRequestError,
    InvalidRequestError,
    LLMGateError,
    ProviderAPIError,
    ProviderConnectionError,
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
    PROVIDER,
    StreamTranslator,
    chat_kwargs,
    drop_unaccepted,
    embedding_kwargs,
    embedding_response_from_json,
    embedding_response_from_sdk,
    prefill_of,
    response_from_sdk,
)

__all__ = ["MistralProvider", "map_mistral_error"]

# Keyword arguments the SDK calls take (the async twins take the same).
CHAT_PARAMETERS = frozenset(inspect.signature(Chat.complete).parameters) - {"self", "stream"}
_embedding_parameters: list[frozenset[str]] = []


def embedding_parameters() -> frozenset[str]:
    """The keyword arguments ``Embeddings.create`` takes (its module is imported on first use:
    a process that only chats never loads it, as with the raw SDK)."""
    if not _embedding_parameters:
        from mistralai.client.embeddings import Embeddings

        _embedding_parameters.append(
            frozenset(inspect.signature(Embeddings.create).parameters) - {"self"}
        )
    return _embedding_parameters[0]


_MESSAGE_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "system": mistral_models.SystemMessage,
    "user": mistral_models.UserMessage,
    "assistant": mistral_models.AssistantMessage,
    "tool": mistral_models.ToolMessage,
}


def sdk_models(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Chat kwargs with the SDK's own models in place of plain dicts.

    The SDK builds a throwaway pydantic class to validate every argument given as plain
    data, which costs more than the rest of the call; arguments that are already its
    models skip that step. The JSON sent is the same.
    """
    kwargs["messages"] = [
        _MESSAGE_MODELS[m["role"]].model_validate(m) if isinstance(m, dict) else m
        for m in kwargs["messages"]
    ]
    tools = kwargs.get("tools")
    if isinstance(tools, list):
        kwargs["tools"] = [
            mistral_models.Tool.model_validate(t)
            if isinstance(t, dict) and t.get("type") == "function"
            else t
            for t in tools
        ]
    if isinstance(kwargs.get("tool_choice"), dict):
        kwargs["tool_choice"] = mistral_models.ToolChoice.model_validate(kwargs["tool_choice"])
    if isinstance(kwargs.get("response_format"), dict):
        kwargs["response_format"] = mistral_models.ResponseFormat.model_validate(
            kwargs["response_format"]
        )
    return kwargs


# --------------------------------------------------------------------------- whole replies

# ``Chat.complete`` spends most of a call building throwaway pydantic classes: one per
# argument it converts (``stop``, ``metadata``, ``tools``, ... even when they are unset)
# and one for the reply. A plain call is sent the way ``complete`` sends it, through the
# SDK's own request builder, hooks, security and transport, with the request model
# validated directly, and the reply validated as the SDK's ``ChatCompletionResponse``
# without the throwaway class; errors are raised as ``complete`` raises them. Calls that
# set ``retries`` or ``server_url`` go through ``complete`` itself.
_COMPLETE_SIGNATURE = inspect.signature(Chat.complete).parameters
_CALL_OPTIONS = frozenset({"self", "retries", "server_url", "timeout_ms", "http_headers"})
_BODY_DEFAULTS: dict[str, Any] = {
    name: parameter.default
    for name, parameter in _COMPLETE_SIGNATURE.items()
    if name not in _CALL_OPTIONS
}
_WIRE = _BODY_DEFAULTS.keys() <= mistral_models.ChatCompletionRequest.model_fields.keys() and all(
    hasattr(owner, name)
    for owner, names in (
        (Chat, ("_get_url", "_build_request", "do_request", "do_request_async")),
        (mistral_utils, ("match_status_codes", "match_response", "serialize_request_body")),
        (mistral_utils, ("get_security_from_env", "stream_to_text")),
    )
    for name in names
)  # an SDK without these internals is called through ``complete`` alone
_SDK_ONLY = frozenset({"retries", "server_url"})


def _is_error_status(code: int) -> bool:
    return bool(mistral_utils.match_status_codes(["4XX", "5XX"], code))


def _chat_request(chat: Chat, kwargs: Mapping[str, Any]) -> tuple[Any, Any]:
    """The httpx2 request ``complete`` would send for ``kwargs``, and its hook context."""
    body = {name: kwargs.get(name, default) for name, default in _BODY_DEFAULTS.items()}
    request = mistral_models.ChatCompletionRequest(**body)
    config = chat.sdk_configuration
    timeout_ms = kwargs.get("timeout_ms")
    if timeout_ms is None:
        timeout_ms = config.timeout_ms if config.timeout_ms is not None else 300000
    base_url = chat._get_url(None, None)  # type: ignore[no-untyped-call]
    http_request = chat._build_request(
        method="POST",
        path="/v1/chat/completions",
        base_url=base_url,
        url_variables=None,
        request=request,
        request_body_required=True,
        request_has_path_params=False,
        request_has_query_params=True,
        user_agent_header="user-agent",
        accept_header_value="application/json",
        http_headers=kwargs.get("http_headers"),
        security=config.security,
        get_serialized_body=lambda: mistral_utils.serialize_request_body(
            request, False, False, "json", mistral_models.ChatCompletionRequest
        ),
        allow_empty_value=None,
        timeout_ms=timeout_ms,
    )
    context = HookContext(
        config=config,
        base_url=base_url or "",
        operation_id="chat_completion_v1_chat_completions_post",
        oauth2_scopes=None,
        security_source=mistral_utils.get_security_from_env(
            config.security, mistral_models.Security
        ),
        tags=["chat"],
        extensions=None,
    )
    return http_request, context


def _chat_reply(response: httpx2.Response) -> Any:
    """The SDK's ``ChatCompletionResponse`` for a reply, or the error ``complete`` raises."""
    if mistral_utils.match_response(response, "200", "application/json"):
        text = response.text
        try:
            return mistral_models.ChatCompletionResponse.model_validate(
                pydantic_core.from_json(text)
            )
        except Exception:  # the SDK's own reader raises the error it raises for it
            return unmarshal_json_response(mistral_models.ChatCompletionResponse, response, text)
    if mistral_utils.match_response(response, "422", "application/json"):
        data = unmarshal_json_response(mistral_errors.HTTPValidationErrorData, response)
        raise mistral_errors.HTTPValidationError(data, response)
    if mistral_utils.match_response(response, "4XX", "*") or mistral_utils.match_response(
        response, "5XX", "*"
    ):
        text = mistral_utils.stream_to_text(response)
        raise mistral_errors.SDKError("API error occurred", response, text)
    raise mistral_errors.SDKError("Unexpected response received", response)


def _wire_call(kwargs: Mapping[str, Any]) -> bool:
    return _WIRE and not (kwargs.keys() & _SDK_ONLY)


REQUEST_ID_HEADERS = ("mistral-correlation-id", "x-request-id", "x-kong-request-id")

_ssl_lock = threading.Lock()
_ssl_contexts: list[ssl.SSLContext] = []


def _ssl_context() -> ssl.SSLContext:
    """httpx2's default SSL context, built once per process and shared by every client."""
    with _ssl_lock:
        if not _ssl_contexts:
            _ssl_contexts.append(httpx2.create_ssl_context())
        return _ssl_contexts[0]


# --------------------------------------------------------------------------- 3. errors


def _json_or_none(text: Any) -> Any:
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _error_message(body: Any, fallback: str) -> str:
    if isinstance(body, Mapping):
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
        detail = body.get("detail", message)
        if isinstance(detail, list):
            return "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', ()))}: {d.get('msg')}"
                if isinstance(d, Mapping)
                else str(d)
                for d in detail
            )
        if detail:
            return json.dumps(detail) if not isinstance(detail, str) else detail
    return fallback


def _request_id(headers: Any) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = header(headers, name)
        if value:
            return value
    return None


def _status_of(frame: Mapping[str, Any]) -> int | None:
    for key in ("raw_status_code", "status", "code"):
        value = frame.get(key)
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.isdigit() and 100 <= int(value) < 600:
            return int(value)
    return None


def _stream_error_frame(body: Any) -> Mapping[str, Any] | None:
    """The error object of an in-stream error event, if ``body`` is one."""
    payload = _json_or_none(body)
    if isinstance(payload, Mapping) and isinstance(payload.get("data"), Mapping):
        payload = payload["data"]
    if not isinstance(payload, Mapping):
        return None
    if payload.get("object") == "error":
        return payload
    error = payload.get("error")
    return error if isinstance(error, Mapping) else None


def map_mistral_error(exc: BaseException, model: str) -> LLMGateError | None:
    """The llmgate error for a ``mistralai`` exception, or None for anything else."""
    # The SDK's error classes load on first access (as the raw SDK loads them): only here.
    if isinstance(exc, mistral_errors.ResponseValidationError):
        frame = _stream_error_frame(exc.body)
        if frame is None:
            return ProviderAPIError(
                f"Mistral sent a response the SDK could not read: {exc.message[:500]}",
                provider=PROVIDER,
                model=model,
            )
        status = _status_of(frame)
        return make_provider_error(
            _error_message(frame, "error event in the stream"),
            status=status,
            provider=PROVIDER,
            model=model,
            request_id=_request_id(exc.headers),
            body=dict(frame),
            cls=None if status is not None else ProviderAPIError,
        )
    if isinstance(exc, mistral_errors.MistralError):
        body = _json_or_none(exc.body)
        status = exc.status_code
        return make_provider_error(
            _error_message(body, f"HTTP {status}"),
            status=status,
            provider=PROVIDER,
            model=model,
            headers=exc.headers,
            request_id=_request_id(exc.headers),
            body=body if body is not None else exc.body,
            cls=BadRequestError if isinstance(exc, mistral_errors.HTTPValidationError) else None,
        )
    if isinstance(exc, pydantic.ValidationError):
        return InvalidRequestError(f"the mistralai SDK refused the request: {exc}")
    if isinstance(exc, mistral_errors.NoResponseError):
        return ProviderConnectionError(
            f"no response from Mistral: {exc.message}", provider=PROVIDER, model=model
        )
    return None


# --------------------------------------------------------------------------- 4. the provider


class MistralProvider(Provider):
    """Mistral chat (text, images, tools, JSON schema, thinking, prefill) and embeddings."""

    capabilities = Capabilities(embeddings=True, prefill=True, reasoning=True)
    # Not documented as a count; 512 inputs per request is a conservative split size.
    embedding_batch_size = 512

    def __init__(self, spec: ProviderSpec, settings: ProviderSettings) -> None:
        super().__init__(spec, settings)

    def _server_url(self) -> str | None:
        url = self.base_url
        if not url:
            return None
        url = url.rstrip("/")
        # The SDK adds "/v1/..." itself; accept an OpenAI-style base URL that ends in /v1.
        return url[: -len("/v1")] if url.endswith("/v1") else url

    def _new_client(self, async_http: httpx2.AsyncClient | None = None) -> Mistral:
        # Both httpx2 clients are passed in so they share one SSL context: the SDK would
        # otherwise build two per Mistral object (one unused), each loading the CA store.
        context = _ssl_context()
        return Mistral(
            api_key=self.api_key(),
            server_url=self._server_url(),
            retry_config=None,
            client=httpx2.Client(follow_redirects=True, verify=context),
            async_client=async_http or httpx2.AsyncClient(follow_redirects=True, verify=context),
        )

    @override
    def create_client(self) -> Mistral:
        return self._new_client()

    @override
    def create_async_client(self) -> Mistral:
        http = httpx2.AsyncClient(follow_redirects=True, verify=_ssl_context())
        return self._new_client(async_http=http)

    @override
    async def close_async_client(self, client: Any) -> None:
        # Mistral's own exit leaves a client it was given open: close the httpx2 one here.
        http = client.sdk_configuration.async_client
        if http is not None:
            await http.aclose()

    @override
    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.sdk_configuration.client.close()

    @property
    def _strict(self) -> bool:
        return self.strict_params

    def _chat_kwargs(
        self, request: CompletionRequest, model: str
    ) -> tuple[dict[str, Any], str | None]:
        """The SDK call's kwargs, and the prefill text when the last turn is a prefix."""
        kwargs = drop_unaccepted(chat_kwargs(request, model), CHAT_PARAMETERS, strict=self._strict)
        prefill = prefill_of(kwargs["messages"])
        return sdk_models(kwargs), prefill

    def _embedding_kwargs(self, request: EmbeddingRequest, model: str) -> dict[str, Any]:
        kwargs = embedding_kwargs(request, model, strict=self._strict)
        return drop_unaccepted(kwargs, embedding_parameters(), strict=self._strict)

    # chat ------------------------------------------------------------------------------
    @override
    def complete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        kwargs, prefill = self._chat_kwargs(request, model)
        chat = self.client.chat
        if _wire_call(kwargs):
            http_request, context = _chat_request(chat, kwargs)
            reply = chat.do_request(
                hook_ctx=context, request=http_request, is_error_status_code=_is_error_status
            )
            result = _chat_reply(reply)
        else:
            result = chat.complete(**kwargs)
        return response_from_sdk(result, model, prefill)

    @override
    async def acomplete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        kwargs, prefill = self._chat_kwargs(request, model)
        chat = self.async_client.chat
        if _wire_call(kwargs):
            http_request, context = _chat_request(chat, kwargs)
            reply = await chat.do_request_async(
                hook_ctx=context, request=http_request, is_error_status_code=_is_error_status
            )
            result = _chat_reply(reply)
        else:
            result = await chat.complete_async(**kwargs)
        return response_from_sdk(result, model, prefill)

    @override
    def stream(self, request: CompletionRequest, model: str) -> Iterator[StreamChunk]:
        kwargs, prefill = self._chat_kwargs(request, model)
        translator = StreamTranslator(model, prefill)
        events = self.client.chat.stream(**kwargs)
        try:
            for event in events:
                chunk = translator.feed(event.data)
                if chunk is not None:
                    yield chunk
            last = translator.end()
            if last is not None:
                yield last
        finally:
            events.close()

    @override
    async def astream(self, request: CompletionRequest, model: str) -> AsyncIterator[StreamChunk]:
        kwargs, prefill = self._chat_kwargs(request, model)
        translator = StreamTranslator(model, prefill)
        events = await self.async_client.chat.stream_async(**kwargs)
        try:
            async for event in events:
                chunk = translator.feed(event.data)
                if chunk is not None:
                    yield chunk
            last = translator.end()
            if last is not None:
                yield last
        finally:
            await events.close()

    # embeddings ------------------------------------------------------------------------
    @override
    def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        kwargs = self._embedding_kwargs(request, model)
        try:
            result = self.client.embeddings.create(**kwargs)
        except mistral_errors.ResponseValidationError as exc:
            if kwargs.get("encoding_format") != "base64":
                raise
            return embedding_response_from_json(exc.body, model)
        return embedding_response_from_sdk(result, model)

    @override
    async def aembed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        kwargs = self._embedding_kwargs(request, model)
        try:
            result = await self.async_client.embeddings.create_async(**kwargs)
        except mistral_errors.ResponseValidationError as exc:
            if kwargs.get("encoding_format") != "base64":
                raise
            return embedding_response_from_json(exc.body, model)
        return embedding_response_from_sdk(result, model)

    # errors ----------------------------------------------------------------------------
    @override
    def map_error(self, exc: BaseException, model: str) -> LLMGateError:
        mapped = map_mistral_error(exc, model)
        if mapped is not None:
            return mapped
        return super().map_error(exc, model)
