"""A fake of Mistral's La Plateforme API: ``/v1/chat/completions`` and ``/v1/embeddings``.

It speaks what the ``mistralai`` SDK parses: chat JSON (``usage`` is mandatory, the SDK
validates strictly), SSE chunks ending with ``data: [DONE]``, thinking content chunks for
reasoning, Mistral's error bodies (``{"object": "error", ...}``, and FastAPI's
``{"detail": [...]}`` for 422) with a ``mistral-correlation-id`` request id header.
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
    sse_event,
    stream_with_delays,
    with_reply_faults,
)

REQUEST_ID_HEADER = "mistral-correlation-id"
CREATED = 1_764_000_000

_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    408: "timeout",
    429: "rate_limited",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
    529: "overloaded",
}


@dataclass
class RawChat:
    """A chat answer given as wire JSON, for shapes the neutral Reply cannot express.

    ``body`` is a whole JSON response; ``events`` are the SSE payloads of a stream (dicts
    are JSON-encoded, bytes are sent as they are); ``[DONE]`` is appended to a stream.
    """

    body: dict[str, Any] | None = None
    events: list[Any] = field(default_factory=list)
    status: int = 200


def error_body(status: int, message: str) -> dict[str, Any]:
    """Mistral's error JSON (the same shape over HTTP and inside a stream)."""
    return {
        "object": "error",
        "message": message,
        "type": _ERROR_TYPES.get(status, "api_error"),
        "param": None,
        "code": str(status),
        "raw_status_code": status,
    }


def validation_body(message: str) -> dict[str, Any]:
    """The 422 body of Mistral's request validation (FastAPI/pydantic style)."""
    return {
        "detail": [
            {
                "type": "value_error",
                "loc": ["body", "messages"],
                "msg": message,
                "input": None,
            }
        ]
    }


def prefill_echo(body: dict[str, Any]) -> str:
    """Mistral starts its answer to a prefix turn with the prefix text itself."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    return _text_of(last.get("content")) if last.get("prefix") else ""


def tool_call_id(call: FakeToolCall, index: int) -> str:
    return call.id or f"fake{index:05d}"


class MistralFake(FakeVendor):
    name = "mistral"

    def handle(self, request: RecordedRequest) -> Response:
        if request.method != "POST":
            return json_response(error_body(405, "method not allowed"), status=405)
        script = self.next_script(request)
        if isinstance(script, Fault):
            return self.fault_response(script)
        body = request.json or {}
        if request.path == "/v1/chat/completions":
            if isinstance(script, RawChat):
                return self.raw_response(script)
            if not isinstance(script, Reply):
                script = Reply(text="Hello from the fake.")
            if body.get("stream"):
                return self.stream_response(script, body)
            return self.chat_response(script, body)
        if request.path == "/v1/embeddings":
            if not isinstance(script, EmbeddingReply):
                script = EmbeddingReply()
            return self.embedding_response(script, body)
        return json_response(error_body(404, f"no route {request.path}"), status=404)

    # errors ------------------------------------------------------------------------
    def fault_response(self, fault: Fault) -> Response:
        if fault.body is not None:
            body: Any = fault.body
        elif fault.status == 422:
            body = validation_body(fault.message)
        else:
            body = error_body(fault.status, fault.message)
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

    @staticmethod
    def raw_response(script: RawChat) -> Response:
        if script.body is not None:
            return json_response(script.body, status=script.status)
        pieces = [e if isinstance(e, bytes) else sse_event(e) for e in script.events]
        return Response(
            status=script.status,
            headers={"content-type": "text/event-stream"},
            stream=[*pieces, sse_event("[DONE]")],
        )

    # chat --------------------------------------------------------------------------
    @staticmethod
    def usage(reply: Reply) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }
        if reply.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": reply.cached_tokens}
        if reply.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens}
        return usage

    @staticmethod
    def thinking_chunk(text: str, signature: str | None) -> dict[str, Any]:
        chunk: dict[str, Any] = {"type": "thinking", "thinking": [{"type": "text", "text": text}]}
        if signature is not None:
            chunk["signature"] = signature
        return chunk

    def chat_response(self, reply: Reply, body: dict[str, Any]) -> Response:
        text = prefill_echo(body) + reply.text
        content: Any = text
        if reply.reasoning is not None:
            content = [self.thinking_chunk(reply.reasoning, reply.reasoning_signature)]
            if text:
                content.append({"type": "text", "text": text})
        message: dict[str, Any] = {"role": "assistant", "content": content, "prefix": False}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": tool_call_id(call, i),
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                    "index": i,
                }
                for i, call in enumerate(reply.tool_calls)
            ]
        payload = {
            "id": reply.response_id,
            "object": "chat.completion",
            "model": reply.model or body.get("model", ""),
            "created": CREATED,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": _FINISH_REASONS[reply.neutral_finish],
                }
            ],
            "usage": self.usage(reply),
        }
        headers = {REQUEST_ID_HEADER: f"req-{reply.response_id}", **reply.headers}
        return json_response(payload, headers={**headers, **delay_header(reply.delay)})

    def stream_response(self, reply: Reply, body: dict[str, Any]) -> Response:
        model = reply.model or body.get("model", "")

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            return sse_event(
                {
                    "id": reply.response_id,
                    "object": "chat.completion.chunk",
                    "created": CREATED,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    **extra,
                }
            )

        pieces = [chunk({"role": "assistant", "content": ""})]
        if reply.reasoning is not None:
            words = Reply(text=reply.reasoning).text_pieces() or [""]
            for i, word in enumerate(words):
                last = i == len(words) - 1
                signature = reply.reasoning_signature if last else None
                pieces.append(chunk({"content": [self.thinking_chunk(word, signature)]}))
        echo = Reply(text=prefill_echo(body)).text_pieces()
        pieces.extend(chunk({"content": piece}) for piece in [*echo, *reply.text_pieces()])
        for i, call in enumerate(reply.tool_calls):
            pieces.append(
                chunk(
                    {
                        "content": "",
                        "tool_calls": [
                            {
                                "id": tool_call_id(call, i),
                                "function": {
                                    "name": call.name,
                                    "arguments": json.dumps(call.arguments),
                                },
                                "index": i,
                            }
                        ],
                    }
                )
            )
        pieces.append(
            chunk({"content": ""}, _FINISH_REASONS[reply.neutral_finish], usage=self.usage(reply))
        )
        pieces.append(sse_event("[DONE]"))
        pieces, drop_after = with_reply_faults(
            pieces,
            reply,
            malformed=b'data: {"id": "broken", "choices": [{\n\n',
            error_frame=sse_event(error_body(reply.error_status, "injected stream failure")),
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
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dimensions = body.get("output_dimension") or reply.dimensions
        vectors = reply.vectors or [fake_vector(text, dimensions) for text in texts]
        as_base64 = body.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "embedding": encode_base64(vector) if as_base64 else vector,
                "index": i,
            }
            for i, vector in enumerate(vectors)
        ]
        payload = {
            "id": "embd-1",
            "object": "list",
            "model": body.get("model", ""),
            "data": data,
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": 0,
                "total_tokens": reply.prompt_tokens,
            },
        }
        return json_response(payload, headers={REQUEST_ID_HEADER: "req-embd-1", **reply.headers})


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


class MistralWire(WireView):
    extra_kwargs_example = ("random_seed", 7, lambda req: (req.json or {}).get("random_seed"))

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
        choice = req.json.get("tool_choice")
        if choice is None:
            return None
        if isinstance(choice, dict):
            return ("named", choice["function"]["name"])
        return "required" if choice in ("any", "required") else choice

    def assistant_tool_calls(self, req: RecordedRequest) -> list[tuple[str, str, dict[str, Any]]]:
        calls = []
        for message in _messages(req):
            if message.get("role") != "assistant":
                continue
            for call in message.get("tool_calls") or []:
                arguments = call["function"]["arguments"]
                if isinstance(arguments, str):
                    arguments = json.loads(arguments) if arguments else {}
                calls.append((call.get("id", ""), call["function"]["name"], arguments))
        return calls

    def tool_results(self, req: RecordedRequest) -> list[tuple[str, str]]:
        return [
            (m.get("tool_call_id") or m.get("name") or "", _text_of(m.get("content")))
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
                value = part["image_url"]
                url = value["url"] if isinstance(value, dict) else value
                if url.startswith("data:"):
                    found.append(("bytes", url.partition(";base64,")[2]))
                else:
                    found.append(("url", url))
        return found

    def response_schema(self, req: RecordedRequest) -> dict[str, Any] | None:
        response_format = req.json.get("response_format") or {}
        if response_format.get("type") != "json_schema":
            return None
        return dict(response_format["json_schema"]["schema"])

    def embedding_inputs(self, req: RecordedRequest) -> list[str]:
        inputs = req.json.get("input")
        return [inputs] if isinstance(inputs, str) else list(inputs or [])

    # Mistral-only views ------------------------------------------------------------
    def prefix(self, req: RecordedRequest) -> bool:
        """Whether the last message asks the model to continue it (prefill)."""
        messages = _messages(req)
        return bool(messages and messages[-1].get("prefix"))


def _gate_kwargs(base_url: str) -> dict[str, Any]:
    return {"provider_options": {"mistral": {"api_key": "fake-mistral-key", "base_url": base_url}}}


TARGETS = [
    Target(
        id="mistral",
        make_vendor=MistralFake,
        model="mistral/mistral-large-latest",
        gate_kwargs=_gate_kwargs,
        wire=MistralWire(),
        embedding_model="mistral/mistral-embed",
        api_key_env=("MISTRAL_API_KEY",),
    )
]
