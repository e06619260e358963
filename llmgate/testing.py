"""Offline doubles for demos and tests: the ``mock/`` provider and its scripts.

``mock/<anything>`` is a provider like any other (registered in the registry, run through
the same gate, middleware and retries) that never touches the network. By default it
echoes the last user message. Script it to answer with text, tool calls, streams that
break, or vendor errors::

    from llmgate.testing import MockReply, scripted

    with scripted(MockReply(text="Hi!"), MockReply(error_status=429, retry_after=0)) as script:
        llmgate.completion("mock/any", [{"role": "user", "content": "Hello"}])
    assert script.requests[0].messages[0].text == "Hello"
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import itertools
import json
import math
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from typing_extensions import override

from ._errors import make_provider_error
from ._registry import Capabilities
from ._structured import json_schema
from .exceptions import ProviderConnectionError
from .providers.base import Provider
from .types import (
    Choice,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    StreamChunk,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolDefinition,
)

__all__ = [
    "MockProvider",
    "MockReply",
    "MockScript",
    "RealNetworkCallError",
    "block_network",
    "deterministic_vector",
    "sample_for_schema",
    "scripted",
]


@dataclass
class MockReply:
    """One scripted answer of the mock provider.

    ``chunks`` gives the exact stream pieces (default: the text split into words).
    ``error_status`` makes the call fail with the error a vendor would return for that
    status (with ``retry_after``); ``fail_after`` makes a stream break after that many
    chunks, as a dropped connection does.
    """

    text: str = ""
    tool_calls: Sequence[ToolCall | dict[str, Any]] = ()
    reasoning: str | None = None
    chunks: Sequence[str] | None = None
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    error_status: int | None = None
    error_message: str = "scripted failure"
    retry_after: float | None = None
    fail_after: int | None = None
    delay: float = 0.0

    def calls(self) -> list[ToolCall]:
        return [
            c if isinstance(c, ToolCall) else ToolCall.model_validate(c) for c in self.tool_calls
        ]


@dataclass
class MockScript:
    """Replies served in order (then the echo), and every request the mock received."""

    replies: deque[MockReply] = field(default_factory=deque)
    requests: list[CompletionRequest | EmbeddingRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def push(self, *replies: MockReply | str) -> MockScript:
        with self.lock:
            for reply in replies:
                self.replies.append(MockReply(text=reply) if isinstance(reply, str) else reply)
        return self

    def record(self, request: CompletionRequest | EmbeddingRequest) -> None:
        with self.lock:
            self.requests.append(request)

    def next_reply(self, request: CompletionRequest | EmbeddingRequest) -> MockReply | None:
        with self.lock:
            self.requests.append(request)
            return self.replies.popleft() if self.replies else None


_scripts: list[MockScript] = []
_scripts_lock = threading.Lock()


@contextlib.contextmanager
def scripted(*replies: MockReply | str) -> Iterator[MockScript]:
    """Serve these replies from the ``mock/`` provider inside the ``with`` block."""
    script = MockScript().push(*replies)
    with _scripts_lock:
        _scripts.append(script)
    try:
        yield script
    finally:
        with _scripts_lock:
            _scripts.remove(script)


def _active_script() -> MockScript | None:
    with _scripts_lock:
        return _scripts[-1] if _scripts else None


_ids = itertools.count(1)


def _estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


class MockProvider(Provider):
    """The offline provider behind ``mock/``: echo by default, scripted on demand."""

    capabilities = Capabilities(embeddings=True, prefill=True, reasoning=True)
    embedding_batch_size = 256

    @override
    def create_client(self) -> Any:
        return None

    @override
    def create_async_client(self) -> Any:
        return None

    # the answer ------------------------------------------------------------------
    def _reply(self, request: CompletionRequest, model: str) -> MockReply:
        script = self.settings.option("script") or _active_script()
        reply = script.next_reply(request) if script is not None else None
        if reply is None:
            reply = self._default_reply(request)
        if reply.error_status is not None:
            raise make_provider_error(
                reply.error_message,
                status=reply.error_status,
                provider=self.name,
                model=model,
                retry_after=reply.retry_after,
                request_id=f"mock-req-{next(_ids)}",
            )
        return reply

    def _default_reply(self, request: CompletionRequest) -> MockReply:
        """Unscripted: a forced tool call, a schema-valid object, or an echo."""
        forced = _forced_tool(request)
        if forced is not None:
            arguments = sample_for_schema(forced.function.parameters)
            return MockReply(
                tool_calls=[ToolCall(id="call_mock_1", name=forced.name, arguments=arguments)]
            )
        if request.response_format is not None:
            return MockReply(
                text=json.dumps(sample_for_schema(json_schema(request.response_format)))
            )
        return MockReply(text=self._echo(request))

    @staticmethod
    def _echo(request: CompletionRequest) -> str:
        for message in reversed(request.messages):
            if message.role == "user":
                return message.text
        return ""

    def _usage(self, request: CompletionRequest, reply: MockReply) -> TokenUsage:
        if reply.usage is not None:
            return reply.usage
        prompt = sum(_estimate_tokens(m.text) for m in request.messages)
        completion = _estimate_tokens(reply.text) + sum(
            _estimate_tokens(c.arguments_json) for c in reply.calls()
        )
        return TokenUsage(prompt_tokens=prompt, completion_tokens=completion)

    def _response(
        self, request: CompletionRequest, model: str, reply: MockReply
    ) -> CompletionResponse:
        calls = reply.calls() or None
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        message = Message(
            role="assistant",
            content=reply.text if (reply.text or not calls) else None,
            tool_calls=calls,
            reasoning=reply.reasoning,
        )
        return CompletionResponse(
            id=f"mock-{next(_ids)}",
            model=model,
            provider=self.name,
            choices=[Choice(index=0, message=message, finish_reason=finish)],
            usage=self._usage(request, reply),
        )

    def _chunks(
        self, request: CompletionRequest, model: str, reply: MockReply
    ) -> list[StreamChunk]:
        response = self._response(request, model, reply)
        pieces = list(reply.chunks) if reply.chunks is not None else _words(reply.text)
        base: dict[str, Any] = {"id": response.id, "model": model, "provider": self.name}
        chunks: list[StreamChunk] = []
        if reply.reasoning:
            chunks.append(StreamChunk(**base, reasoning_delta=reply.reasoning))
        chunks.extend(StreamChunk(**base, delta=piece) for piece in pieces)
        for index, call in enumerate(response.tool_calls or []):
            chunks.append(
                StreamChunk(
                    **base,
                    tool_call_deltas=[
                        ToolCallDelta(
                            index=index,
                            id=call.id,
                            name=call.name,
                            arguments_delta=call.arguments_json,
                        )
                    ],
                )
            )
        chunks.append(
            StreamChunk(**base, finish_reason=response.finish_reason, usage=response.usage)
        )
        return chunks

    # calls -------------------------------------------------------------------------
    @override
    def complete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        reply = self._reply(request, model)
        if reply.delay:
            time.sleep(reply.delay)
        return self._response(request, model, reply)

    @override
    async def acomplete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        import asyncio

        reply = self._reply(request, model)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return self._response(request, model, reply)

    @override
    def stream(self, request: CompletionRequest, model: str) -> Iterator[StreamChunk]:
        reply = self._reply(request, model)
        chunks = self._chunks(request, model, reply)
        return self._iterate(chunks, reply, model)

    def _iterate(
        self, chunks: list[StreamChunk], reply: MockReply, model: str
    ) -> Iterator[StreamChunk]:
        for sent, chunk in enumerate(chunks):
            if reply.fail_after is not None and sent >= reply.fail_after:
                raise ProviderConnectionError(
                    "the mock stream was cut", provider=self.name, model=model
                )
            if reply.delay:
                time.sleep(reply.delay)
            yield chunk

    @override
    def astream(self, request: CompletionRequest, model: str) -> AsyncIterator[StreamChunk]:
        reply = self._reply(request, model)
        chunks = self._chunks(request, model, reply)
        return self._aiterate(chunks, reply, model)

    async def _aiterate(
        self, chunks: list[StreamChunk], reply: MockReply, model: str
    ) -> AsyncIterator[StreamChunk]:
        import asyncio

        for sent, chunk in enumerate(chunks):
            if reply.fail_after is not None and sent >= reply.fail_after:
                raise ProviderConnectionError(
                    "the mock stream was cut", provider=self.name, model=model
                )
            if reply.delay:
                await asyncio.sleep(reply.delay)
            yield chunk

    @override
    def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        script = self.settings.option("script") or _active_script()
        if script is not None:
            script.record(request)
        dims = request.dimensions or 8
        return EmbeddingResponse(
            embeddings=[deterministic_vector(text, dims) for text in request.input],
            model=model,
            provider=self.name,
            usage=TokenUsage(prompt_tokens=sum(_estimate_tokens(t) for t in request.input)),
        )

    @override
    async def aembed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        return self.embed(request, model)


def _forced_tool(request: CompletionRequest) -> ToolDefinition | None:
    if not request.tools:
        return None
    choice = request.tool_choice
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name") or choice.get("name")
    if choice in (None, "auto", "none"):
        return None
    if choice == "required":
        return request.tools[0]
    return next((t for t in request.tools if t.name == choice), None)


def sample_for_schema(schema: dict[str, Any]) -> Any:
    """A value that validates against a JSON Schema: what the mock answers when unscripted."""
    definitions = {**schema.get("definitions", {}), **schema.get("$defs", {})}

    def sample(node: Any, depth: int) -> Any:
        if not isinstance(node, dict) or depth > 12:
            return None
        if "$ref" in node:
            return sample(definitions.get(str(node["$ref"]).rsplit("/", 1)[-1], {}), depth + 1)
        if "const" in node:
            return node["const"]
        if node.get("enum"):
            return node["enum"][0]
        if "default" in node:
            return node["default"]
        for key in ("anyOf", "oneOf", "allOf"):
            options = [
                o
                for o in node.get(key, [])
                if not (isinstance(o, dict) and o.get("type") == "null")
            ]
            if options:
                return sample(options[0], depth + 1)
        kind = node.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), None)
        if kind == "object" or "properties" in node:
            properties = node.get("properties", {})
            return {name: sample(prop, depth + 1) for name, prop in properties.items()}
        if kind == "array":
            return [sample(node.get("items", {}), depth + 1)] * max(1, int(node.get("minItems", 1)))
        if kind == "string":
            return "x" * max(int(node.get("minLength", 0)), 7) if "minLength" in node else "example"
        if kind == "integer":
            return int(node.get("minimum", 1))
        if kind == "number":
            return float(node.get("minimum", 1.5))
        if kind == "boolean":
            return True
        return None

    return sample(schema, 0)


# --------------------------------------------------------------------------- network guard


class RealNetworkCallError(RuntimeError):
    """A test tried to reach a host other than this machine."""


_guard_lock = threading.Lock()
_guard_depth = 0
_original_connect: Any = None
_original_connect_ex: Any = None


def _is_local(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # a unix socket path
    host = str(address[0])
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(address: Any) -> RealNetworkCallError:
    return RealNetworkCallError(
        f"blocked a connection to {address!r}: llmgate.testing.block_network() allows only "
        "127.0.0.1/localhost. Point the SDK at a local fake, or use the mock/ provider."
    )


@contextlib.contextmanager
def block_network() -> Iterator[None]:
    """Make any connection to a host other than this machine fail loudly.

    Use it around tests (or as the ``llmgate_block_network`` pytest fixture) so that a
    forgotten base URL or a real model name cannot reach a vendor's endpoint.
    """
    global _guard_depth, _original_connect, _original_connect_ex
    with _guard_lock:
        if _guard_depth == 0:
            _original_connect = socket.socket.connect
            _original_connect_ex = socket.socket.connect_ex
            connect, connect_ex = _original_connect, _original_connect_ex

            def guarded_connect(self: socket.socket, address: Any) -> Any:
                if not _is_local(address):
                    raise _refuse(address)
                return connect(self, address)

            def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
                if not _is_local(address):
                    raise _refuse(address)
                return connect_ex(self, address)

            socket.socket.connect = guarded_connect  # type: ignore[method-assign,assignment]
            socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign,assignment]
        _guard_depth += 1
    try:
        yield
    finally:
        with _guard_lock:
            _guard_depth -= 1
            if _guard_depth == 0:
                socket.socket.connect = _original_connect  # type: ignore[method-assign]
                socket.socket.connect_ex = _original_connect_ex  # type: ignore[method-assign]


def _words(text: str) -> list[str]:
    if not text:
        return []
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def deterministic_vector(text: str, dimensions: int = 8) -> list[float]:
    """A unit vector derived from the text's hash: the same text gives the same vector."""
    digest = hashlib.sha256(text.encode()).digest()
    while len(digest) < dimensions:
        digest += hashlib.sha256(digest).digest()
    raw = [(b - 127.5) / 127.5 for b in digest[:dimensions]]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]
