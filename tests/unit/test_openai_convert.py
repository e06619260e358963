"""Pure translation of the OpenAI provider: requests to wire arguments, wire JSON to results."""

from __future__ import annotations

import base64
import struct
import warnings
from typing import Any

import pytest
from pydantic import BaseModel

from llmgate._streaming import accumulate
from llmgate.exceptions import DroppedParameterWarning, InvalidRequestError
from llmgate.providers.openai._convert import (
    ChunkTranslator,
    MalformedFrame,
    SSEDecoder,
    WireError,
    chat_kwargs,
    embedding_kwargs,
    embeddings_from_wire,
    finish_reason,
    response_from_wire,
    usage_from_wire,
    wire_message,
    wire_tool_choice,
)
from llmgate.types import (
    CompletionRequest,
    EmbeddingRequest,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
)

ACCEPTED = frozenset({"seed", "n", "reasoning_effort", "extra_body", "extra_headers"})


def request(**fields: Any) -> CompletionRequest:
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return CompletionRequest(model="openai/gpt-4o-mini", **fields)


def kwargs_for(
    req: CompletionRequest, *, compatible: bool = False, strict: bool = False, stream: bool = False
) -> dict[str, Any]:
    return chat_kwargs(
        req,
        "gpt-4o-mini",
        provider="openai",
        accepted=ACCEPTED,
        compatible=compatible,
        strict=strict,
        stream=stream,
    )


# --------------------------------------------------------------------------- requests


def test_max_tokens_name_depends_on_the_vendor() -> None:
    assert kwargs_for(request(max_tokens=5))["max_completion_tokens"] == 5
    compat = kwargs_for(request(max_tokens=5), compatible=True)
    assert compat["max_tokens"] == 5 and "max_completion_tokens" not in compat


def test_sampling_stop_and_timeout() -> None:
    sent = kwargs_for(request(temperature=0.2, top_p=0.9, stop="END", timeout=3.5))
    assert (sent["temperature"], sent["top_p"], sent["stop"], sent["timeout"]) == (
        0.2,
        0.9,
        ["END"],
        3.5,
    )
    assert "stream" not in sent


def test_stream_asks_for_usage() -> None:
    sent = kwargs_for(request(), stream=True)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


def test_user_images_by_url_and_bytes() -> None:
    message = Message(
        role="user",
        content=[
            TextPart(text="look"),
            ImagePart.from_url("https://x.test/a.png", detail="low"),
            ImagePart.from_bytes(b"\x89PNG", "image/png"),
        ],
    )
    wire = wire_message(message, "openai")
    assert wire["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()},
        },
    ]


def test_text_only_parts_are_sent_as_a_string() -> None:
    message = Message(role="user", content=[TextPart(text="a"), TextPart(text="b")])
    assert wire_message(message, "openai")["content"] == "ab"


def test_system_and_tool_messages() -> None:
    assert wire_message(Message(role="system", content="rules"), "openai") == {
        "role": "system",
        "content": "rules",
    }
    tool = Message(role="tool", tool_call_id="call_1", content="18C")
    assert wire_message(tool, "openai") == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "18C",
    }


def test_assistant_tool_calls_carry_json_string_arguments() -> None:
    message = Message.model_validate(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
            ],
        }
    )
    wire = wire_message(message, "openai")
    assert wire["content"] is None
    assert wire["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    ]


def test_reasoning_goes_back_only_inside_a_tool_loop() -> None:
    details = {"deepseek": {"reasoning_field": "reasoning_content"}}
    finished = Message(role="assistant", content="42", reasoning="think", provider_details=details)
    assert "reasoning_content" not in wire_message(finished, "deepseek")
    looping = Message(
        role="assistant",
        reasoning="think",
        tool_calls=[ToolCall(id="c1", name="f", arguments={})],
        provider_details=details,
    )
    assert wire_message(looping, "deepseek")["reasoning_content"] == "think"
    assert "reasoning_content" not in wire_message(looping, "openai"), "another vendor's details"


def test_refusal_round_trips() -> None:
    message = Message(
        role="assistant", content="", provider_details={"openai": {"refusal": "I can't."}}
    )
    assert wire_message(message, "openai")["refusal"] == "I can't."


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("any", "required"),
        ("get_time", {"type": "function", "function": {"name": "get_time"}}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            {"type": "function", "function": {"name": "get_time"}},
        ),
        (
            {"type": "tool", "name": "get_time"},
            {"type": "function", "function": {"name": "get_time"}},
        ),
        ({"type": "auto"}, "auto"),
    ],
)
def test_tool_choice_shapes(choice: Any, expected: Any) -> None:
    assert wire_tool_choice(choice) == expected


def test_tool_choice_without_a_name_is_rejected() -> None:
    with pytest.raises(InvalidRequestError):
        wire_tool_choice({"type": "function", "function": {}})


def test_tools_and_parallel_flag() -> None:
    tool = {
        "type": "function",
        "function": {"name": "f", "description": "d", "parameters": {"type": "object"}},
    }
    sent = kwargs_for(request(tools=[tool], tool_choice="f", parallel_tool_calls=False))
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {"name": "f", "parameters": {"type": "object"}, "description": "d"},
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert sent["parallel_tool_calls"] is False
    bare = kwargs_for(request(tool_choice="auto", parallel_tool_calls=True))
    assert "parallel_tool_calls" not in bare and "tool_choice" not in bare, "no tools: not sent"


class Pet(BaseModel):
    name: str
    age: int | None = None


def test_response_format_is_strict_json_schema() -> None:
    sent = kwargs_for(request(response_format=Pet))["response_format"]
    assert sent["type"] == "json_schema"
    inner = sent["json_schema"]
    assert inner["name"] == "Pet" and inner["strict"] is True
    assert inner["schema"]["additionalProperties"] is False
    assert sorted(inner["schema"]["required"]) == ["age", "name"]


def test_response_format_name_is_sanitised_and_json_object_passes() -> None:
    schema = {"title": "a point!", "type": "object", "properties": {}}
    sent = kwargs_for(request(response_format=schema))["response_format"]
    assert sent["json_schema"]["name"] == "a_point_"
    json_mode = kwargs_for(request(response_format={"type": "json_object"}))
    assert json_mode["response_format"] == {"type": "json_object"}


def test_json_object_mode_puts_the_schema_in_the_system_prompt() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    sent = chat_kwargs(
        request(messages=messages, response_format=Pet),
        "deepseek-chat",
        provider="deepseek",
        accepted=ACCEPTED,
        compatible=True,
        strict=False,
        stream=False,
        structured_output="json_object",
    )
    assert sent["response_format"] == {"type": "json_object"}
    system = sent["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Be brief.\n\n")
    assert '"name":{"title":"Name","type":"string"}' in system["content"]
    assert len(sent["messages"]) == 2
    bare = chat_kwargs(
        request(response_format=Pet),
        "deepseek-chat",
        provider="deepseek",
        accepted=ACCEPTED,
        compatible=True,
        strict=False,
        stream=False,
        structured_output="json_object",
    )
    assert [m["role"] for m in bare["messages"]] == ["system", "user"]
    assert "JSON" in bare["messages"][0]["content"]


def test_unknown_parameter_is_dropped_with_a_warning_for_openai() -> None:
    with pytest.warns(DroppedParameterWarning, match="top_k"):
        sent = kwargs_for(request(top_k=3, seed=7))
    assert "top_k" not in sent and "extra_body" not in sent
    assert sent["seed"] == 7


def test_unknown_parameter_raises_in_strict_mode() -> None:
    with pytest.raises(InvalidRequestError, match="top_k"):
        kwargs_for(request(top_k=3), strict=True)


def test_unknown_parameter_goes_in_extra_body_for_compatible_vendors() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sent = kwargs_for(request(top_k=3, extra_body={"min_p": 0.1}), compatible=True, strict=True)
    assert sent["extra_body"] == {"top_k": 3, "min_p": 0.1}


def test_embedding_arguments() -> None:
    req = EmbeddingRequest(model="m", input=["a"], dimensions=8, user="u-1", timeout=2.0)
    sent = embedding_kwargs(
        req, "m", provider="openai", accepted=frozenset(), compatible=False, strict=False
    )
    assert sent == {
        "model": "m",
        "input": ["a"],
        "encoding_format": "base64",
        "dimensions": 8,
        "user": "u-1",
        "timeout": 2.0,
    }
    floats = EmbeddingRequest(model="m", input=["a"], encoding_format="float")
    sent = embedding_kwargs(
        floats, "m", provider="openai", accepted=frozenset(), compatible=False, strict=False
    )
    assert sent["encoding_format"] == "float"


def test_embedding_parameters_openai_lacks_are_dropped() -> None:
    req = EmbeddingRequest(model="m", input=["a"], task_type="RETRIEVAL_QUERY")
    with pytest.warns(DroppedParameterWarning, match="task_type"):
        embedding_kwargs(
            req, "m", provider="openai", accepted=frozenset(), compatible=False, strict=False
        )
    with pytest.raises(InvalidRequestError, match="input_type"):
        embedding_kwargs(
            EmbeddingRequest(model="m", input=["a"], input_type="search_query"),
            "m",
            provider="openai",
            accepted=frozenset(),
            compatible=False,
            strict=True,
        )


# --------------------------------------------------------------------------- results


def completion(message: dict[str, Any], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "model": "gpt-4o-mini-2024",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
        **extra,
    }


def test_response_text_usage_and_details() -> None:
    data = completion(
        {"role": "assistant", "content": "Hi"},
        system_fingerprint="fp_1",
        prompt_filter_results=[{"prompt_index": 0}],
    )
    data["choices"][0]["content_filter_results"] = {"hate": {"filtered": False}}
    response = response_from_wire(data, provider="azure", model="dep")
    assert (response.id, response.model, response.text) == ("chatcmpl-1", "gpt-4o-mini-2024", "Hi")
    assert response.finish_reason == "stop"
    assert response.usage.total_tokens == 6
    assert response.provider_details == {
        "system_fingerprint": "fp_1",
        "prompt_filter_results": [{"prompt_index": 0}],
        "content_filter_results": [{"hate": {"filtered": False}}],
    }
    assert response.message.provider_details is None


def test_response_tool_calls_without_ids_get_positional_ones() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
            {"id": "x", "type": "function", "function": {"name": "g", "arguments": {"b": 2}}},
        ],
    }
    response = response_from_wire(completion(message, "tool_calls"), provider="vllm", model="m")
    assert response.message.content is None
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls or []] == [
        ("call_0", "f", {"a": 1}),
        ("x", "g", {"b": 2}),
    ]
    assert response.finish_reason == "tool_calls"


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_field_is_remembered(field: str) -> None:
    response = response_from_wire(
        completion({"role": "assistant", "content": "42", field: "think"}), provider="p", model="m"
    )
    assert response.reasoning == "think"
    assert response.message.provider_details == {"p": {"reasoning_field": field}}


def test_list_content_and_refusal() -> None:
    message = {
        "role": "assistant",
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        "refusal": "no",
    }
    response = response_from_wire(completion(message), provider="openai", model="m")
    assert response.text == "ab"
    assert response.message.provider_details == {"openai": {"refusal": "no"}}


@pytest.mark.parametrize(
    ("wire", "unified"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("eos", "stop"),
        ("max_tokens", "length"),
        ("something_new", "stop"),
        (None, None),
    ],
)
def test_finish_reasons(wire: str | None, unified: str | None) -> None:
    assert finish_reason(wire) == unified


def test_usage_details_of_every_dialect() -> None:
    openai_usage = usage_from_wire(
        {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "total_tokens": 120,
            "prompt_tokens_details": {"cached_tokens": 64},
            "completion_tokens_details": {"reasoning_tokens": 12},
        }
    )
    assert openai_usage is not None
    assert (openai_usage.cached_prompt_tokens, openai_usage.reasoning_tokens) == (64, 12)
    deepseek = usage_from_wire(
        {"prompt_tokens": 10, "completion_tokens": 1, "prompt_cache_hit_tokens": 8}
    )
    assert deepseek is not None and deepseek.cached_prompt_tokens == 8
    assert deepseek.total_tokens == 11
    assert usage_from_wire(None) is None


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c-1", "model": "m-wire", "choices": choices, **extra}


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def translate(payloads: list[dict[str, Any]], provider: str = "openai") -> list[Any]:
    translator = ChunkTranslator(provider=provider, model="m")
    out = [c for p in payloads for c in translator.feed(p)]
    return out + translator.finish()


def test_finish_is_held_until_the_usage_chunk() -> None:
    chunks = translate(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop", usage=None),
            chunk(None, usage=USAGE),
        ]
    )
    assert [c.delta for c in chunks] == ["Hel", "lo", ""]
    last = chunks[-1]
    assert last.finish_reason == "stop" and last.usage is not None and last.usage.total_tokens == 5
    assert all(c.usage is None and c.finish_reason is None for c in chunks[:-1])
    assert {c.model for c in chunks} == {"m-wire"} and {c.id for c in chunks} == {"c-1"}


def test_usage_on_the_finish_chunk_and_groq_style() -> None:
    same = translate([chunk({"content": "a"}, "stop", usage=USAGE)])
    assert same[-1].finish_reason == "stop" and same[-1].usage is not None
    groq = translate([chunk({"content": "a"}), chunk({}, "stop", x_groq={"usage": USAGE})])
    assert groq[-1].usage is not None and groq[-1].usage.prompt_tokens == 3


def test_without_usage_the_finish_comes_at_the_end() -> None:
    chunks = translate([chunk({"content": "a"}), chunk({}, "length")])
    assert chunks[-1].finish_reason == "length" and chunks[-1].usage is None


def test_continuous_usage_keeps_the_last_value_on_the_last_chunk() -> None:
    early = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    chunks = translate(
        [
            chunk({"content": "a"}, usage=early),
            chunk({}, "stop", usage=early),
            chunk(None, usage=USAGE),
        ]
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 5
    assert accumulate(chunks).usage.total_tokens == 5


def test_stream_reasoning_tool_calls_and_details_accumulate() -> None:
    chunks = translate(
        [
            chunk({"reasoning_content": "think "}),
            chunk({"reasoning_content": "hard"}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "c9", "function": {"name": "f", "arguments": ""}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}),
            chunk({"refusal": "n"}),
            chunk({"refusal": "o"}),
            chunk({}, "tool_calls"),
            chunk(None, usage=USAGE),
        ],
        provider="deepseek",
    )
    response = accumulate(chunks)
    assert response.reasoning == "think hard"
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls or []] == [
        ("c9", "f", {"a": 1})
    ]
    assert response.message.provider_details == {
        "deepseek": {"reasoning_field": "reasoning_content", "refusal": "no"}
    }


def test_missing_or_null_indexes_fall_back_to_positions() -> None:
    payload = {
        "choices": [
            {
                "index": None,
                "delta": {
                    "tool_calls": [
                        {"index": None, "id": "a", "function": {"name": "f", "arguments": "{}"}},
                        {"id": "b", "function": {"name": "g", "arguments": "{}"}},
                    ]
                },
            }
        ]
    }
    chunks = translate([payload])
    deltas = chunks[0].tool_call_deltas or []
    assert [(d.index, d.id) for d in deltas] == [(0, "a"), (1, "b")]
    assert chunks[0].index == 0


def test_stream_and_whole_response_agree() -> None:
    whole = response_from_wire(
        completion({"role": "assistant", "content": "Hi", "reasoning": "r"}),
        provider="p",
        model="m",
    )
    streamed = accumulate(
        translate(
            [
                chunk({"reasoning": "r"}),
                chunk({"content": "Hi"}),
                chunk({}, "stop"),
                chunk(None, usage=whole.usage.model_dump()),
            ],
            provider="p",
        )
    )
    assert streamed.message == whole.message
    assert streamed.finish_reason == whole.finish_reason
    assert streamed.usage.total_tokens == 6


# --------------------------------------------------------------------------- SSE


def test_sse_events_split_across_pieces_with_crlf_and_comments() -> None:
    decoder = SSEDecoder()
    stream = (
        b': keep-alive\r\n\r\ndata: {"a":\r\ndata: 1}\r\n\r\ndata: {"b": 2}\n\ndata: [DONE]\n\n'
    )
    payloads = []
    for i in range(0, len(stream), 7):
        payloads.extend(decoder.feed(stream[i : i + 7]))
    assert decoder.done
    assert payloads == [{"a": 1}, {"b": 2}]


def test_sse_multiline_data_and_trailing_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a":\ndata: 1}\n\n') == [{"a": 1}]
    assert decoder.feed(b'data: {"b": 2}') == []
    assert decoder.close() == [{"b": 2}]
    assert not decoder.done


def test_sse_error_frames_raise() -> None:
    with pytest.raises(WireError) as info:
        SSEDecoder().feed(b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n')
    assert info.value.error == {"message": "boom", "type": "server_error"}
    assert str(info.value) == "boom"
    with pytest.raises(WireError):
        SSEDecoder().feed(b'event: error\ndata: {"message": "overloaded"}\n\n')


def test_sse_malformed_data_raises() -> None:
    with pytest.raises(MalformedFrame):
        SSEDecoder().feed(b'data: {"id": "x", "choices": [{\n\n')
    with pytest.raises(MalformedFrame):
        SSEDecoder().feed(b"data: [1, 2]\n\n")


def test_sse_ignores_what_follows_done() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: [DONE]\n\ndata: {"late": 1}\n\n') == []
    assert decoder.done


# --------------------------------------------------------------------------- embeddings


def test_embeddings_decode_base64_and_keep_input_order() -> None:
    packed = base64.b64encode(struct.pack("<3f", 0.5, -1.0, 2.0)).decode()
    data = {
        "model": "text-embedding-3-small",
        "data": [
            {"index": 1, "embedding": [0.25, 0.75]},
            {"index": 0, "embedding": packed},
        ],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    response = embeddings_from_wire(data, provider="openai", model="m")
    assert response.embeddings == [[0.5, -1.0, 2.0], [0.25, 0.75]]
    assert response.usage.prompt_tokens == 4 and response.usage.total_tokens == 4
    assert response.model == "text-embedding-3-small"
