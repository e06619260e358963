"""Server-sent events from the byte pieces of an HTTP body, without decoding every line.

The vendor SDKs' SSE decoders turn each line into text and each event into an object;
a provider that reads the wire itself needs only the event name and the data bytes (which
go straight to a JSON parser), and that is all :class:`SSEParser` yields.

Lines end in ``\\n``, ``\\r\\n`` or ``\\r``; a blank line dispatches the event gathered
since the last one (when it has a name or data); comment lines and the ``id``/``retry``
fields are skipped. An event the body ends without a blank line is dropped, as the
vendor SDKs (anthropic, openai) do.
"""

from __future__ import annotations

SSEEvent = tuple[bytes | None, bytes]  # (event name, data lines joined by "\n")


class SSEParser:
    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event: bytes | None = None

    def feed(self, piece: bytes) -> list[SSEEvent]:
        """The events completed by ``piece``."""
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
        for line in lines:
            if not line:
                if self._data or self._event is not None:
                    events.append((self._event, b"\n".join(self._data)))
                    self._data = []
                    self._event = None
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                value = line[6:]
                self._event = value[1:] if value.startswith(b" ") else value
        return events

    def close(self) -> list[SSEEvent]:
        """The event a body ending in a bare ``\\r`` line end completes."""
        return self.feed(b"\n") if self._buffer.endswith(b"\r") else []
