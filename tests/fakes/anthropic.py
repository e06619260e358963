"""A fake Anthropic Messages API: ``POST /v1/messages`` as JSON or as SSE.

The stream uses the real event names (``message_start``, ``content_block_start``,
``content_block_delta`` with ``text_delta`` / ``input_json_delta`` / ``thinking_delta`` /
``signature_delta``, ``content_block_stop``, ``message_delta``, ``message_stop``, ``ping``,
``error``), each with an ``event:`` line: the SDK's SSE parser drops events without one.

Stream pieces: each piece ends with one delta event (a text, reasoning, signature or tool
argument fragment), carrying the structural events before it; the closing events are the
last piece. So ``drop_after=N`` / ``error_after=N`` cut the stream after N fragments.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from tests.conformance.target import Target, ToolChoice, WireView
from tests.fakes.server import (
    EmbeddingReply,
    FakeVendor,
    Fault,
    RecordedRequest,
    Reply,
    Response,
    delay_header,
    json_response,
    sse_event,
    stream_with_delays,
    with_reply_faults,
)

FAKE_API_KEY = "sk-ant-fake-0000"

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_request_ids = itertools.count(1)


def error_type(status: int) -> str:
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(status: int, message: str, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "error",
        "error": {"type": error_type(status), "message": message},
    }
    if request_id:
        body["request_id"] = request_id
    return body


def _tool_id(index: int, given: str) -> str:
    return given or f"toolu_fake_{index:02d}"


def _usage(reply: Reply) -> dict[str, Any]:
    cached = reply.cached_tokens or 0
    usage: dict[str, Any] = {
        "input_tokens": reply.prompt_tokens - cached,
        "output_tokens": reply.completion_tokens,
    }
    if reply.cached_tokens is not None:
        usage["cache_read_input_tokens"] = reply.cached_tokens
        usage["cache_creation_input_tokens"] = 0
    if reply.reasoning_tokens is not None:
        usage["output_tokens_details"] = {"thinking_tokens": reply.reasoning_tokens}
    return usage


def _signature(reply: Reply) -> str:
    return reply.reasoning_signature or "sig-fake-EqQBCkYIBRgCKkA="


def message_json(reply: Reply, model: str) -> dict[str, Any]:
    """The non-streaming Message body for a reply."""
    content: list[dict[str, Any]] = []
    if reply.reasoning is not None:
        content.append(
            {"type": "thinking", "thinking": reply.reasoning, "signature": _signature(reply)}
        )
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for i, call in enumerate(reply.tool_calls):
        content.append(
            {
                "type": "tool_use",
                "id": _tool_id(i, call.id),
                "name": call.name,
                "input": call.arguments,
            }
        )
    return {
        "id": reply.response_id,
        "type": "message",
        "role": "assistant",
        "model": reply.model or model,
        "content": content,
        "stop_reason": STOP_REASONS.get(reply.neutral_finish, "end_turn"),
        "stop_sequence": None,
        "usage": _usage(reply),
    }


def _split(text: str, parts: int) -> list[str]:
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def stream_pieces(reply: Reply, model: str) -> list[bytes]:
    """The SSE byte pieces of a streamed reply (see the module docstring for the grouping)."""
    start_usage = {k: v for k, v in _usage(reply).items() if k != "output_tokens_details"}
    start_usage["output_tokens"] = 1
    pending: list[bytes] = [
        sse_event(
            {
                "type": "message_start",
                "message": {
                    "id": reply.response_id,
                    "type": "message",
                    "role": "assistant",
                    "model": reply.model or model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
            "message_start",
        ),
        sse_event({"type": "ping"}, "ping"),
    ]
    pieces: list[bytes] = []

    def delta(index: int, payload: dict[str, Any]) -> None:
        pending.append(
            sse_event(
                {"type": "content_block_delta", "index": index, "delta": payload},
                "content_block_delta",
            )
        )
        pieces.append(b"".join(pending))
        pending.clear()

    def start(index: int, block: dict[str, Any]) -> None:
        pending.append(
            sse_event(
                {"type": "content_block_start", "index": index, "content_block": block},
                "content_block_start",
            )
        )

    def stop(index: int) -> None:
        pending.append(
            sse_event({"type": "content_block_stop", "index": index}, "content_block_stop")
        )

    index = 0
    if reply.reasoning is not None:
        start(index, {"type": "thinking", "thinking": "", "signature": ""})
        for word in Reply(text=reply.reasoning).text_pieces():
            delta(index, {"type": "thinking_delta", "thinking": word})
        delta(index, {"type": "signature_delta", "signature": _signature(reply)})
        stop(index)
        index += 1
    if reply.text:
        start(index, {"type": "text", "text": ""})
        for piece in reply.text_pieces():
            delta(index, {"type": "text_delta", "text": piece})
        stop(index)
        index += 1
    for i, call in enumerate(reply.tool_calls):
        start(
            index,
            {"type": "tool_use", "id": _tool_id(i, call.id), "name": call.name, "input": {}},
        )
        arguments = json.dumps(call.arguments)
        for part in _split(arguments, 3):
            delta(index, {"type": "input_json_delta", "partial_json": part})
        stop(index)
        index += 1
    final_usage: dict[str, Any] = {"output_tokens": reply.completion_tokens}
    if reply.reasoning_tokens is not None:
        final_usage["output_tokens_details"] = {"thinking_tokens": reply.reasoning_tokens}
    pending.append(
        sse_event(
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": STOP_REASONS.get(reply.neutral_finish, "end_turn"),
                    "stop_sequence": None,
                },
                "usage": final_usage,
            },
            "message_delta",
        )
    )
    pending.append(sse_event({"type": "message_stop"}, "message_stop"))
    pieces.append(b"".join(pending))
    return pieces


MALFORMED_FRAME = (
    b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0,\n\n'
)


def error_frame(status: int) -> bytes:
    return sse_event(error_body(status, f"injected in-stream {error_type(status)}"), "error")


class AnthropicFake(FakeVendor):
    """Speaks ``/v1/messages`` the way api.anthropic.com does (auth: ``Authorization: Bearer``)."""

    name = "anthropic"

    def handle(self, request: RecordedRequest) -> Response:
        request_id = f"req_fake_{next(_request_ids):06d}"
        if request.method != "POST" or request.path != "/v1/messages":
            return json_response(
                error_body(404, f"no route {request.method} {request.path}", request_id),
                status=404,
                headers={"request-id": request_id},
            )
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return json_response(
                error_body(401, "missing Authorization: Bearer header", request_id),
                status=401,
                headers={"request-id": request_id},
            )
        script = self.next_script(request)
        if isinstance(script, Fault):
            return self.fault_response(script)
        if isinstance(script, EmbeddingReply):
            return json_response(
                error_body(404, "Anthropic has no embeddings endpoint", request_id),
                status=404,
                headers={"request-id": request_id},
            )
        body = request.json or {}
        model = str(body.get("model", ""))
        headers = {"request-id": request_id, **delay_header(script.delay), **script.headers}
        if not body.get("stream"):
            return json_response(message_json(script, model), headers=headers)
        status = script.error_status
        pieces, drop_after = with_reply_faults(
            stream_pieces(script, model),
            script,
            malformed=MALFORMED_FRAME,
            error_frame=error_frame(status),
        )
        return Response(
            status=200,
            headers={"content-type": "text/event-stream", "cache-control": "no-cache", **headers},
            stream=stream_with_delays(pieces, script),
            drop_after=drop_after,
        )

    def fault_response(self, fault: Fault) -> Response:
        body = (
            fault.body
            if fault.body is not None
            else error_body(fault.status, fault.message, fault.request_id)
        )
        raw = (
            body
            if isinstance(body, bytes)
            else body.encode()
            if isinstance(body, str)
            else json.dumps(body).encode()
        )
        headers = {"content-type": "application/json", **delay_header(fault.delay)}
        if fault.request_id:
            headers["request-id"] = fault.request_id
        headers.update(fault.headers)
        return Response(
            status=fault.status,
            headers=headers,
            body=raw,
            close_connection=fault.close_connection,
        )


# --------------------------------------------------------------------------- wire view


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(block.get("text", ""))
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        )
    return ""


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, list):
        return [block for block in content if isinstance(block, dict)]
    return []


def _service_tier(req: RecordedRequest) -> Any:
    body = req.json
    return body.get("service_tier") if isinstance(body, dict) else None


class AnthropicWire(WireView):
    # An extra keyword handed to messages.create unchanged, and how to read it back.
    extra_kwargs_example = ("service_tier", "standard_only", _service_tier)

    def _body(self, req: RecordedRequest) -> dict[str, Any]:
        body = req.json
        assert isinstance(body, dict)
        return body

    def model(self, req: RecordedRequest) -> str:
        return str(self._body(req)["model"])

    def is_stream(self, req: RecordedRequest) -> bool:
        return self._body(req).get("stream") is True

    def system(self, req: RecordedRequest) -> str | None:
        system = self._body(req).get("system")
        if system is None:
            return None
        if isinstance(system, str):
            return system
        return "\n".join(str(block.get("text", "")) for block in system)

    def turns(self, req: RecordedRequest) -> list[tuple[str, str]]:
        turns: list[tuple[str, str]] = []
        for message in self._body(req)["messages"]:
            role = message["role"]
            results = [b for b in _blocks(message) if b.get("type") == "tool_result"]
            for result in results:
                turns.append(("tool", _text_of(result.get("content"))))
            if results and not any(b.get("type") == "text" for b in _blocks(message)):
                continue
            turns.append((role, _text_of(message.get("content"))))
        return turns

    def max_tokens(self, req: RecordedRequest) -> int | None:
        value = self._body(req).get("max_tokens")
        return int(value) if value is not None else None

    def temperature(self, req: RecordedRequest) -> float | None:
        value = self._body(req).get("temperature")
        return float(value) if value is not None else None

    def tool_names(self, req: RecordedRequest) -> list[str]:
        return [str(tool["name"]) for tool in self._body(req).get("tools") or []]

    def tool_schema(self, req: RecordedRequest, name: str) -> dict[str, Any]:
        for tool in self._body(req).get("tools") or []:
            if tool["name"] == name:
                schema: dict[str, Any] = tool["input_schema"]
                return schema
        raise KeyError(name)

    def tool_choice(self, req: RecordedRequest) -> ToolChoice:
        choice = self._body(req).get("tool_choice")
        if choice is None:
            return None
        kind = choice.get("type")
        if kind == "any":
            return "required"
        if kind == "tool":
            return ("named", choice["name"])
        return kind

    def assistant_tool_calls(self, req: RecordedRequest) -> list[tuple[str, str, dict[str, Any]]]:
        calls: list[tuple[str, str, dict[str, Any]]] = []
        for message in self._body(req)["messages"]:
            if message["role"] != "assistant":
                continue
            for block in _blocks(message):
                if block.get("type") == "tool_use":
                    calls.append((block["id"], block["name"], block.get("input") or {}))
        return calls

    def tool_results(self, req: RecordedRequest) -> list[tuple[str, str]]:
        results: list[tuple[str, str]] = []
        for message in self._body(req)["messages"]:
            for block in _blocks(message):
                if block.get("type") == "tool_result":
                    results.append((block["tool_use_id"], _text_of(block.get("content"))))
        return results

    def images(self, req: RecordedRequest) -> list[tuple[str, str]]:
        images: list[tuple[str, str]] = []
        for message in self._body(req)["messages"]:
            for block in _blocks(message):
                if block.get("type") != "image":
                    continue
                source = block["source"]
                if source.get("type") == "url":
                    images.append(("url", source["url"]))
                elif source.get("type") == "base64":
                    images.append(("bytes", source["data"]))
        return images

    def response_schema(self, req: RecordedRequest) -> dict[str, Any] | None:
        config = self._body(req).get("output_config") or {}
        fmt = config.get("format")
        if not fmt:
            return None
        schema: dict[str, Any] = fmt["schema"]
        return schema

    def embedding_inputs(self, req: RecordedRequest) -> list[str]:
        raise NotImplementedError("Anthropic has no embeddings API")


def _gate_kwargs(base_url: str) -> dict[str, Any]:
    return {"provider_options": {"anthropic": {"api_key": FAKE_API_KEY, "base_url": base_url}}}


TARGETS = [
    Target(
        id="anthropic",
        make_vendor=AnthropicFake,
        model="anthropic/claude-sonnet-4-6",
        gate_kwargs=_gate_kwargs,
        wire=AnthropicWire(),
        embedding_model=None,
        image_urls=True,
        reasoning=True,
        api_key_env=("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
        not_applicable={
            "temperature": "anthropic 2.x Messages has no temperature/top_p/top_k parameter: "
            "the provider drops them with a warning (InvalidRequestError under strict_params); "
            "see tests/unit/test_anthropic_request.py",
        },
    )
]
