"""A fake of the Gemini Developer API, as the ``google-genai`` SDK calls it.

Routes (the SDK's default API version is ``v1``; ``v1beta`` is served the same way):
``POST /{version}/models/{model}:generateContent`` (JSON), ``:streamGenerateContent?alt=sse``
(SSE, one ``GenerateContentResponse`` per ``data:`` event) and ``:batchEmbedContents``.

Output is rendered the way the Gemini API does it: thought parts (``"thought": true``) for
reasoning, a base64 ``thoughtSignature`` on the first function call (or else on the last text
part), whole ``functionCall`` parts in their own stream event, ``finishReason`` and
``usageMetadata`` (with ``thoughtsTokenCount`` and ``cachedContentTokenCount``) on the last
event. The Developer API mostly returns function calls without an id, so ids are sent only when
``native_call_ids`` is true. Errors are Google's ``{"error": {"code", "message", "status"}}``,
over HTTP and as an in-stream event; the API sends no request-id header, so neither does this.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from typing import Any

from typing_extensions import override

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
    sse_event,
    stream_with_delays,
    with_reply_faults,
)

FAKE_KEY = "fake-gemini-key"
MAX_EMBEDDING_BATCH = 100  # the API refuses larger batchEmbedContents requests
_ROUTE = re.compile(r"^/(v1|v1beta|v1alpha)/models/(?P<model>[^:/]+):(?P<method>[A-Za-z]+)$")

_FINISH_REASONS = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "error": "MALFORMED_FUNCTION_CALL",
}
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    """Google's error JSON, the same over HTTP and inside a stream."""
    return {
        "error": {
            "code": status,
            "message": message,
            "status": _STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }


def encode_signature(signature: str) -> str:
    """Thought signatures are bytes, base64 on the wire."""
    return base64.b64encode(signature.encode()).decode("ascii")


class GeminiFake(FakeVendor):
    name = "gemini"
    native_call_ids = False  # the Developer API mostly omits functionCall.id

    @override
    def handle(self, request: RecordedRequest) -> Response:
        route = _ROUTE.match(request.path)
        if request.method != "POST" or route is None:
            return json_response(error_body(404, f"no route {request.path}"), status=404)
        script = self.next_script(request)
        if isinstance(script, Fault):
            return self.fault_response(script)
        body = request.json or {}
        model = route["model"]
        method = route["method"]
        if method == "batchEmbedContents":
            if not isinstance(script, EmbeddingReply):
                script = EmbeddingReply()
            return self.embedding_response(script, body)
        if not isinstance(script, Reply):
            script = Reply(text="Hello from the fake.")
        if method == "generateContent":
            return self.content_response(script, model)
        if method == "streamGenerateContent":
            return self.stream_response(script, model, request)
        return json_response(error_body(404, f"unknown method {method}"), status=404)

    # errors ------------------------------------------------------------------------
    @override
    def fault_response(self, fault: Fault) -> Response:
        body: Any = (
            fault.body if fault.body is not None else error_body(fault.status, fault.message)
        )
        raw = (
            body
            if isinstance(body, bytes)
            else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        headers = {
            "content-type": "application/json; charset=UTF-8",
            **fault.headers,
            **delay_header(fault.delay),
        }
        return Response(
            status=fault.status, headers=headers, body=raw, close_connection=fault.close_connection
        )

    # generateContent ---------------------------------------------------------------
    @staticmethod
    def usage(reply: Reply, *, final: bool = True) -> dict[str, Any]:
        """``usageMetadata``; ``completion_tokens`` counts thoughts too, as llmgate does."""
        usage: dict[str, Any] = {"promptTokenCount": reply.prompt_tokens}
        if not final:
            usage["totalTokenCount"] = reply.prompt_tokens
            return usage
        thoughts = reply.reasoning_tokens or 0
        candidates = reply.completion_tokens - thoughts
        usage["candidatesTokenCount"] = candidates
        usage["totalTokenCount"] = reply.prompt_tokens + reply.completion_tokens
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        if reply.cached_tokens is not None:
            usage["cachedContentTokenCount"] = reply.cached_tokens
        return usage

    def parts(self, reply: Reply, text_pieces: list[str]) -> list[dict[str, Any]]:
        """The candidate's parts, text split into ``text_pieces`` (one part each)."""
        parts: list[dict[str, Any]] = []
        if reply.reasoning is not None:
            parts.append({"text": reply.reasoning, "thought": True})
        parts.extend({"text": piece} for piece in text_pieces)
        for i, call in enumerate(reply.tool_calls):
            function_call: dict[str, Any] = {"name": call.name, "args": call.arguments}
            if self.native_call_ids:
                function_call["id"] = call.id or f"fc-{i}"
            parts.append({"functionCall": function_call})
        if reply.reasoning_signature is not None and parts:
            calls = [p for p in parts if "functionCall" in p]
            target = calls[0] if calls else parts[-1]
            target["thoughtSignature"] = encode_signature(reply.reasoning_signature)
        return parts

    @staticmethod
    def envelope(
        reply: Reply, model: str, candidate: dict[str, Any] | None, usage: dict[str, Any]
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "candidates": [candidate] if candidate is not None else [],
            "usageMetadata": usage,
            "modelVersion": reply.model or model,
            "responseId": reply.response_id,
        }
        return payload

    def content_response(self, reply: Reply, model: str) -> Response:
        parts = self.parts(reply, [reply.text] if reply.text else [])
        candidate = {
            "content": {"role": "model", "parts": parts or [{"text": ""}]},
            "finishReason": _FINISH_REASONS[reply.neutral_finish],
            "index": 0,
        }
        payload = self.envelope(reply, model, candidate, self.usage(reply))
        return json_response(payload, headers={**reply.headers, **delay_header(reply.delay)})

    def stream_response(self, reply: Reply, model: str, request: RecordedRequest) -> Response:
        if request.query.get("alt") != ["sse"]:
            return json_response(error_body(400, "this fake streams only with alt=sse"), status=400)
        parts = self.parts(reply, reply.text_pieces())
        if not parts:
            parts = [{"text": ""}]
        events: list[bytes] = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
            if last:
                candidate["finishReason"] = _FINISH_REASONS[reply.neutral_finish]
            usage = self.usage(reply, final=last)
            events.append(sse_event(self.envelope(reply, model, candidate, usage)))
        events, drop_after = with_reply_faults(
            events,
            reply,
            malformed=b'data: {"candidates": [{"content": \n\n',
            error_frame=sse_event(error_body(reply.error_status, "injected stream failure")),
        )
        headers = {
            "content-type": "text/event-stream",
            **reply.headers,
            **delay_header(reply.delay),
        }
        return Response(
            status=200,
            headers=headers,
            stream=stream_with_delays(events, reply),
            drop_after=drop_after,
        )

    # batchEmbedContents ------------------------------------------------------------
    def embedding_response(self, reply: EmbeddingReply, body: dict[str, Any]) -> Response:
        requests = list(body.get("requests") or [])
        if len(requests) > MAX_EMBEDDING_BATCH:
            message = (
                "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n"
            )
            return self.fault_response(Fault(status=400, message=message))
        vectors = reply.vectors
        if vectors is None:
            vectors = []
            for item in requests:
                text = "".join(p.get("text", "") for p in item.get("content", {}).get("parts", []))
                dimensions = _field(item, "outputDimensionality") or reply.dimensions
                vectors.append(fake_vector(text, dimensions))
        payload = {
            "embeddings": [{"values": vector} for vector in vectors],
            "usageMetadata": {
                "promptTokenCount": reply.prompt_tokens,
                "totalTokenCount": reply.prompt_tokens,
            },
        }
        return json_response(payload, headers=dict(reply.headers))


# --------------------------------------------------------------------------- wire view


def _body(req: RecordedRequest) -> dict[str, Any]:
    return req.json or {}


def _field(node: Any, name: str) -> Any:
    """A protocol field by its JSON (lowerCamel) name or its proto (snake_case) name.

    The SDK writes the fields it converts explicitly in lowerCamel and dumps nested SDK
    objects in snake_case; the API reads both, and so must this view.
    """
    if not isinstance(node, dict):
        return None
    if name in node:
        return node[name]
    return node.get(re.sub(r"(?<!^)([A-Z])", lambda m: "_" + m.group(1).lower(), name))


def _texts(parts: list[dict[str, Any]]) -> str:
    return "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))


def _standard_base64(data: str) -> str:
    """The SDK sends bytes URL-safe base64; compare in the standard alphabet."""
    return base64.b64encode(base64.urlsafe_b64decode(data)).decode("ascii")


def _tool_result_text(response: Any) -> str:
    if (
        isinstance(response, dict)
        and set(response) == {"result"}
        and isinstance(response["result"], str)
    ):
        return response["result"]
    return json.dumps(response)


class GeminiWire(WireView):
    extra_kwargs_example = (
        "top_k",
        7,
        lambda req: _field(_field(_body(req), "generationConfig"), "topK"),
    )

    @override
    def model(self, req: RecordedRequest) -> str:
        route = _ROUTE.match(req.path)
        assert route is not None, req.path
        return route["model"]

    @override
    def is_stream(self, req: RecordedRequest) -> bool:
        return req.path.endswith(":streamGenerateContent")

    @override
    def system(self, req: RecordedRequest) -> str | None:
        instruction = _field(_body(req), "systemInstruction")
        if not instruction:
            return None
        return "\n".join(p.get("text", "") for p in instruction.get("parts", []))

    @override
    def turns(self, req: RecordedRequest) -> list[tuple[str, str]]:
        turns: list[tuple[str, str]] = []
        for content in _body(req).get("contents") or []:
            parts = content.get("parts") or []
            results = [
                _field(p, "functionResponse") for p in parts if _field(p, "functionResponse")
            ]
            if results:
                turns.extend(("tool", _tool_result_text(r.get("response"))) for r in results)
                continue
            role = "assistant" if content.get("role") == "model" else "user"
            turns.append((role, _texts(parts)))
        return turns

    @override
    def max_tokens(self, req: RecordedRequest) -> int | None:
        return _field(_field(_body(req), "generationConfig"), "maxOutputTokens")  # type: ignore[no-any-return]

    @override
    def temperature(self, req: RecordedRequest) -> float | None:
        return _field(_field(_body(req), "generationConfig"), "temperature")  # type: ignore[no-any-return]

    def _declarations(self, req: RecordedRequest) -> list[dict[str, Any]]:
        return [
            declaration
            for tool in _body(req).get("tools") or []
            for declaration in _field(tool, "functionDeclarations") or []
        ]

    @override
    def tool_names(self, req: RecordedRequest) -> list[str]:
        return [d["name"] for d in self._declarations(req)]

    @override
    def tool_schema(self, req: RecordedRequest, name: str) -> dict[str, Any]:
        for declaration in self._declarations(req):
            if declaration["name"] == name:
                return dict(
                    _field(declaration, "parametersJsonSchema") or declaration["parameters"]
                )
        raise KeyError(name)

    @override
    def tool_choice(self, req: RecordedRequest) -> Any:
        config = _field(_field(_body(req), "toolConfig"), "functionCallingConfig")
        if not config:
            return None
        mode = config.get("mode")
        allowed = _field(config, "allowedFunctionNames") or []
        if mode == "ANY" and len(allowed) == 1:
            return ("named", allowed[0])
        return {"AUTO": "auto", "NONE": "none", "ANY": "required"}.get(mode, mode)

    @override
    def assistant_tool_calls(self, req: RecordedRequest) -> list[tuple[str, str, dict[str, Any]]]:
        calls = []
        for content in _body(req).get("contents") or []:
            if content.get("role") != "model":
                continue
            for part in content.get("parts") or []:
                call = _field(part, "functionCall")
                if call is not None:
                    calls.append(
                        (call.get("id") or call["name"], call["name"], call.get("args") or {})
                    )
        return calls

    @override
    def tool_results(self, req: RecordedRequest) -> list[tuple[str, str]]:
        return [
            (result.get("id") or result["name"], _tool_result_text(result.get("response")))
            for content in _body(req).get("contents") or []
            for part in content.get("parts") or []
            if (result := _field(part, "functionResponse")) is not None
        ]

    @override
    def images(self, req: RecordedRequest) -> list[tuple[str, str]]:
        found = []
        for content in _body(req).get("contents") or []:
            for part in content.get("parts") or []:
                inline = _field(part, "inlineData")
                uploaded = _field(part, "fileData")
                if inline is not None:
                    found.append(("bytes", _standard_base64(inline["data"])))
                elif uploaded is not None:
                    found.append(("url", _field(uploaded, "fileUri")))
        return found

    @override
    def response_schema(self, req: RecordedRequest) -> dict[str, Any] | None:
        config = _field(_body(req), "generationConfig") or {}
        schema = _field(config, "responseJsonSchema") or _field(config, "responseSchema")
        return dict(schema) if schema is not None else None

    @override
    def embedding_inputs(self, req: RecordedRequest) -> list[str]:
        return [
            "".join(p.get("text", "") for p in item.get("content", {}).get("parts", []))
            for item in _body(req).get("requests") or []
        ]

    # Gemini-only views -------------------------------------------------------------
    def thought_signatures(self, req: RecordedRequest) -> list[str]:
        """Signatures sent back on model turns, decoded to text."""
        return [
            base64.urlsafe_b64decode(_field(part, "thoughtSignature")).decode()
            for content in _body(req).get("contents") or []
            if content.get("role") == "model"
            for part in content.get("parts") or []
            if _field(part, "thoughtSignature")
        ]

    def generation_config(self, req: RecordedRequest) -> dict[str, Any]:
        return dict(_field(_body(req), "generationConfig") or {})


def _gate_kwargs(base_url: str) -> dict[str, Any]:
    return {"provider_options": {"gemini": {"api_key": FAKE_KEY, "base_url": base_url}}}


TARGETS = [
    Target(
        id="gemini",
        make_vendor=GeminiFake,
        model="gemini/gemini-2.5-flash",
        gate_kwargs=_gate_kwargs,
        wire=GeminiWire(),
        embedding_model="gemini/gemini-embedding-001",
        image_urls=False,
        reasoning=True,
        request_ids=False,
        error_headers=True,
        api_key_env=("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    )
]
if sys.version_info < (3, 11):  # google-genai 3.x needs Python 3.11
    TARGETS = []
