"""Server-sent events from the byte pieces of an HTTP body, without decoding every line.

The vendor SDKs' SSE decoders turn each line into text and each event into an object;
a provider that reads the wire itself needs only the event name and the data bytes (which
go straight to a JSON parser), and that is all :class:`SSEParser` yields.

Lines end in ``\\n``, ``\\r\\n`` or ``\\r``; a blank line dispatches the event gathered
since the last one when it has a name or data (an empty name reads as None); comment
lines and the ``id``/``retry`` fields are skipped. An event the body ends without a blank
line is dropped, as the vendor SDKs (anthropic, openai) do.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

SSEEvent = tuple[bytes | None, bytes]  # (event name, data lines joined by "\n")


_HEAD = re.compile(rb"(?:event: ?([^\r\n]*)\n)?data: ?")


def one_event(piece: bytes) -> tuple[bytes | None, bytes] | None:
    """``(event name or None, data)`` when ``piece`` is exactly one whole event of a name
    line (optional) and one data line ending in a blank line, as most stream pieces are;
    else None. Names and data are taken as the line-by-line reading would take them."""
    head = _HEAD.match(piece)
    if head is None or not piece.endswith(b"\n\n"):
        return None
    start = head.end()
    if piece.count(b"\n", start) != 2 or b"\r" in piece:
        return None
    return head[1], piece[start:-2]


class SSEParser:
    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event: bytes | None = None

    def feed(self, piece: bytes) -> list[SSEEvent]:
        """The events completed by ``piece``."""
        if not self._buffer and not self._data and self._event is None:
            # The usual piece: exactly one whole event (a name and one data line).
            whole = one_event(piece)
            if whole is not None:
                return [(whole[0] or None, whole[1])]
        if self._buffer:
            piece = self._buffer + piece
        if b"\r" in piece:
            # A piece may end between the \r and \n of one line end: keep the \r back.
            held = b"\r" if piece.endswith(b"\r") else b""
            if held:
                piece = piece[:-1]
            lines = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            self._buffer = lines.pop() + held
        else:
            lines = piece.split(b"\n")
            self._buffer = lines.pop()
        events: list[SSEEvent] = []
        data = self._data
        event = self._event
        for line in lines:
            if not line:
                if data or event:
                    events.append((event or None, data[0] if len(data) == 1 else b"\n".join(data)))
                    data = []
                    event = None
            elif line[0] == 100 and line.startswith(b"data:"):  # 100: "d"
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line[0] == 101 and line.startswith(b"event:"):  # 101: "e"
                event = line[7:] if line[6:7] == b" " else line[6:]
        self._data = data
        self._event = event
        return events

    def close(self) -> list[SSEEvent]:
        """The event a body ending in a bare ``\\r`` line end completes."""
        return self.feed(b"\n") if self._buffer.endswith(b"\r") else []


def iter_body(response: Any) -> Iterator[bytes]:
    """The body of an httpx response as it arrives: its raw pieces when it has no content
    encoding (one decoding layer less per piece), else the decoded ones."""
    if response.headers.get("content-encoding"):
        return response.iter_bytes()  # type: ignore[no-any-return]
    return response.iter_raw()  # type: ignore[no-any-return]


def aiter_body(response: Any) -> AsyncIterator[bytes]:
    if response.headers.get("content-encoding"):
        return response.aiter_bytes()  # type: ignore[no-any-return]
    return response.aiter_raw()  # type: ignore[no-any-return]
