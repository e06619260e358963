"""google-genai's HTTP layer without its response models: the wire JSON, for llmgate to read.

google-genai turns every answer (and every stream event) into its pydantic models, which a
facade then throws away; its only public way out, ``should_return_http_response``, covers
non-streaming ``generateContent`` alone. So this module, and only this module, uses the
SDK's request machinery below the ``models`` resource: ``client._api_client`` (a
``BaseApiClient``) still builds the URL, adds the key and headers, applies the per-call
``HttpOptions`` (timeout), sends through the client's httpx2 pool and raises
``errors.APIError`` for HTTP errors and in-stream error events, exactly as it does for
``models.generate_content``. The SDK's own response converters build ``raw`` on demand.

:func:`api_client` returns None when any piece used here is missing (an SDK release that
moved them, a Vertex client): the provider then takes the public path. The test module
``tests/unit/test_gemini_fastpath.py`` checks these pieces, so an SDK change fails loudly
there instead of silently slowing llmgate down.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pydantic_core
from google.genai import _common, _extra_utils
from google.genai import errors as genai_errors
from google.genai import models as genai_models
from google.genai import types as gt

from ..._sse import aiter_body, iter_body

_CLIENT_METHODS = ("_build_request", "_request", "_async_request")
_CONVERTERS = ("_GenerateContentResponse_from_mldev", "_EmbedContentResponse_from_mldev")
_HELPERS = (
    (_common, "encode_unserializable_types"),
    (_extra_utils, "should_continue_generation"),
    (_extra_utils, "merge_continuation_responses"),
    (_extra_utils, "StreamContinuation"),
    (gt.GenerateContentResponse, "_from_response"),
)
_SDK_READY = all(callable(getattr(genai_models, name, None)) for name in _CONVERTERS) and all(
    callable(getattr(module, name, None)) for module, name in _HELPERS
)


_USABLE: dict[type, bool] = {}


def api_client(client: Any) -> Any | None:
    """The ``BaseApiClient`` behind a ``Client`` or ``AsyncClient``, when this module can use
    it: a Gemini Developer API client of the expected shape. None means "take the public path"."""
    api = getattr(client, "_api_client", None)
    if api is None or getattr(api, "vertexai", True):
        return None
    usable = _USABLE.get(type(api))
    if usable is None:
        usable = _USABLE[type(api)] = _SDK_READY and all(
            callable(getattr(api, name, None)) for name in _CLIENT_METHODS
        )
    return api if usable else None


def model_path(model: str) -> str:
    """The resource name of a Gemini API model, as the SDK's ``t_model`` writes it."""
    if not model:
        raise ValueError("model is required.")
    if ".." in model or "?" in model or "&" in model:
        raise ValueError("invalid model parameter.")
    if model.startswith(("models/", "tunedModels/")):
        return model
    return f"models/{model}"


# --------------------------------------------------------------------------- requests


def post(
    api: Any, path: str, body: dict[str, Any], options: gt.HttpOptions | None
) -> tuple[dict[str, str], str]:
    """``(headers, body text)`` of a JSON POST; HTTP errors raise ``errors.APIError``."""
    request = api._build_request("post", path, body, options)
    response = api._request(request, options, stream=False)
    stream = response.response_stream
    return response.headers, stream[0] if stream else ""


async def apost(
    api: Any, path: str, body: dict[str, Any], options: gt.HttpOptions | None
) -> tuple[dict[str, str], str]:
    request = api._build_request("post", path, body, options)
    response = await api._async_request(http_request=request, http_options=options, stream=False)
    stream = response.response_stream
    return response.headers, stream[0] if stream else ""


def _is_error(event: Any) -> bool:
    """An in-stream error: the SDK checks that the event's JSON text starts ``{"error":``."""
    return isinstance(event, dict) and next(iter(event), None) == "error"


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise genai_errors.UnknownApiResponseError(
            f"Failed to parse response as JSON. Raw response: {text}"
        ) from exc


def load_event(text: bytes | str) -> Any:
    """An event's JSON from :class:`EventReader`: the data of a whole ``data:`` piece as
    bytes (parsed in one step), or the text the SDK would parse."""
    if isinstance(text, str):
        return _parse(text)
    try:
        return pydantic_core.from_json(text)
    except ValueError:
        return _parse(text.decode("utf-8", errors="replace"))


def _one_event(piece: bytes) -> bool:
    """Whether a piece of the body is exactly one ``data: <json>`` line and a blank line."""
    return (
        piece[:6] == b"data: "
        and piece[-2:] == b"\n\n"
        and piece.count(b"\n") == 2
        and b"\r" not in piece
    )


class EventReader:
    """The events of a ``streamGenerateContent?alt=sse`` body, read as google-genai reads
    them (``HttpResponse.segments``): lines end at CR, LF or CRLF; ``data: `` lines are
    joined up to a blank line; other lines are taken as JSON that may span lines, complete
    when its braces balance. Events come out as text for :func:`load_event` (which raises
    the SDK's ``UnknownApiResponseError`` for text that is not JSON); a piece that is one
    whole ``data:`` event while nothing is held back (most pieces) is passed on as bytes.
    """

    __slots__ = ("_cr", "_data", "_depth", "_escaped", "_in_string", "_pending", "_raw", "idle")

    def __init__(self) -> None:
        self._pending = b""
        self._cr = False
        self._data: list[str] = []
        self._raw: list[str] = []
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self.idle = True

    def feed(self, piece: bytes) -> list[bytes | str]:
        if self.idle and _one_event(piece):
            return [piece[6:-2]]
        return self._lines(self._split(piece))

    def close(self) -> list[bytes | str]:
        events = self._lines(self._flush())
        if self._raw:
            events.append(self._raw_text())
        if self._data:
            events.append("\n".join(self._data))
            self._data = []
        self.idle = True
        return events

    def _split(self, piece: bytes) -> list[str]:
        if self._cr:
            piece = b"\r" + piece
            self._cr = False
        if piece.endswith(b"\r"):
            self._cr = True
            piece = piece[:-1]
        if not piece:
            return []
        lines = piece.splitlines()
        tail = None if piece.endswith((b"\r", b"\n")) else lines.pop()
        if lines:
            lines[0] = self._pending + lines[0]
            self._pending = b""
        if tail is not None:
            self._pending += tail
        return [line.decode("utf-8", errors="replace") for line in lines]

    def _flush(self) -> list[str]:
        if not self._pending and not self._cr:
            return []
        line = self._pending
        self._pending = b""
        self._cr = False
        return [line.decode("utf-8", errors="replace")]

    def _lines(self, lines: list[str]) -> list[bytes | str]:
        events: list[bytes | str] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append("\n".join(self._data))
                    self._data = []
            elif line.startswith("data: "):
                self._data.append(line[6:])
            elif self._add_raw(line):
                events.append(self._raw_text())
        self.idle = not (self._pending or self._cr or self._data or self._raw)
        return events

    def _add_raw(self, line: str) -> bool:
        """Adds a line of JSON sent without ``data:``; True once its braces balance."""
        for char in line:
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char == "{":
                self._depth += 1
            elif char == "}":
                self._depth -= 1
        self._raw.append(line)
        return self._depth == 0

    def _raw_text(self) -> str:
        text = "".join(self._raw)
        self._raw = []
        self._depth = 0
        self._in_string = False
        self._escaped = False
        return text


class WireStream:
    """One streamed ``streamGenerateContent`` response, its events as parsed JSON; an error
    event raises the ``errors.APIError`` the SDK raises for it."""

    def __init__(self, api: Any, path: str, body: dict[str, Any], options: Any) -> None:
        request = api._build_request("post", path, body, options)
        self.response = api._request(request, options, stream=True)

    def events(self) -> Iterator[Any]:
        response = self.response
        reader = EventReader()
        for piece in iter_body(response.response_stream):
            for text in reader.feed(piece):
                event = load_event(text)
                if _is_error(event):
                    genai_errors.APIError.raise_error(
                        event.get("error", {}).get("code"), event, response
                    )
                yield event
        for text in reader.close():
            event = load_event(text)
            if _is_error(event):
                genai_errors.APIError.raise_error(
                    event.get("error", {}).get("code"), event, response
                )
            yield event

    def close(self) -> None:
        self.response.response_stream.close()


class AsyncWireStream:
    def __init__(self, response: Any) -> None:
        self.response = response

    @classmethod
    async def open(cls, api: Any, path: str, body: dict[str, Any], options: Any) -> AsyncWireStream:
        request = api._build_request("post", path, body, options)
        response = await api._async_request(http_request=request, http_options=options, stream=True)
        return cls(response)

    async def events(self) -> AsyncIterator[Any]:
        response = self.response
        reader = EventReader()
        async for piece in aiter_body(response.response_stream):
            for text in reader.feed(piece):
                event = load_event(text)
                if _is_error(event):
                    await genai_errors.APIError.raise_error_async(
                        event.get("error", {}).get("code"), event, response
                    )
                yield event
        for text in reader.close():
            event = load_event(text)
            if _is_error(event):
                await genai_errors.APIError.raise_error_async(
                    event.get("error", {}).get("code"), event, response
                )
            yield event

    async def aclose(self) -> None:
        await self.response.response_stream.aclose()


# --------------------------------------------------------------------------- SDK objects


def generate_response(
    wire: Any, headers: Mapping[str, str] | None, schema: Mapping[str, Any] | None
) -> gt.GenerateContentResponse:
    """The ``GenerateContentResponse`` the SDK builds from this JSON body.

    ``schema`` is the config the SDK would have read (``{"response_json_schema": ...}``),
    or None for a call without config. Reads (and trims) ``wire`` in place.
    """
    converted = genai_models._GenerateContentResponse_from_mldev(wire, None, None)
    kwargs: dict[str, Any] = {}
    if schema is not None:
        kwargs = {
            "config": {
                "response_schema": None,
                "response_json_schema": schema.get("response_json_schema"),
                "include_all_fields": None,
            }
        }
    result = gt.GenerateContentResponse._from_response(response=converted, kwargs=kwargs)
    if headers is not None:
        result.sdk_http_response = gt.HttpResponse(headers=dict(headers))
    return result


def with_call_history(result: gt.GenerateContentResponse) -> gt.GenerateContentResponse:
    """A call made without config goes through the SDK's function-calling loop, which
    leaves an empty history on the response."""
    result.automatic_function_calling_history = []
    return result


def embed_response(wire: Any, headers: Mapping[str, str] | None) -> gt.EmbedContentResponse:
    converted = genai_models._EmbedContentResponse_from_mldev(wire, None, None)
    result = gt.EmbedContentResponse._from_response(response=converted, kwargs={})
    if headers is not None:
        result.sdk_http_response = gt.HttpResponse(headers=dict(headers))
    return result


class Continued(Exception):
    """A stream event carries a continuation token: from here google-genai's continuation
    logic (``StreamContinuation``) runs the stream, on its objects."""

    def __init__(self, result: gt.GenerateContentResponse) -> None:
        super().__init__("continuation token")
        self.result = result


def stream_event(event: Any, schema: Mapping[str, Any] | None) -> gt.GenerateContentResponse:
    """The SDK's object of a stream event; raises :class:`Continued` if it carries a token."""
    result = generate_response(event, None, schema)
    if result.candidates and result.candidates[0].continuation_token:
        raise Continued(result)
    return result


class StreamHops:
    """google-genai's automatic continuation of a stream: which chunk to pass on, and the
    token of the next request (the SDK's ``StreamContinuation``, driven the way
    ``models.generate_content_stream`` drives it)."""

    def __init__(self, earlier: list[Any], schema: Mapping[str, Any] | None) -> None:
        """``earlier``: the events of the stream so far that the SDK's state depends on."""
        self._state = _extra_utils.StreamContinuation(None)
        self._state.start_hop()
        for event in earlier:
            self._state.observe(generate_response(event, None, schema))

    def observe(self, result: gt.GenerateContentResponse) -> gt.GenerateContentResponse:
        return self._state.observe(result)

    def next_token(self, error: Exception | None) -> bytes | None:
        """The token to resume from, or None when the stream is over; raises the hop's
        error when the SDK would."""
        if not self._state.end_hop(error):
            return None
        config = self._state.start_hop()
        return getattr(config, "continuation_token", None)


def continuation_token(result: gt.GenerateContentResponse) -> bytes | None:
    """The token to resume a response that stopped with ``CONTINUATION``, as the SDK reads it."""
    return _extra_utils.should_continue_generation(result)


def with_continuation_token(body: dict[str, Any], token: bytes) -> dict[str, Any]:
    """The request body of the next continuation hop (which the SDK always sends with a
    config, so with a ``generationConfig``)."""
    resumed = dict(body)
    resumed.update(_common.encode_unserializable_types({"continuationToken": token}))
    resumed.setdefault("generationConfig", {})
    return resumed


def merge_hops(
    hops: list[gt.GenerateContentResponse], schema: Mapping[str, Any] | None
) -> gt.GenerateContentResponse:
    config = None
    if schema is not None:
        config = {"response_json_schema": schema.get("response_json_schema")}
    return _extra_utils.merge_continuation_responses(hops, config=config)  # type: ignore[arg-type]


__all__ = [
    "AsyncWireStream",
    "Continued",
    "EventReader",
    "StreamHops",
    "WireStream",
    "api_client",
    "apost",
    "continuation_token",
    "embed_response",
    "generate_response",
    "load_event",
    "merge_hops",
    "model_path",
    "post",
    "stream_event",
    "with_call_history",
    "with_continuation_token",
]
