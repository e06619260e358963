"""The Provider base class, for built-in providers and third-party plugins alike.

A provider translates llmgate requests into one vendor SDK's calls and the results back.
It never retries, never runs middleware and never maps its errors at the call site: the
gate does all of that, calling :meth:`Provider.map_error` for every exception raised by
a call or a stream. A provider implements:

- ``create_client`` / ``create_async_client``: build the SDK clients (retries off);
- ``complete`` / ``acomplete``: one call, translated both ways;
- ``stream`` / ``astream``: a generator of :class:`~llmgate.types.StreamChunk` that closes
  the SDK stream in its ``finally``;
- ``embed`` / ``aembed`` where the vendor has embeddings;
- ``map_error``: the SDK's exceptions to :mod:`llmgate.exceptions`.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from typing_extensions import override

from .. import _structured
from .._errors import drop_parameter, map_transport_error
from .._images import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, url_not_supported
from .._registry import Capabilities, ProviderSpec, register_provider
from ..exceptions import (
    ConfigError,
    EmbeddingsNotSupported,
    InvalidRequestError,
    LLMGateError,
    ProviderAPIError,
    StreamingNotSupported,
    ToolsNotSupported,
    VisionNotSupported,
)
from ..types import (
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    StreamChunk,
)

if TYPE_CHECKING:
    import asyncio  # loaded only by async code paths: a sync program never imports it

__all__ = [
    "Capabilities",
    "Provider",
    "ProviderSettings",
    "ProviderSpec",
    "register_provider",
]


@dataclass(frozen=True)
class ProviderSettings:
    """How a provider instance is configured: key, base URL and vendor options.

    A gate caches one provider instance per distinct settings value, so SDK clients are
    built once. ``api_key`` is excluded from the repr.
    """

    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    options: tuple[tuple[str, Any], ...] = ()

    def option(self, name: str, default: Any = None) -> Any:
        for key, value in self.options:
            if key == name:
                return value
        return default

    @classmethod
    def build(
        cls, api_key: str | None, base_url: str | None, options: Mapping[str, Any] | None
    ) -> ProviderSettings:
        items = tuple(sorted((options or {}).items()))
        return cls(api_key=api_key, base_url=base_url, options=items)


async def close_async_client(client: Any) -> None:
    """Close an SDK async client whichever way it offers (aclose, async close, __aexit__)."""
    with contextlib.suppress(Exception):
        for name in ("aclose", "close"):
            method = getattr(client, name, None)
            if callable(method):
                result = method()
                if inspect.isawaitable(result):
                    await result
                return
        exit_ = getattr(client, "__aexit__", None)
        if callable(exit_):
            await exit_(None, None, None)


def _close_at_loop_shutdown(provider: Provider, client: Any) -> AsyncGenerator[None, None]:
    """Close an async SDK client when the event loop that owns it shuts down.

    A cached async client keeps its loop alive through its open connections, so nothing
    collects it. ``asyncio.run()`` closes the async generators still open on a loop before
    closing the loop: the generator returned here is parked at its ``yield`` on the running
    loop (the first step registers it there), and its ``finally`` closes the client.
    """

    async def closer() -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await provider.close_async_client(client)

    parked = closer()
    with contextlib.suppress(StopIteration):
        parked.asend(None).send(None)
    return parked


class Provider:
    """Base of every provider. Subclasses override the calls they support."""

    capabilities: ClassVar[Capabilities] = Capabilities()
    embedding_batch_size: ClassVar[int | None] = None  # inputs per request; None: no limit
    strict_params: bool = False  # set by the gate: refuse, rather than drop, what cannot be sent

    def __init__(self, spec: ProviderSpec, settings: ProviderSettings) -> None:
        self.spec = spec
        self.settings = settings
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._loop_closers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AsyncGenerator[None, None]
        ] = weakref.WeakKeyDictionary()

    @override
    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.name} base_url={self.base_url!r}>"

    # configuration -----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def base_url(self) -> str | None:
        """The base URL: per-call/gate setting, then the spec's env variable, then its default."""
        return self.settings.base_url or self.spec.env_base_url() or self.spec.default_base_url

    def api_key(self, *, required: bool | None = None) -> str | None:
        """The key from settings or the environment; a missing required key is a ConfigError."""
        key = self.settings.api_key or self.spec.env_api_key()
        needed = self.spec.key_required if required is None else required
        if not key and needed:
            variables = " or ".join(self.spec.env_keys) or "an API key variable"
            raise ConfigError(
                f"no API key for provider {self.spec.name!r}: set {variables}, "
                f"or pass api_key=... to the call or to LLMGate(...)"
            )
        return key

    def capabilities_for(self, model: str) -> Capabilities:
        cache: dict[str, Capabilities] | None = self.__dict__.get("_capabilities")
        if cache is None:
            cache = self.__dict__["_capabilities"] = {}
        caps = cache.get(model)
        if caps is None:
            caps = cache[model] = self.spec.capabilities_for(model)
        return caps

    def image_download_limits(
        self, default_max_bytes: int = DEFAULT_MAX_BYTES, timeout: float | None = None
    ) -> tuple[int, float]:
        """``(max bytes, timeout)`` for the opt-in image download of bytes-only vendors.

        Options: ``image_download_max_bytes`` (``image_max_bytes`` is accepted too) and
        ``image_download_timeout``; otherwise the call's timeout, then 10 s.
        """
        max_bytes = self.settings.option(
            "image_download_max_bytes", self.settings.option("image_max_bytes", default_max_bytes)
        )
        seconds = self.settings.option("image_download_timeout") or timeout or DEFAULT_TIMEOUT
        return int(max_bytes), float(seconds)

    def embedding_batch_size_for(self, model: str) -> int | None:
        """How many texts one embedding request may carry; the gate splits larger inputs."""
        return self.embedding_batch_size

    # clients -----------------------------------------------------------------------
    def create_client(self) -> Any:
        raise NotImplementedError

    def create_async_client(self) -> Any:
        raise NotImplementedError

    @property
    def client(self) -> Any:
        """The sync SDK client, built once (thread-safe)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self.create_client()
        return self._client

    @property
    def async_client(self) -> Any:
        """The async SDK client of the running event loop (one per loop, never shared)."""
        import asyncio

        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            with self._client_lock:
                client = self._async_clients.get(loop)
                if client is None:
                    client = self.create_async_client()
                    self._async_clients[loop] = client
                    self._loop_closers[loop] = _close_at_loop_shutdown(self, client)
        return client

    def close(self) -> None:
        """Close the sync client; async clients are only forgotten (see :meth:`aclose`)."""
        client, self._client = self._client, None
        closer = getattr(client, "close", None)
        if callable(closer):
            with contextlib.suppress(Exception):
                closer()
        self._async_clients.clear()

    async def aclose(self) -> None:
        """Close the running loop's async client (awaiting it), then the sync one."""
        import asyncio

        loop = asyncio.get_running_loop()
        client = self._async_clients.pop(loop, None)
        closer = self._loop_closers.pop(loop, None)
        if closer is not None:
            await closer.aclose()
        elif client is not None:
            await self.close_async_client(client)
        self.close()

    async def close_async_client(self, client: Any) -> None:
        """Release one async SDK client; override when the SDK has no close method."""
        await close_async_client(client)

    # checks before any request -----------------------------------------------------
    def check_request(self, request: CompletionRequest, model: str) -> None:
        """Reject what this model cannot do, before anything is sent."""
        caps = self.capabilities_for(model)
        if request.stream and not caps.streaming:
            raise StreamingNotSupported(
                f"{self.name}/{model} cannot stream; call without stream=True",
                provider=self.name,
                model=model,
            )
        if request.tools and not caps.tools:
            raise ToolsNotSupported(
                f"{self.name}/{model} does not support tools", provider=self.name, model=model
            )
        for message in request.messages:
            for image in message.images:
                if not caps.vision:
                    raise VisionNotSupported(
                        f"{self.name}/{model} does not accept images; send text only or "
                        f"choose a vision model",
                        provider=self.name,
                        model=model,
                    )
                url = image.image_url.url if image.image_url is not None else None
                if url is not None and not url.startswith(("http://", "https://")):
                    raise InvalidRequestError(
                        f"unsupported image URL {url[:60]!r}: use http(s) or ImagePart.from_bytes"
                    )
                downloads = bool(self.settings.option("allow_image_download", False))
                if url is not None and not caps.image_urls and not downloads:
                    raise url_not_supported(self.name, model)

    def wire_request(self, request: CompletionRequest, model: str) -> CompletionRequest:
        """The request as this model can take it, built after :meth:`check_request`.

        A model with no native structured output gets the schema as an instruction instead
        (the gate still parses and validates the answer against ``response_format``); a
        model that cannot take ``parallel_tool_calls`` has it dropped with a warning, or
        refused under ``strict_params``.
        """
        if request.response_format is None and request.parallel_tool_calls is None:
            return request
        caps = self.capabilities_for(model)
        update: dict[str, Any] = {}
        if request.parallel_tool_calls is not None and not caps.parallel_tools:
            drop_parameter(
                f"{self.name}/{model}",
                "parallel_tool_calls",
                "the model has no parallel tool calls setting",
                strict=self.strict_params,
            )
            update["parallel_tool_calls"] = None
        if request.response_format is not None and not caps.structured_output:
            update["response_format"] = None
            update["messages"] = _with_instruction(
                request.messages, _structured.schema_instruction(request.response_format)
            )
        return request.model_copy(update=update) if update else request

    # calls -------------------------------------------------------------------------
    def complete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        raise NotImplementedError

    async def acomplete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        raise NotImplementedError

    def stream(self, request: CompletionRequest, model: str) -> Iterator[StreamChunk]:
        raise StreamingNotSupported(f"{self.name} cannot stream", provider=self.name, model=model)

    def astream(self, request: CompletionRequest, model: str) -> AsyncIterator[StreamChunk]:
        raise StreamingNotSupported(f"{self.name} cannot stream", provider=self.name, model=model)

    def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        raise EmbeddingsNotSupported(
            f"{self.name} has no embeddings API", provider=self.name, model=model
        )

    async def aembed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        raise EmbeddingsNotSupported(
            f"{self.name} has no embeddings API", provider=self.name, model=model
        )

    # errors ------------------------------------------------------------------------
    def map_error(self, exc: BaseException, model: str) -> LLMGateError:
        """This SDK's exception as an llmgate error; the base handles transport errors."""
        if isinstance(exc, LLMGateError):
            return exc
        mapped = map_transport_error(exc, provider=self.name, model=model)
        if mapped is not None:
            return mapped
        return ProviderAPIError(f"{type(exc).__name__}: {exc}", provider=self.name, model=model)


def _with_instruction(messages: list[Message], instruction: str) -> list[Message]:
    """The messages with ``instruction`` added to the leading system message (or as one)."""
    if messages and messages[0].role == "system" and isinstance(messages[0].content, str):
        first = messages[0].model_copy(
            update={"content": f"{messages[0].content}\n\n{instruction}"}
        )
        return [first, *messages[1:]]
    return [Message(role="system", content=instruction), *messages]
