"""Gemini translation functions: requests, results, stream events and the error table."""

from __future__ import annotations

import base64
import json
import warnings
from typing import Any

import pytest

pytest.importorskip("google.genai", minversion="3", reason="google-genai 3.x needs Python 3.11")

import httpx2
from google.genai import errors as genai_errors
from google.genai import types as gt
from pydantic import BaseModel

from llmgate.exceptions import (
    AuthError,
    BadRequestError,
    InvalidRequestError,
    ProviderAPIError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
    VisionNotSupported,
)
from llmgate.providers.gemini import _convert as convert
from llmgate.types import (
    CompletionRequest,
    EmbeddingRequest,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
FILE_URI = "https://generativelanguage.googleapis.com/v1beta/files/abc123"


def refuse(url: str) -> tuple[bytes, str]:
    raise VisionNotSupported("downloads are off", provider="gemini", model="m")


def request(**fields: Any) -> CompletionRequest:
    fields.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return CompletionRequest.model_validate({"model": "gemini-2.5-flash", **fields})


def contents_of(messages: list[Message]) -> tuple[list[str], list[gt.Content]]:
    """build_contents, its dict output read the way the SDK reads it."""
    system, contents = convert.build_contents(messages, refuse)
    return system, [gt.Content.model_validate(content) for content in contents]


def response(parts: list[dict[str, Any]], **extra: Any) -> gt.GenerateContentResponse:
    candidate = {"content": {"role": "model", "parts": parts}, "finish_reason": "STOP"}
    candidate.update(extra.pop("candidate", {}))
    payload = {"candidates": [candidate], "response_id": "r1", **extra}
    return gt.GenerateContentResponse._from_response(response=payload, kwargs={})


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize(
    ("choice", "mode", "names"),
    [
        ("auto", "AUTO", None),
        ("none", "NONE", None),
        ("required", "ANY", None),
        ("get_time", "ANY", ["get_time"]),
        ({"type": "function", "function": {"name": "get_time"}}, "ANY", ["get_time"]),
        ({"type": "tool", "name": "get_time"}, "ANY", ["get_time"]),
        ({"type": "any"}, "ANY", None),
    ],
)
def test_tool_choice(choice: Any, mode: str, names: list[str] | None) -> None:
    config = convert.build_tool_config(choice).function_calling_config
    assert config is not None and config.mode is not None
    assert config.mode.value == mode
    assert config.allowed_function_names == names


def test_unreadable_tool_choice_is_refused() -> None:
    with pytest.raises(InvalidRequestError):
        convert.build_tool_config({"type": "mystery"})


def test_contents_collect_system_and_group_tool_results() -> None:
    messages = [
        Message(role="system", content="Be brief."),
        Message(role="user", content="Weather and time?"),
        Message(
            role="assistant",
            tool_calls=[
                ToolCall(id="a", name="get_weather", arguments={"city": "Paris"}),
                ToolCall(id="b", name="get_time", arguments={"city": "Oslo"}),
            ],
        ),
        Message(role="tool", tool_call_id="a", content="18C"),
        Message(role="tool", tool_call_id="b", content="09:00"),
        Message(role="system", content="Answer in French."),
    ]
    system, contents = contents_of(messages)
    assert system == ["Be brief.", "Answer in French."]
    assert [c.role for c in contents] == ["user", "model", "user"]
    results = [p.function_response for p in contents[2].parts or []]
    assert [(r.name, r.response, r.id) for r in results if r] == [
        ("get_weather", {"result": "18C"}, None),
        ("get_time", {"result": "09:00"}, None),
    ]


def test_tool_result_for_an_unknown_call_needs_a_name() -> None:
    messages = [
        Message(role="user", content="x"),
        Message(role="tool", tool_call_id="zz", content="1"),
    ]
    with pytest.raises(InvalidRequestError, match="function name"):
        convert.build_contents(messages, refuse)
    named = Message(role="tool", tool_call_id="zz", name="lookup", content="1")
    _, contents = contents_of([messages[0], named])
    response = (contents[1].parts or [])[0].function_response
    assert response is not None and response.name == "lookup"


def test_kept_parts_are_sent_back_with_signature_and_native_ids() -> None:
    kept = [
        {"text": "Thinking...", "thought": True},
        {"function_call": {"id": "fc-9", "name": "get_time", "args": {"city": "Lima"}}},
    ]
    kept[1]["thought_signature"] = base64.urlsafe_b64encode(b"sig").decode()
    assistant = Message(
        role="assistant",
        tool_calls=[ToolCall(id="fc-9", name="get_time", arguments={"city": "Lima"})],
        provider_details={"gemini": {"parts": kept}},
    )
    messages = [
        Message(role="user", content="time?"),
        assistant,
        Message(role="tool", tool_call_id="fc-9", content="09:00"),
    ]
    _, contents = contents_of(messages)
    model_parts = contents[1].parts or []
    assert model_parts[1].thought_signature == b"sig"
    assert model_parts[1].function_call is not None and model_parts[1].function_call.id == "fc-9"
    result = (contents[2].parts or [])[0].function_response
    assert result is not None and result.id == "fc-9"


def test_edited_message_drops_kept_parts() -> None:
    kept = [{"text": "Original answer", "thought_signature": "c2ln"}]
    edited = Message(
        role="assistant", content="Edited", provider_details={"gemini": {"parts": kept}}
    )
    _, contents = contents_of([Message(role="user", content="q"), edited])
    parts = contents[1].parts or []
    assert [(p.text, p.thought_signature) for p in parts] == [("Edited", None)]


def test_empty_assistant_message_is_left_out() -> None:
    messages = [Message(role="user", content="a"), Message(role="assistant", content="")]
    _, contents = contents_of(messages)
    assert [c.role for c in contents] == ["user"]


def test_images() -> None:
    def part(image: ImagePart, load: Any = refuse) -> gt.Part:
        return gt.Part.model_validate(convert.image_part(image, load))

    as_bytes = part(ImagePart.from_bytes(PNG, "image/png"))
    assert as_bytes.inline_data is not None and as_bytes.inline_data.data == PNG
    uploaded = part(ImagePart.from_url(FILE_URI))
    assert uploaded.file_data is not None and uploaded.file_data.file_uri == FILE_URI
    assert uploaded.file_data.mime_type is None
    fetched = part(
        ImagePart.from_url("https://example.test/cat.jpg"),
        lambda url: (b"\xff\xd8\xff", "image/jpeg"),
    )
    assert fetched.inline_data is not None and fetched.inline_data.mime_type == "image/jpeg"
    with pytest.raises(VisionNotSupported):
        part(ImagePart.from_url("https://example.test/cat.jpg"))


def test_files_api_uri_recognised() -> None:
    assert convert.is_file_uri(FILE_URI)
    assert not convert.is_file_uri("https://example.test/v1beta/files/abc")
    assert not convert.is_file_uri(FILE_URI + "?alt=media")


def test_generation_config() -> None:
    config = convert.generate_config(
        request(max_tokens=64, temperature=0.5, top_p=0.9, stop=["END"], seed=7, timeout=0.2),
        strict=False,
    )
    assert config is not None
    assert (config.max_output_tokens, config.temperature, config.top_p) == (64, 0.5, 0.9)
    assert config.stop_sequences == ["END"] and config.seed == 7
    assert config.http_options is not None and config.http_options.timeout == 200
    assert config.automatic_function_calling is not None
    assert config.automatic_function_calling.disable is True


def test_no_options_no_config() -> None:
    assert convert.generate_config(request(), strict=False) is None
    kwargs = convert.generate_kwargs(
        request(messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]),
        refuse,
        strict=False,
    )
    assert kwargs["config"].system_instruction.parts[0].text == "S"


def test_tiny_timeout_is_at_least_one_millisecond() -> None:
    options = convert.timeout_options(0.0001)
    assert options is not None and options.timeout == 1
    assert convert.timeout_options(None) is None


class Inner(BaseModel):
    city: str


class Outer(BaseModel):
    name: str
    home: Inner


def test_structured_output_uses_the_gemini_dialect() -> None:
    config = convert.generate_config(request(response_format=Outer), strict=False)
    assert config is not None
    assert config.response_mime_type == "application/json"
    schema = config.response_json_schema
    assert isinstance(schema, dict)
    assert "$defs" not in json.dumps(schema) and "$ref" not in json.dumps(schema)
    assert schema["properties"]["home"]["properties"]["city"]["type"] == "string"


def test_tools_keep_their_json_schema() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "f",
            "description": "d",
            "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}},
        },
    }
    config = convert.generate_config(request(tools=[tool]), strict=False)
    assert config is not None and config.automatic_function_calling is not None
    assert config.automatic_function_calling.disable is True
    declaration = (config.tools or [])[0].function_declarations[0]  # type: ignore[union-attr,index]
    assert declaration.name == "f"
    assert declaration.parameters_json_schema == tool["function"]["parameters"]


def test_unknown_parameters_warn_or_refuse() -> None:
    with pytest.warns(UserWarning, match="reasoning_effort"):
        config = convert.generate_config(request(reasoning_effort="high"), strict=False)
    assert config is None
    with pytest.raises(InvalidRequestError, match="reasoning_effort"):
        convert.generate_config(request(reasoning_effort="high"), strict=True)
    with pytest.warns(UserWarning, match="parallel_tool_calls"):
        convert.generate_config(request(parallel_tool_calls=False), strict=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convert.generate_config(request(parallel_tool_calls=True), strict=False)


def test_bad_sdk_option_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequestError, match="generation options"):
        convert.generate_config(request(candidate_count="many"), strict=False)


def test_embedding_config() -> None:
    def embed(**fields: Any) -> gt.EmbedContentConfig:
        config = convert.embed_config(
            EmbeddingRequest(model="gemini-embedding-001", input=["x"], **fields), strict=False
        )
        return config or gt.EmbedContentConfig()

    assert (
        convert.embed_config(
            EmbeddingRequest(model="gemini-embedding-001", input=["x"]), strict=False
        )
        is None
    )

    config = embed(task_type="SEMANTIC_SIMILARITY", dimensions=256, timeout=1.5)
    assert (config.task_type, config.output_dimensionality) == ("SEMANTIC_SIMILARITY", 256)
    assert config.http_options is not None and config.http_options.timeout == 1500
    assert embed(input_type="search_query").task_type == "RETRIEVAL_QUERY"
    titled = embed(title="Doc")
    assert (titled.task_type, titled.title) == ("RETRIEVAL_DOCUMENT", "Doc")
    with pytest.warns(UserWarning, match="truncate"):
        embed(truncate="END")
    with pytest.warns(UserWarning, match="user"):
        embed(user="u-1")
    with pytest.warns(UserWarning, match="input_type"):
        embed(input_type="image")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        embed(encoding_format="float")


# --------------------------------------------------------------------------- results


@pytest.mark.parametrize(
    ("native", "calls", "expected"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        ("MAX_TOKENS", False, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
        ("MALFORMED_FUNCTION_CALL", True, "error"),
        ("OTHER", False, "error"),
        ("FINISH_REASON_UNSPECIFIED", False, None),
        (None, False, None),
    ],
)
def test_finish_reasons(native: str | None, calls: bool, expected: str | None) -> None:
    assert convert.finish_reason(native, has_tool_calls=calls) == expected


def test_usage_counts_thoughts_as_completion() -> None:
    metadata = gt.GenerateContentResponseUsageMetadata(
        prompt_token_count=100,
        candidates_token_count=6,
        thoughts_token_count=4,
        cached_content_token_count=64,
        total_token_count=110,
    )
    usage = convert.usage_from(metadata)
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 10, 110)
    assert (usage.cached_prompt_tokens, usage.reasoning_tokens) == (64, 4)
    assert convert.usage_from(None) is None


def test_response_with_reasoning_text_and_calls() -> None:
    signature = base64.b64encode(b"sig").decode()
    result = response(
        [
            {"text": "Plan.", "thought": True},
            {"text": "Checking."},
            {"function_call": {"name": "f", "args": {"a": 1}}, "thought_signature": signature},
            {"function_call": {"name": "g", "args": {}}},
        ],
        model_version="gemini-2.5-flash-001",
    )
    out = convert.response_from_sdk(result, "gemini-2.5-flash")
    assert out.text == "Checking." and out.reasoning == "Plan."
    assert out.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in out.tool_calls or []] == [
        ("call_r1_0", "f", {"a": 1}),
        ("call_r1_1", "g", {}),
    ]
    assert out.model == "gemini-2.5-flash-001"
    kept = (out.message.provider_details or {})["gemini"]["parts"]
    assert kept[2]["thought_signature"] == base64.urlsafe_b64encode(b"sig").decode()
    assert out.provider_details["gemini"]["finish_reason"] == "STOP"
    assert out.raw is result


def test_plain_answer_keeps_no_native_parts() -> None:
    out = convert.response_from_sdk(response([{"text": "Hi"}]), "m")
    assert out.message.provider_details is None
    assert out.id == "r1"


def test_native_call_ids_win_and_are_kept() -> None:
    out = convert.response_from_sdk(
        response([{"function_call": {"id": "fc-1", "name": "f", "args": {}}}]), "m"
    )
    assert [c.id for c in out.tool_calls or []] == ["fc-1"]
    assert out.message.provider_details is not None


def test_call_ids_without_a_response_id() -> None:
    assert convert.call_id(None, 2) == "call_2"
    assert convert.call_id("", 0) == "call_0"


def test_blocked_prompt_is_content_filter() -> None:
    result = gt.GenerateContentResponse._from_response(
        response={"prompt_feedback": {"block_reason": "SAFETY"}, "candidates": []}, kwargs={}
    )
    out = convert.response_from_sdk(result, "m")
    assert out.finish_reason == "content_filter" and out.text == ""
    assert out.provider_details["gemini"]["prompt_feedback"]["block_reason"] == "SAFETY"


def _events(parts: list[dict[str, Any]], finish: str = "STOP") -> list[gt.GenerateContentResponse]:
    events = []
    for i, part in enumerate(parts):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [part]}}
        usage: dict[str, Any] = {"prompt_token_count": 5, "total_token_count": 5}
        if i == len(parts) - 1:
            candidate["finish_reason"] = finish
            usage = {"prompt_token_count": 5, "candidates_token_count": 3, "total_token_count": 8}
        payload = {"candidates": [candidate], "response_id": "r1", "usage_metadata": usage}
        events.append(gt.GenerateContentResponse._from_response(response=payload, kwargs={}))
    return events


def test_stream_translator_merges_split_text_like_a_whole_response() -> None:
    signature = base64.b64encode(b"s").decode()
    streamed = [
        {"text": "Six times", "thought": True},
        {"text": " seven.", "thought": True},
        {"text": "4"},
        {"text": "2"},
        {"text": "", "thought_signature": signature},
    ]
    translator = convert.StreamTranslator("m")
    chunks = [c for e in _events(streamed) if (c := translator.feed(e)) is not None]
    final = translator.finish()
    assert [c.delta for c in chunks] == ["", "", "4", "2"]
    assert [c.reasoning_delta for c in chunks[:2]] == ["Six times", " seven."]
    assert all(c.usage is None and c.finish_reason is None for c in chunks)
    assert final.finish_reason == "stop"
    assert final.usage is not None and final.usage.total_tokens == 8
    whole = convert.response_from_sdk(
        response(
            [
                {"text": "Six times seven.", "thought": True},
                {"text": "42", "thought_signature": signature},
            ]
        ),
        "m",
    )
    assert final.provider_details == whole.message.provider_details


def test_stream_tool_calls_arrive_whole() -> None:
    translator = convert.StreamTranslator("m")
    events = _events([{"function_call": {"name": "f", "args": {"city": "Paris"}}}])
    chunk = translator.feed(events[0])
    assert chunk is not None and chunk.tool_call_deltas is not None
    delta = chunk.tool_call_deltas[0]
    assert (delta.index, delta.id, delta.name) == (0, "call_r1_0", "f")
    assert json.loads(delta.arguments_delta) == {"city": "Paris"}
    assert translator.finish().finish_reason == "tool_calls"


def test_stream_without_content_still_finishes() -> None:
    translator = convert.StreamTranslator("m")
    final = translator.finish()
    assert final.finish_reason is None and final.usage is not None


def test_embedding_response() -> None:
    result = gt.EmbedContentResponse._from_response(
        response={
            "embeddings": [{"values": [0.5, 1.0]}, {"values": [0.25, 0.0]}],
            "usage_metadata": {"prompt_token_count": 9},
        },
        kwargs={},
    )
    out = convert.embedding_response_from_sdk(result, "gemini-embedding-001")
    assert out.embeddings == [[0.5, 1.0], [0.25, 0.0]]
    assert out.usage.prompt_tokens == 9


# --------------------------------------------------------------------------- errors


def api_error(code: int, body: dict[str, Any]) -> genai_errors.APIError:
    try:
        genai_errors.APIError.raise_error(code, body, None)
    except genai_errors.APIError as exc:
        return exc
    raise AssertionError("raise_error did not raise")


def test_retry_info_gives_retry_after() -> None:
    body = {
        "error": {
            "code": 429,
            "message": "Quota exceeded",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}],
        }
    }
    error = convert.map_gemini_error(api_error(429, body), "m")
    assert isinstance(error, RateLimitError)
    assert (error.retry_after, error.status_code, error.message) == (37.0, 429, "Quota exceeded")


def test_invalid_api_key_is_an_auth_error() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            ],
        }
    }
    error = convert.map_gemini_error(api_error(400, body), "m")
    assert isinstance(error, AuthError) and error.status_code == 400


def test_status_name_when_code_is_missing() -> None:
    exc = genai_errors.APIError(
        0, {"error": {"message": "slow down", "status": "RESOURCE_EXHAUSTED"}}
    )
    assert isinstance(convert.map_gemini_error(exc, "m"), RateLimitError)
    exc = genai_errors.APIError(0, {"error": {"message": "late", "status": "DEADLINE_EXCEEDED"}})
    assert isinstance(convert.map_gemini_error(exc, "m"), ProviderTimeoutError)


@pytest.mark.parametrize(
    ("code", "cls"), [(400, BadRequestError), (404, BadRequestError), (503, ServerError)]
)
def test_status_codes(code: int, cls: type) -> None:
    body = {"error": {"code": code, "message": "x", "status": "X"}}
    assert type(convert.map_gemini_error(api_error(code, body), "m")) is cls


class ServerDisconnectedError(Exception):
    """Named like aiohttp's, which google-genai uses for async calls when installed."""


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (genai_errors.UnknownApiResponseError("bad frame"), ProviderAPIError),
        (json.JSONDecodeError("bad", "x", 0), ProviderAPIError),
        (ValueError("routing_config parameter is only supported in Vertex"), InvalidRequestError),
        (httpx2.ReadTimeout("read timed out"), ProviderTimeoutError),
        (httpx2.ConnectError("refused"), ProviderConnectionError),
        (ServerDisconnectedError("gone"), ProviderConnectionError),
        (RuntimeError("odd"), ProviderAPIError),
    ],
)
def test_error_table(exc: BaseException, cls: type) -> None:
    assert type(convert.map_gemini_error(exc, "m")) is cls


def test_llmgate_errors_pass_through() -> None:
    error = VisionNotSupported("no", provider="gemini", model="m")
    assert convert.map_gemini_error(error, "m") is error


def test_text_parts_of_user_messages() -> None:
    message = Message(role="user", content=[TextPart(text="a"), TextPart(text="b")])
    _, contents = contents_of([message])
    assert [p.text for p in contents[0].parts or []] == ["a", "b"]


def test_system_text_opens_the_first_user_turn_when_the_model_has_no_system_role() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Use French."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    kwargs = convert.generate_kwargs(
        request(messages=messages), refuse, strict=False, system_instruction=False
    )
    assert kwargs["config"] is None
    first = gt.Content.model_validate(kwargs["contents"][0])
    assert (first.role, [p.text for p in first.parts or []]) == (
        "user",
        ["Be brief.\n\nUse French.", "Hi"],
    )
    kwargs = convert.generate_kwargs(
        request(
            messages=[{"role": "system", "content": "S"}, {"role": "assistant", "content": "A"}]
        ),
        refuse,
        strict=False,
        system_instruction=False,
    )
    turns = [gt.Content.model_validate(c) for c in kwargs["contents"]]
    assert [(c.role, (c.parts or [])[0].text) for c in turns] == [("user", "S"), ("model", "A")]


def test_unreadable_kept_parts_are_ignored() -> None:
    odd = Message(
        role="assistant", content="Hi", provider_details={"gemini": {"parts": [{"nope": 1}]}}
    )
    _, contents = contents_of([Message(role="user", content="q"), odd])
    assert [p.text for p in contents[1].parts or []] == ["Hi"]
