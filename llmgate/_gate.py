"""LLMGate: the one execution path every entry point uses.

    request → resolve provider → checks → middleware chain → retry loop → provider call
            → error mapping → structured parsing → response (or Stream)

Provider instances (and so SDK clients) are cached per provider, key, base URL and
options; each provider keeps one sync client and one async client per event loop.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from typing_extensions import override

from . import _fallback, _structured
from ._fallback import CallTrail
from ._registry import ProviderSpec, Registry, default_registry
from ._retry import RetryPolicy
from ._streaming import AsyncStream, Stream
from .exceptions import (
    EmbeddingsNotSupported,
    InvalidRequestError,
    LLMGateError,
    ProviderError,
    StructuredOutputError,
)
from .middleware.base import (
    BaseMiddleware,
    CallContext,
    CallKind,
    arun_chain,
    arun_stream_chain,
    check_supported,
    run_chain,
    run_stream_chain,
)
from .providers.base import Provider, ProviderSettings
from .types import (
    BatchResult,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    StreamChunk,
    TokenUsage,
    fast_message,
    fast_request,
    trusted,
)

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

_M = TypeVar("_M", bound=BaseModel)
_R = TypeVar("_R")

DEFAULT_FALLBACK_ON: tuple[type[BaseException], ...] = (ProviderError,)


class LLMGate:
    """A configured entry point: defaults, middleware, fallback and its own client cache.

    ``api_key``/``base_url`` apply to every provider unless ``provider_options`` gives a
    provider its own (``{"anthropic": {"api_key": ..., "base_url": ...}, "bedrock":
    {"region": ...}}``). ``defaults`` are request parameters used when a call leaves them out.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        middleware: Sequence[BaseMiddleware] | None = None,
        fallback_chain: Sequence[str] | None = None,
        fallback_on: Sequence[type[BaseException]] | type[BaseException] | None = None,
        defaults: Mapping[str, Any] | None = None,
        provider_options: Mapping[str, Mapping[str, Any]] | None = None,
        strict_params: bool = False,
        stream_fallback_mode: str = "restart",
        stream_resume_prompt: str | None = None,
        retry_policy: RetryPolicy | None = None,
        registry: Registry | None = None,
    ) -> None:
        self._api_key = api_key
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.middleware: list[BaseMiddleware] = list(middleware or [])
        self.fallback_chain: list[str] = list(fallback_chain or [])
        if fallback_on is None:
            self.fallback_on: tuple[type[BaseException], ...] = DEFAULT_FALLBACK_ON
        elif isinstance(fallback_on, type):
            self.fallback_on = (fallback_on,)
        else:
            self.fallback_on = tuple(fallback_on)
        self.defaults: dict[str, Any] = dict(defaults or {})
        self.provider_options: dict[str, dict[str, Any]] = {
            name: dict(options) for name, options in (provider_options or {}).items()
        }
        self.strict_params = strict_params
        self.stream_fallback_mode = stream_fallback_mode
        self.stream_resume_prompt = stream_resume_prompt
        self.retry_policy = retry_policy or RetryPolicy()
        self.registry = registry or default_registry
        self._providers: dict[tuple[Any, ...], Provider] = {}
        self._recent: dict[tuple[Any, ...], tuple[tuple[Any, ...], Provider]] = {}
        self._gate_policy: tuple[RetryPolicy, int | None, RetryPolicy] | None = None
        self._lock = threading.Lock()
        self._embed_pool: ThreadPoolExecutor | None = None

    @override
    def __repr__(self) -> str:
        return (
            f"LLMGate(base_url={self.base_url!r}, timeout={self.timeout!r}, "
            f"middleware={[type(m).__name__ for m in self.middleware]}, "
            f"fallback_chain={self.fallback_chain!r})"
        )

    # lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        """Close every SDK client this gate made."""
        with self._lock:
            providers, self._providers = list(self._providers.values()), {}
            self._recent = {}
        for provider in providers:
            provider.close()
        pool, self._embed_pool = self._embed_pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    def _embed_workers(self) -> ThreadPoolExecutor:
        """The threads that help run a split embedding call, made on first need."""
        pool = self._embed_pool
        if pool is None:
            with self._lock:
                pool = self._embed_pool
                if pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    pool = self._embed_pool = ThreadPoolExecutor(
                        max_workers=2 * EMBED_CONCURRENCY, thread_name_prefix="llmgate-embed"
                    )
        return pool

    def __enter__(self) -> LLMGate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> LLMGate:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every SDK client, awaiting the async ones of the running event loop."""
        with self._lock:
            providers, self._providers = list(self._providers.values()), {}
            self._recent = {}
        for provider in providers:
            await provider.aclose()

    # requests ----------------------------------------------------------------------
    def build_request(
        self, model: str | Sequence[str] | None, messages: Any, **kwargs: Any
    ) -> CompletionRequest:
        """A validated CompletionRequest from call arguments and this gate's defaults."""
        if model is None:
            model = self.defaults.get("model") or next(iter(self.fallback_chain), None)
            if model is None:
                raise InvalidRequestError("no model given: pass model='provider/model-name'")
        if messages is None:
            raise InvalidRequestError("no messages given: pass messages=[{'role': 'user', ...}]")
        if type(messages) is not list and (
            isinstance(messages, (str, bytes)) or not isinstance(messages, Iterable)
        ):
            raise InvalidRequestError(
                "messages must be a list of messages, e.g. [{'role': 'user', 'content': 'Hi'}]"
            )
        data: dict[str, Any] = {
            "stream_fallback_mode": self.stream_fallback_mode,
            "stream_resume_prompt": self.stream_resume_prompt,
        }
        if self.defaults:
            data.update({k: v for k, v in self.defaults.items() if k != "model"})
        data.update({k: v for k, v in kwargs.items() if v is not None})
        data["model"] = list(model) if not isinstance(model, str) else model
        data["messages"] = [_message(m, i) for i, m in enumerate(messages)]
        if not data["messages"]:
            raise InvalidRequestError("messages is empty: give at least one message")
        fast = fast_request(data)
        if fast is not None:
            return fast
        try:
            return CompletionRequest.model_validate(data)
        except ValidationError as exc:
            raise InvalidRequestError(_describe(exc)) from exc

    def build_embedding_request(
        self, model: str, input: str | Sequence[str], **kwargs: Any
    ) -> EmbeddingRequest:
        if isinstance(input, str):
            texts = [input]
        elif isinstance(input, Sequence) and all(isinstance(t, str) for t in input):
            texts = list(input)
        else:
            raise InvalidRequestError("input must be a string or a list of strings")
        if not texts:
            raise InvalidRequestError("input is an empty list: give at least one text to embed")
        data = {k: v for k, v in kwargs.items() if v is not None}
        known = set(EmbeddingRequest.model_fields)
        extra = {k: data.pop(k) for k in list(data) if k not in known}
        if extra:
            data["extra_kwargs"] = {**data.get("extra_kwargs", {}), **extra}
        try:
            return EmbeddingRequest(model=model, input=texts, **data)
        except ValidationError as exc:
            raise InvalidRequestError(_describe(exc)) from exc

    # providers ---------------------------------------------------------------------
    def provider_for(
        self, spec: ProviderSpec, api_key: str | None = None, base_url: str | None = None
    ) -> Provider:
        """The cached provider instance for these settings (built on first use)."""
        # Fast path: the provider last used with these arguments, while the gate's key,
        # URL and this provider's options are unchanged (no hashing or sorting per call).
        given = self.provider_options.get(spec.name)
        recent = self._recent.get((spec.name, api_key, base_url))
        if recent is not None:
            (used_spec, gate_key, gate_url, options), provider = recent
            if (
                used_spec is spec
                and gate_key == self._api_key
                and gate_url == self.base_url
                and options == given
            ):
                return provider
        provider = self._provider_for(spec, api_key, base_url)
        marker = (spec, self._api_key, self.base_url, _snapshot(given))
        self._recent[(spec.name, api_key, base_url)] = (marker, provider)
        return provider

    def _provider_for(
        self, spec: ProviderSpec, api_key: str | None, base_url: str | None
    ) -> Provider:
        options = dict(self.provider_options.get(spec.name, {}))
        option_key = options.pop("api_key", None)
        option_url = options.pop("base_url", None)
        key = api_key or option_key or self._api_key
        url = base_url or option_url or self.base_url
        settings = ProviderSettings.build(key, url, {**spec.options, **options})
        cache_key = (spec.name, _fingerprint(key), url, _hashable(settings.options))
        provider = self._providers.get(cache_key)
        if provider is None:
            with self._lock:
                provider = self._providers.get(cache_key)
                if provider is None:
                    cls = self.registry.provider_class(spec)
                    provider = cls(spec, settings)
                    provider.strict_params = self.strict_params
                    self._providers[cache_key] = provider
        return provider

    def _prepare(self, request: CompletionRequest | EmbeddingRequest) -> tuple[Provider, str]:
        model = request.model
        assert isinstance(model, str)
        spec, vendor_model = self.registry.resolve(model, request.provider)
        provider = self.provider_for(spec, request.api_key_value, request.base_url)
        if request.timeout is None and self.timeout is not None:
            request.timeout = self.timeout
        if type(request) is CompletionRequest or isinstance(request, CompletionRequest):
            provider.check_request(request, vendor_model)
            if request.response_format is not None:
                _structured.json_schema(request.response_format)
        elif not provider.capabilities_for(vendor_model).embeddings:
            raise EmbeddingsNotSupported(
                f"{spec.name} has no embeddings API; use an embedding model of another provider",
                provider=spec.name,
                model=vendor_model,
            )
        return provider, vendor_model

    def _policy(
        self, request: CompletionRequest | EmbeddingRequest, chain: Sequence[BaseMiddleware]
    ) -> RetryPolicy:
        """The call's one retry policy: call > last RetryMiddleware > gate (see _retry)."""
        cached = self._gate_policy
        if cached is None or cached[0] is not self.retry_policy or cached[1] != self.max_retries:
            policy = self.retry_policy.with_max_retries(self.max_retries)
            cached = self._gate_policy = (self.retry_policy, self.max_retries, policy)
        policy = cached[2]
        for item in chain:
            configured = getattr(item, "retry_policy", None)
            if isinstance(configured, RetryPolicy):
                policy = configured
        return policy.with_max_retries(request.max_retries)

    def _chain(self, extra: Sequence[BaseMiddleware] | None) -> list[BaseMiddleware]:
        return [*self.middleware, *(extra or [])]

    def models_for(
        self, request: CompletionRequest, chain: Sequence[BaseMiddleware] = ()
    ) -> list[str]:
        """The models to try in order: the call's, then FallbackMiddleware's, then the gate's."""
        models = list(request.model) if isinstance(request.model, list) else [request.model]
        extras = [m for item in chain for m in getattr(item, "fallback_models", ())]
        for extra in [*extras, *self.fallback_chain]:
            if extra not in models:
                models.append(extra)
        if not models:
            raise InvalidRequestError("model is an empty list: name at least one model")
        return models

    # completion --------------------------------------------------------------------
    def completion(
        self,
        model: str | Sequence[str] | None = None,
        messages: Any = None,
        *,
        stream: bool = False,
        middleware: Sequence[BaseMiddleware] | None = None,
        **kwargs: Any,
    ) -> Any:
        """A completion; with ``stream=True`` a :class:`Stream` of chunks."""
        middleware = _with_fallback_on(middleware, kwargs.pop("fallback_on", None))
        request = self.build_request(model, messages, stream=stream, **kwargs)
        return self._run(request, middleware, owned=True)

    def run(
        self, request: CompletionRequest, middleware: Sequence[BaseMiddleware] | None = None
    ) -> Any:
        """Execute a built request (the path batch and the module functions share)."""
        return self._run(request, middleware, owned=False)

    def _run(
        self,
        request: CompletionRequest,
        middleware: Sequence[BaseMiddleware] | None,
        owned: bool,
    ) -> Any:
        chain = self._chain(middleware)
        models = self.models_for(request, chain)
        trail = CallTrail()
        if len(models) > 1:
            if request.stream:
                chunks = _fallback.stream(self, request, models, chain, trail)
                return _stream_for(Stream(_parsing(chunks, request)), trail)
            return _fallback.complete(self, request, models, chain, trail)
        one = _single(request, models[0], owned)
        if request.stream:
            return _stream_for(Stream(_parsing(self.stream_one(one, chain, trail), request)), trail)
        return trail.finish(self.complete_one(one, chain, trail))

    def complete_one(
        self,
        request: CompletionRequest,
        chain: Sequence[BaseMiddleware],
        trail: CallTrail | None = None,
    ) -> CompletionResponse:
        """One model, through the middleware chain and the retry loop."""
        provider, model = self._prepare(request)
        check_supported(chain, "completion", False)
        ctx = _context(request, "completion", False, provider.name, model, trail)
        policy = self._policy(request, chain)

        def call(ctx: CallContext) -> CompletionResponse:
            assert isinstance(ctx.request, CompletionRequest)
            validation = _ValidationRetries(ctx.request)
            while True:
                wire = provider.wire_request(validation.request, model)
                ctx.attempts, before = 0, ctx.attempts
                try:
                    response = _with_retries(
                        provider, model, policy, ctx, partial(provider.complete, wire, model)
                    )
                finally:
                    ctx.attempts += before
                final = validation.settle(response, ctx.attempts)
                if final is not None:
                    return final

        result: CompletionResponse = run_chain(chain, ctx, call)
        return result

    def stream_one(
        self,
        request: CompletionRequest,
        chain: Sequence[BaseMiddleware],
        trail: CallTrail | None = None,
    ) -> Iterator[StreamChunk]:
        """One model's stream through the chain; structured parsing is left to the caller."""
        provider, model = self._prepare(request)
        check_supported(chain, "stream", False)
        ctx = _context(request, "stream", False, provider.name, model, trail)
        policy = self._policy(request, chain)

        def call(ctx: CallContext) -> Iterator[StreamChunk]:
            assert isinstance(ctx.request, CompletionRequest)
            wire = provider.wire_request(ctx.request, model)
            return _stream_attempts(provider, wire, model, ctx, policy)

        return run_stream_chain(chain, ctx, call)

    async def acompletion(
        self,
        model: str | Sequence[str] | None = None,
        messages: Any = None,
        *,
        stream: bool = False,
        middleware: Sequence[BaseMiddleware] | None = None,
        **kwargs: Any,
    ) -> Any:
        """The async completion; with ``stream=True`` an :class:`AsyncStream`."""
        middleware = _with_fallback_on(middleware, kwargs.pop("fallback_on", None))
        request = self.build_request(model, messages, stream=stream, **kwargs)
        return await self._arun(request, middleware, owned=True)

    async def arun(
        self, request: CompletionRequest, middleware: Sequence[BaseMiddleware] | None = None
    ) -> Any:
        return await self._arun(request, middleware, owned=False)

    async def _arun(
        self,
        request: CompletionRequest,
        middleware: Sequence[BaseMiddleware] | None,
        owned: bool,
    ) -> Any:
        chain = self._chain(middleware)
        models = self.models_for(request, chain)
        trail = CallTrail()
        if len(models) > 1:
            if request.stream:
                chunks = _fallback.astream(self, request, models, chain, trail)
                return _stream_for(await AsyncStream(_aparsing(chunks, request))._prime(), trail)
            return await _fallback.acomplete(self, request, models, chain, trail)
        one = _single(request, models[0], owned)
        if request.stream:
            chunks = _aparsing(self.astream_one(one, chain, trail), request)
            return _stream_for(await AsyncStream(chunks)._prime(), trail)
        return trail.finish(await self.acomplete_one(one, chain, trail))

    async def acomplete_one(
        self,
        request: CompletionRequest,
        chain: Sequence[BaseMiddleware],
        trail: CallTrail | None = None,
    ) -> CompletionResponse:
        provider, model = self._prepare(request)
        check_supported(chain, "completion", True)
        ctx = _context(request, "completion", True, provider.name, model, trail)
        policy = self._policy(request, chain)

        async def call(ctx: CallContext) -> CompletionResponse:
            assert isinstance(ctx.request, CompletionRequest)
            validation = _ValidationRetries(ctx.request)
            while True:
                wire = provider.wire_request(validation.request, model)
                ctx.attempts, before = 0, ctx.attempts
                try:
                    response = await _awith_retries(
                        provider, model, policy, ctx, partial(provider.acomplete, wire, model)
                    )
                finally:
                    ctx.attempts += before
                final = validation.settle(response, ctx.attempts)
                if final is not None:
                    return final

        result: CompletionResponse = await arun_chain(chain, ctx, call)
        return result

    def astream_one(
        self,
        request: CompletionRequest,
        chain: Sequence[BaseMiddleware],
        trail: CallTrail | None = None,
    ) -> AsyncIterator[StreamChunk]:
        provider, model = self._prepare(request)
        check_supported(chain, "stream", True)
        ctx = _context(request, "stream", True, provider.name, model, trail)
        policy = self._policy(request, chain)

        def call(ctx: CallContext) -> AsyncIterator[StreamChunk]:
            assert isinstance(ctx.request, CompletionRequest)
            wire = provider.wire_request(ctx.request, model)
            return _astream_attempts(provider, wire, model, ctx, policy)

        return arun_stream_chain(chain, ctx, call)

    def stream(
        self, model: str | Sequence[str] | None = None, messages: Any = None, **kwargs: Any
    ) -> Stream:
        """``completion(..., stream=True)``."""
        result: Stream = self.completion(model, messages, stream=True, **kwargs)
        return result

    async def astream(
        self, model: str | Sequence[str] | None = None, messages: Any = None, **kwargs: Any
    ) -> AsyncStream:
        result: AsyncStream = await self.acompletion(model, messages, stream=True, **kwargs)
        return result

    # parse -------------------------------------------------------------------------
    def parse(
        self,
        model: str | Sequence[str] | None = None,
        messages: Any = None,
        *,
        response_format: type[_M],
        **kwargs: Any,
    ) -> _M:
        """``completion(..., response_format=Model).parsed``, typed as the model."""
        response = self.completion(model, messages, response_format=response_format, **kwargs)
        return _parsed(response, response_format)

    async def aparse(
        self,
        model: str | Sequence[str] | None = None,
        messages: Any = None,
        *,
        response_format: type[_M],
        **kwargs: Any,
    ) -> _M:
        response = await self.acompletion(
            model, messages, response_format=response_format, **kwargs
        )
        return _parsed(response, response_format)

    # embeddings --------------------------------------------------------------------
    def embed(
        self,
        model: str,
        input: str | Sequence[str],
        *,
        middleware: Sequence[BaseMiddleware] | None = None,
        **kwargs: Any,
    ) -> EmbeddingResponse:
        """Embeddings for one text or many (split into vendor-sized requests as needed)."""
        request = self.build_embedding_request(model, input, **kwargs)
        provider, vendor_model = self._prepare(request)
        chain = self._chain(middleware)
        check_supported(chain, "embedding", False)
        ctx = CallContext(request, "embedding", False, provider.name, vendor_model)
        policy = self._policy(request, chain)

        def call(ctx: CallContext) -> EmbeddingResponse:
            assert isinstance(ctx.request, EmbeddingRequest)
            parts = _split_embedding(ctx.request, provider, vendor_model)
            if len(parts) == 1:
                return _with_retries(
                    provider,
                    vendor_model,
                    policy,
                    ctx,
                    lambda: provider.embed(parts[0], vendor_model),
                )
            results = _run_parts(
                self._embed_workers(),
                parts,
                lambda part: _with_retries(
                    provider, vendor_model, policy, ctx, lambda: provider.embed(part, vendor_model)
                ),
            )
            return _merge_embeddings(results)

        result: EmbeddingResponse = run_chain(chain, ctx, call)
        return result

    async def aembed(
        self,
        model: str,
        input: str | Sequence[str],
        *,
        middleware: Sequence[BaseMiddleware] | None = None,
        **kwargs: Any,
    ) -> EmbeddingResponse:
        import asyncio

        request = self.build_embedding_request(model, input, **kwargs)
        provider, vendor_model = self._prepare(request)
        chain = self._chain(middleware)
        check_supported(chain, "embedding", True)
        ctx = CallContext(request, "embedding", True, provider.name, vendor_model)
        policy = self._policy(request, chain)

        async def call(ctx: CallContext) -> EmbeddingResponse:
            assert isinstance(ctx.request, EmbeddingRequest)
            parts = _split_embedding(ctx.request, provider, vendor_model)
            gate = asyncio.Semaphore(EMBED_CONCURRENCY)

            async def one(part: EmbeddingRequest) -> EmbeddingResponse:
                async with gate:
                    return await _awith_retries(
                        provider,
                        vendor_model,
                        policy,
                        ctx,
                        lambda: provider.aembed(part, vendor_model),
                    )

            results = await asyncio.gather(*(one(part) for part in parts))
            return results[0] if len(results) == 1 else _merge_embeddings(list(results))

        result: EmbeddingResponse = await arun_chain(chain, ctx, call)
        return result

    # batch -------------------------------------------------------------------------
    def batch(
        self, requests: Sequence[CompletionRequest | Mapping[str, Any]], **kwargs: Any
    ) -> BatchResult:
        """Many completions at once (see :func:`llmgate.batch` for the options)."""
        from ._batch import run_batch

        return run_batch(self, requests, **kwargs)

    async def abatch(
        self, requests: Sequence[CompletionRequest | Mapping[str, Any]], **kwargs: Any
    ) -> BatchResult:
        from ._batch import arun_batch

        return await arun_batch(self, requests, **kwargs)


EMBED_CONCURRENCY = 4


# ------------------------------------------------------------------------- helpers


def _snapshot(value: Any) -> Any:
    """A copy of option values whose containers (dicts of headers, lists) are copied too,
    so a later change inside them compares unequal; other objects are kept as they are."""
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(_snapshot(v) for v in value)
    return value


def _hashable(value: Any) -> Any:
    """A hashable stand-in for option values (dicts of headers, lists, client objects)."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_hashable(v) for v in value]
        return (
            tuple(sorted(items, key=repr)) if isinstance(value, (set, frozenset)) else tuple(items)
        )
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


def _fingerprint(secret: str | None) -> str | None:
    if secret is None:
        return None
    return hashlib.sha256(secret.encode()).hexdigest()[:24]


def _message(value: Any, index: int) -> Message:
    if isinstance(value, Message):
        return value
    fast = fast_message(value)
    if fast is not None:
        return fast
    try:
        return Message.model_validate(value)
    except ValidationError as exc:
        raise InvalidRequestError(f"messages[{index}] is malformed: {_describe(exc)}") from exc


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(parts)


def _single(request: CompletionRequest, model: str, owned: bool) -> CompletionRequest:
    """The request for one model: a copy, unless the gate built it for this call alone."""
    if owned and request.model == model:
        return request
    return request.model_copy(update={"model": model})


def _finish(request: CompletionRequest, response: CompletionResponse) -> CompletionResponse:
    wants_parse = request.response_format is not None and response.parsed is None
    if wants_parse and (response.text or not response.tool_calls):
        response.parsed = _structured.parse_output(response.text, request.response_format)
    return response


class _ValidationRetries:
    """Opt-in re-asking (``max_validation_retries``) when structured output fails validation.

    Each failed answer is sent back with the validation errors; the usage and attempts of
    every try are added to the final response (or to the error when all tries failed).
    """

    def __init__(self, request: CompletionRequest) -> None:
        self.request = request
        self.left = request.max_validation_retries
        self.usage: TokenUsage | None = None  # of the answers that failed validation

    def settle(self, response: CompletionResponse, attempts: int) -> CompletionResponse | None:
        """The final response, or None when the model must be asked again."""
        try:
            final = _finish(self.request, response)
        except StructuredOutputError as error:
            self.usage = response.usage + self.usage
            if self.left <= 0:
                error.usage = self.usage
                error.attempts = attempts
                raise
            self.left -= 1
            self.request = _reask(self.request, response.text, error)
            return None
        if self.usage is not None:
            final.usage = self.usage + final.usage
        final.attempts = attempts
        return final


def _reask(
    request: CompletionRequest, answer: str, error: StructuredOutputError
) -> CompletionRequest:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'value'}: {e.get('msg')}"
        if isinstance(e, dict)
        else str(e)
        for e in (error.errors or [])[:10]
    )
    correction = (
        "Your previous answer did not match the required JSON schema "
        f"({problems or error}). Reply again with only the corrected JSON."
    )
    messages = [
        *request.messages,
        Message(role="assistant", content=answer),
        Message(role="user", content=correction),
    ]
    return request.model_copy(update={"messages": messages})


def _parsed(response: CompletionResponse, response_format: type[_M]) -> _M:
    if response.parsed is None:
        raise StructuredOutputError(
            "the model answered without structured output (it may have called a tool)",
            raw_text=response.text,
        )
    parsed: _M = response.parsed
    return parsed


def _close(iterator: Any) -> None:
    closer = getattr(iterator, "close", None)
    if closer is not None:
        closer()


_SECRET_OPTION_WORDS = ("key", "secret", "token", "password")


def _map_error(provider: Provider, exc: BaseException, model: str) -> LLMGateError:
    """The provider's mapping, with any credential the vendor echoed cut out of the message."""
    if isinstance(exc, TypeError) and "unexpected keyword argument" in str(exc):
        return InvalidRequestError(
            f"the {provider.name} SDK does not take an argument it was given ({exc}); "
            "check the extra keyword arguments of the call"
        )
    error = provider.map_error(exc, model)
    if not isinstance(error, ProviderError):
        return error
    settings = provider.settings
    secrets = [settings.api_key, provider.spec.env_api_key()] + [
        value
        for name, value in settings.options
        if isinstance(value, str) and any(word in name for word in _SECRET_OPTION_WORDS)
    ]
    message = error.message
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in message:
            message = message.replace(secret, "[redacted]")
    if message != error.message:
        error.message = message
        error.args = (message,)
    return error


def _stream_attempts(
    provider: Provider,
    request: CompletionRequest,
    model: str,
    ctx: CallContext,
    policy: RetryPolicy,
) -> Iterator[StreamChunk]:
    """Open the stream, retrying until its first chunk; map every error after that."""
    chunks: Iterator[StreamChunk] | None = None
    try:
        attempt = 0
        while True:
            attempt += 1
            ctx.attempts = attempt
            try:
                chunks = provider.stream(request, model)
                first = next(chunks)
                break
            except StopIteration:
                return
            except Exception as exc:
                if chunks is not None:
                    _close(chunks)
                    chunks = None
                error = _map_error(provider, exc, model)
                if policy.should_retry(error, attempt):
                    time.sleep(policy.delay(error, attempt))
                    continue
                if error is exc:
                    raise
                raise error from exc
        yield first
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except LLMGateError:
                raise
            except Exception as exc:
                raise _map_error(provider, exc, model) from exc
            yield chunk
    finally:
        if chunks is not None:
            _close(chunks)


async def _astream_attempts(
    provider: Provider,
    request: CompletionRequest,
    model: str,
    ctx: CallContext,
    policy: RetryPolicy,
) -> AsyncIterator[StreamChunk]:
    import asyncio

    chunks: AsyncIterator[StreamChunk] | None = None
    try:
        attempt = 0
        while True:
            attempt += 1
            ctx.attempts = attempt
            try:
                chunks = provider.astream(request, model)
                first = await chunks.__anext__()
                break
            except StopAsyncIteration:
                return
            except Exception as exc:
                if chunks is not None:
                    await _aclose(chunks)
                    chunks = None
                error = _map_error(provider, exc, model)
                if policy.should_retry(error, attempt):
                    await asyncio.sleep(policy.delay(error, attempt))
                    continue
                if error is exc:
                    raise
                raise error from exc
        yield first
        while True:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            except LLMGateError:
                raise
            except Exception as exc:
                raise _map_error(provider, exc, model) from exc
            yield chunk
    finally:
        if chunks is not None:
            await _aclose(chunks)


async def _aclose(iterator: Any) -> None:
    closer = getattr(iterator, "aclose", None)
    if closer is not None:
        await closer()


def _context(
    request: CompletionRequest,
    kind: CallKind,
    is_async: bool,
    provider: str,
    model: str,
    trail: CallTrail | None,
) -> CallContext:
    if trail is None:
        return CallContext(request, kind, is_async, provider, model)
    ctx = CallContext(
        request, kind, is_async, provider, model, fallback_attempts=trail.failed_models
    )
    trail.contexts.append(ctx)
    return ctx


def _with_fallback_on(
    middleware: Sequence[BaseMiddleware] | None, fallback_on: Any
) -> Sequence[BaseMiddleware] | None:
    """A per-call ``fallback_on=`` is a FallbackMiddleware without extra models."""
    if fallback_on is None:
        return middleware
    from .middleware.fallback import FallbackMiddleware

    return [*(middleware or []), FallbackMiddleware(fallback_on=fallback_on)]


_S = TypeVar("_S", Stream, AsyncStream)


def _stream_for(stream: _S, trail: CallTrail) -> _S:
    """The attempts of every model go on the stream's final response."""
    stream.response_hook = trail.finish_stream
    return stream


def _parsing(chunks: Iterator[StreamChunk], request: CompletionRequest) -> Iterator[StreamChunk]:
    if request.response_format is None:
        return chunks
    return _structured_stream(chunks, request.response_format)


def _aparsing(
    chunks: AsyncIterator[StreamChunk], request: CompletionRequest
) -> AsyncIterator[StreamChunk]:
    if request.response_format is None:
        return chunks
    return _astructured_stream(chunks, request.response_format)


def _structured_stream(
    chunks: Iterator[StreamChunk], response_format: Any
) -> Iterator[StreamChunk]:
    parser = _structured.StreamParser(response_format)
    try:
        for chunk in chunks:
            yield parser.feed(chunk)
    finally:
        _close(chunks)


async def _astructured_stream(
    chunks: AsyncIterator[StreamChunk], response_format: Any
) -> AsyncIterator[StreamChunk]:
    parser = _structured.StreamParser(response_format)
    try:
        async for chunk in chunks:
            yield parser.feed(chunk)
    finally:
        await _aclose(chunks)


def _split_embedding(
    request: EmbeddingRequest, provider: Provider, model: str
) -> list[EmbeddingRequest]:
    size = provider.embedding_batch_size_for(model)
    if not size or len(request.input) <= size:
        return [request]
    return [
        request.model_copy(update={"input": request.input[i : i + size]})
        for i in range(0, len(request.input), size)
    ]


def _run_parts(
    pool: ThreadPoolExecutor, parts: list[EmbeddingRequest], run: Callable[[EmbeddingRequest], _R]
) -> list[_R]:
    """``run`` over every part, in order, at most EMBED_CONCURRENCY at once.

    The calling thread takes parts too, so a busy pool slows a call down but never stalls
    it; after a failure no new part starts, and the first error is raised once the parts
    already running have ended.
    """
    results: list[Any] = [None] * len(parts)
    pending = iter(enumerate(parts))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def drain() -> None:
        while True:
            with lock:
                item = None if errors else next(pending, None)
            if item is None:
                return
            try:
                results[item[0]] = run(item[1])
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return

    helpers = [pool.submit(drain) for _ in range(min(EMBED_CONCURRENCY, len(parts)) - 1)]
    drain()
    for helper in helpers:
        if not helper.cancel():  # one still queued has nothing left to take
            helper.result()
    if errors:
        raise errors[0]
    return results


def _merge_embeddings(results: list[EmbeddingResponse]) -> EmbeddingResponse:
    first = results[0]
    usage = TokenUsage()
    vectors: list[list[float]] = []
    for item in results:
        vectors.extend(item.embeddings)
        usage = usage + item.usage
    merged = trusted(
        EmbeddingResponse,
        embeddings=vectors,
        model=first.model,
        provider=first.provider,
        usage=usage,
        attempts=sum(r.attempts for r in results),
        provider_details={"requests": len(results)},
    )
    merged.set_raw([r.raw for r in results])
    return merged


def _with_retries(
    provider: Provider, model: str, policy: RetryPolicy, ctx: CallContext, call: Callable[[], _R]
) -> _R:
    """Run one provider call under the retry policy; errors leave as llmgate errors."""
    attempt = 0
    while True:
        attempt += 1
        ctx.attempts = max(ctx.attempts, attempt)
        try:
            result = call()
        except Exception as exc:
            error = _map_error(provider, exc, model)
            if policy.should_retry(error, attempt):
                time.sleep(policy.delay(error, attempt))
                continue
            if error is exc:
                raise
            raise error from exc
        _set_attempts(result, attempt)
        return result


async def _awith_retries(
    provider: Provider,
    model: str,
    policy: RetryPolicy,
    ctx: CallContext,
    call: Callable[[], Awaitable[_R]],
) -> _R:
    import asyncio

    attempt = 0
    while True:
        attempt += 1
        ctx.attempts = max(ctx.attempts, attempt)
        try:
            result = await call()
        except Exception as exc:
            error = _map_error(provider, exc, model)
            if policy.should_retry(error, attempt):
                await asyncio.sleep(policy.delay(error, attempt))
                continue
            if error is exc:
                raise
            raise error from exc
        _set_attempts(result, attempt)
        return result


def _set_attempts(result: Any, attempt: int) -> None:
    if isinstance(result, (CompletionResponse, EmbeddingResponse)):
        result.attempts = attempt
