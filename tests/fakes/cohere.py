"""A fake of Cohere's v2 API: ``/v2/chat`` (JSON and typed SSE events) and ``/v2/embed``.

It speaks what the ``cohere`` SDK parses: a chat reply whose ``message.content`` holds
``thinking`` and ``text`` items, ``tool_plan`` and ``tool_calls`` (arguments as JSON strings),
float usage counts under ``usage.tokens`` and ``usage.billed_units``; a stream of
``event: <type>`` / ``data: {"type": <type>, ...}`` frames (message-start, content-start,
content-delta, content-end, tool-plan-delta, tool-call-start, tool-call-delta, tool-call-end,
message-end); embeddings by type; and Cohere's error bodies ``{"message": ...}`` with an
``x-request-id`` header.

The first stream piece carries message-start and the first content-start together, so that
a reply's ``error_after``/``drop_after`` count text pieces as they do for the other fakes.
:class:`RawStream` and :class:`RawJSON` send hand-written frames and bodies for shapes the
neutral scripts cannot express.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.conformance.target import Target, WireView
from tests.fakes.server import (
    EmbeddingReply,
    FakeToolCall,
    FakeVendor,
    Fault,
    RecordedRequest,
    Reply,
    Response,
    delay_header,
    encode_base64,
    fake_vector,
    json_response,
    stream_with_delays,
    with_reply_faults,
)

REQUEST_ID_HEADER = "x-request-id"

_FINISH_REASONS = {
    "stop": "COMPLETE",
    "length": "MAX_TOKENS",
    "tool_calls": "TOOL_CALL",
    "error": "ERROR",
    "stop_sequence": "STOP_SEQUENCE",
    "timeout": "TIMEOUT",
}


@dataclass
class RawStream:
    """A 200 event stream of exactly these frames (bytes, sent one piece each)."""

    frames: list[bytes]
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None


@dataclass
class RawJSON:
    """A JSON answer of exactly this payload (a chat reply the neutral Reply cannot express)."""

    payload: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def frame(event: str, data: Any) -> bytes:
    """One SSE frame as Cohere sends it: an ``event:`` line and the JSON ``data:``."""
    text = data if isinstance(data, str) else json.dumps(data)
    return f"event: {event}\ndata: {text}\n\n".encode()


def typed(kind: str, **fields: Any) -> bytes:
    return frame(kind, {"type": kind, **fields})


def tool_call_id(call: FakeToolCall, index: int) -> str:
    return call.id or f"{call.name}_{index:04d}fake"


def tool_plan(reply: Reply) -> str | None:
    if not reply.tool_calls:
        return None
    return "I will call " + ", ".join(call.name for call in reply.tool_calls) + "."


def usage(reply: Reply) -> dict[str, Any]:
    counts = {
        "input_tokens": float(reply.prompt_tokens),
        "output_tokens": float(reply.completion_tokens),
    }
    out: dict[str, Any] = {"billed_units": dict(counts), "tokens": dict(counts)}
    if reply.cached_tokens is not None:
        out["cached_tokens"] = float(reply.cached_tokens)
    return out


def finish_reason(reply: Reply) -> str:
    return _FINISH_REASONS.get(reply.neutral_finish, "COMPLETE")


def error_body(message: str) -> dict[str, Any]:
    return {"message": message}


def stream_error_frame(status: int, message: str) -> bytes:
    """The in-stream failure: an ``error`` event whose data has no ``type`` of its own."""
    return frame("error", {"message": message, "status": status})


def arguments_pieces(arguments: dict[str, Any]) -> list[str]:
    text = json.dumps(arguments)
    middle = max(1, len(text) // 2)
    return [text[:middle], text[middle:]]


class CohereFake(FakeVendor):
    name = "cohere"

    def default_script(self, request: RecordedRequest) -> Any:
        if request.path == "/v2/embed":
            return EmbeddingReply()
        return Reply(text="Hello from the fake.")

    def handle(self, request: RecordedRequest) -> Response:
        if request.method != "POST":
            return json_response(error_body("method not allowed"), status=405)
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return json_response(error_body("no api key supplied"), status=401)
        script: Any = self.next_script(request)
        if isinstance(script, Fault):
            return self.fault_response(script)
        body = request.json or {}
        if isinstance(script, RawJSON):
            return json_response(script.payload, status=script.status, headers=script.headers)
        if isinstance(script, RawStream):
            return Response(
                status=200,
                headers={"content-type": "text/event-stream", **script.headers},
                stream=list(script.frames),
                drop_after=script.drop_after,
            )
        if request.path == "/v2/chat":
            if not isinstance(script, Reply):
                script = Reply(text="Hello from the fake.")
            if body.get("stream"):
                return self.stream_response(script)
            return self.chat_response(script)
        if request.path == "/v2/embed":
            if not isinstance(script, EmbeddingReply):
                script = EmbeddingReply()
            return self.embedding_response(script, body)
        return json_response(error_body(f"no route {request.path}"), status=404)

    # errors ------------------------------------------------------------------------
    def fault_response(self, fault: Fault) -> Response:
        body: Any = fault.body if fault.body is not None else error_body(fault.message)
        raw = (
            body
            if isinstance(body, bytes)
            else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        headers = {"content-type": "application/json", **fault.headers, **delay_header(fault.delay)}
        if fault.request_id:
            headers.setdefault(REQUEST_ID_HEADER, fault.request_id)
        return Response(
            status=fault.status, headers=headers, body=raw, close_connection=fault.close_connection
        )

    # chat --------------------------------------------------------------------------
    def chat_response(self, reply: Reply) -> Response:
        content: list[dict[str, Any]] = []
        if reply.reasoning is not None:
            content.append({"type": "thinking", "thinking": reply.reasoning})
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        message: dict[str, Any] = {"role": "assistant"}
        if content:
            message["content"] = content
        plan = tool_plan(reply)
        if plan is not None:
            message["tool_plan"] = plan
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": tool_call_id(call, i),
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for i, call in enumerate(reply.tool_calls)
            ]
        payload = {
            "id": reply.response_id,
            "finish_reason": finish_reason(reply),
            "message": message,
            "usage": usage(reply),
        }
        headers = {REQUEST_ID_HEADER: f"req-{reply.response_id}", **reply.headers}
        return json_response(payload, headers={**headers, **delay_header(reply.delay)})

    def stream_pieces(self, reply: Reply) -> list[bytes]:
        start = typed(
            "message-start",
            id=reply.response_id,
            delta={
                "message": {
                    "role": "assistant",
                    "content": [],
                    "tool_plan": "",
                    "tool_calls": [],
                    "citations": [],
                }
            },
        )
        pieces: list[bytes] = []
        index = 0
        if reply.reasoning is not None:
            opening = typed(
                "content-start",
                index=index,
                delta={"message": {"content": {"type": "thinking", "thinking": ""}}},
            )
            pieces.append(start + opening)
            start = b""
            for word in Reply(text=reply.reasoning).text_pieces():
                pieces.append(
                    typed(
                        "content-delta",
                        index=index,
                        delta={"message": {"content": {"thinking": word}}},
                    )
                )
            pieces.append(typed("content-end", index=index))
            index += 1
        if reply.text:
            opening = typed(
                "content-start",
                index=index,
                delta={"message": {"content": {"type": "text", "text": ""}}},
            )
            pieces.append(start + opening)
            start = b""
            for piece in reply.text_pieces():
                pieces.append(
                    typed(
                        "content-delta",
                        index=index,
                        delta={"message": {"content": {"text": piece}}},
                        logprobs=None,
                    )
                )
            pieces.append(typed("content-end", index=index))
        if start:
            pieces.append(start)
        plan = tool_plan(reply)
        if plan is not None:
            for word in Reply(text=plan).text_pieces():
                pieces.append(typed("tool-plan-delta", delta={"message": {"tool_plan": word}}))
        for i, call in enumerate(reply.tool_calls):
            pieces.append(
                typed(
                    "tool-call-start",
                    index=i,
                    delta={
                        "message": {
                            "tool_calls": {
                                "id": tool_call_id(call, i),
                                "type": "function",
                                "function": {"name": call.name, "arguments": ""},
                            }
                        }
                    },
                )
            )
            for part in arguments_pieces(call.arguments):
                pieces.append(
                    typed(
                        "tool-call-delta",
                        index=i,
                        delta={"message": {"tool_calls": {"function": {"arguments": part}}}},
                    )
                )
            pieces.append(typed("tool-call-end", index=i))
        pieces.append(
            typed(
                "message-end",
                id=reply.response_id,
                delta={"finish_reason": finish_reason(reply), "usage": usage(reply)},
            )
        )
        return pieces

    def stream_response(self, reply: Reply) -> Response:
        pieces, drop_after = with_reply_faults(
            self.stream_pieces(reply),
            reply,
            malformed=b'event: content-delta\ndata: {"type": "content-delta", "index": 0, "de\n\n',
            error_frame=stream_error_frame(reply.error_status, "injected stream failure"),
        )
        headers = {
            "content-type": "text/event-stream",
            REQUEST_ID_HEADER: f"req-{reply.response_id}",
            **reply.headers,
            **delay_header(reply.delay),
        }
        return Response(
            status=200,
            headers=headers,
            stream=stream_with_delays(pieces, reply),
            drop_after=drop_after,
        )

    # embeddings --------------------------------------------------------------------
    def embedding_response(self, reply: EmbeddingReply, body: dict[str, Any]) -> Response:
        texts = list(body.get("texts") or [])
        dimensions = body.get("output_dimension") or reply.dimensions
        vectors = reply.vectors or [fake_vector(text, dimensions) for text in texts]
        embeddings: dict[str, Any] = {}
        for kind in body.get("embedding_types") or ["float"]:
            if kind == "float":
                embeddings["float"] = vectors
            elif kind == "base64":
                embeddings["base64"] = [encode_base64(v) for v in vectors]
            else:
                embeddings[kind] = [[round(x * 127) for x in v] for v in vectors]
        payload = {
            "id": "embed-1",
            "embeddings": embeddings,
            "texts": texts,
            "meta": {
                "api_version": {"version": "2"},
                "billed_units": {"input_tokens": float(reply.prompt_tokens)},
            },
            "response_type": "embeddings_by_type",
        }
        return json_response(payload, headers={REQUEST_ID_HEADER: "req-embed-1", **reply.headers})


# --------------------------------------------------------------------------- wire view


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text", "")
        for part in content
        if isinstance(part, dict) and part.get("type") == "text"
    )


def _messages(req: RecordedRequest) -> list[dict[str, Any]]:
    return list((req.json or {}).get("messages") or [])


class CohereWire(WireView):
    extra_kwargs_example = ("seed", 7, lambda req: (req.json or {}).get("seed"))

    def model(self, req: RecordedRequest) -> str:
        return str(req.json["model"])

    def is_stream(self, req: RecordedRequest) -> bool:
        return bool(req.json.get("stream"))

    def system(self, req: RecordedRequest) -> str | None:
        texts = [_text_of(m.get("content")) for m in _messages(req) if m.get("role") == "system"]
        return "\n".join(texts) if texts else None

    def turns(self, req: RecordedRequest) -> list[tuple[str, str]]:
        return [
            (m["role"], _text_of(m.get("content")))
            for m in _messages(req)
            if m.get("role") != "system"
        ]

    def max_tokens(self, req: RecordedRequest) -> int | None:
        return req.json.get("max_tokens")  # type: ignore[no-any-return]

    def temperature(self, req: RecordedRequest) -> float | None:
        return req.json.get("temperature")  # type: ignore[no-any-return]

    def tool_names(self, req: RecordedRequest) -> list[str]:
        return [t["function"]["name"] for t in req.json.get("tools") or []]

    def tool_schema(self, req: RecordedRequest, name: str) -> dict[str, Any]:
        for tool in req.json.get("tools") or []:
            if tool["function"]["name"] == name:
                return dict(tool["function"]["parameters"])
        raise KeyError(name)

    def tool_choice(self, req: RecordedRequest) -> Any:
        """Cohere has no "auto" (it is the absence) and no named choice: llmgate sends a
        named choice as REQUIRED with only that tool, so REQUIRED + one tool reads as named."""
        choice = req.json.get("tool_choice")
        tools = self.tool_names(req)
        if choice is None:
            return "auto" if tools else None
        if choice == "NONE":
            return "none"
        if choice == "REQUIRED":
            return ("named", tools[0]) if len(tools) == 1 else "required"
        return choice

    def assistant_tool_calls(self, req: RecordedRequest) -> list[tuple[str, str, dict[str, Any]]]:
        calls = []
        for message in _messages(req):
            if message.get("role") != "assistant":
                continue
            for call in message.get("tool_calls") or []:
                arguments = call["function"].get("arguments") or ""
                parsed = json.loads(arguments) if arguments else {}
                calls.append((call.get("id", ""), call["function"]["name"], parsed))
        return calls

    def tool_results(self, req: RecordedRequest) -> list[tuple[str, str]]:
        return [
            (m.get("tool_call_id") or "", _text_of(m.get("content")))
            for m in _messages(req)
            if m.get("role") == "tool"
        ]

    def images(self, req: RecordedRequest) -> list[tuple[str, str]]:
        found = []
        for message in _messages(req):
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for part in content:
                if part.get("type") != "image_url":
                    continue
                url = part["image_url"]["url"]
                if url.startswith("data:"):
                    found.append(("bytes", url.partition(";base64,")[2]))
                else:
                    found.append(("url", url))
        return found

    def response_schema(self, req: RecordedRequest) -> dict[str, Any] | None:
        response_format = req.json.get("response_format") or {}
        if response_format.get("type") != "json_object" or "json_schema" not in response_format:
            return None
        return dict(response_format["json_schema"])

    def embedding_inputs(self, req: RecordedRequest) -> list[str]:
        return list(req.json.get("texts") or [])


def _gate_kwargs(base_url: str) -> dict[str, Any]:
    return {"provider_options": {"cohere": {"api_key": "fake-cohere-key", "base_url": base_url}}}


TARGETS = [
    Target(
        id="cohere",
        make_vendor=CohereFake,
        model="cohere/command-a-03-2025",
        gate_kwargs=_gate_kwargs,
        wire=CohereWire(),
        embedding_model="cohere/embed-v4.0",
        api_key_env=("CO_API_KEY", "COHERE_API_KEY"),
    )
]
