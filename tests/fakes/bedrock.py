"""A fake Amazon Bedrock Runtime: Converse, ConverseStream and InvokeModel (embeddings).

``/model/{modelId}/converse`` answers JSON; ``/model/{modelId}/converse-stream`` answers the
binary ``application/vnd.amazon.eventstream`` framing (encoded here with ``struct`` and
``binascii.crc32``); ``/model/{modelId}/invoke`` answers Titan v2 and Cohere embedding
bodies. Errors carry ``x-amzn-ErrorType`` and ``x-amzn-RequestId`` as AWS sends them.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import struct
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
    json_response,
    stream_with_delays,
    with_reply_faults,
)

FAKE_ACCESS_KEY = "AKIDLLMGATEFAKE00000"
FAKE_SECRET_KEY = "llmgate-fake-secret-key-not-a-real-one"
FAKE_REGION = "us-east-1"

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "content_filtered",
    "error": "malformed_model_output",
}

# HTTP status -> the error code Bedrock Runtime answers with.
_ERROR_CODES = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}

# HTTP status -> the in-stream exception member of ConverseStream.
_STREAM_EXCEPTIONS = {
    400: "validationException",
    429: "throttlingException",
    500: "internalServerException",
    503: "serviceUnavailableException",
}


# --------------------------------------------------------------------------- eventstream


def _string_header(name: str, value: str) -> bytes:
    raw_name = name.encode()
    raw_value = value.encode()
    return (
        struct.pack(">B", len(raw_name))
        + raw_name
        + b"\x07"
        + struct.pack(">H", len(raw_value))
        + raw_value
    )


def eventstream_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One eventstream message: prelude (lengths + CRC), headers, payload, message CRC."""
    encoded_headers = b"".join(_string_header(k, v) for k, v in headers.items())
    total_length = 12 + len(encoded_headers) + len(payload) + 4
    prelude = struct.pack(">II", total_length, len(encoded_headers))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + encoded_headers + payload
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


def event_frame(event_type: str, body: dict[str, Any]) -> bytes:
    return eventstream_message(
        {
            ":event-type": event_type,
            ":content-type": "application/json",
            ":message-type": "event",
        },
        json.dumps(body).encode(),
    )


def exception_frame(exception_type: str, body: dict[str, Any]) -> bytes:
    return eventstream_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps(body).encode(),
    )


def corrupt_frame() -> bytes:
    """A contentBlockDelta frame whose message CRC is wrong."""
    good = event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}})
    return good[:-4] + struct.pack(">I", (binascii.crc32(good[:-4]) + 1) & 0xFFFFFFFF)


# --------------------------------------------------------------------------- the fake


def _tool_id(reply: Reply, index: int) -> str:
    given = reply.tool_calls[index].id
    return given or f"tooluse_{index:02d}{reply.response_id}"


def _usage(reply: Reply) -> dict[str, int]:
    cached = reply.cached_tokens or 0
    usage = {
        "inputTokens": reply.prompt_tokens - cached,
        "outputTokens": reply.completion_tokens,
        "totalTokens": reply.prompt_tokens + reply.completion_tokens,
    }
    if reply.cached_tokens is not None:
        usage["cacheReadInputTokens"] = reply.cached_tokens
        usage["cacheWriteInputTokens"] = 0
    return usage


def _request_id_headers(request_id: str) -> dict[str, str]:
    return {"x-amzn-RequestId": request_id}


def stream_exception_for(status: int) -> str:
    return _STREAM_EXCEPTIONS.get(status, "modelStreamErrorException")


def error_code_for(status: int) -> str:
    if status in _ERROR_CODES:
        return _ERROR_CODES[status]
    return "ServiceUnavailableException" if status >= 500 else "ValidationException"


class BedrockFake(FakeVendor):
    """Bedrock Runtime's REST-JSON and eventstream wire, driven by neutral scripts."""

    name = "bedrock"

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)

    def _next_request_id(self) -> str:
        return f"bedrock-req-{next(self._ids):04d}"

    # routing -------------------------------------------------------------------
    def handle(self, request: RecordedRequest) -> Response:
        prefix = "/model/"
        if request.method != "POST" or not request.path.startswith(prefix):
            return self._error(404, "UnknownOperationException", "no such route")
        model_id, _, operation = request.path[len(prefix) :].rpartition("/")
        script = self.next_script(request)
        if isinstance(script, Fault):
            return self.fault_response(script)
        if operation == "invoke":
            if not isinstance(script, EmbeddingReply):
                script = EmbeddingReply()
            return self._invoke(model_id, request, script)
        if operation not in ("converse", "converse-stream"):
            return self._error(404, "UnknownOperationException", f"unknown {operation!r}")
        if not isinstance(script, Reply):
            script = Reply(text="Hello from the fake.")
        if operation == "converse":
            return self._converse(script)
        return self._converse_stream(script)

    def default_script(self, request: RecordedRequest) -> Reply | EmbeddingReply:
        if request.path.endswith("/invoke"):
            return EmbeddingReply()
        return Reply(text="Hello from the fake.")

    # errors --------------------------------------------------------------------
    def _error(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> Response:
        all_headers = {
            "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            **_request_id_headers(request_id or self._next_request_id()),
            **(headers or {}),
        }
        return json_response({"message": message}, status=status, headers=all_headers)

    def fault_response(self, fault: Fault) -> Response:
        headers = {**dict(fault.headers), **delay_header(fault.delay)}
        if fault.body is not None:
            response = super().fault_response(fault)
            response.headers.pop("x-request-id", None)
            response.headers.update(headers)
            if fault.request_id:
                response.headers.update(_request_id_headers(fault.request_id))
            return response
        response = self._error(
            fault.status,
            error_code_for(fault.status),
            fault.message,
            headers=headers,
            request_id=fault.request_id,
        )
        response.close_connection = fault.close_connection
        return response

    # converse ------------------------------------------------------------------
    def _content_blocks(self, reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if reply.reasoning is not None:
            reasoning: dict[str, Any] = {"text": reply.reasoning}
            if reply.reasoning_signature is not None:
                reasoning["signature"] = reply.reasoning_signature
            blocks.append({"reasoningContent": {"reasoningText": reasoning}})
        if reply.text:
            blocks.append({"text": reply.text})
        for index, call in enumerate(reply.tool_calls):
            blocks.append(
                {
                    "toolUse": {
                        "toolUseId": _tool_id(reply, index),
                        "name": call.name,
                        "input": call.arguments,
                    }
                }
            )
        return blocks

    def _reply_headers(self, reply: Reply, content_type: str) -> dict[str, str]:
        return {
            "content-type": content_type,
            **_request_id_headers(self._next_request_id()),
            **reply.headers,
            **delay_header(reply.delay),
        }

    def _converse(self, reply: Reply) -> Response:
        body = {
            "output": {"message": {"role": "assistant", "content": self._content_blocks(reply)}},
            "stopReason": _STOP_REASONS.get(reply.neutral_finish, "end_turn"),
            "usage": _usage(reply),
            "metrics": {"latencyMs": 42},
        }
        return Response(
            status=200,
            headers=self._reply_headers(reply, "application/json"),
            body=json.dumps(body).encode(),
        )

    def stream_frames(self, reply: Reply) -> list[bytes]:
        """The ConverseStream events of a reply, in the order Bedrock sends them."""
        frames = [event_frame("messageStart", {"role": "assistant"})]
        index = 0
        if reply.reasoning is not None:
            for word in Reply(text=reply.reasoning).text_pieces() or [""]:
                frames.append(
                    event_frame(
                        "contentBlockDelta",
                        {"contentBlockIndex": index, "delta": {"reasoningContent": {"text": word}}},
                    )
                )
            if reply.reasoning_signature is not None:
                frames.append(
                    event_frame(
                        "contentBlockDelta",
                        {
                            "contentBlockIndex": index,
                            "delta": {"reasoningContent": {"signature": reply.reasoning_signature}},
                        },
                    )
                )
            frames.append(event_frame("contentBlockStop", {"contentBlockIndex": index}))
            index += 1
        pieces = reply.text_pieces()
        if pieces:
            for piece in pieces:
                frames.append(
                    event_frame(
                        "contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}
                    )
                )
            frames.append(event_frame("contentBlockStop", {"contentBlockIndex": index}))
            index += 1
        for tool_index, call in enumerate(reply.tool_calls):
            frames.append(
                event_frame(
                    "contentBlockStart",
                    {
                        "contentBlockIndex": index,
                        "start": {
                            "toolUse": {"toolUseId": _tool_id(reply, tool_index), "name": call.name}
                        },
                    },
                )
            )
            arguments = json.dumps(call.arguments)
            middle = len(arguments) // 2
            for fragment in (arguments[:middle], arguments[middle:]):
                if fragment:
                    frames.append(
                        event_frame(
                            "contentBlockDelta",
                            {"contentBlockIndex": index, "delta": {"toolUse": {"input": fragment}}},
                        )
                    )
            frames.append(event_frame("contentBlockStop", {"contentBlockIndex": index}))
            index += 1
        frames.append(
            event_frame(
                "messageStop", {"stopReason": _STOP_REASONS.get(reply.neutral_finish, "end_turn")}
            )
        )
        frames.append(
            event_frame("metadata", {"usage": _usage(reply), "metrics": {"latencyMs": 42}})
        )
        return frames

    def _converse_stream(self, reply: Reply) -> Response:
        error_type = stream_exception_for(reply.error_status)
        error_body: dict[str, Any] = {"message": f"injected {error_type}"}
        if error_type == "modelStreamErrorException":
            error_body.update(
                originalStatusCode=reply.error_status, originalMessage="injected model error"
            )
        pieces, drop_after = with_reply_faults(
            self.stream_frames(reply),
            reply,
            malformed=corrupt_frame(),
            error_frame=exception_frame(error_type, error_body),
        )
        return Response(
            status=200,
            headers=self._reply_headers(reply, "application/vnd.amazon.eventstream"),
            stream=stream_with_delays(pieces, reply),
            drop_after=drop_after,
        )

    # embeddings ----------------------------------------------------------------
    def _vector(self, reply: EmbeddingReply, text: str, position: int, size: int) -> list[float]:
        if reply.vectors is not None and position < len(reply.vectors):
            return list(reply.vectors[position])
        seed = sum(text.encode()) + position
        return [((seed * (i + 3)) % 97) / 97.0 for i in range(size)]

    def _invoke(self, model_id: str, request: RecordedRequest, reply: EmbeddingReply) -> Response:
        body = request.json or {}
        headers = {
            **_request_id_headers(self._next_request_id()),
            "X-Amzn-Bedrock-Input-Token-Count": str(reply.prompt_tokens),
            **reply.headers,
        }
        if "titan-embed" in model_id:
            text = body.get("inputText")
            if not isinstance(text, str):
                return self._error(400, "ValidationException", "inputText must be a string")
            size = int(body.get("dimensions") or reply.dimensions)
            payload: dict[str, Any] = {
                "embedding": self._vector(reply, text, 0, size),
                "inputTextTokenCount": reply.prompt_tokens,
            }
            return json_response(payload, headers=headers)
        if "cohere.embed" in model_id:
            texts = body.get("texts")
            if not isinstance(texts, list) or "input_type" not in body:
                return self._error(
                    400, "ValidationException", "texts (list) and input_type are required"
                )
            size = int(body.get("output_dimension") or reply.dimensions)
            vectors = [self._vector(reply, t, i, size) for i, t in enumerate(texts)]
            if body.get("embedding_types"):
                payload = {
                    "id": "emb-1",
                    "texts": texts,
                    "embeddings": {"float": vectors},
                    "response_type": "embeddings_by_type",
                }
            else:
                payload = {
                    "id": "emb-1",
                    "texts": texts,
                    "embeddings": vectors,
                    "response_type": "embeddings_floats",
                }
            return json_response(payload, headers=headers)
        return self._error(400, "ValidationException", f"{model_id} is not an embedding model")


# --------------------------------------------------------------------------- wire view


def _text_of(blocks: list[dict[str, Any]]) -> str:
    return "".join(block["text"] for block in blocks if "text" in block)


class BedrockWire(WireView):
    # (keyword, value, reader): an extra keyword that must reach converse() unchanged.
    extra_kwargs_example = (
        "additionalModelRequestFields",
        {"top_k": 5},
        lambda req: req.json.get("additionalModelRequestFields"),
    )

    def model(self, req: RecordedRequest) -> str:
        return req.path[len("/model/") :].rpartition("/")[0]

    def is_stream(self, req: RecordedRequest) -> bool:
        return req.path.endswith("/converse-stream")

    def system(self, req: RecordedRequest) -> str | None:
        blocks = req.json.get("system")
        if not blocks:
            return None
        return "\n".join(block["text"] for block in blocks if "text" in block)

    def turns(self, req: RecordedRequest) -> list[tuple[str, str]]:
        turns: list[tuple[str, str]] = []
        for message in req.json.get("messages", []):
            results = [b["toolResult"] for b in message["content"] if "toolResult" in b]
            for result in results:
                turns.append(("tool", _text_of(result.get("content", []))))
            text = _text_of(message["content"])
            if text or not results:
                turns.append((message["role"], text))
        return turns

    def max_tokens(self, req: RecordedRequest) -> int | None:
        value = req.json.get("inferenceConfig", {}).get("maxTokens")
        return None if value is None else int(value)

    def temperature(self, req: RecordedRequest) -> float | None:
        value = req.json.get("inferenceConfig", {}).get("temperature")
        return None if value is None else float(value)

    def tool_names(self, req: RecordedRequest) -> list[str]:
        tools = req.json.get("toolConfig", {}).get("tools", [])
        return [tool["toolSpec"]["name"] for tool in tools if "toolSpec" in tool]

    def tool_schema(self, req: RecordedRequest, name: str) -> dict[str, Any]:
        for tool in req.json.get("toolConfig", {}).get("tools", []):
            spec = tool.get("toolSpec", {})
            if spec.get("name") == name:
                schema: dict[str, Any] = spec["inputSchema"]["json"]
                return schema
        raise KeyError(name)

    def tool_choice(self, req: RecordedRequest) -> Any:
        # Converse has no "none" choice: leaving toolConfig out is how tool use is turned off.
        config = req.json.get("toolConfig")
        if config is None:
            return "none"
        choice = config.get("toolChoice")
        if choice is None:
            return None
        if "auto" in choice:
            return "auto"
        if "any" in choice:
            return "required"
        if "tool" in choice:
            return ("named", choice["tool"]["name"])
        return choice

    def assistant_tool_calls(self, req: RecordedRequest) -> list[tuple[str, str, dict[str, Any]]]:
        calls = []
        for message in req.json.get("messages", []):
            if message["role"] != "assistant":
                continue
            for block in message["content"]:
                if "toolUse" in block:
                    use = block["toolUse"]
                    calls.append((use["toolUseId"], use["name"], use["input"]))
        return calls

    def tool_results(self, req: RecordedRequest) -> list[tuple[str, str]]:
        results = []
        for message in req.json.get("messages", []):
            for block in message["content"]:
                if "toolResult" in block:
                    result = block["toolResult"]
                    results.append((result["toolUseId"], _text_of(result.get("content", []))))
        return results

    def images(self, req: RecordedRequest) -> list[tuple[str, str]]:
        found = []
        for message in req.json.get("messages", []):
            for block in message["content"]:
                if "image" in block:
                    source = block["image"]["source"]
                    if "bytes" in source:
                        found.append(("bytes", source["bytes"]))
                    else:
                        found.append(("url", source["s3Location"]["uri"]))
        return found

    def response_schema(self, req: RecordedRequest) -> dict[str, Any] | None:
        text_format = req.json.get("outputConfig", {}).get("textFormat")
        if text_format is None:
            return None
        schema: dict[str, Any] = json.loads(text_format["structure"]["jsonSchema"]["schema"])
        return schema

    def embedding_inputs(self, req: RecordedRequest) -> list[str]:
        body = req.json
        if "inputText" in body:
            return [body["inputText"]]
        return list(body.get("texts", []))


def gate_kwargs(base_url: str) -> dict[str, Any]:
    return {
        "provider_options": {
            "bedrock": {
                "base_url": base_url,
                "region": FAKE_REGION,
                "aws_access_key_id": FAKE_ACCESS_KEY,
                "aws_secret_access_key": FAKE_SECRET_KEY,
            }
        }
    }


def decode_image_bytes(data: str) -> bytes:
    """The raw image bytes of an ``images()`` entry (boto3 sends blobs as base64)."""
    return base64.b64decode(data)


TARGETS = [
    Target(
        id="bedrock",
        make_vendor=BedrockFake,
        model="bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
        gate_kwargs=gate_kwargs,
        wire=BedrockWire(),
        embedding_model="bedrock/amazon.titan-embed-text-v2:0",
        image_urls=False,
        api_key_env=(
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_BEARER_TOKEN_BEDROCK",
        ),
    )
]
