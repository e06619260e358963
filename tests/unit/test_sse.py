"""The byte-level SSE parser reads a body as the vendor SDKs' decoders do, however it is cut."""

from __future__ import annotations

import pytest
from anthropic._streaming import SSEDecoder

from llmgate._sse import SSEParser

BODIES = [
    b'event: message_start\ndata: {"a": 1}\n\nevent: ping\ndata: {}\n\n'
    b": keep-alive\nevent: x\ndata: l1\ndata: l2\n\n",
    b"event: a\r\ndata: 1\r\n\r\nevent: b\r\ndata:2\r\n\r\n",
    b"event: a\rdata: 1\r\revent: b\rdata: 2\r\r",
    b"event: a\ndata: 1\n\nevent: tail\ndata: 2\n",
    b"event: only\n\ndata: no event name\n\nid: 7\nretry: 10\ndata: x\n\n",
    b"data: x\n\n\n\nevent:y\ndata:z\n\n",
    # one whole event a piece (the parser's fast path)
    b'event: content_block_delta\ndata: {"text": "w"}\n\n',
    b"event: \ndata: x\n\nevent:\n\ndata: y\n\n",
    b"event:  two spaces\ndata:  two spaces\n\n",
    b"data: no name\n\n",
    b"event: two data lines\ndata: a\ndata: b\n\n",
]


def _ours(pieces: list[bytes]) -> list[tuple[str | None, str]]:
    parser = SSEParser()
    events = [event for piece in pieces for event in parser.feed(piece)] + parser.close()
    return [(None if name is None else name.decode(), data.decode()) for name, data in events]


def _sdk(pieces: list[bytes]) -> list[tuple[str | None, str]]:
    return [(sse.event, sse.data) for sse in SSEDecoder().iter_bytes(iter(pieces))]


@pytest.mark.parametrize("body", BODIES)
def test_every_cut_reads_as_the_sdk_reads_it(body: bytes) -> None:
    assert _ours([body]) == _sdk([body])
    for cut in range(1, len(body)):
        pieces = [body[:cut], body[cut:]]
        assert _ours(pieces) == _sdk(pieces), pieces
    one_byte_each = [body[i : i + 1] for i in range(len(body))]
    assert _ours(one_byte_each) == _sdk(one_byte_each)


def test_events_come_as_name_and_data_bytes() -> None:
    parser = SSEParser()
    assert parser.feed(b'event: content_block_delta\ndata: {"x"') == []
    assert parser.feed(b": 1}\n\n") == [(b"content_block_delta", b'{"x": 1}')]
