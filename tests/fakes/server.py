"""A scriptable HTTP/1.1 server on 127.0.0.1 that each vendor fake builds on.

The server runs an asyncio loop in a daemon thread, so it serves thousands of concurrent
connections (keep-alive, chunked streaming) without a thread per request. A vendor fake
subclasses :class:`FakeVendor` and turns neutral scripts (:class:`Reply`, :class:`Fault`)
into that vendor's wire format: JSON bodies, SSE events, NDJSON lines or binary frames.

Every request is recorded (method, path, query, headers, parsed JSON body) so tests
assert on what really went over the wire.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import struct
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------- scripts


@dataclass
class FakeToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = ""


@dataclass
class Reply:
    """What the fake model answers, in vendor-neutral terms.

    ``chunks`` splits ``text`` into that many stream pieces (default: one per word).
    ``finish_reason`` is neutral (stop | length | tool_calls | content_filter); each fake
    renders it in its vendor's vocabulary.
    """

    text: str = ""
    tool_calls: list[FakeToolCall] = field(default_factory=list)
    reasoning: str | None = None
    reasoning_signature: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 11
    completion_tokens: int = 7
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    chunks: int | None = None
    model: str | None = None
    response_id: str = "resp-1"
    headers: dict[str, str] = field(default_factory=dict)
    # faults inside a reply (streaming):
    drop_after: int | None = None  # close the connection after N stream pieces
    malformed_after: int | None = None  # send a frame the SDK cannot parse after N pieces
    error_after: int | None = None  # send the vendor's in-stream error frame after N pieces
    error_status: int = 500  # which error the in-stream frame reports (429, 500, 529, ...)
    delay: float = 0.0  # seconds before the response starts
    chunk_delay: float = 0.0  # seconds between stream pieces

    @property
    def neutral_finish(self) -> str:
        if self.finish_reason:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    def text_pieces(self) -> list[str]:
        if not self.text:
            return []
        if self.chunks is None:
            words = self.text.split(" ")
            return [w if i == 0 else " " + w for i, w in enumerate(words)]
        n = max(1, min(self.chunks, len(self.text)))
        size = -(-len(self.text) // n)
        return [self.text[i : i + size] for i in range(0, len(self.text), size)]


@dataclass
class EmbeddingReply:
    """Vectors for an embeddings call; by default one deterministic vector per input."""

    vectors: list[list[float]] | None = None
    dimensions: int = 4
    prompt_tokens: int = 5
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """An HTTP-level failure: an error status with headers, a delay, or a dead connection."""

    status: int = 500
    message: str = "injected failure"
    headers: dict[str, str] = field(default_factory=dict)
    request_id: str | None = "req-fault-1"
    delay: float = 0.0
    close_connection: bool = False  # drop the connection without any response
    body: Any = None  # raw body override (dict → JSON, str/bytes as is)


Script = Reply | EmbeddingReply | Fault


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


# --------------------------------------------------------------------------- responses


@dataclass
class Response:
    """A whole response (``body``) or a streamed one (``stream`` of byte pieces)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: Iterable[bytes | float] | None = None  # a float means: sleep that many seconds
    drop_after: int | None = None  # stream pieces to send before cutting the connection
    close_connection: bool = False


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        status=status,
        headers={"content-type": "application/json", **(headers or {})},
        body=json.dumps(payload).encode(),
    )


def sse_event(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {text}\n\n".encode()


# --------------------------------------------------------------------------- the vendor base


class FakeVendor:
    """Base of every vendor fake: a script queue, a request log and a router.

    Subclasses implement :meth:`handle`, turning a request and the next script into a
    :class:`Response`. With nothing scripted, :meth:`default_script` answers (an echo).
    """

    name = "fake"

    def __init__(self) -> None:
        self._scripts: deque[Script] = deque()
        self._default: Script | Callable[[RecordedRequest], Script] | None = None
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self.server: FakeServer | None = None

    # scripting -----------------------------------------------------------------
    def push(self, *scripts: Script) -> FakeVendor:
        with self._lock:
            self._scripts.extend(scripts)
        return self

    def set_default(self, script: Script | Callable[[RecordedRequest], Script] | None) -> None:
        self._default = script

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self.requests.clear()
        self._default = None

    def next_script(self, request: RecordedRequest) -> Script:
        with self._lock:
            if self._scripts:
                return self._scripts.popleft()
        default = self._default
        if callable(default):
            return default(request)
        if default is not None:
            return default
        return self.default_script(request)

    def default_script(self, request: RecordedRequest) -> Script:
        return Reply(text="Hello from the fake.")

    @property
    def last(self) -> RecordedRequest:
        return self.requests[-1]

    @property
    def base_url(self) -> str:
        assert self.server is not None, "the fake is not running"
        return self.server.url

    # serving -------------------------------------------------------------------
    def respond(self, request: RecordedRequest) -> Response:
        with self._lock:
            self.requests.append(request)
        return self.handle(request)

    def handle(self, request: RecordedRequest) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    def fault_response(self, fault: Fault) -> Response:
        """The vendor's error body for a fault; subclasses override the JSON shape."""
        body = fault.body if fault.body is not None else {"error": {"message": fault.message}}
        headers = dict(fault.headers)
        if fault.request_id:
            headers.setdefault("x-request-id", fault.request_id)
        raw = (
            body
            if isinstance(body, bytes)
            else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        return Response(
            status=fault.status,
            headers={"content-type": "application/json", **headers},
            body=raw,
            close_connection=fault.close_connection,
        )


# --------------------------------------------------------------------------- the server


class FakeServer:
    """Runs one :class:`FakeVendor` on ``127.0.0.1:<free port>`` in a background thread."""

    def __init__(self, vendor: FakeVendor) -> None:
        self.vendor = vendor
        vendor.server = self
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"fake-{vendor.name}", daemon=True)
        self._started = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        self.port = 0
        self.open_connections = 0
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread.start()
        self._started.wait(10)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.close()
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def boot() -> None:
            self._server = await asyncio.start_server(
                self._serve_connection, "127.0.0.1", 0, backlog=4096, limit=2**24
            )
            self.port = self._server.sockets[0].getsockname()[1]
            self._started.set()

        self._loop.run_until_complete(boot())
        self._loop.run_forever()
        with contextlib.suppress(Exception):
            self._loop.close()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.open_connections += 1
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                try:
                    response = (
                        await asyncio.get_running_loop().run_in_executor(
                            None, self.vendor.respond, request
                        )
                        if _needs_thread(self.vendor)
                        else self.vendor.respond(request)
                    )
                except Exception as exc:  # a bug in a fake: answer 599 so the test sees it
                    response = json_response({"fake_error": repr(exc)}, status=599)
                keep_alive = await self._write_response(writer, response, reader)
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self.open_connections -= 1
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _write_response(
        self, writer: asyncio.StreamWriter, response: Response, reader: asyncio.StreamReader
    ) -> bool:
        pre = response.headers.pop("x-fake-delay", None)
        if pre:
            # A client that timed out hangs up: stop waiting, so its connection closes now.
            until = time.monotonic() + float(pre)
            while time.monotonic() < until:
                if reader.at_eof():
                    writer.transport.abort()
                    return False
                await asyncio.sleep(min(0.02, max(0.0, until - time.monotonic())))
        if response.close_connection:
            writer.transport.abort()
            return False
        reason = _REASONS.get(response.status, "Status")
        head = [f"HTTP/1.1 {response.status} {reason}"]
        headers = {k.lower(): v for k, v in response.headers.items()}
        if response.stream is None:
            headers["content-length"] = str(len(response.body))
        else:
            headers["transfer-encoding"] = "chunked"
        headers.setdefault("date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()))
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if response.stream is None:
            writer.write(response.body)
            await writer.drain()
            return True
        sent = 0
        for piece in response.stream:
            if isinstance(piece, float):
                await asyncio.sleep(piece)
                continue
            if response.drop_after is not None and sent >= response.drop_after:
                await writer.drain()
                writer.transport.abort()
                return False
            if piece:
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
                sent += 1
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


def _needs_thread(vendor: FakeVendor) -> bool:
    return getattr(vendor, "blocking_handlers", False)


async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    parsed = urllib.parse.urlsplit(target)
    return RecordedRequest(
        method=method,
        path=urllib.parse.unquote(parsed.path),
        query=urllib.parse.parse_qs(parsed.query),
        headers=headers,
        body=body,
    )


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}


def stream_with_delays(pieces: Sequence[bytes], reply: Reply) -> list[bytes | float]:
    """Pieces interleaved with the reply's ``chunk_delay`` pauses."""
    if not reply.chunk_delay:
        return list(pieces)
    out: list[bytes | float] = []
    for piece in pieces:
        out.append(piece)
        out.append(float(reply.chunk_delay))
    return out


def with_reply_faults(
    pieces: list[bytes], reply: Reply, *, malformed: bytes, error_frame: bytes
) -> tuple[list[bytes], int | None]:
    """Apply a reply's in-stream faults to rendered stream pieces.

    Returns the pieces to send and, for ``drop_after``, how many to send before cutting.
    """
    if reply.malformed_after is not None:
        pieces = [*pieces[: reply.malformed_after], malformed]
    elif reply.error_after is not None:
        pieces = [*pieces[: reply.error_after], error_frame]
    return pieces, reply.drop_after


def fake_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic vector per text, exactly representable in float32."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[i % len(digest)] - 128) / 128 for i in range(dimensions)]


def encode_base64(vector: list[float]) -> str:
    """A vector as little-endian float32 in base64 (the vendors' base64 embedding format)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def delay_header(seconds: float) -> dict[str, str]:
    """Headers that make the server wait before answering (used for timeouts)."""
    return {"x-fake-delay": str(seconds)} if seconds else {}
