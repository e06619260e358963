"""A fake of Ollama's native API: ``/api/chat`` and ``/api/embed``.

It speaks what the ``ollama`` SDK parses: one chat JSON object, or NDJSON (one object per
line, ``application/x-ndjson``) ending with a ``done: true`` line that carries
``done_reason``, ``prompt_eval_count`` and ``eval_count``; ``thinking`` for reasoning; tool
calls whole, with dict arguments and no ids. Errors are ``{"error": "..."}`` bodies (and the
same object as an NDJSON line inside a stream). Ollama sends no request id header.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from tests.conformance.target import Target, WireView
from tests.fakes.server import (
    EmbeddingReply,
    FakeVendor,
    Fault,
    RecordedRequest,
    Reply,
    Response,
    delay_header,
    fake_vector,
    json_response,
    stream_with_delays,
    with_reply_faults,
)

CREATED_AT = "2026-01-05T10:00:00.000000Z"
NDJSON = "application/x-ndjson"
JSON = "application/json; charset=utf-8"

# Ollama reports "stop" for tool-call turns too; it has no content-filter reason.
_DONE_REASONS = {"stop": "stop", "length": "length", "tool_calls": "stop", "content_filter": "stop"}

# What an error line inside a stream says (it carries no status code).
_STREAM_ERRORS = {
    429: "too many requests: rate limit exceeded, please retry later",
    503: "server busy, please try again.  maximum pending requests exceeded",
}
_STREAM_ERROR_DEFAULT = "an error was encountered while running the model: unexpected EOF"


def line(payload: Any) -> bytes:
    return json.dumps(payload).encode() + b"\n"


def timings(reply: Reply) -> dict[str, Any]:
    return {
        "total_duration": 1_250_000_000,
        "load_duration": 50_000_000,
        "prompt_eval_count": reply.prompt_tokens,
        "prompt_eval_duration": 200_000_000,
        "eval_count": reply.completion_tokens,
        "eval_duration": 1_000_000_000,
    }


def tool_calls(reply: Reply, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"function": {"index": start + i, "name": call.name, "arguments": call.arguments}}
        for i, call in enumerate(reply.tool_calls)
    ]


class OllamaFake(FakeVendor):
    name = "ollama"

    def handle(self, request: RecordedRequest) -> Response:
        if request.method != "POST":
            return Response(status=405, headers={"content-type": "text/plain"}, body=b"405")
        script = self.next_script(request)
        if isinstance(script, Fault):
            return self.fault_response(script)
        body = request.json or {}
        if request.path == "/api/chat":
            if not isinstance(script, Reply):
                script = Reply(text="Hello from the fake.")
            if body.get("stream", True):
                return self.stream_response(script, body)
            return self.chat_response(script, body)
        if request.path == "/api/embed":
            if not isinstance(script, EmbeddingReply):
                script = EmbeddingReply()
            return self.embedding_response(script, body)
        return Response(
            status=404, headers={"content-type": "text/plain"}, body=b"404 page not found"
        )

    # errors ------------------------------------------------------------------------
    def fault_response(self, fault: Fault) -> Response:
        body: Any = fault.body if fault.body is not None else {"error": fault.message}
        raw = (
            body
            if isinstance(body, bytes)
            else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        return Response(
            status=fault.status,
            headers={"content-type": JSON, **fault.headers, **delay_header(fault.delay)},
            body=raw,
            close_connection=fault.close_connection,
        )

    # chat --------------------------------------------------------------------------
    def chat_response(self, reply: Reply, body: dict[str, Any]) -> Response:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.reasoning is not None:
            message["thinking"] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = tool_calls(reply)
        payload = {
            "model": reply.model or body.get("model", ""),
            "created_at": CREATED_AT,
            "message": message,
            "done": True,
            "done_reason": _DONE_REASONS[reply.neutral_finish],
            **timings(reply),
        }
        return json_response(payload, headers={**reply.headers, **delay_header(reply.delay)})

    def stream_response(self, reply: Reply, body: dict[str, Any]) -> Response:
        model = reply.model or body.get("model", "")

        def piece(message: dict[str, Any], **extra: Any) -> bytes:
            return line(
                {
                    "model": model,
                    "created_at": CREATED_AT,
                    "message": {"role": "assistant", **message},
                    "done": False,
                    **extra,
                }
            )

        pieces = [
            piece({"content": "", "thinking": word})
            for word in Reply(text=reply.reasoning or "").text_pieces()
        ]
        pieces.extend(piece({"content": text}) for text in reply.text_pieces())
        if reply.tool_calls:
            pieces.append(piece({"content": "", "tool_calls": tool_calls(reply)}))
        pieces.append(
            piece(
                {"content": ""},
                done=True,
                done_reason=_DONE_REASONS[reply.neutral_finish],
                **timings(reply),
            )
        )
        error = _STREAM_ERRORS.get(reply.error_status, _STREAM_ERROR_DEFAULT)
        pieces, drop_after = with_reply_faults(
            pieces,
            reply,
            malformed=b'{"model": "' + model.encode() + b'", "message": {"role": \n',
            error_frame=line({"error": error}),
        )
        return Response(
            status=200,
            headers={"content-type": NDJSON, **reply.headers, **delay_header(reply.delay)},
            stream=stream_with_delays(pieces, reply),
            drop_after=drop_after,
        )

    # embeddings --------------------------------------------------------------------
    def embedding_response(self, reply: EmbeddingReply, body: dict[str, Any]) -> Response:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dimensions = body.get("dimensions") or reply.dimensions
        vectors = reply.vectors or [fake_vector(text, dimensions) for text in texts]
        payload = {
            "model": body.get("model", ""),
            "embeddings": vectors,
            "total_duration": 14_143_917,
            "load_duration": 1_019_500,
            "prompt_eval_count": reply.prompt_tokens,
        }
        return json_response(payload, headers=reply.headers)


# --------------------------------------------------------------------------- wire view


def _messages(req: RecordedRequest) -> list[dict[str, Any]]:
    return list((req.json or {}).get("messages") or [])


def _options(req: RecordedRequest) -> dict[str, Any]:
    return dict((req.json or {}).get("options") or {})


class OllamaWire(WireView):
    extra_kwargs_example: tuple[str, Any, Callable[[RecordedRequest], Any]] = (
        "keep_alive",
        "10m",
        lambda req: (req.json or {}).get("keep_alive"),
    )

    def model(self, req: RecordedRequest) -> str:
        return str(req.json["model"])

    def is_stream(self, req: RecordedRequest) -> bool:
        # Ollama streams unless told otherwise.
        return bool(req.json.get("stream", True))

    def system(self, req: RecordedRequest) -> str | None:
        texts = [m.get("content", "") for m in _messages(req) if m.get("role") == "system"]
        return "\n".join(texts) if texts else None

    def turns(self, req: RecordedRequest) -> list[tuple[str, str]]:
        return [
            (m["role"], m.get("content", "")) for m in _messages(req) if m.get("role") != "system"
        ]

    def max_tokens(self, req: RecordedRequest) -> int | None:
        return _options(req).get("num_predict")

    def temperature(self, req: RecordedRequest) -> float | None:
        return _options(req).get("temperature")

    def tool_names(self, req: RecordedRequest) -> list[str]:
        return [t["function"]["name"] for t in req.json.get("tools") or []]

    def tool_schema(self, req: RecordedRequest, name: str) -> dict[str, Any]:
        for tool in req.json.get("tools") or []:
            if tool["function"]["name"] == name:
                return dict(tool["function"]["parameters"])
        raise KeyError(name)

    def tool_choice(self, req: RecordedRequest) -> Any:
        # Ollama has no tool_choice: offered tools mean "auto", none offered means "none".
        return "auto" if req.json.get("tools") else "none"

    def assistant_tool_calls(self, req: RecordedRequest) -> list[tuple[str, str, dict[str, Any]]]:
        return [
            ("", call["function"]["name"], dict(call["function"].get("arguments") or {}))
            for message in _messages(req)
            if message.get("role") == "assistant"
            for call in message.get("tool_calls") or []
        ]

    def tool_results(self, req: RecordedRequest) -> list[tuple[str, str]]:
        return [
            (m.get("tool_name", ""), m.get("content", ""))
            for m in _messages(req)
            if m.get("role") == "tool"
        ]

    def images(self, req: RecordedRequest) -> list[tuple[str, str]]:
        return [("bytes", str(image)) for m in _messages(req) for image in m.get("images") or []]

    def response_schema(self, req: RecordedRequest) -> dict[str, Any] | None:
        schema = req.json.get("format")
        return dict(schema) if isinstance(schema, dict) else None

    def embedding_inputs(self, req: RecordedRequest) -> list[str]:
        inputs = req.json.get("input")
        return [inputs] if isinstance(inputs, str) else list(inputs or [])

    # Ollama-only views -------------------------------------------------------------
    def options(self, req: RecordedRequest) -> dict[str, Any]:
        return _options(req)

    def think(self, req: RecordedRequest) -> Any:
        return req.json.get("think")

    def image_bytes(self, req: RecordedRequest) -> list[bytes]:
        return [base64.b64decode(data) for _, data in self.images(req)]


def _gate_kwargs(base_url: str) -> dict[str, Any]:
    return {"provider_options": {"ollama": {"api_key": "fake-ollama-key", "base_url": base_url}}}


TARGETS = [
    Target(
        id="ollama",
        make_vendor=OllamaFake,
        model="ollama/llama3.2:3b",
        gate_kwargs=_gate_kwargs,
        wire=OllamaWire(),
        embedding_model="ollama/nomic-embed-text",
        image_urls=False,
        request_ids=False,
        api_key_env=("OLLAMA_API_KEY",),
        not_applicable={
            "tool_choice_required": "Ollama has no tool_choice: it cannot force a tool call "
            "(llmgate warns, or raises under strict_params)",
            "tool_choice_named": "Ollama has no tool_choice: it cannot force a particular tool "
            "(llmgate warns, or raises under strict_params)",
            "cached_usage": "Ollama reports no cached-prompt token count",
        },
    )
]
