"""Bedrock's pure translation functions and its error table (no network)."""

from __future__ import annotations

import base64
from typing import Any

import botocore.eventstream
import botocore.exceptions
import pytest

from llmgate.exceptions import (
    AuthError,
    BadRequestError,
    ConfigError,
    InvalidRequestError,
    LLMGateError,
    ProviderAPIError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
    VisionNotSupported,
)
from llmgate.providers.bedrock import _convert
from llmgate.providers.bedrock.provider import map_bedrock_error
from llmgate.types import CompletionRequest, EmbeddingRequest, ImagePart, Message, TextPart

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"


class Dropped:
    """Collects what the translation reports as unsupported."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, name: str, reason: str) -> None:
        assert reason
        self.names.append(name)


def _request(**kwargs: Any) -> CompletionRequest:
    kwargs.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return CompletionRequest(model=f"bedrock/{MODEL}", **kwargs)


def _call(**kwargs: Any) -> tuple[dict[str, Any], Dropped]:
    dropped = Dropped()
    call = _convert.converse_call(_request(**kwargs), MODEL, unsupported=dropped)
    return call.kwargs, dropped


# --------------------------------------------------------------------------- messages


def test_system_messages_anywhere_become_system_blocks() -> None:
    system, turns = _convert.convert_messages(
        [
            Message(role="system", content="One."),
            Message(role="user", content="Hi"),
            Message(role="system", content="Two."),
        ],
        MODEL,
    )
    assert system == [{"text": "One."}, {"text": "Two."}]
    assert turns == [{"role": "user", "content": [{"text": "Hi"}]}]


def test_adjacent_turns_of_one_role_are_merged() -> None:
    _, turns = _convert.convert_messages(
        [Message(role="user", content="a"), Message(role="user", content="b")], MODEL
    )
    assert turns == [{"role": "user", "content": [{"text": "a"}, {"text": "b"}]}]


def test_empty_text_is_not_sent() -> None:
    _, turns = _convert.convert_messages(
        [
            Message(role="user", content=[TextPart(text=""), TextPart(text="x")]),
            Message(role="assistant", content=""),
        ],
        MODEL,
    )
    assert turns == [{"role": "user", "content": [{"text": "x"}]}]


def test_prefill_loses_trailing_whitespace_only_at_the_end() -> None:
    _, turns = _convert.convert_messages(
        [
            Message(role="user", content="Hi"),
            Message(role="assistant", content="Hello "),
            Message(role="user", content="More"),
            Message(role="assistant", content="So "),
        ],
        MODEL,
    )
    assert turns[1]["content"] == [{"text": "Hello "}]
    assert turns[3]["content"] == [{"text": "So"}]


def test_whitespace_only_prefill_is_dropped() -> None:
    _, turns = _convert.convert_messages(
        [Message(role="user", content="Hi"), Message(role="assistant", content="  ")], MODEL
    )
    assert turns == [{"role": "user", "content": [{"text": "Hi"}]}]


def test_tool_results_carry_images() -> None:
    image = ImagePart.from_bytes(GIF, "image/gif")
    _, turns = _convert.convert_messages(
        [Message(role="tool", tool_call_id="t9", content=[TextPart(text="chart"), image])], MODEL
    )
    result = turns[0]["content"][0]["toolResult"]
    assert result["toolUseId"] == "t9"
    assert result["content"] == [
        {"text": "chart"},
        {"image": {"format": "gif", "source": {"bytes": GIF}}},
    ]


@pytest.mark.parametrize(
    ("mime", "data", "expected"),
    [
        ("image/jpeg", b"\xff\xd8\xff\xe0rest", "jpeg"),
        ("image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        ("image/webp", b"unknown bytes", "webp"),
    ],
)
def test_image_formats(mime: str, data: bytes, expected: str) -> None:
    block = _convert.image_block(ImagePart.from_bytes(data, mime), MODEL)
    assert block == {"image": {"format": expected, "source": {"bytes": data}}}


def test_unsupported_image_format() -> None:
    with pytest.raises(InvalidRequestError, match="image/bmp"):
        _convert.image_block(ImagePart.from_bytes(b"BM....", "image/bmp"), MODEL)


def test_image_url_without_a_loader_is_refused() -> None:
    with pytest.raises(VisionNotSupported):
        _convert.image_block(ImagePart.from_url("https://example.test/a.png"), MODEL)


def test_image_url_with_a_loader() -> None:
    seen: list[str] = []

    def loader(url: str) -> tuple[bytes, str]:
        seen.append(url)
        return GIF, "image/gif"

    block = _convert.image_block(ImagePart.from_url("https://example.test/a.gif"), MODEL, loader)
    assert block["image"]["format"] == "gif" and seen == ["https://example.test/a.gif"]


def test_assistant_blocks_order_and_redacted_reasoning() -> None:
    secret = b"\x00opaque"
    message = Message(
        role="assistant",
        content="Answer",
        reasoning="ignored: the kept blocks are sent",
        tool_calls=[{"id": "t1", "name": "f", "arguments": {"a": 1}}],
        provider_details={
            "bedrock": {
                "reasoning_content": [
                    {"reasoningText": {"text": "thinking", "signature": "sig"}},
                    {"redactedContent": base64.b64encode(secret).decode()},
                ]
            }
        },
    )
    assert _convert.assistant_blocks(message, MODEL) == [
        {"reasoningContent": {"reasoningText": {"text": "thinking", "signature": "sig"}}},
        {"reasoningContent": {"redactedContent": secret}},
        {"text": "Answer"},
        {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": 1}}},
    ]


# --------------------------------------------------------------------------- tools


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("any", "required"),
        ("get_time", ("named", "get_time")),
        ({"type": "function", "function": {"name": "f"}}, ("named", "f")),
        ({"type": "tool", "name": "g"}, ("named", "g")),
        ({"type": "any"}, "required"),
    ],
)
def test_normalise_tool_choice(choice: Any, expected: Any) -> None:
    assert _convert.normalise_tool_choice(choice) == expected


def test_unknown_tool_choice_shape() -> None:
    with pytest.raises(InvalidRequestError):
        _convert.normalise_tool_choice({"type": "sometimes"})


TOOL = {
    "type": "function",
    "function": {
        "name": "f",
        "description": "does f",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
        "strict": True,
    },
}


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (None, None),
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        ("f", {"tool": {"name": "f"}}),
    ],
)
def test_tool_config(choice: Any, wire: Any) -> None:
    kwargs, dropped = _call(tools=[TOOL], tool_choice=choice)
    expected: dict[str, Any] = {
        "tools": [
            {
                "toolSpec": {
                    "name": "f",
                    "description": "does f",
                    "inputSchema": {
                        "json": {"type": "object", "properties": {"a": {"type": "integer"}}}
                    },
                    "strict": True,
                }
            }
        ]
    }
    if wire is not None:
        expected["toolChoice"] = wire
    assert kwargs["toolConfig"] == expected
    assert dropped.names == []


def test_tool_choice_none_leaves_tools_out() -> None:
    kwargs, dropped = _call(tools=[TOOL], tool_choice="none")
    assert "toolConfig" not in kwargs and dropped.names == []


def test_tool_choice_none_with_tool_history_keeps_tools_and_reports() -> None:
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "tool_calls": [{"id": "t1", "name": "f", "arguments": {}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "1"},
    ]
    kwargs, dropped = _call(messages=history, tools=[TOOL], tool_choice="none")
    assert "toolChoice" not in kwargs["toolConfig"]
    assert dropped.names == ["tool_choice"]


def test_parallel_tool_calls_false_is_reported() -> None:
    _, dropped = _call(tools=[TOOL], parallel_tool_calls=False)
    assert dropped.names == ["parallel_tool_calls"]
    _, dropped = _call(tools=[TOOL], parallel_tool_calls=True)
    assert dropped.names == []


# --------------------------------------------------------------------------- structured output


def test_structured_output_schema_is_inlined_and_closed() -> None:
    from pydantic import BaseModel

    class Inner(BaseModel):
        v: int

    class Outer(BaseModel):
        inner: Inner
        note: str | None = None

    kwargs, _ = _call(response_format=Outer)
    definition = kwargs["outputConfig"]["textFormat"]["structure"]["jsonSchema"]
    import json

    schema = json.loads(definition["schema"])
    assert "$defs" not in schema and "$ref" not in str(schema)
    assert schema["properties"]["inner"]["additionalProperties"] is False
    assert schema["required"] == ["inner", "note"]
    assert definition["name"] == "Outer"


def test_structured_output_name_is_sanitised() -> None:
    schema = {"title": "my schema!", "type": "object", "properties": {}}
    kwargs, _ = _call(response_format=schema)
    assert kwargs["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["name"] == "my_schema_"


def test_structured_output_by_tool_when_not_native() -> None:
    schema = {"title": "Point", "type": "object", "properties": {"x": {"type": "integer"}}}
    call = _convert.converse_call(
        _request(response_format=schema), MODEL, unsupported=Dropped(), native_structured=False
    )
    assert call.structured_tool == "Point"
    assert "outputConfig" not in call.kwargs
    assert call.kwargs["toolConfig"]["toolChoice"] == {"tool": {"name": "Point"}}


def test_extra_kwargs_are_merged_one_level() -> None:
    kwargs, _ = _call(
        max_tokens=5,
        inferenceConfig={"topP": 0.5},
        additionalModelRequestFields={"top_k": 3},
    )
    assert kwargs["inferenceConfig"] == {"maxTokens": 5, "topP": 0.5}
    assert kwargs["additionalModelRequestFields"] == {"top_k": 3}


# --------------------------------------------------------------------------- results


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "error"),
        ("malformed_tool_use", "error"),
        ("something_new", "stop"),
        (None, None),
    ],
)
def test_finish_reason(stop: str | None, finish: str | None) -> None:
    assert _convert.finish_reason(stop) == finish


def test_token_usage_counts_cache_reads_and_writes_in_the_prompt() -> None:
    usage = _convert.token_usage(
        {
            "inputTokens": 10,
            "outputTokens": 4,
            "totalTokens": 44,
            "cacheReadInputTokens": 20,
            "cacheWriteInputTokens": 10,
        }
    )
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (40, 4, 44)
    assert usage.cached_prompt_tokens == 20
    assert _convert.token_usage({"inputTokens": 3, "outputTokens": 2}).cached_prompt_tokens is None


RESULT: dict[str, Any] = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"reasoningText": {"text": "Hmm. ", "signature": "s1"}}},
                {"reasoningContent": {"redactedContent": b"\x01\x02"}},
                {"text": "Let me look."},
                {"toolUse": {"toolUseId": "tu1", "name": "f", "input": {"a": 1}}},
            ],
        }
    },
    "stopReason": "tool_use",
    "usage": {"inputTokens": 5, "outputTokens": 6, "totalTokens": 11},
    "metrics": {"latencyMs": 9},
    "ResponseMetadata": {"RequestId": "rid-1"},
}


def test_completion_response() -> None:
    response = _convert.completion_response(RESULT, MODEL)
    assert response.id == "rid-1" and response.model == MODEL and response.provider == "bedrock"
    assert response.text == "Let me look."
    assert response.reasoning == "Hmm. "
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls or []] == [
        ("tu1", "f", {"a": 1})
    ]
    assert response.finish_reason == "tool_calls"
    assert response.message.provider_details == {
        "bedrock": {
            "reasoning_content": [
                {"reasoningText": {"text": "Hmm. ", "signature": "s1"}},
                {"redactedContent": base64.b64encode(b"\x01\x02").decode()},
            ]
        }
    }
    assert response.provider_details == {"stop_reason": "tool_use", "latency_ms": 9}


STREAM_EVENTS: list[dict[str, Any]] = [
    {"messageStart": {"role": "assistant"}},
    {
        "contentBlockDelta": {
            "contentBlockIndex": 0,
            "delta": {"reasoningContent": {"text": "Hmm. "}},
        }
    },
    {
        "contentBlockDelta": {
            "contentBlockIndex": 0,
            "delta": {"reasoningContent": {"signature": "s1"}},
        }
    },
    {"contentBlockStop": {"contentBlockIndex": 0}},
    {
        "contentBlockDelta": {
            "contentBlockIndex": 1,
            "delta": {"reasoningContent": {"redactedContent": b"\x01\x02"}},
        }
    },
    {"contentBlockStop": {"contentBlockIndex": 1}},
    {"contentBlockDelta": {"contentBlockIndex": 2, "delta": {"text": "Let me "}}},
    {"contentBlockDelta": {"contentBlockIndex": 2, "delta": {"text": "look."}}},
    {"contentBlockStop": {"contentBlockIndex": 2}},
    {
        "contentBlockStart": {
            "contentBlockIndex": 3,
            "start": {"toolUse": {"toolUseId": "tu1", "name": "f"}},
        }
    },
    {"contentBlockDelta": {"contentBlockIndex": 3, "delta": {"toolUse": {"input": '{"a"'}}}},
    {"contentBlockDelta": {"contentBlockIndex": 3, "delta": {"toolUse": {"input": ": 1}"}}}},
    {"contentBlockStop": {"contentBlockIndex": 3}},
    {"messageStop": {"stopReason": "tool_use"}},
    {"metadata": {"usage": {"inputTokens": 5, "outputTokens": 6, "totalTokens": 11}}},
]


def _translate(events: list[dict[str, Any]], **kwargs: Any) -> list[Any]:
    translator = _convert.StreamTranslator(MODEL, "rid-1", **kwargs)
    chunks = [c for c in (translator.feed(e) for e in events) if c is not None]
    last = translator.close()
    return [*chunks, last] if last is not None else chunks


def test_stream_accumulates_to_the_non_streaming_response() -> None:
    from llmgate._streaming import accumulate

    chunks = _translate(STREAM_EVENTS)
    streamed = accumulate(chunks)
    whole = _convert.completion_response(RESULT, MODEL)
    assert streamed.message == whole.message
    assert streamed.usage == whole.usage
    assert streamed.finish_reason == whole.finish_reason
    assert [c for c in chunks if c.finish_reason] == [chunks[-1]]
    assert chunks[-1].usage is not None


def test_stream_without_metadata_still_finishes() -> None:
    chunks = _translate(STREAM_EVENTS[:-1])
    assert chunks[-1].finish_reason == "tool_calls"


def test_stream_cut_before_message_stop_raises() -> None:
    translator = _convert.StreamTranslator(MODEL)
    translator.feed(STREAM_EVENTS[6])
    with pytest.raises(ProviderConnectionError, match="messageStop"):
        translator.close()


def test_stream_structured_tool_becomes_text() -> None:
    events = [
        {
            "contentBlockStart": {
                "contentBlockIndex": 0,
                "start": {"toolUse": {"toolUseId": "x", "name": "Point"}},
            }
        },
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"x":'}}}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": " 1}"}}}},
        {"messageStop": {"stopReason": "tool_use"}},
        {"metadata": {"usage": {}}},
    ]
    chunks = _translate(events, structured_tool="Point")
    assert "".join(c.delta for c in chunks) == '{"x": 1}'
    assert not any(c.tool_call_deltas for c in chunks)
    assert chunks[-1].finish_reason == "stop"


def test_tool_delta_without_start_still_gets_an_index() -> None:
    chunks = _translate(
        [
            {"contentBlockDelta": {"contentBlockIndex": 4, "delta": {"toolUse": {"input": "{}"}}}},
            {"messageStop": {"stopReason": "tool_use"}},
        ]
    )
    assert chunks[0].tool_call_deltas[0].index == 0


# --------------------------------------------------------------------------- embeddings


def _embedding_request(**kwargs: Any) -> EmbeddingRequest:
    return EmbeddingRequest(model="bedrock/x", input=["a"], **kwargs)


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("amazon.titan-embed-text-v2:0", "titan"),
        ("amazon.titan-embed-text-v1", "titan"),
        ("cohere.embed-english-v3", "cohere"),
        ("us.cohere.embed-v4:0", "cohere"),
        ("arn:aws:bedrock:us-east-1::foundation-model/cohere.embed-multilingual-v3", "cohere"),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", None),
    ],
)
def test_embedding_family(model: str, family: str | None) -> None:
    assert _convert.embedding_family(model) == family


def test_titan_body() -> None:
    dropped = Dropped()
    body = _convert.titan_body(
        _embedding_request(dimensions=512, user="u", encoding_format="int8"),
        "amazon.titan-embed-text-v2:0",
        dropped,
    )
    assert body == {"dimensions": 512}
    assert dropped.names == ["user", "encoding_format"]


def test_titan_v1_has_a_fixed_size() -> None:
    dropped = Dropped()
    assert (
        _convert.titan_body(_embedding_request(dimensions=8), "amazon.titan-embed-text-v1", dropped)
        == {}
    )
    assert dropped.names == ["dimensions"]


def test_cohere_body_defaults_and_task_type() -> None:
    dropped = Dropped()
    assert _convert.cohere_body(_embedding_request(), "cohere.embed-english-v3", dropped) == {
        "input_type": "search_document",
        "embedding_types": ["float"],
    }
    body = _convert.cohere_body(
        _embedding_request(task_type="clustering", title="t"), "cohere.embed-english-v3", dropped
    )
    assert body["input_type"] == "clustering"
    assert dropped.names == ["title"]


def test_split_embedding_extras() -> None:
    call, body = _convert.split_embedding_extras({"trace": "ENABLED", "normalize": True})
    assert call == {"trace": "ENABLED"} and body == {"normalize": True}


def test_embedding_payloads() -> None:
    assert _convert.titan_vector({"embedding": [1, 2], "inputTextTokenCount": 3}) == ([1.0, 2.0], 3)
    assert _convert.titan_vector({"embeddingsByType": {"float": [0.5]}}) == ([0.5], 0)
    assert _convert.cohere_vectors({"embeddings": [[1, 2]]}) == [[1.0, 2.0]]
    assert _convert.cohere_vectors({"embeddings": {"float": [[3]]}}) == [[3.0]]
    with pytest.raises(InvalidRequestError):
        _convert.cohere_vectors({"embeddings": {"int8": [[3]]}})


# --------------------------------------------------------------------------- errors


def _client_error(
    code: str, status: int | None, headers: dict[str, str] | None = None, *, stream: bool = False
) -> botocore.exceptions.ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": "went wrong"}}
    if status is not None:
        response["ResponseMetadata"] = {
            "RequestId": "rid-5",
            "HTTPStatusCode": status,
            "HTTPHeaders": headers or {},
        }
    cls = botocore.exceptions.EventStreamError if stream else botocore.exceptions.ClientError
    return cls(response, "ConverseStream" if stream else "Converse")


@pytest.mark.parametrize(
    ("code", "status", "error_class"),
    [
        ("ThrottlingException", 429, RateLimitError),
        ("ServiceQuotaExceededException", 400, RateLimitError),
        ("AccessDeniedException", 403, AuthError),
        ("UnrecognizedClientException", 403, AuthError),
        ("ExpiredTokenException", 400, AuthError),
        ("ValidationException", 400, BadRequestError),
        ("ResourceNotFoundException", 404, BadRequestError),
        ("ModelTimeoutException", 408, ProviderTimeoutError),
        ("ModelErrorException", 424, ServerError),
        ("ModelNotReadyException", 429, ServerError),
        ("InternalServerException", 500, ServerError),
        ("ServiceUnavailableException", 503, ServerError),
        ("SomethingNew", 502, ServerError),
        ("SomethingNew", 418, BadRequestError),
    ],
)
def test_client_error_table(code: str, status: int, error_class: type) -> None:
    error = map_bedrock_error(_client_error(code, status), provider="bedrock", model=MODEL)
    assert type(error) is error_class
    assert error.status_code == status  # type: ignore[attr-defined]
    assert error.request_id == "rid-5"  # type: ignore[attr-defined]
    assert code in str(error)


@pytest.mark.parametrize(
    ("code", "error_class", "status", "retryable"),
    [
        ("throttlingException", RateLimitError, 429, True),
        ("internalServerException", ServerError, 500, True),
        ("serviceUnavailableException", ServerError, 503, True),
        ("modelStreamErrorException", ServerError, 500, True),
        ("validationException", BadRequestError, 400, False),
    ],
)
def test_event_stream_error_codes(
    code: str, error_class: type, status: int, retryable: bool
) -> None:
    error = map_bedrock_error(
        _client_error(code, None, stream=True), provider="bedrock", model=MODEL
    )
    assert type(error) is error_class
    assert error.status_code == status  # type: ignore[attr-defined]
    assert error.retryable is retryable  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"x-amz-retry-after": "750"}, 0.75), ({"retry-after": "4"}, 4.0), ({}, None)],
)
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    error = map_bedrock_error(
        _client_error("ThrottlingException", 429, headers), provider="bedrock", model=MODEL
    )
    assert error.retry_after == seconds  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("exc", "error_class"),
    [
        (botocore.exceptions.NoCredentialsError(), ConfigError),
        (botocore.exceptions.PartialCredentialsError(provider="env", cred_var="x"), ConfigError),
        (botocore.exceptions.NoRegionError(), ConfigError),
        (botocore.exceptions.ParamValidationError(report="bad"), InvalidRequestError),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), ProviderTimeoutError),
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="http://x"), ProviderTimeoutError),
        (
            botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"),
            ProviderConnectionError,
        ),
        (
            botocore.exceptions.ConnectionClosedError(endpoint_url="http://x"),
            ProviderConnectionError,
        ),
        (botocore.eventstream.ChecksumMismatch(1, 2), ProviderConnectionError),
        (RuntimeError("odd"), ProviderAPIError),
    ],
)
def test_other_errors(exc: BaseException, error_class: type) -> None:
    error = map_bedrock_error(exc, provider="bedrock", model=MODEL)
    assert type(error) is error_class


def test_llmgate_errors_pass_through() -> None:
    original = LLMGateError("already mapped")
    assert map_bedrock_error(original, provider="bedrock", model=MODEL) is original
