"""Pure translation of the Mistral provider: requests to SDK kwargs, SDK results back.

SDK results are the SDK's own models, built with ``model_validate`` from wire JSON, so the
tests read them exactly as the provider does at run time.
"""

from __future__ import annotations

import base64
import json
import struct
import warnings
from typing import Any

import pytest
from mistralai.client.models import ChatCompletionResponse, CompletionChunk
from pydantic import BaseModel

from llmgate._streaming import accumulate
from llmgate.exceptions import InvalidRequestError
from llmgate.providers.mistral._convert import (
    PrefillEcho,
    StreamTranslator,
    chat_kwargs,
    embedding_kwargs,
    embedding_response_from_json,
    finish_reason,
    messages_param,
    prefill_of,
    response_format_param,
    response_from_sdk,
    tool_choice_param,
)
from llmgate.types import (
    CompletionRequest,
    EmbeddingRequest,
    ImagePart,
    Message,
    StreamChunk,
    TextPart,
    ToolCall,
)

PNG = b"\x89PNG\r\n\x1a\nfake"


def request(messages: list[Any], **kwargs: Any) -> CompletionRequest:
    return CompletionRequest.model_validate(
        {"model": "mistral/mistral-large-latest", "messages": messages, **kwargs}
    )


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> CompletionChunk:
    return CompletionChunk.model_validate(
        {
            "id": "c1",
            "model": "mistral-large-latest",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
    )


def completion(message: dict[str, Any], finish: str = "stop", **usage: Any) -> Any:
    return ChatCompletionResponse.model_validate(
        {
            "id": "r1",
            "object": "chat.completion",
            "model": "mistral-large-latest",
            "created": 1,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, **usage},
        }
    )


# --------------------------------------------------------------------------- messages


def test_roles_and_tool_result_name_from_the_call() -> None:
    sent = messages_param(
        request(
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather?"},
                Message(
                    role="assistant",
                    tool_calls=[ToolCall(id="abc123xyz", name="get_weather", arguments={"c": 1})],
                ),
                {"role": "tool", "tool_call_id": "abc123xyz", "content": "18C"},
            ]
        ).messages
    )
    assert sent == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "abc123xyz",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"c":1}'},
                }
            ],
        },
        {"role": "tool", "content": "18C", "tool_call_id": "abc123xyz", "name": "get_weather"},
    ]


def test_images_by_url_with_detail_and_by_bytes() -> None:
    message = Message(
        role="user",
        content=[
            TextPart(text="Compare"),
            ImagePart.from_url("https://x.test/a.png", detail="low"),
            ImagePart.from_url("https://x.test/b.png"),
            ImagePart.from_bytes(PNG, "image/png"),
        ],
    )
    content = messages_param([message])[0]["content"]
    encoded = base64.b64encode(PNG).decode()
    assert content == [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
        {"type": "image_url", "image_url": "https://x.test/b.png"},
        {"type": "image_url", "image_url": f"data:image/png;base64,{encoded}"},
    ]


def test_trailing_assistant_turn_is_a_prefix() -> None:
    sent = messages_param(
        request(
            [{"role": "user", "content": "Story?"}, {"role": "assistant", "content": "Once"}]
        ).messages
    )
    assert sent[-1] == {"role": "assistant", "content": "Once", "prefix": True}
    assert prefill_of(sent) == "Once"


def test_trailing_assistant_tool_call_is_not_a_prefix() -> None:
    sent = messages_param(
        [
            Message(role="user", content="Hi"),
            Message(role="assistant", tool_calls=[ToolCall(id="a", name="f", arguments={})]),
        ]
    )
    assert "prefix" not in sent[-1]
    assert prefill_of(sent) is None
    assert prefill_of(messages_param([Message(role="user", content="Hi")])) is None


def test_native_thinking_is_replayed_only_while_the_text_matches() -> None:
    native = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}], "signature": "s"},
        {"type": "text", "text": "42"},
    ]
    kept = Message(
        role="assistant",
        content="42",
        reasoning="hmm",
        provider_details={"mistral": {"content": native}},
    )
    edited = kept.model_copy(update={"content": "43"})
    assert (
        messages_param(
            [Message(role="user", content="q"), kept, Message(role="user", content="why")]
        )[1]["content"]
        == native
    )
    assert (
        messages_param(
            [Message(role="user", content="q"), edited, Message(role="user", content="why")]
        )[1]["content"]
        == "43"
    )


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "any"),
        ("any", "any"),
        ("get_time", {"type": "function", "function": {"name": "get_time"}}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            {"type": "function", "function": {"name": "get_time"}},
        ),
        (
            {"type": "tool", "name": "get_time"},
            {"type": "function", "function": {"name": "get_time"}},
        ),
        ({"type": "any"}, "any"),
    ],
)
def test_tool_choice(choice: Any, wire: Any) -> None:
    assert tool_choice_param(choice) == wire


def test_tool_choice_without_a_function_is_refused() -> None:
    with pytest.raises(InvalidRequestError):
        tool_choice_param({"type": "function", "function": {}})


class Shape(BaseModel):
    kind: str
    size: int | None = None


def test_response_format_is_strict_json_schema() -> None:
    wire = response_format_param(Shape)
    assert wire["type"] == "json_schema"
    spec = wire["json_schema"]
    assert (spec["name"], spec["strict"]) == ("Shape", True)
    assert spec["schema"]["additionalProperties"] is False
    assert set(spec["schema"]["required"]) == {"kind", "size"}
    assert (
        response_format_param({"title": "a point!", "type": "object"})["json_schema"]["name"]
        == "a_point_"
    )


def test_chat_kwargs_send_only_what_is_set() -> None:
    kwargs = chat_kwargs(request([{"role": "user", "content": "Hi"}]), "mistral-small-latest")
    assert kwargs == {
        "model": "mistral-small-latest",
        "messages": [{"role": "user", "content": "Hi"}],
    }


def test_chat_kwargs_map_every_option_and_extras_win() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    kwargs = chat_kwargs(
        request(
            [{"role": "user", "content": "Hi"}],
            max_tokens=5,
            temperature=0.2,
            top_p=0.9,
            stop="END",
            tools=[tool],
            tool_choice="required",
            parallel_tool_calls=False,
            timeout=1.5,
            random_seed=3,
        ),
        "m",
    )
    assert kwargs["max_tokens"] == 5 and kwargs["temperature"] == 0.2 and kwargs["top_p"] == 0.9
    assert kwargs["stop"] == ["END"]
    assert kwargs["tools"] == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    ]
    assert kwargs["tool_choice"] == "any" and kwargs["parallel_tool_calls"] is False
    assert kwargs["timeout_ms"] == 1500
    assert kwargs["random_seed"] == 3


def _embedding(**kwargs: Any) -> EmbeddingRequest:
    return EmbeddingRequest(model="mistral/mistral-embed", input=["a", "b"], **kwargs)


def test_embedding_kwargs() -> None:
    kwargs = embedding_kwargs(
        _embedding(dimensions=256, encoding_format="base64", timeout=2),
        "codestral-embed",
        strict=False,
    )
    assert kwargs == {
        "model": "codestral-embed",
        "inputs": ["a", "b"],
        "output_dimension": 256,
        "encoding_format": "base64",
        "timeout_ms": 2000,
    }


def test_unsupported_embedding_option_warns_at_the_caller() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kwargs = embedding_kwargs(_embedding(input_type="query"), "mistral-embed", strict=False)
    assert "input_type" not in kwargs
    assert len(caught) == 1 and issubclass(caught[0].category, UserWarning)
    assert "input_type" in str(caught[0].message)
    assert caught[0].filename == __file__


def test_unsupported_embedding_option_is_refused_when_strict() -> None:
    with pytest.raises(InvalidRequestError, match="task_type"):
        embedding_kwargs(_embedding(task_type="RETRIEVAL_QUERY"), "mistral-embed", strict=True)


def test_unknown_encoding_format_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="encoding_format"):
        embedding_kwargs(_embedding(encoding_format="int8"), "mistral-embed", strict=False)


# --------------------------------------------------------------------------- results


@pytest.mark.parametrize(
    ("native", "unified"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("model_length", "length"),
        ("tool_calls", "tool_calls"),
        ("error", "error"),
        ("something_new", "stop"),
        (None, None),
    ],
)
def test_finish_reasons(native: str | None, unified: str | None) -> None:
    assert finish_reason(native) == unified


def test_response_with_thinking_tool_calls_and_usage_details() -> None:
    result = completion(
        {
            "role": "assistant",
            "content": [
                {
                    "type": "thinking",
                    "thinking": [{"type": "text", "text": "Plan."}],
                    "signature": "z",
                },
                {"type": "text", "text": "Checking."},
            ],
            "tool_calls": [
                {"function": {"name": "f", "arguments": {"x": 1}}},
                {"id": "k2", "function": {"name": "g", "arguments": '{"y": 2}'}},
            ],
        },
        finish="tool_calls",
        prompt_tokens_details={"cached_tokens": 2},
        completion_tokens_details={"reasoning_tokens": 1},
    )
    response = response_from_sdk(result, "requested")
    assert response.text == "Checking."
    assert response.reasoning == "Plan."
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls or []] == [
        ("call_0", "f", {"x": 1}),
        ("k2", "g", {"y": 2}),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.usage.cached_prompt_tokens == 2 and response.usage.reasoning_tokens == 1
    assert response.message.provider_details == {
        "mistral": {
            "content": [
                {
                    "type": "thinking",
                    "thinking": [{"type": "text", "text": "Plan."}],
                    "signature": "z",
                },
                {"type": "text", "text": "Checking."},
            ]
        }
    }
    assert response.model == "mistral-large-latest" and response.raw is result


def test_plain_text_needs_no_provider_details() -> None:
    response = response_from_sdk(completion({"role": "assistant", "content": "Hi"}), "m")
    assert response.message.provider_details is None
    assert response.usage.cached_prompt_tokens is None


def test_response_drops_the_echoed_prefill() -> None:
    result = completion({"role": "assistant", "content": "Once upon a time"})
    assert response_from_sdk(result, "m", prefill="Once upon").text == " a time"
    assert response_from_sdk(result, "m", prefill="Twice").text == "Once upon a time"


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["Once", " upon", " a time"], ["", "", " a time"]),
        (["Once upon a time"], [" a time"]),
        (["On", "ly this"], ["", "Only this"]),
        (["Hello"], ["Hello"]),
    ],
)
def test_prefill_echo_across_pieces(pieces: list[str], expected: list[str]) -> None:
    echo = PrefillEcho("Once upon")
    assert [echo.feed(p) for p in pieces] == expected


def test_prefill_echo_releases_a_partial_match_at_the_end() -> None:
    echo = PrefillEcho("Once upon")
    assert echo.feed("Once") == ""
    assert echo.feed("", end=True) == "Once"


# --------------------------------------------------------------------------- streams


def _feed(translator: StreamTranslator, chunks: list[CompletionChunk]) -> list[StreamChunk]:
    out = [c for c in (translator.feed(ch) for ch in chunks) if c is not None]
    last = translator.end()
    return [*out, last] if last is not None else out


def test_incremental_tool_call_fragments_share_one_index() -> None:
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk(
            {"tool_calls": [{"id": "a1", "index": 0, "function": {"name": "f", "arguments": ""}}]}
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "", "arguments": '{"x":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "", "arguments": " 1}"}}]}),
        chunk({"content": ""}, "tool_calls", usage={"prompt_tokens": 1, "completion_tokens": 2}),
    ]
    streamed = _feed(StreamTranslator("m"), chunks)
    deltas = [d for c in streamed for d in c.tool_call_deltas or []]
    assert {d.index for d in deltas} == {0}
    assert (deltas[0].id, deltas[0].name) == ("a1", "f")
    assert all(d.id is None for d in deltas[1:])
    final = accumulate(streamed)
    assert [(c.id, c.name, c.arguments) for c in final.tool_calls or []] == [("a1", "f", {"x": 1})]
    assert final.usage.total_tokens == 3


def test_whole_tool_calls_in_one_chunk_get_their_own_indexes() -> None:
    """Two calls in one delta, both left at the SDK's default index 0, stay apart by id."""
    calls = [
        {"id": "a", "function": {"name": "f", "arguments": {"x": 1}}},
        {"id": "b", "function": {"name": "g", "arguments": '{"y": 2}'}},
    ]
    streamed = _feed(StreamTranslator("m"), [chunk({"tool_calls": calls}, "tool_calls")])
    final = accumulate(streamed)
    assert [(c.id, c.name, c.arguments) for c in final.tool_calls or []] == [
        ("a", "f", {"x": 1}),
        ("b", "g", {"y": 2}),
    ]


def test_stream_of_thinking_equals_the_whole_response() -> None:
    whole = response_from_sdk(
        completion(
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "thinking",
                        "thinking": [{"type": "text", "text": "Six times seven."}],
                        "signature": "sig",
                    },
                    {"type": "text", "text": "42"},
                ],
            }
        ),
        "m",
    )

    def thinking(text: str, signature: str | None = None) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "thinking", "thinking": [{"type": "text", "text": text}]}
        if signature:
            block["signature"] = signature
        return {"content": [block]}

    streamed = accumulate(
        _feed(
            StreamTranslator("m"),
            [
                chunk({"role": "assistant", "content": ""}),
                chunk(thinking("Six")),
                chunk(thinking(" times seven.", "sig")),
                chunk({"content": "4"}),
                chunk({"content": [{"type": "text", "text": "2"}]}),
                chunk(
                    {"content": ""},
                    "stop",
                    usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
                ),
            ],
        )
    )
    assert streamed.text == whole.text == "42"
    assert streamed.reasoning == whole.reasoning == "Six times seven."
    assert streamed.message.provider_details == whole.message.provider_details
    assert streamed.usage == whole.usage


def test_stream_drops_the_echoed_prefill_and_releases_held_text_at_the_end() -> None:
    echoed = _feed(
        StreamTranslator("m", prefill="Once upon"),
        [
            chunk({"content": "Once"}),
            chunk({"content": " upon"}),
            chunk({"content": " a"}),
            chunk({}, "stop"),
        ],
    )
    assert "".join(c.delta for c in echoed) == " a"
    cut = _feed(StreamTranslator("m", prefill="Once upon"), [chunk({"content": "Once"})])
    assert "".join(c.delta for c in cut) == "Once"


def test_empty_chunks_are_skipped() -> None:
    translator = StreamTranslator("m")
    assert translator.feed(chunk({"role": "assistant", "content": ""})) is None
    assert translator.end() is None


# --------------------------------------------------------------------------- embeddings


def test_base64_embeddings_are_decoded() -> None:
    vector = [0.5, -0.25, 1.0]
    body = json.dumps(
        {
            "id": "e",
            "object": "list",
            "model": "mistral-embed",
            "data": [
                {"object": "embedding", "index": 1, "embedding": [1.0, 2.0, 3.0]},
                {
                    "object": "embedding",
                    "index": 0,
                    "embedding": base64.b64encode(struct.pack("<3f", *vector)).decode(),
                },
            ],
            "usage": {"prompt_tokens": 4, "total_tokens": 4},
        }
    )
    response = embedding_response_from_json(body, "requested")
    assert response.embeddings == [vector, [1.0, 2.0, 3.0]]
    assert response.usage.prompt_tokens == 4 and response.model == "mistral-embed"
