"""A lean reader of AWS event-stream frames, for ConverseStream's hot path.

botocore decodes every frame through its generic header parser and then walks the model
shape of each event; for a text delta that is most of a streamed chunk's cost. Frames are
split and checked here (the same length limits and CRCs as botocore, raising botocore's
own errors); the caller reads text deltas straight from their JSON and hands every other
frame to botocore's event parser, so those events are exactly the dicts botocore yields.
"""

from __future__ import annotations

import struct
from binascii import crc32
from collections.abc import Iterable, Iterator
from typing import Any

from botocore.eventstream import (
    ChecksumMismatch,
    EventStreamHeaderParser,
    InvalidHeadersLength,
    InvalidPayloadLength,
)

_PRELUDE = struct.Struct(">III")
_PRELUDE_LENGTH = 12
_MAX_HEADERS_LENGTH = 128 * 1024
_MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024
_STRING = 7
_HEADER_BLOCKS_KEPT = 64

Frame = tuple[dict[str, Any], bytes]


def _headers(data: bytes, start: int, end: int) -> dict[str, Any]:
    """The headers of one frame; plain string headers decoded here, anything else (other
    value types, duplicates, truncation) by botocore's parser, which raises as botocore does."""
    headers: dict[str, Any] = {}
    position = start
    try:
        while position < end:
            name_end = position + 1 + data[position]
            if data[name_end] != _STRING:
                break
            value_start = name_end + 3
            value_end = value_start + ((data[name_end + 1] << 8) | data[name_end + 2])
            name = data[position + 1 : name_end].decode()
            if name in headers or value_end > end:
                break
            headers[name] = data[value_start:value_end].decode()
            position = value_end
        else:
            return headers
    except (IndexError, UnicodeDecodeError):
        pass
    parsed: dict[str, Any] = EventStreamHeaderParser().parse(data[start:end])
    return parsed


def frames(chunks: Iterable[bytes]) -> Iterator[Frame]:
    """``(headers, payload)`` of each complete frame in a byte stream; a partial frame at
    the end is dropped, as botocore drops it. Frames of one kind carry the same header
    bytes, so each distinct header block is decoded once (the dicts are shared: read only).
    """
    decoded: dict[bytes, dict[str, Any]] = {}
    buffer = b""
    for data in chunks:
        buffer = buffer + data if buffer else data
        size = len(buffer)
        offset = 0
        while size - offset >= _PRELUDE_LENGTH:
            total, headers_length, prelude_crc = _PRELUDE.unpack_from(buffer, offset)
            computed = crc32(buffer[offset : offset + 8]) & 0xFFFFFFFF
            if computed != prelude_crc:
                raise ChecksumMismatch(prelude_crc, computed)
            if headers_length > _MAX_HEADERS_LENGTH:
                raise InvalidHeadersLength(headers_length)
            payload_length = total - headers_length - 16
            if payload_length < 0 or payload_length > _MAX_PAYLOAD_LENGTH:
                raise InvalidPayloadLength(payload_length)
            end = offset + total
            if size < end:
                break
            payload_end = end - 4
            expected = int.from_bytes(buffer[payload_end:end], "big")
            computed = crc32(buffer[offset + 8 : payload_end], prelude_crc) & 0xFFFFFFFF
            if computed != expected:
                raise ChecksumMismatch(expected, computed)
            headers_end = offset + _PRELUDE_LENGTH + headers_length
            raw_headers = buffer[offset + _PRELUDE_LENGTH : headers_end]
            headers = decoded.get(raw_headers)
            if headers is None:
                headers = _headers(raw_headers, 0, headers_length)
                if len(decoded) < _HEADER_BLOCKS_KEPT:
                    decoded[raw_headers] = headers
            yield headers, buffer[headers_end:payload_end]
            offset = end
        buffer = buffer[offset:] if offset else buffer
