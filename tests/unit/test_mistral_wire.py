"""The Mistral provider driving the real ``mistralai`` SDK against the loopback fake.

Covers what the conformance suite does not express neutrally: prefix turns, thinking
blocks sent back, 422 validation bodies, error frames without a status, base64
embeddings, options Mistral lacks, the base URL and client lifecycle.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from mistralai.client import Mistral

from llmgate import LLMGate
from llmgate.exceptions import (
    AuthError,
    BadRequestError,
    InvalidRequestError,
    ProviderAPIError,
    ServerError,
    VisionNotSupported,
)
from llmgate.providers.mistral._convert import chat_kwargs
from tests.fakes.mistral import MistralFake, RawChat, fake_vector
from tests.fakes.server import EmbeddingReply, FakeServer, FakeToolCall, Fault, Reply

MODEL = "mistral/mistral-large-latest"
EMBED_MODEL = "mistral/mistral-embed"
USER = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(MistralFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[MistralFake]:
    vendor = server.vendor
    assert isinstance(vendor, MistralFake)
    vendor.reset()
    yield vendor
    vendor.reset()


def options(base_url: str, **extra: Any) -> dict[str, Any]:
    return {"mistral": {"api_key": "fake-mistral-key", "base_url": base_url, **extra}}


@pytest.fixture
def gate(fake: MistralFake) -> Iterator[LLMGate]:
    with LLMGate(max_retries=0, provider_options=options(fake.base_url)) as g:
        yield g


def test_key_goes_out_as_a_bearer_token(gate: LLMGate, fake: MistralFake) -> None:
    gate.completion(MODEL, USER)
    assert fake.last.headers["authorization"] == "Bearer fake-mistral-key"
    assert fake.last.path == "/v1/chat/completions"


def test_prefix_turn_returns_only_the_continuation(gate: LLMGate, fake: MistralFake) -> None:
    messages = [*USER, {"role": "assistant", "content": "Once upon"}]
    fake.push(Reply(text=" a time"), Reply(text=" a time"))
    assert gate.completion(MODEL, messages).text == " a time"
    sent = fake.last.json["messages"][-1]
    assert sent == {"role": "assistant", "content": "Once upon", "prefix": True}
    stream = gate.completion(MODEL, messages, stream=True)
    assert "".join(c.delta for c in stream) == " a time"


def test_thinking_with_signature_is_sent_back(gate: LLMGate, fake: MistralFake) -> None:
    fake.push(Reply(text="42", reasoning="Six times seven.", reasoning_signature="sig-9"))
    first = gate.completion(MODEL, USER)
    gate.completion(MODEL, [*USER, first.message, {"role": "user", "content": "Why?"}])
    assistant = fake.last.json["messages"][1]
    assert assistant["content"] == [
        {
            "type": "thinking",
            "thinking": [{"type": "text", "text": "Six times seven."}],
            "signature": "sig-9",
        },
        {"type": "text", "text": "42"},
    ]


def test_reasoning_and_cached_tokens(gate: LLMGate, fake: MistralFake) -> None:
    fake.push(Reply(text="ok", cached_tokens=5, reasoning_tokens=3))
    usage = gate.completion(MODEL, USER).usage
    assert (usage.cached_prompt_tokens, usage.reasoning_tokens) == (5, 3)


def test_validation_error_names_the_field(gate: LLMGate, fake: MistralFake) -> None:
    fake.push(Fault(status=422, message="Input should be a valid string"))
    with pytest.raises(BadRequestError) as info:
        gate.completion(MODEL, USER)
    assert info.value.status_code == 422
    assert "body.messages: Input should be a valid string" in str(info.value)
    assert info.value.request_id == "req-fault-1"


def test_error_message_comes_from_the_body(gate: LLMGate, fake: MistralFake) -> None:
    fake.push(Fault(status=403, message="This model is not available in your tier"))
    with pytest.raises(AuthError) as info:
        gate.completion(MODEL, USER)
    assert info.value.message == "This model is not available in your tier"
    assert info.value.body["type"] == "forbidden"


def test_error_frame_status_picks_the_class(gate: LLMGate, fake: MistralFake) -> None:
    fake.push(Reply(text="one two three", error_after=2, error_status=503))
    stream = gate.completion(MODEL, USER, stream=True)
    with pytest.raises(ServerError) as info:
        list(stream)
    assert info.value.status_code == 503 and info.value.retryable
    assert info.value.request_id == "req-resp-1"


def test_error_frame_without_status(gate: LLMGate, fake: MistralFake) -> None:
    first = {
        "id": "x",
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}],
    }
    fake.push(RawChat(events=[first, {"object": "error", "message": "model crashed"}]))
    stream = gate.completion(MODEL, USER, stream=True)
    with pytest.raises(ProviderAPIError, match="model crashed") as info:
        list(stream)
    assert info.value.status_code is None
    assert stream.text == "Hel"


def test_malformed_frame(gate: LLMGate, fake: MistralFake) -> None:
    fake.push(Reply(text="one two three", malformed_after=2))
    stream = gate.completion(MODEL, USER, stream=True)
    with pytest.raises(ProviderAPIError, match="could not read"):
        list(stream)


def test_response_without_usage_is_a_provider_error(gate: LLMGate, fake: MistralFake) -> None:
    body = {
        "id": "r",
        "object": "chat.completion",
        "model": "m",
        "created": 1,
        "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
    }
    fake.push(RawChat(body=body))
    with pytest.raises(ProviderAPIError, match="could not read"):
        gate.completion(MODEL, USER)


def test_dict_arguments_and_streamed_fragments(gate: LLMGate, fake: MistralFake) -> None:
    def event(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "s",
            "model": "mistral-large-latest",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    fake.push(
        RawChat(
            events=[
                event({"tool_calls": [{"id": "t1", "function": {"name": "f", "arguments": ""}}]}),
                event(
                    {"tool_calls": [{"index": 0, "function": {"name": "", "arguments": '{"a"'}}]}
                ),
                event(
                    {"tool_calls": [{"index": 0, "function": {"name": "", "arguments": ": 1}"}}]}
                ),
                event(
                    {
                        "tool_calls": [
                            {
                                "id": "t2",
                                "index": 1,
                                "function": {"name": "g", "arguments": {"b": 2}},
                            }
                        ]
                    },
                    "tool_calls",
                ),
            ]
        )
    )
    final = gate.completion(MODEL, USER, stream=True).until_done()
    assert [(c.id, c.name, c.arguments) for c in final.tool_calls or []] == [
        ("t1", "f", {"a": 1}),
        ("t2", "g", {"b": 2}),
    ]
    assert final.finish_reason == "tool_calls"


def test_parallel_tool_calls_flag_on_the_wire(gate: LLMGate, fake: MistralFake) -> None:
    fake.push(Reply(tool_calls=[FakeToolCall("f", {})]))
    tool = {"type": "function", "function": {"name": "f"}}
    gate.completion(MODEL, USER, tools=[tool], parallel_tool_calls=False, tool_choice="required")
    assert fake.last.json["parallel_tool_calls"] is False
    assert fake.last.json["tool_choice"] == "any"


def test_base64_embeddings_are_decoded(gate: LLMGate, fake: MistralFake) -> None:
    response = gate.embed(EMBED_MODEL, ["alpha", "beta"], encoding_format="base64", dimensions=8)
    assert fake.last.json["encoding_format"] == "base64"
    assert fake.last.json["output_dimension"] == 8
    assert response.embeddings == [fake_vector("alpha", 8), fake_vector("beta", 8)]
    assert response.usage.prompt_tokens == 5


def test_async_base64_embeddings(gate: LLMGate, fake: MistralFake) -> None:
    response = asyncio.run(gate.aembed(EMBED_MODEL, "alpha", encoding_format="base64"))
    assert response.embeddings == [fake_vector("alpha", 4)]


def test_float_embeddings(gate: LLMGate, fake: MistralFake) -> None:
    fake.push(EmbeddingReply(vectors=[[0.1, 0.2]]))
    assert gate.embed(EMBED_MODEL, "x", encoding_format="float").embeddings == [[0.1, 0.2]]
    assert fake.last.path == "/v1/embeddings"


def test_options_mistral_lacks_are_dropped_with_a_warning(gate: LLMGate, fake: MistralFake) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gate.embed(EMBED_MODEL, "x", input_type="search_query", user="u-1")
    assert sorted(str(w.message).split("'")[1] for w in caught) == ["input_type", "user"]
    assert {"input_type", "user"}.isdisjoint(fake.last.json)


def test_strict_params_refuse_them_before_sending(fake: MistralFake) -> None:
    with LLMGate(strict_params=True, provider_options=options(fake.base_url)) as gate:
        with pytest.raises(InvalidRequestError, match="title"):
            gate.embed(EMBED_MODEL, "x", title="Doc")
    assert fake.requests == []


def test_base_url_may_end_in_v1(fake: MistralFake) -> None:
    with LLMGate(provider_options=options(fake.base_url + "/v1/")) as gate:
        assert gate.completion(MODEL, USER).text
    assert fake.last.path == "/v1/chat/completions"


def test_closing_the_gate_closes_the_connection() -> None:
    with FakeServer(MistralFake()) as server:  # its own server: no other test's connections
        gate = LLMGate(provider_options=options(server.url))
        gate.completion(MODEL, USER)
        assert server.open_connections == 1
        gate.close()
        deadline = time.monotonic() + 3
        while server.open_connections and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.open_connections == 0


def test_unknown_keywords_are_dropped_with_a_warning(gate: LLMGate, fake: MistralFake) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gate.completion(MODEL, USER, user="u-1", seed=7, safe_prompt=True)
    assert [str(w.message).split("'")[1] for w in caught] == ["user"]
    assert caught[0].filename == __file__
    sent = fake.last.json
    assert "user" not in sent
    assert (sent["random_seed"], sent["safe_prompt"]) == (7, True)


def test_unknown_keywords_are_refused_when_strict(fake: MistralFake) -> None:
    with LLMGate(strict_params=True, provider_options=options(fake.base_url)) as gate:
        with pytest.raises(InvalidRequestError, match="logit_bias"):
            gate.completion(MODEL, USER, logit_bias={"1": 2})
        with pytest.raises(InvalidRequestError, match="logit_bias"):
            list(gate.completion(MODEL, USER, stream=True, logit_bias={"1": 2}))
    assert fake.requests == []


def test_async_client_is_closed_when_its_loop_shuts_down() -> None:
    with FakeServer(MistralFake()) as server:
        with LLMGate(provider_options=options(server.url)) as gate:
            for _ in range(2):
                assert asyncio.run(gate.acompletion(MODEL, USER)).text
                deadline = time.monotonic() + 3
                while server.open_connections and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert server.open_connections == 0


@pytest.mark.parametrize(
    "bare",
    [
        "mistral-small-latest",
        "magistral-medium-latest",
        "devstral-small-latest",
        "open-mixtral-8x22b",
    ],
)
def test_bare_names_resolve_to_mistral(bare: str) -> None:
    spec, model = LLMGate().registry.resolve(bare)
    assert (spec.name, model) == ("mistral", bare)


def test_text_only_models_refuse_images_before_sending(gate: LLMGate, fake: MistralFake) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
    with pytest.raises(VisionNotSupported):
        gate.completion("mistral/codestral-latest", [{"role": "user", "content": [image]}])
    assert fake.requests == []


def test_sdk_models_put_the_same_json_on_the_wire(gate: LLMGate, fake: MistralFake) -> None:
    """The provider hands the SDK its own models; the SDK given plain dicts sends the same."""
    native = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}], "signature": "s"},
        {"type": "text", "text": "Let me look."},
    ]
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://x.test/a.png", "detail": "high"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": "Let me look.",
            "provider_details": {"mistral": {"content": native}},
            "tool_calls": [{"id": "c1", "name": "get_time", "arguments": {"city": "Oslo"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "09:00"},
    ]
    tool = {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Local time",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    schema = {"title": "Answer", "type": "object", "properties": {"t": {"type": "string"}}}
    options_ = {"tools": [tool], "tool_choice": "get_time", "response_format": schema}
    fake.push(Reply(text='{"t": "9"}'), Reply(text='{"t": "9"}'))
    gate.completion(MODEL, messages, max_tokens=9, **options_)
    via_llmgate = fake.last.json

    request = gate.build_request(MODEL, messages, max_tokens=9, **options_)
    kwargs = chat_kwargs(request, "mistral-large-latest")
    raw = Mistral(api_key="fake-mistral-key", server_url=fake.base_url, retry_config=None)
    with raw:
        raw.chat.complete(**kwargs)
    assert via_llmgate == fake.last.json
    assert via_llmgate["messages"][2]["content"] == native
