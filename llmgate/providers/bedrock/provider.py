"""Amazon Bedrock through the ``bedrock-runtime`` client (botocore's, as boto3 builds it):
Converse, ConverseStream and InvokeModel (embeddings).

boto3 has no async client: the async calls run the sync ones on this provider's own thread
pool, and an async stream pulls each event on it, so the event loop never blocks.
botocore only has client-level timeouts, so clients are cached per timeout value.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import boto3  # noqa: F401  (the 'bedrock' extra's package: if missing, the error names it)
import botocore.config
import botocore.eventstream
import botocore.exceptions
import botocore.loaders
import botocore.parsers
import botocore.session
from typing_extensions import override

from ..._errors import (
    drop_parameter,
    header,
    make_provider_error,
    map_transport_error,
    parse_retry_after,
)
from ..._images import fetch_image
from ..._registry import Capabilities, ProviderSpec
from ...exceptions import (
    AuthError,
    BadRequestError,
    ConfigError,
    EmbeddingsNotSupported,
    InvalidRequestError,
    LLMGateError,
    ProviderAPIError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from ...types import (
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamChunk,
    make_usage,
    text_chunk,
    trusted,
)
from ..base import Provider, ProviderSettings
from . import _convert
from ._convert import (
    COHERE,
    EMBEDDING_BATCH_LIMITS,
    PROVIDER,
    TITAN,
    ConverseCall,
    ImageLoader,
    StreamTranslator,
    embedding_family,
)
from ._eventstream import frames

_T = TypeVar("_T")

# =========================================================================== 3. errors

# Ordered: the first row whose codes hold the (UpperCamel) error code wins. Event-stream
# exceptions arrive lowerCamel (throttlingException) and are normalised first. The status
# is the one Bedrock documents for the code, used when the HTTP status is unknown (in-stream).
_ERROR_TABLE: tuple[tuple[frozenset[str], type[ProviderError], int], ...] = (
    (
        frozenset(
            {
                "ThrottlingException",
                "TooManyRequestsException",
                "ServiceQuotaExceededException",
                "RequestLimitExceeded",
            }
        ),
        RateLimitError,
        429,
    ),
    (
        frozenset(
            {
                "AccessDeniedException",
                "UnrecognizedClientException",
                "InvalidSignatureException",
                "IncompleteSignature",
                "MissingAuthenticationToken",
                "InvalidClientTokenId",
                "ExpiredTokenException",
                "ExpiredToken",
                "UnauthorizedException",
            }
        ),
        AuthError,
        403,
    ),
    (frozenset({"ModelTimeoutException", "RequestTimeoutException"}), ProviderTimeoutError, 408),
    (
        frozenset(
            {
                "InternalServerException",
                "InternalFailure",
                "ServiceUnavailableException",
                "ServiceUnavailable",
                "ModelErrorException",
                "ModelStreamErrorException",
                "ModelNotReadyException",
            }
        ),
        ServerError,
        500,
    ),
    (
        frozenset(
            {
                "ValidationException",
                "ResourceNotFoundException",
                "SerializationException",
                "UnknownOperationException",
            }
        ),
        BadRequestError,
        400,
    ),
)
_EXACT_STATUS = {"ServiceUnavailableException": 503, "ModelErrorException": 424}

_CONFIG_ERRORS: tuple[type[Exception], ...] = (
    botocore.exceptions.NoCredentialsError,
    botocore.exceptions.PartialCredentialsError,
    botocore.exceptions.CredentialRetrievalError,
    botocore.exceptions.NoRegionError,
    botocore.exceptions.ProfileNotFound,
    botocore.exceptions.NoAuthTokenError,
    botocore.exceptions.TokenRetrievalError,
    botocore.exceptions.SSOError,
    botocore.exceptions.InvalidEndpointConfigurationError,
)


def _upper_camel(code: str) -> str:
    return code[:1].upper() + code[1:]


def map_client_error(
    exc: botocore.exceptions.ClientError, *, provider: str, model: str
) -> ProviderError:
    """A ClientError (an EventStreamError too) as the llmgate error its code calls for."""
    response: Mapping[str, Any] = exc.response or {}
    error = response.get("Error") or {}
    code = _upper_camel(str(error.get("Code") or ""))
    message = str(error.get("Message") or response.get("message") or exc)
    metadata = response.get("ResponseMetadata") or {}
    headers = metadata.get("HTTPHeaders") or {}
    in_stream = isinstance(exc, botocore.exceptions.EventStreamError)
    status = None if in_stream else metadata.get("HTTPStatusCode")
    cls: type[ProviderError] | None = None
    for codes, error_cls, default_status in _ERROR_TABLE:
        if code in codes:
            cls = error_cls
            if status is None:
                status = _EXACT_STATUS.get(code, default_status)
            break
    if code == "ModelStreamErrorException" and response.get("originalStatusCode"):
        message = f"{message} (model status {response['originalStatusCode']})"
    request_id = metadata.get("RequestId") or header(headers, "x-amzn-requestid")
    return make_provider_error(
        f"{code}: {message}" if code else message,
        status=status,
        provider=provider,
        model=model,
        headers=headers,
        request_id=request_id,
        body=response,
        retry_after=parse_retry_after(headers),
        cls=cls,
    )


def map_bedrock_error(exc: BaseException, *, provider: str, model: str) -> LLMGateError:
    """Any exception a boto3 Bedrock call or stream raised, as an llmgate error."""
    if isinstance(exc, LLMGateError):
        return exc
    if isinstance(exc, botocore.exceptions.ClientError):
        return map_client_error(exc, provider=provider, model=model)
    if isinstance(exc, _CONFIG_ERRORS):
        return ConfigError(
            f"Bedrock credentials or settings are missing or wrong: {exc}. Give AWS credentials "
            "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_BEARER_TOKEN_BEDROCK, or "
            "provider_options={'bedrock': {'aws_access_key_id': ..., 'aws_secret_access_key': "
            "...}}) and a region (AWS_REGION)"
        )
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        return InvalidRequestError(f"boto3 refused the request: {exc}")
    if isinstance(exc, botocore.eventstream.ParserError):
        return ProviderConnectionError(
            f"malformed event-stream frame from Bedrock: {exc}", provider=provider, model=model
        )
    if isinstance(exc, botocore.parsers.ResponseParserError):
        return ProviderAPIError(
            f"unparseable response from Bedrock: {exc}", provider=provider, model=model
        )
    transport = map_transport_error(exc, provider=provider, model=model)
    if transport is not None:
        return transport
    return ProviderAPIError(f"{type(exc).__name__}: {exc}", provider=provider, model=model)


# =========================================================================== 4. the provider

DEFAULT_READ_TIMEOUT = 600.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_POOL_SIZE = 64
IMAGE_MAX_BYTES = 3_932_160  # Converse's per-image limit, 3.75 MiB
_TIMED_CLIENTS_KEPT = 16
_DONE: Any = object()

# botocore's data loader only caches the (read-only) service model files. One per data path,
# shared by every provider instance: a fresh one costs ~0.2 s at each first client.
_loaders: dict[str | None, Any] = {}
_loaders_lock = threading.Lock()


def _shared_loader(data_path: str | None) -> Any:
    with _loaders_lock:
        loader = _loaders.get(data_path)
        if loader is None:
            loader = _loaders[data_path] = botocore.loaders.create_loader(data_path)
        return loader


class _StreamHandle:
    """Lets an async stream close the boto EventStream a worker thread is reading."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: Any = None
        self.closed = False

    def attach(self, events: Any) -> bool:
        """Remember the stream; False when the consumer has already gone away."""
        with self._lock:
            self._events = events
            return not self.closed

    def close(self) -> None:
        """Wake a worker blocked reading the stream; that worker then closes it."""
        with self._lock:
            self.closed = True
            events = self._events
        if events is None:
            return
        # urllib3 >= 2.3 can shut a socket down from another thread; close() cannot wake a
        # blocked read, so it is only the fallback.
        shutdown = getattr(getattr(events, "_raw_stream", None), "shutdown", None)
        if callable(shutdown):
            try:
                shutdown()
                return
            except (ValueError, RuntimeError, OSError):
                pass
        events.close()


_SERVICE_ID = "bedrock-runtime"


class _BodyTap:
    """A before-parse handler that takes a successful Converse body away from botocore,
    for the thread that armed it, leaving botocore an empty body to parse: llmgate reads the
    JSON itself and has botocore parse it only when a caller asks for ``raw``."""

    def __init__(self) -> None:
        self._local = threading.local()

    def arm(self) -> None:
        self._local.armed = True
        self._local.taken = None

    def take(self) -> tuple[int, bytes] | None:
        """``(status, body)`` of the armed call's response, if it was taken."""
        local = self._local
        local.armed = False
        taken: tuple[int, bytes] | None = local.taken
        local.taken = None
        return taken

    def __call__(self, response_dict: dict[str, Any], **kwargs: Any) -> None:
        local = self._local
        if not getattr(local, "armed", False):
            return
        local.armed = False
        body = response_dict.get("body")
        if response_dict.get("status_code", 500) < 300 and type(body) is bytes:
            local.taken = (response_dict["status_code"], body)
            response_dict["body"] = b""


class BedrockProvider(Provider):
    """Amazon Bedrock Runtime: Converse for chat, InvokeModel for Titan and Cohere embeddings.

    Provider options: ``region``, ``profile``, ``aws_access_key_id``,
    ``aws_secret_access_key``, ``aws_session_token``, ``read_timeout``,
    ``connect_timeout``, ``max_pool_connections``, ``allow_image_download``,
    ``image_max_bytes``, ``structured_output`` (``"native"`` or ``"tool"``).
    """

    capabilities = Capabilities(embeddings=True, prefill=True, reasoning=True, image_urls=False)
    embedding_batch_size = EMBEDDING_BATCH_LIMITS[COHERE]

    @override
    def embedding_batch_size_for(self, model: str) -> int | None:
        # Titan embeds one text a call: the gate then sends a list's texts concurrently.
        family = embedding_family(model)
        return EMBEDDING_BATCH_LIMITS[family] if family else self.embedding_batch_size

    def __init__(self, spec: ProviderSpec, settings: ProviderSettings) -> None:
        super().__init__(spec, settings)
        self._session: botocore.session.Session | None = None
        self._timed_clients: OrderedDict[float, Any] = OrderedDict()
        self._executor: ThreadPoolExecutor | None = None
        self._native_structured: bool | None = None
        self._parse_event: Callable[[dict[str, Any], bytes], dict[str, Any]] | None = None
        self._converse_parsing: tuple[Any, Any] | None = None
        self._body_tap = _BodyTap()

    # configuration -----------------------------------------------------------------
    def region(self) -> str:
        region = (
            self.settings.option("region")
            or self.settings.option("region_name")
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or self._boto_session().get_config_variable("region")
        )
        if not region:
            raise ConfigError(
                "no AWS region for provider 'bedrock': set AWS_REGION (or AWS_DEFAULT_REGION), "
                "or pass provider_options={'bedrock': {'region': 'us-east-1'}}"
            )
        return str(region)

    def _boto_session(self) -> botocore.session.Session:
        if self._session is None:
            try:
                session = botocore.session.Session(profile=self.settings.option("profile"))
                data_path = session.get_config_variable("data_path")
            except botocore.exceptions.ProfileNotFound as exc:
                raise ConfigError(f"AWS profile not found: {exc}") from exc
            session.register_component("data_loader", _shared_loader(data_path))
            self._session = session
        return self._session

    def _unsupported(self, name: str, reason: str) -> None:
        drop_parameter("bedrock", repr(name), reason, strict=self.strict_params)

    # clients -----------------------------------------------------------------------
    def _build_client(self, timeout: float | None) -> Any:
        read_timeout = timeout or float(self.settings.option("read_timeout", DEFAULT_READ_TIMEOUT))
        connect_timeout = float(self.settings.option("connect_timeout", DEFAULT_CONNECT_TIMEOUT))
        if timeout:
            connect_timeout = min(connect_timeout, timeout)
        config = botocore.config.Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            read_timeout=read_timeout,
            connect_timeout=connect_timeout,
            max_pool_connections=int(
                self.settings.option("max_pool_connections", DEFAULT_POOL_SIZE)
            ),
            user_agent_extra="llmgate",
        )
        region = self.region()
        with self._client_lock:  # a botocore Session is not thread-safe
            client = self._boto_session().create_client(
                "bedrock-runtime",
                region_name=region,
                endpoint_url=self.base_url,
                aws_access_key_id=self.settings.option("aws_access_key_id"),
                aws_secret_access_key=self.settings.option("aws_secret_access_key"),
                aws_session_token=self.settings.option("aws_session_token"),
                config=config,
            )
        client.meta.events.register(f"before-parse.{_SERVICE_ID}.Converse", self._body_tap)
        return client

    @override
    def create_client(self) -> Any:
        return self._build_client(None)

    @override
    def create_async_client(self) -> Any:
        return self.client  # boto3 has no async client; async calls use the sync one

    @property
    @override
    def client(self) -> Any:
        if self._client is None:
            client = self.create_client()
            with self._client_lock:
                if self._client is None:
                    self._client = client
        return self._client

    def client_for(self, timeout: float | None) -> Any:
        """The client whose read timeout is ``timeout`` (the default client for None)."""
        if not timeout:
            return self.client
        client = self._timed_clients.get(timeout)
        if client is None:
            client = self._build_client(timeout)
            with self._client_lock:
                client = self._timed_clients.setdefault(timeout, client)
                while len(self._timed_clients) > _TIMED_CLIENTS_KEPT:
                    self._timed_clients.popitem(last=False)
        return client

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            with self._client_lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        max_workers=int(
                            self.settings.option("max_pool_connections", DEFAULT_POOL_SIZE)
                        ),
                        thread_name_prefix="llmgate-bedrock",
                    )
        return self._executor

    @override
    def close(self) -> None:
        with self._client_lock:
            clients = list(self._timed_clients.values())
            self._timed_clients.clear()
            executor, self._executor = self._executor, None
        super().close()
        for client in clients:
            try:
                client.close()
            except Exception:
                pass
        if executor is not None:
            executor.shutdown(wait=False)

    async def _in_thread(self, func: Callable[..., _T], *args: Any) -> _T:
        import asyncio

        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        call = functools.partial(context.run, func, *args)
        return await loop.run_in_executor(self.executor, call)

    # translation helpers -------------------------------------------------------------
    def _image_loader(self, request: CompletionRequest) -> ImageLoader | None:
        if not self.settings.option("allow_image_download"):
            return None
        max_bytes, timeout = self.image_download_limits(IMAGE_MAX_BYTES, request.timeout)
        return functools.partial(fetch_image, max_bytes=max_bytes, timeout=timeout)

    def _native_structured_output(self, client: Any) -> bool:
        mode = self.settings.option("structured_output", "native")
        if mode == "tool":
            return False
        if self._native_structured is None:
            # botocore releases before Bedrock's structured output lack outputConfig.
            members = client.meta.service_model.operation_model("Converse").input_shape.members
            self._native_structured = "outputConfig" in members
        return self._native_structured

    def _converse_call(self, request: CompletionRequest, model: str, client: Any) -> ConverseCall:
        return _convert.converse_call(
            request,
            model,
            unsupported=self._unsupported,
            image_loader=self._image_loader(request),
            native_structured=(
                request.response_format is None or self._native_structured_output(client)
            ),
        )

    # calls -------------------------------------------------------------------------
    @override
    def complete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        client = self.client_for(request.timeout)
        call = self._converse_call(request, model, client)
        tap = self._body_tap
        tap.arm()
        try:
            result = client.converse(**call.kwargs)
        finally:
            taken = tap.take()
        if taken is not None:
            data = _convert.plain_converse_json(taken[1])
            full = functools.partial(self._full_result, client, taken, result["ResponseMetadata"])
            if data is not None:
                data["ResponseMetadata"] = result["ResponseMetadata"]
                response = _convert.completion_response(data, model, call.structured_tool)
                response.set_raw(factory=full)
                return response
            result = full()
        response = _convert.completion_response(result, model, call.structured_tool)
        response.set_raw(result)
        return response

    def _full_result(
        self, client: Any, taken: tuple[int, bytes], metadata: dict[str, Any]
    ) -> dict[str, Any]:
        """The dict client.converse would have returned: botocore's parse of the body."""
        if self._converse_parsing is None:
            operation = client.meta.service_model.operation_model("Converse")
            parser = botocore.parsers.create_parser(operation.service_model.resolved_protocol)
            self._converse_parsing = (parser, operation.output_shape)
        parser, shape = self._converse_parsing
        status, body = taken
        # the plain, lower-cased copy botocore keeps in ResponseMetadata: all the parse reads
        headers = metadata.get("HTTPHeaders", {})
        response = {
            "status_code": status,
            "headers": headers,
            "body": body,
            "context": {"operation_name": "Converse"},
        }
        result: dict[str, Any] = parser.parse(response, shape)
        result["ResponseMetadata"] = metadata
        return result

    @override
    async def acomplete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        return await self._in_thread(self.complete, request, model)

    @override
    def stream(self, request: CompletionRequest, model: str) -> Iterator[StreamChunk]:
        return self._stream(request, model, None)

    def _stream(
        self, request: CompletionRequest, model: str, handle: _StreamHandle | None
    ) -> Generator[StreamChunk, None, None]:
        client = self.client_for(request.timeout)
        call = self._converse_call(request, model, client)
        response = client.converse_stream(**call.kwargs)
        events = response["stream"]
        request_id = str((response.get("ResponseMetadata") or {}).get("RequestId") or "")
        try:
            if handle is not None and not handle.attach(events):
                return
            translator = StreamTranslator(model, request_id, call.structured_tool)
            try:
                raw_stream = getattr(events, "_raw_stream", None)
                if raw_stream is None or not callable(getattr(raw_stream, "stream", None)):
                    for event in events:
                        chunk = translator.feed(event)
                        if chunk is not None:
                            yield chunk
                else:
                    parse = self._event_parser(client)
                    for headers, payload in frames(raw_stream.stream()):
                        if (
                            headers.get(":event-type") == "contentBlockDelta"
                            and headers.get(":message-type") == "event"
                        ):
                            text = _convert.text_delta(payload)
                            if text is not None:
                                if text:
                                    yield text_chunk(request_id, model, PROVIDER, text)
                                continue
                        event = parse(headers, payload)
                        if event:
                            chunk = translator.feed(event)
                            if chunk is not None:
                                yield chunk
            except botocore.exceptions.EventStreamError as exc:
                # In-stream errors carry no metadata: add the stream's request id.
                metadata = exc.response.setdefault("ResponseMetadata", {})
                metadata.setdefault("RequestId", request_id)
                raise
            last = translator.close()
            if last is not None:
                yield last
        finally:
            events.close()

    def _event_parser(self, client: Any) -> Callable[[dict[str, Any], bytes], dict[str, Any]]:
        """What botocore's EventStream does with one frame: the event dict, or the raise."""
        if self._parse_event is None:
            operation = client.meta.service_model.operation_model("ConverseStream")
            self._parse_event = functools.partial(
                _parse_event,
                botocore.parsers.EventStreamJSONParser(),
                operation.get_event_stream_output(),
                operation.name,
            )
        return self._parse_event

    @override
    async def astream(self, request: CompletionRequest, model: str) -> AsyncIterator[StreamChunk]:
        import asyncio

        handle = _StreamHandle()
        chunks = self._stream(request, model, handle)
        context = contextvars.copy_context()
        working: Future[Any] | None = None
        try:
            while True:
                working = self.executor.submit(context.run, _next_or_done, chunks)
                chunk = await asyncio.wrap_future(working)
                working = None
                if chunk is _DONE:
                    return
                yield chunk
        finally:
            if working is not None and not working.cancel() and not working.done():
                # Abandoned while a worker reads: wake the read, and let the worker close the
                # generator as soon as its read returns.
                working.add_done_callback(functools.partial(_close_after, chunks))
                handle.close()
            else:
                chunks.close()

    @override
    def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        family = _convert.embedding_family(model)
        if family is None:
            raise EmbeddingsNotSupported(
                f"bedrock/{model} is not an embedding model llmgate knows: use an Amazon "
                "Titan (amazon.titan-embed-*) or Cohere (cohere.embed-*) model",
                provider=self.name,
                model=model,
            )
        client = self.client_for(request.timeout)
        call_extra, body_extra = _convert.split_embedding_extras(request.extra_kwargs)
        if family == TITAN:
            template = {**_convert.titan_body(request, model, self._unsupported), **body_extra}
            bodies = [{**template, "inputText": text} for text in request.input]
        else:
            template = {**_convert.cohere_body(request, model, self._unsupported), **body_extra}
            limit = EMBEDDING_BATCH_LIMITS[COHERE]
            bodies = [
                {**template, "texts": request.input[i : i + limit]}
                for i in range(0, len(request.input), limit)
            ]
        vectors: list[list[float]] = []
        tokens = 0
        raws: list[Any] = []
        for body in bodies:
            result = client.invoke_model(
                modelId=model,
                body=json.dumps(body),
                contentType="application/json",
                accept="application/json",
                **call_extra,
            )
            payload = json.loads(result["body"].read())
            raws.append(payload)
            headers = (result.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
            counted = header(headers, "x-amzn-bedrock-input-token-count")
            if family == TITAN:
                vector, body_tokens = _convert.titan_vector(payload)
                vectors.append(vector)
            else:
                vectors.extend(_convert.cohere_vectors(payload))
                body_tokens = 0
            tokens += int(counted) if counted and counted.isdigit() else body_tokens
        # Unvalidated: the vectors are lists of floats by construction (see types.trusted).
        response = trusted(
            EmbeddingResponse,
            embeddings=vectors,
            model=model,
            provider=self.name,
            usage=make_usage(tokens, 0, tokens),
        )
        response.set_raw(raws[0] if len(raws) == 1 else raws)
        return response

    @override
    async def aembed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        return await self._in_thread(self.embed, request, model)

    # errors ------------------------------------------------------------------------
    @override
    def map_error(self, exc: BaseException, model: str) -> LLMGateError:
        return map_bedrock_error(exc, provider=self.name, model=model)


def _parse_event(
    parser: Any, shape: Any, operation: str, headers: dict[str, Any], payload: bytes
) -> dict[str, Any]:
    failed = headers.get(":message-type") in ("error", "exception")
    response = {"status_code": 400 if failed else 200, "headers": dict(headers), "body": payload}
    parsed: dict[str, Any] = parser.parse(response, shape)
    if failed:
        raise botocore.exceptions.EventStreamError(parsed, operation)
    return parsed


def _next_or_done(chunks: Iterator[StreamChunk]) -> Any:
    return next(chunks, _DONE)


def _close_after(chunks: Generator[StreamChunk, None, None], future: Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so it is not reported as never retrieved
    chunks.close()
