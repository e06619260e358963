"""The Bedrock provider end to end: real botocore against the eventstream fake on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from llmgate import LLMGate, RetryPolicy
from llmgate._streaming import accumulate
from llmgate.exceptions import (
    AuthError,
    BadRequestError,
    ConfigError,
    EmbeddingsNotSupported,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
    VisionNotSupported,
)
from llmgate.types import ImagePart, Message, TextPart
from tests.fakes.bedrock import (
    FAKE_ACCESS_KEY,
    FAKE_REGION,
    FAKE_SECRET_KEY,
    BedrockFake,
    decode_image_bytes,
    exception_frame,
)
from tests.fakes.server import (
    EmbeddingReply,
    FakeServer,
    FakeToolCall,
    FakeVendor,
    Fault,
    RecordedRequest,
    Reply,
    Response,
)

MODEL = "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0"
MODEL_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"
TITAN = "bedrock/amazon.titan-embed-text-v2:0"
COHERE = "bedrock/cohere.embed-english-v3"
COHERE_V4 = "bedrock/cohere.embed-v4:0"
USER = [{"role": "user", "content": "Hi"}]
NO_RETRIES = RetryPolicy(max_retries=0)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(BedrockFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[BedrockFake]:
    vendor = server.vendor
    assert isinstance(vendor, BedrockFake)
    vendor.reset()
    yield vendor
    vendor.reset()


def _options(fake: FakeVendor, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": fake.base_url,
        "region": FAKE_REGION,
        "aws_access_key_id": FAKE_ACCESS_KEY,
        "aws_secret_access_key": FAKE_SECRET_KEY,
        **extra,
    }


def _gate(fake: FakeVendor, *, options: dict[str, Any] | None = None, **kwargs: Any) -> LLMGate:
    return LLMGate(
        retry_policy=NO_RETRIES,
        provider_options={"bedrock": _options(fake, **(options or {}))},
        **kwargs,
    )


@pytest.fixture
def gate(fake: BedrockFake) -> Iterator[LLMGate]:
    with _gate(fake) as gate:
        yield gate


def _wait_for_connections(fake: FakeVendor, expected: int) -> int:
    assert fake.server is not None
    deadline = time.monotonic() + 3
    while fake.server.open_connections > expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return fake.server.open_connections


# --------------------------------------------------------------------------- the request


def test_request_on_the_wire(gate: LLMGate, fake: BedrockFake) -> None:
    gate.completion(
        MODEL,
        [{"role": "system", "content": "Be brief."}, *USER],
        max_tokens=64,
        temperature=0.5,
        top_p=0.9,
        stop=["END"],
    )
    sent = fake.last
    assert sent.path == f"/model/{MODEL_ID}/converse"
    assert sent.headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={FAKE_ACCESS_KEY}/"
    )
    assert f"/{FAKE_REGION}/bedrock/aws4_request" in sent.headers["authorization"]
    assert sent.json == {
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {
            "maxTokens": 64,
            "temperature": 0.5,
            "topP": 0.9,
            "stopSequences": ["END"],
        },
    }


def test_image_bytes_are_sent_as_base64_with_format(gate: LLMGate, fake: BedrockFake) -> None:
    message = Message(
        role="user",
        content=[TextPart(text="What is it?"), ImagePart.from_bytes(PNG, "image/jpeg")],
    )
    gate.completion(MODEL, [message])
    image = fake.last.json["messages"][0]["content"][1]["image"]
    assert image["format"] == "png", "the bytes' signature wins over a wrong mime type"
    assert decode_image_bytes(image["source"]["bytes"]) == PNG


def test_tool_history_and_prefill(gate: LLMGate, fake: BedrockFake) -> None:
    history = [
        *USER,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "t1", "function": {"name": "get_weather", "arguments": '{"city": "A"}'}},
                {"id": "t2", "function": {"name": "get_weather", "arguments": '{"city": "B"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "t2", "content": "rain"},
        {"role": "user", "content": "Summarise."},
        {"role": "assistant", "content": "In short: "},
    ]
    fake.push(Reply(text="A is sunny."))
    response = gate.completion(MODEL, history, tools=[WEATHER])
    assert response.text == "A is sunny."
    messages = fake.last.json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[2]["content"] == [
        {"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}},
        {"toolResult": {"toolUseId": "t2", "content": [{"text": "rain"}]}},
        {"text": "Summarise."},
    ]
    assert messages[3]["content"] == [{"text": "In short:"}]


def test_tool_choice_none_with_tool_history_warns(gate: LLMGate, fake: BedrockFake) -> None:
    history = [
        *USER,
        {"role": "assistant", "tool_calls": [{"id": "t1", "name": "get_weather"}]},
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
    ]
    with pytest.warns(UserWarning, match="tool_choice"):
        gate.completion(MODEL, history, tools=[WEATHER], tool_choice="none")
    config = fake.last.json["toolConfig"]
    assert [t["toolSpec"]["name"] for t in config["tools"]] == ["get_weather"]
    assert "toolChoice" not in config


def test_strict_params_refuse_what_converse_lacks(fake: BedrockFake) -> None:
    with _gate(fake, strict_params=True) as gate, pytest.raises(InvalidRequestError):
        gate.completion(MODEL, USER, tools=[WEATHER], parallel_tool_calls=False)
    assert fake.requests == []
    with _gate(fake) as gate, pytest.warns(UserWarning, match="parallel_tool_calls"):
        gate.completion(MODEL, USER, tools=[WEATHER], parallel_tool_calls=False)


def test_extra_kwargs_merge_with_inference_config(gate: LLMGate, fake: BedrockFake) -> None:
    gate.completion(
        MODEL,
        USER,
        max_tokens=10,
        inferenceConfig={"temperature": 0.1},
        performanceConfig={"latency": "optimized"},
    )
    body = fake.last.json
    assert body["inferenceConfig"] == {"maxTokens": 10, "temperature": 0.1}
    assert body["performanceConfig"] == {"latency": "optimized"}


def test_unknown_extra_kwarg_is_refused_by_boto(gate: LLMGate, fake: BedrockFake) -> None:
    with pytest.raises(InvalidRequestError, match="notAParameter"):
        gate.completion(MODEL, USER, notAParameter=1)
    assert fake.requests == []


# --------------------------------------------------------------------------- results


def test_reasoning_signature_round_trips(gate: LLMGate, fake: BedrockFake) -> None:
    fake.push(Reply(text="42", reasoning="Six by seven.", reasoning_signature="sig-9"))
    first = gate.completion(MODEL, USER)
    assert first.reasoning == "Six by seven."
    assert first.message.provider_details == {
        "bedrock": {
            "reasoning_content": [
                {"reasoningText": {"text": "Six by seven.", "signature": "sig-9"}}
            ]
        }
    }
    gate.completion(MODEL, [*USER, first.message, {"role": "user", "content": "Why?"}])
    assistant = fake.last.json["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": [
            {
                "reasoningContent": {
                    "reasoningText": {"text": "Six by seven.", "signature": "sig-9"}
                }
            },
            {"text": "42"},
        ],
    }


def test_reasoning_without_signature_is_not_sent_back(gate: LLMGate, fake: BedrockFake) -> None:
    foreign = {"role": "assistant", "content": "42", "reasoning": "from another vendor"}
    gate.completion(MODEL, [*USER, foreign, {"role": "user", "content": "Why?"}])
    assert fake.last.json["messages"][1]["content"] == [{"text": "42"}]


def test_usage_and_details(gate: LLMGate, fake: BedrockFake) -> None:
    fake.push(Reply(text="ok", prompt_tokens=100, completion_tokens=5, cached_tokens=60))
    response = gate.completion(MODEL, USER)
    assert response.usage.model_dump() == {
        "prompt_tokens": 100,
        "completion_tokens": 5,
        "total_tokens": 105,
        "cached_prompt_tokens": 60,
        "reasoning_tokens": None,
    }
    assert response.provider_details["stop_reason"] == "end_turn"
    assert response.provider_details["latency_ms"] == 42
    assert response.id.startswith("bedrock-req-")
    assert response.raw["output"]["message"]["content"] == [{"text": "ok"}]


@pytest.mark.parametrize(
    ("neutral", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content_filter"),
        ("error", "error"),
    ],
)
def test_finish_reasons(gate: LLMGate, fake: BedrockFake, neutral: str, expected: str) -> None:
    fake.push(Reply(text="x", finish_reason=neutral), Reply(text="x", finish_reason=neutral))
    assert gate.completion(MODEL, USER).finish_reason == expected
    assert accumulate(gate.completion(MODEL, USER, stream=True)).finish_reason == expected


class Point(BaseModel):
    x: int
    y: int | None = None


def test_structured_output_native(gate: LLMGate, fake: BedrockFake) -> None:
    fake.push(Reply(text='{"x": 1, "y": null}'))
    assert gate.parse(MODEL, USER, response_format=Point) == Point(x=1)
    text_format = fake.last.json["outputConfig"]["textFormat"]
    assert text_format["type"] == "json_schema"
    definition = text_format["structure"]["jsonSchema"]
    assert definition["name"] == "Point"
    schema = json.loads(definition["schema"])
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["x", "y"]
    assert "toolConfig" not in fake.last.json


def test_structured_output_by_forced_tool(fake: BedrockFake) -> None:
    reply = Reply(tool_calls=[FakeToolCall("Point", {"x": 3, "y": 4}, id="tu1")])
    fake.push(reply, reply)
    with _gate(fake, options={"structured_output": "tool"}) as gate:
        response = gate.completion(MODEL, USER, response_format=Point)
        streamed = gate.completion(MODEL, USER, response_format=Point, stream=True).until_done()
    assert response.parsed == Point(x=3, y=4)
    assert response.finish_reason == "stop" and response.tool_calls is None
    assert streamed.parsed == Point(x=3, y=4)
    assert streamed.finish_reason == "stop" and streamed.tool_calls is None
    body = fake.last.json
    assert "outputConfig" not in body
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "Point"}}
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["properties"]["x"]


# --------------------------------------------------------------------------- streaming


def test_stream_chunks(gate: LLMGate, fake: BedrockFake) -> None:
    fake.push(
        Reply(
            text="Checking now",
            reasoning="Need weather.",
            reasoning_signature="s",
            tool_calls=[
                FakeToolCall("get_weather", {"city": "Oslo"}, id="a"),
                FakeToolCall("get_weather", {"city": "Rome"}, id="b"),
            ],
        )
    )
    chunks = list(gate.completion(MODEL, USER, tools=[WEATHER], stream=True))
    assert "".join(c.reasoning_delta or "" for c in chunks) == "Need weather."
    assert "".join(c.delta for c in chunks) == "Checking now"
    starts = [d for c in chunks for d in c.tool_call_deltas or [] if d.id]
    assert [(d.index, d.id, d.name) for d in starts] == [
        (0, "a", "get_weather"),
        (1, "b", "get_weather"),
    ]
    last = chunks[-1]
    assert last.finish_reason == "tool_calls" and last.usage is not None
    assert last.provider_details == {
        "bedrock": {
            "reasoning_content": [{"reasoningText": {"text": "Need weather.", "signature": "s"}}]
        }
    }
    assert all(c.id.startswith("bedrock-req-") for c in chunks)


@pytest.mark.parametrize(
    ("exception_type", "error_class", "status"),
    [
        ("throttlingException", RateLimitError, 429),
        ("internalServerException", ServerError, 500),
        ("serviceUnavailableException", ServerError, 503),
        ("modelStreamErrorException", ServerError, 500),
        ("validationException", BadRequestError, 400),
    ],
)
def test_in_stream_exceptions(
    fake: BedrockFake, exception_type: str, error_class: type, status: int
) -> None:
    class Scripted(BedrockFake):
        def _converse_stream(self, reply: Reply) -> Response:
            frames = self.stream_frames(reply)[:2]
            body = {"message": "boom", "originalStatusCode": 502}
            frames.append(exception_frame(exception_type, body))
            return Response(headers={"x-amzn-RequestId": "stream-req-7"}, stream=frames)

    with FakeServer(Scripted()) as server, _gate(server.vendor) as gate:
        server.vendor.push(Reply(text="one two three"))
        stream = gate.completion(MODEL, USER, stream=True)
        with pytest.raises(error_class) as info:
            list(stream)
    assert stream.text == "one"
    assert info.value.status_code == status
    assert info.value.request_id == "stream-req-7"
    assert "boom" in str(info.value)


def test_stream_that_ends_before_message_stop(fake: BedrockFake) -> None:
    class Truncated(BedrockFake):
        def _converse_stream(self, reply: Reply) -> Response:
            return Response(stream=self.stream_frames(reply)[:3])

    with FakeServer(Truncated()) as server, _gate(server.vendor) as gate:
        stream = gate.completion(MODEL, USER, stream=True)
        with pytest.raises(ProviderConnectionError, match="messageStop"):
            list(stream)


def test_malformed_frame_is_a_connection_error(gate: LLMGate, fake: BedrockFake) -> None:
    fake.push(Reply(text="one two three", malformed_after=2))
    stream = gate.completion(MODEL, USER, stream=True)
    with pytest.raises(ProviderConnectionError, match="malformed"):
        list(stream)


async def test_async_stream_closed_early_releases_connection(
    gate: LLMGate, fake: BedrockFake
) -> None:
    assert fake.server is not None
    baseline = fake.server.open_connections
    fake.push(Reply(text=" ".join(["word"] * 100), chunk_delay=0.01))
    stream = await gate.acompletion(MODEL, USER, stream=True)
    await stream.__anext__()
    await stream.aclose()
    assert await asyncio.to_thread(_wait_for_connections, fake, baseline) == baseline


async def test_async_stream_cancelled_mid_read_frees_its_worker() -> None:
    """A consumer cancelled while a worker waits on a stalled stream must not pin that worker:
    with a one-thread pool, the next call runs at once, not when the next event arrives."""

    class Stalling(BedrockFake):
        def _converse_stream(self, reply: Reply) -> Response:
            frames: list[bytes | float] = [*self.stream_frames(reply)]
            frames.insert(2, 60.0)
            return Response(stream=frames)

    with (
        FakeServer(Stalling()) as server,
        _gate(server.vendor, options={"max_pool_connections": 1}) as gate,
    ):
        server.vendor.push(Reply(text="one two three"), Reply(text="next"))
        stream = await gate.acompletion(MODEL, USER, stream=True)

        async def consume() -> None:
            async for _ in stream:
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        started = time.monotonic()
        response = await gate.acompletion(MODEL, USER)
        assert response.text == "next"
        assert time.monotonic() - started < 30.0, "waited for the stalled stream's worker"


async def test_async_calls_do_not_block_the_loop(gate: LLMGate, fake: BedrockFake) -> None:
    fake.push(Reply(text="slow", delay=0.3))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    beat = asyncio.create_task(ticker())
    try:
        assert (await gate.acompletion(MODEL, USER)).text == "slow"
    finally:
        beat.cancel()
    assert ticks >= 5


# --------------------------------------------------------------------------- errors


def test_error_carries_request_id_and_amz_retry_after(gate: LLMGate, fake: BedrockFake) -> None:
    fake.push(Fault(status=429, headers={"x-amz-retry-after": "2500"}, request_id="r-77"))
    with pytest.raises(RateLimitError) as info:
        gate.completion(MODEL, USER)
    error = info.value
    assert (error.status_code, error.request_id, error.retry_after) == (429, "r-77", 2.5)
    assert "ThrottlingException" in str(error)


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (403, "AccessDeniedException", AuthError),
        (400, "ServiceQuotaExceededException", RateLimitError),
        (408, "ModelTimeoutException", ProviderTimeoutError),
        (424, "ModelErrorException", ServerError),
        (429, "ModelNotReadyException", ServerError),
        (404, "ResourceNotFoundException", BadRequestError),
    ],
)
def test_error_codes(fake: BedrockFake, status: int, code: str, error_class: type) -> None:
    class Coded(BedrockFake):
        def handle(self, request: RecordedRequest) -> Response:
            return self._error(status, code, "coded failure", request_id="r-1")

    with FakeServer(Coded()) as server, _gate(server.vendor) as gate:
        with pytest.raises(error_class) as info:
            gate.completion(MODEL, USER)
    assert info.value.status_code == status
    assert info.value.request_id == "r-1"


def test_missing_region_is_a_config_error(
    fake: BedrockFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent-llmgate/config")
    options = _options(fake)
    del options["region"]
    with LLMGate(provider_options={"bedrock": options}) as gate:
        with pytest.raises(ConfigError, match="AWS_REGION"):
            gate.completion(MODEL, USER)
    assert fake.requests == []


def test_region_from_environment(fake: BedrockFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    options = _options(fake)
    del options["region"]
    with LLMGate(provider_options={"bedrock": options}) as gate:
        gate.completion(MODEL, USER)
    assert "/eu-west-3/bedrock/" in fake.last.headers["authorization"]


def test_missing_credentials_is_a_config_error(
    fake: BedrockFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent-llmgate/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent-llmgate/credentials")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    options = {"base_url": fake.base_url, "region": FAKE_REGION}
    with LLMGate(provider_options={"bedrock": options}) as gate:
        with pytest.raises(ConfigError, match="AWS_ACCESS_KEY_ID"):
            gate.completion(MODEL, USER)
    assert fake.requests == []


def test_credentials_from_environment(fake: BedrockFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENVIRONMENT0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-from-env")
    with LLMGate(
        provider_options={"bedrock": {"base_url": fake.base_url, "region": "us-west-2"}}
    ) as gate:
        gate.completion(MODEL, USER)
    assert "Credential=AKIDFROMENVIRONMENT0/" in fake.last.headers["authorization"]


def test_clients_are_cached_per_timeout(gate: LLMGate, fake: BedrockFake) -> None:
    gate.completion(MODEL, USER, timeout=5)
    gate.completion(MODEL, USER, timeout=5)
    gate.completion(MODEL, USER, timeout=7)
    gate.completion(MODEL, USER)
    (provider,) = gate._providers.values()
    clients = {provider.client_for(5), provider.client_for(7), provider.client_for(None)}  # type: ignore[attr-defined]
    assert len(clients) == 3
    assert provider.client_for(5).meta.config.read_timeout == 5  # type: ignore[attr-defined]
    assert provider.client.meta.config.retries["total_max_attempts"] == 1


def test_sdk_never_retries(gate: LLMGate, fake: BedrockFake) -> None:
    fake.push(Fault(status=503), Fault(status=503))
    with pytest.raises(ServerError):
        gate.completion(MODEL, USER)
    assert len(fake.requests) == 1


# --------------------------------------------------------------------------- images by URL


class _ImageHost(FakeVendor):
    name = "images"

    def handle(self, request: RecordedRequest) -> Response:
        if request.path == "/big.png":
            return Response(headers={"content-type": "image/png"}, body=PNG + b"\0" * 4096)
        return Response(headers={"content-type": "image/png"}, body=PNG)


@pytest.fixture(scope="module")
def image_host() -> Iterator[FakeServer]:
    with FakeServer(_ImageHost()) as running:
        yield running


def _image_message(url: str) -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"type": "text", "text": "What?"}, {"type": "image_url", "image_url": url}],
    }


def test_image_url_refused_by_default(
    gate: LLMGate, fake: BedrockFake, image_host: FakeServer
) -> None:
    with pytest.raises(VisionNotSupported, match="allow_image_download"):
        gate.completion(MODEL, [_image_message(f"{image_host.url}/cat.png")])
    assert fake.requests == [] and image_host.vendor.requests == []


def test_image_url_downloaded_when_allowed(fake: BedrockFake, image_host: FakeServer) -> None:
    with _gate(fake, options={"allow_image_download": True}) as gate:
        gate.completion(MODEL, [_image_message(f"{image_host.url}/cat.png")])
    image = fake.last.json["messages"][0]["content"][1]["image"]
    assert image["format"] == "png"
    assert decode_image_bytes(image["source"]["bytes"]) == PNG
    assert image_host.vendor.last.path == "/cat.png"


def test_image_download_is_size_capped(fake: BedrockFake, image_host: FakeServer) -> None:
    options = {"allow_image_download": True, "image_max_bytes": 1024}
    with _gate(fake, options=options) as gate, pytest.raises(InvalidRequestError, match="limit"):
        gate.completion(MODEL, [_image_message(f"{image_host.url}/big.png")])
    assert fake.requests == []


def test_image_download_refuses_other_schemes(fake: BedrockFake) -> None:
    with _gate(fake, options={"allow_image_download": True}) as gate:
        with pytest.raises(InvalidRequestError):
            gate.completion(MODEL, [_image_message("file:///etc/passwd")])
    assert fake.requests == []


# --------------------------------------------------------------------------- embeddings


def test_titan_embeddings(gate: LLMGate, fake: BedrockFake) -> None:
    # Titan takes one text a call and the gate sends them concurrently, so each reply is
    # chosen by the text it answers, not by arrival order.
    by_text = {"a": ([0.1, 0.2], 3), "b": ([0.3, 0.4], 4)}
    fake.set_default(
        lambda request: EmbeddingReply(
            vectors=[by_text[request.json["inputText"]][0]],
            prompt_tokens=by_text[request.json["inputText"]][1],
        )
    )
    response = gate.embed(TITAN, ["a", "b"], dimensions=256, normalize=False)
    assert response.embeddings == [[0.1, 0.2], [0.3, 0.4]]
    assert response.usage.prompt_tokens == 7
    assert [r.path for r in fake.requests] == ["/model/amazon.titan-embed-text-v2:0/invoke"] * 2
    assert sorted((r.json for r in fake.requests), key=lambda body: body["inputText"]) == [
        {"dimensions": 256, "normalize": False, "inputText": "a"},
        {"dimensions": 256, "normalize": False, "inputText": "b"},
    ]


def test_titan_warns_about_parameters_it_lacks(gate: LLMGate, fake: BedrockFake) -> None:
    with pytest.warns(UserWarning, match="input_type"):
        gate.embed(TITAN, "a", input_type="search_query")
    assert "input_type" not in fake.last.json


def test_cohere_embeddings(gate: LLMGate, fake: BedrockFake) -> None:
    response = gate.embed(COHERE, ["a", "b"], input_type="search_query", truncate="end")
    assert len(response.embeddings) == 2
    assert fake.last.json == {
        "texts": ["a", "b"],
        "input_type": "search_query",
        "embedding_types": ["float"],
        "truncate": "END",
    }
    assert response.usage.prompt_tokens == 5, "from X-Amzn-Bedrock-Input-Token-Count"


def test_cohere_task_type_and_dimensions(gate: LLMGate, fake: BedrockFake) -> None:
    response = gate.embed(COHERE_V4, "q", task_type="RETRIEVAL_QUERY", dimensions=6)
    assert fake.last.json["input_type"] == "search_query"
    assert fake.last.json["output_dimension"] == 6
    assert len(response.embeddings[0]) == 6
    with pytest.warns(UserWarning, match="dimensions"):
        gate.embed(COHERE, "q", dimensions=6)


def test_cohere_batches_of_96(gate: LLMGate, fake: BedrockFake) -> None:
    texts = [f"t{i}" for i in range(100)]
    response = gate.embed(COHERE, texts)
    assert len(response.embeddings) == 100
    assert sorted(len(r.json["texts"]) for r in fake.requests) == [4, 96]


async def test_aembed(gate: LLMGate, fake: BedrockFake) -> None:
    response = await gate.aembed(TITAN, ["x", "y", "z"])
    assert len(response.embeddings) == 3
    # Titan takes one text a call: the gate sends the three concurrently.
    assert sorted(r.json["inputText"] for r in fake.requests) == ["x", "y", "z"]


def test_unknown_embedding_model(gate: LLMGate, fake: BedrockFake) -> None:
    with pytest.raises(EmbeddingsNotSupported, match="titan"):
        gate.embed("bedrock/meta.llama3-8b-instruct-v1:0", "x")
    assert fake.requests == []


def test_embedding_error_is_mapped(gate: LLMGate, fake: BedrockFake) -> None:
    fake.push(Fault(status=400, message="bad dimensions"))
    with warnings.catch_warnings(), pytest.raises(BadRequestError, match="bad dimensions"):
        gate.embed(TITAN, "x", dimensions=3)
