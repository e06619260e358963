"""A fake of OpenAI's Chat Completions and Embeddings API, also serving Azure OpenAI's paths.

Routes: ``.../chat/completions`` and ``.../embeddings`` under any prefix (``/v1`` for OpenAI,
``/openai/v1`` for Groq-style presets) and Azure's
``/openai/deployments/{deployment}/{chat/completions|embeddings}?api-version=...``.
Authentication is checked the way each vendor does it: ``Authorization: Bearer`` for OpenAI
and compatible vendors, the ``api-key`` header (plus a required ``api-version``) for Azure.

Answers are the real wire shapes the ``openai`` SDK parses: ``chat.completion`` JSON, SSE
``chat.completion.chunk`` events with ``stream_options.include_usage`` (the usage arrives in
a final chunk whose ``choices`` is empty) ending with ``data: [DONE]``, ``reasoning_content``
for reasoning (DeepSeek/vLLM style), and OpenAI's error body
``{"error": {"message", "type", "param", "code"}}`` with an ``x-request-id`` header, both
over HTTP and as an in-stream error frame.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from typing import Any

from typing_extensions import override

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
    json_response,
    sse_event,
    stream_with_delays,
    with_reply_faults,
)

CREATED = 1_765_000_000
FINGERPRINT = "fp_fake01"

# error type and code OpenAI sends for a status
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None),
    409: ("invalid_request_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", "overloaded"),
    504: ("server_error", None),
    529: ("server_error", "overloaded"),
}

_AZURE_PATH = re.compile(
    r"^/openai/deployments/(?P<deployment>[^/]+)/(?P<op>chat/completions|embeddings)$"
)


def error_body(status: int, message: str) -> dict[str, Any]:
    kind, code = _ERROR_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def call_id(call: FakeToolCall, index: int) -> str:
    return call.id or f"call_fake{index}"


def fake_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic vector for a text; every value is exact in float32."""
    digest = hashlib.blake2b(text.encode(), digest_size=32).digest()
    return [(digest[i % 32] - 127) / 64 for i in range(dimensions)]


def as_base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


class OpenAIFake(FakeVendor):
    """OpenAI (and Azure OpenAI) on one loopback port; see the module docstring."""

    name = "openai"

    @override
    def handle(self, request: RecordedRequest) -> Response:
        operation, azure = self._route(request.path)
        if request.method != "POST" or operation is None:
            return self._error(404, f"Unknown request URL: {request.method} {request.path}", azure)
        problem = self._auth_problem(request, azure)
        if problem:
            return self._error(401, problem, azure)
        script = self.next_script(request)
        if isinstance(script, Fault):
            return self._fault(script, azure)
        body = request.json or {}
        if operation == "embeddings":
            vectors = script if isinstance(script, EmbeddingReply) else EmbeddingReply()
            return self._embeddings(vectors, body)
        reply = script if isinstance(script, Reply) else Reply(text="Hello from the fake.")
        if body.get("stream"):
            return self._stream(reply, body)
        return self._completion(reply, body)

    # routing and auth -------------------------------------------------------------
    @staticmethod
    def _route(path: str) -> tuple[str | None, bool]:
        match = _AZURE_PATH.match(path)
        if match:
            return ("embeddings" if match["op"] == "embeddings" else "chat"), True
        if path.endswith("/chat/completions"):
            return "chat", False
        if path.endswith("/embeddings"):
            return "embeddings", False
        return None, False

    @staticmethod
    def _auth_problem(request: RecordedRequest, azure: bool) -> str | None:
        if azure:
            if not request.query.get("api-version"):
                return "Missing required query parameter: api-version"
            if not request.headers.get("api-key") and not request.headers.get("authorization"):
                return "Access denied due to missing subscription key."
            return None
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return "You didn't provide an API key."
        return None

    # errors -------------------------------------------------------------------------
    def _error(self, status: int, message: str, azure: bool) -> Response:
        return self._fault(Fault(status=status, message=message, request_id="req-auth"), azure)

    def _fault(self, fault: Fault, azure: bool = False) -> Response:
        body: Any = (
            fault.body if fault.body is not None else error_body(fault.status, fault.message)
        )
        if isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = json.dumps(body).encode()
        headers = {"content-type": "application/json", **fault.headers, **delay_header(fault.delay)}
        if fault.request_id:
            headers.setdefault("x-request-id", fault.request_id)
            if azure:
                headers.setdefault("apim-request-id", fault.request_id)
        return Response(
            status=fault.status, headers=headers, body=raw, close_connection=fault.close_connection
        )

    # chat -----------------------------------------------------------------------------
    @staticmethod
    def _usage(reply: Reply) -> dict[str, Any]:
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens or 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reply.reasoning_tokens or 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _completion(self, reply: Reply, body: dict[str, Any]) -> Response:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text if (reply.text or not reply.tool_calls) else None,
            "refusal": None,
            "annotations": [],
        }
        if reply.reasoning is not None:
            message["reasoning_content"] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call_id(call, i),
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for i, call in enumerate(reply.tool_calls)
            ]
        payload = {
            "id": reply.response_id,
            "object": "chat.completion",
            "created": CREATED,
            "model": reply.model or body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.neutral_finish,
                }
            ],
            "usage": self._usage(reply),
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        }
        headers = {"x-request-id": f"req-{reply.response_id}", **reply.headers}
        return json_response(payload, headers={**headers, **delay_header(reply.delay)})

    def _stream(self, reply: Reply, body: dict[str, Any]) -> Response:
        model = reply.model or body.get("model", "")
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def event(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
            payload: dict[str, Any] = {
                "id": reply.response_id,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": FINGERPRINT,
                "choices": choices,
            }
            if include_usage:
                payload["usage"] = usage
            return sse_event(payload)

        def delta(fields: dict[str, Any], finish: str | None = None) -> bytes:
            return event([{"index": 0, "delta": fields, "logprobs": None, "finish_reason": finish}])

        pieces = [delta({"role": "assistant", "content": "", "refusal": None})]
        if reply.reasoning:
            pieces.extend(
                delta({"reasoning_content": word})
                for word in Reply(text=reply.reasoning).text_pieces()
            )
        pieces.extend(delta({"content": piece}) for piece in reply.text_pieces())
        for i, call in enumerate(reply.tool_calls):
            arguments = json.dumps(call.arguments)
            head = {
                "index": i,
                "id": call_id(call, i),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            pieces.append(delta({"tool_calls": [head]}))
            middle = len(arguments) // 2
            for part in (arguments[:middle], arguments[middle:]):
                pieces.append(
                    delta({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
                )
        pieces.append(delta({}, reply.neutral_finish))
        if include_usage:
            pieces.append(event([], self._usage(reply)))
        pieces.append(sse_event("[DONE]"))
        pieces, drop_after = with_reply_faults(
            pieces,
            reply,
            malformed=b'data: {"id": "chatcmpl-broken", "choices": [{"delta": \n\n',
            error_frame=sse_event(error_body(reply.error_status, "injected stream failure")),
        )
        headers = {
            "content-type": "text/event-stream; charset=utf-8",
            "x-request-id": f"req-{reply.response_id}",
            **reply.headers,
            **delay_header(reply.delay),
        }
        return Response(
            headers=headers, stream=stream_with_delays(pieces, reply), drop_after=drop_after
        )

    # embeddings -----------------------------------------------------------------------
    def _embeddings(self, reply: EmbeddingReply, body: dict[str, Any]) -> Response:
        given = body.get("input")
        texts = [given] if isinstance(given, str) else list(given or [])
        size = body.get("dimensions") or reply.dimensions
        vectors = reply.vectors or [fake_vector(str(text), size) for text in texts]
        encode = body.get("encoding_format") == "base64"
        payload = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": as_base64(v) if encode else v}
                for i, v in enumerate(vectors)
            ],
            "model": body.get("model", ""),
            "usage": {"prompt_tokens": reply.prompt_tokens, "total_tokens": reply.prompt_tokens},
        }
        return json_response(payload, headers={"x-request-id": "req-embeddings", **reply.headers})


# --------------------------------------------------------------------------- wire view


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(
        p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
    )


class OpenAIWire(WireView):
    """Neutral reads of a recorded Chat Completions / Embeddings request."""

    extra_kwargs_example: tuple[str, Any, Any] = ("seed", 7, lambda req: req.json.get("seed"))

    @staticmethod
    def _messages(req: RecordedRequest) -> list[dict[str, Any]]:
        return list(req.json.get("messages") or [])

    @override
    def model(self, req: RecordedRequest) -> str:
        match = _AZURE_PATH.match(req.path)
        return match["deployment"] if match else str(req.json["model"])

    @override
    def is_stream(self, req: RecordedRequest) -> bool:
        return req.json.get("stream") is True

    @override
    def system(self, req: RecordedRequest) -> str | None:
        texts = [
            _text(m.get("content"))
            for m in self._messages(req)
            if m.get("role") in ("system", "developer")
        ]
        return "\n".join(texts) if texts else None

    @override
    def turns(self, req: RecordedRequest) -> list[tuple[str, str]]:
        return [
            (m["role"], _text(m.get("content")))
            for m in self._messages(req)
            if m.get("role") not in ("system", "developer")
        ]

    @override
    def max_tokens(self, req: RecordedRequest) -> int | None:
        body = req.json
        value = body.get("max_completion_tokens", body.get("max_tokens"))
        return None if value is None else int(value)

    @override
    def temperature(self, req: RecordedRequest) -> float | None:
        value = req.json.get("temperature")
        return None if value is None else float(value)

    @override
    def tool_names(self, req: RecordedRequest) -> list[str]:
        return [tool["function"]["name"] for tool in req.json.get("tools") or []]

    @override
    def tool_schema(self, req: RecordedRequest, name: str) -> dict[str, Any]:
        for tool in req.json.get("tools") or []:
            if tool["function"]["name"] == name:
                return dict(tool["function"].get("parameters") or {})
        raise KeyError(f"no tool {name!r} was sent")

    @override
    def tool_choice(self, req: RecordedRequest) -> Any:
        choice = req.json.get("tool_choice")
        if isinstance(choice, dict):
            return ("named", choice["function"]["name"])
        return choice

    @override
    def assistant_tool_calls(self, req: RecordedRequest) -> list[tuple[str, str, dict[str, Any]]]:
        found = []
        for message in self._messages(req):
            if message.get("role") == "assistant":
                for call in message.get("tool_calls") or []:
                    function = call["function"]
                    arguments = json.loads(function["arguments"]) if function["arguments"] else {}
                    found.append((call["id"], function["name"], arguments))
        return found

    @override
    def tool_results(self, req: RecordedRequest) -> list[tuple[str, str]]:
        return [
            (m["tool_call_id"], _text(m.get("content")))
            for m in self._messages(req)
            if m.get("role") == "tool"
        ]

    @override
    def images(self, req: RecordedRequest) -> list[tuple[str, str]]:
        found = []
        for message in self._messages(req):
            content = message.get("content")
            for part in content if isinstance(content, list) else []:
                if part.get("type") == "image_url":
                    url = part["image_url"]["url"]
                    if url.startswith("data:"):
                        found.append(("bytes", url.partition(";base64,")[2]))
                    else:
                        found.append(("url", url))
        return found

    @override
    def response_schema(self, req: RecordedRequest) -> dict[str, Any] | None:
        response_format = req.json.get("response_format") or {}
        if response_format.get("type") != "json_schema":
            return None
        return dict(response_format["json_schema"]["schema"])

    @override
    def embedding_inputs(self, req: RecordedRequest) -> list[str]:
        given = req.json.get("input")
        return [given] if isinstance(given, str) else list(given or [])

    # OpenAI-only reads ------------------------------------------------------------------
    def field(self, req: RecordedRequest, name: str) -> Any:
        return req.json.get(name)


class CompatibleWire(OpenAIWire):
    """A compatible vendor: parameters unknown to the SDK travel in the body via extra_body."""

    extra_kwargs_example = (
        "reasoning_format",
        "parsed",
        lambda req: req.json.get("reasoning_format"),
    )


AZURE_API_VERSION = "2024-10-21"


def _openai_kwargs(base_url: str) -> dict[str, Any]:
    return {
        "provider_options": {"openai": {"api_key": "sk-fake-openai", "base_url": f"{base_url}/v1"}}
    }


def _groq_kwargs(base_url: str) -> dict[str, Any]:
    return {
        "provider_options": {
            "groq": {"api_key": "gsk-fake-groq", "base_url": f"{base_url}/openai/v1"}
        }
    }


def _azure_kwargs(base_url: str) -> dict[str, Any]:
    return {
        "provider_options": {
            "azure": {
                "api_key": "fake-azure-key",
                "base_url": base_url,
                "api_version": AZURE_API_VERSION,
            }
        }
    }


TARGETS = [
    Target(
        id="openai",
        make_vendor=OpenAIFake,
        model="openai/gpt-4o-mini",
        gate_kwargs=_openai_kwargs,
        wire=OpenAIWire(),
        embedding_model="openai/text-embedding-3-small",
        api_key_env=("OPENAI_API_KEY",),
    ),
    Target(
        id="groq",
        make_vendor=OpenAIFake,
        model="groq/llama-3.3-70b-versatile",
        gate_kwargs=_groq_kwargs,
        wire=CompatibleWire(),
        not_applicable={"embeddings": "Groq serves no embeddings endpoint"},
        api_key_env=("GROQ_API_KEY",),
    ),
    Target(
        id="azure",
        make_vendor=OpenAIFake,
        model="azure/my-deployment",
        gate_kwargs=_azure_kwargs,
        wire=OpenAIWire(),
        embedding_model="azure/my-embedding-deployment",
        api_key_env=("AZURE_OPENAI_API_KEY",),
    ),
]
