"""The Gemini provider through the real google-genai SDK against the loopback fake."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("google.genai", minversion="3", reason="google-genai 3.x needs Python 3.11")

from llmgate import LLMGate
from llmgate._streaming import accumulate
from llmgate.exceptions import (
    AuthError,
    InvalidRequestError,
    RateLimitError,
    ServerError,
    VisionNotSupported,
)
from llmgate.types import ImagePart, Message, TextPart
from tests.fakes.gemini import FAKE_KEY, GeminiFake, GeminiWire
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

MODEL = "gemini/gemini-2.5-flash"
USER = [{"role": "user", "content": "Hi there"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\xdacd`\xf8_\x0f\x00\x02\x87\x01\x80\xeb G\xba\x92\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)
wire = GeminiWire()


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(GeminiFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[GeminiFake]:
    vendor = server.vendor
    assert isinstance(vendor, GeminiFake)
    vendor.reset()
    vendor.native_call_ids = False
    yield vendor
    vendor.native_call_ids = False


def make_gate(fake: FakeVendor, **options: Any) -> LLMGate:
    settings = {"api_key": FAKE_KEY, "base_url": fake.base_url, **options}
    return LLMGate(max_retries=0, provider_options={"gemini": settings})


@pytest.fixture
def gate(fake: GeminiFake) -> Iterator[LLMGate]:
    with make_gate(fake) as g:
        yield g


class ImageHost(FakeVendor):
    """Serves one PNG at /cat.png (any other path is a 404)."""

    name = "images"

    def handle(self, request: RecordedRequest) -> Response:
        if request.path == "/cat.png":
            return Response(headers={"content-type": "image/png"}, body=PNG)
        return Response(status=404, body=b"missing")


@pytest.fixture(scope="module")
def image_host() -> Iterator[FakeServer]:
    with FakeServer(ImageHost()) as running:
        yield running


# --------------------------------------------------------------------------- wire details


def test_key_header_and_timeout_in_milliseconds(gate: LLMGate, fake: GeminiFake) -> None:
    gate.completion(MODEL, USER, timeout=2.5)
    sent = fake.last
    assert sent.headers["x-goog-api-key"] == FAKE_KEY
    assert sent.path == "/v1/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-server-timeout"] == "3"  # 2500 ms, rounded up to seconds


def test_api_version_option(fake: GeminiFake) -> None:
    with make_gate(fake, api_version="v1beta") as g:
        g.completion(MODEL, USER)
    assert fake.last.path.startswith("/v1beta/models/")


def test_usage_with_reasoning_tokens(gate: LLMGate, fake: GeminiFake) -> None:
    fake.push(Reply(text="ok", prompt_tokens=20, completion_tokens=10, reasoning_tokens=4))
    usage = gate.completion(MODEL, USER).usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (20, 10, 30)
    assert usage.reasoning_tokens == 4


def test_extra_config_fields_reach_the_wire(gate: LLMGate, fake: GeminiFake) -> None:
    gate.completion(
        MODEL, USER, seed=11, thinking_config={"include_thoughts": True, "thinking_budget": 128}
    )
    config = wire.generation_config(fake.last)
    assert config["seed"] == 11
    assert config["thinkingConfig"] == {"include_thoughts": True, "thinking_budget": 128}


def test_unknown_parameter_is_dropped_with_a_warning(gate: LLMGate, fake: GeminiFake) -> None:
    with pytest.warns(UserWarning, match="reasoning_effort"):
        gate.completion(MODEL, USER, reasoning_effort="low")
    assert "reasoning_effort" not in fake.last.body.decode()


def test_strict_params_refuse_before_sending(fake: GeminiFake) -> None:
    settings = {"api_key": FAKE_KEY, "base_url": fake.base_url}
    with LLMGate(strict_params=True, provider_options={"gemini": settings}) as g:
        with pytest.raises(InvalidRequestError, match="reasoning_effort"):
            g.completion(MODEL, USER, reasoning_effort="low")
    assert fake.requests == []


def test_structured_output_schema_is_inlined(gate: LLMGate, fake: GeminiFake) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str

    class Trip(BaseModel):
        to: City

    fake.push(Reply(text='{"to": {"name": "Oslo"}}'))
    trip = gate.parse(MODEL, USER, response_format=Trip)
    assert trip.to.name == "Oslo"
    config = wire.generation_config(fake.last)
    assert config["responseMimeType"] == "application/json"
    schema = wire.response_schema(fake.last)
    assert schema is not None and "$ref" not in str(schema)
    assert schema["properties"]["to"]["properties"]["name"]["type"] == "string"


# --------------------------------------------------------------------------- round trips


def test_thought_signature_round_trips(gate: LLMGate, fake: GeminiFake) -> None:
    fake.push(Reply(text="42", reasoning="Six times seven.", reasoning_signature="sig-1"))
    first = gate.completion(MODEL, USER)
    gate.completion(MODEL, [*USER, first.message, {"role": "user", "content": "Why?"}])
    assert wire.thought_signatures(fake.last) == ["sig-1"]


def test_streamed_thought_signature_round_trips(gate: LLMGate, fake: GeminiFake) -> None:
    fake.push(
        Reply(
            reasoning="Look it up.",
            reasoning_signature="sig-2",
            tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})],
        )
    )
    first = accumulate(gate.completion(MODEL, USER, tools=[WEATHER], stream=True))
    assert first.tool_calls is not None
    call = first.tool_calls[0]
    history = [*USER, first.message, {"role": "tool", "tool_call_id": call.id, "content": "18C"}]
    gate.completion(MODEL, history, tools=[WEATHER])
    assert wire.thought_signatures(fake.last) == ["sig-2"]
    assert wire.tool_results(fake.last) == [("get_weather", "18C")]


def test_native_call_ids_round_trip(gate: LLMGate, fake: GeminiFake) -> None:
    fake.native_call_ids = True
    fake.push(Reply(tool_calls=[FakeToolCall("get_weather", {"city": "Rome"}, id="fc-7")]))
    first = gate.completion(MODEL, USER, tools=[WEATHER])
    assert [c.id for c in first.tool_calls or []] == ["fc-7"]
    history = [*USER, first.message, {"role": "tool", "tool_call_id": "fc-7", "content": "21C"}]
    gate.completion(MODEL, history, tools=[WEATHER])
    assert wire.assistant_tool_calls(fake.last) == [("fc-7", "get_weather", {"city": "Rome"})]
    assert wire.tool_results(fake.last) == [("fc-7", "21C")]


def test_foreign_call_ids_are_not_sent(gate: LLMGate, fake: GeminiFake) -> None:
    history = [
        *USER,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "call_abc", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": "sunny"},
    ]
    gate.completion(MODEL, history, tools=[WEATHER])
    assert "call_abc" not in fake.last.body.decode()


def test_stream_parity_with_native_ids_and_signatures(gate: LLMGate, fake: GeminiFake) -> None:
    fake.native_call_ids = True
    reply = Reply(
        text="Checking the weather now.",
        reasoning="Need the tool.",
        reasoning_signature="sig-3",
        tool_calls=[FakeToolCall("get_weather", {"city": "Oslo"}, id="fc-1")],
        reasoning_tokens=3,
    )
    fake.push(reply, reply)
    whole = gate.completion(MODEL, USER, tools=[WEATHER])
    streamed = accumulate(gate.completion(MODEL, USER, tools=[WEATHER], stream=True))
    assert streamed.message == whole.message
    assert streamed.usage == whole.usage
    assert streamed.finish_reason == whole.finish_reason == "tool_calls"


# --------------------------------------------------------------------------- images


def test_files_api_uri_is_sent_by_reference(gate: LLMGate, fake: GeminiFake) -> None:
    uri = "https://generativelanguage.googleapis.com/v1beta/files/cat-123"
    message = Message(role="user", content=[TextPart(text="What?"), ImagePart.from_url(uri)])
    gate.completion(MODEL, [message])
    assert wire.images(fake.last) == [("url", uri)]


def test_image_url_is_downloaded_when_allowed(fake: GeminiFake, image_host: FakeServer) -> None:
    url = f"{image_host.url}/cat.png"
    message = Message(role="user", content=[TextPart(text="What?"), ImagePart.from_url(url)])
    with make_gate(fake, allow_image_download=True) as g:
        g.completion(MODEL, [message])
    expected = ImagePart.from_bytes(PNG).image_bytes
    assert expected is not None
    assert wire.images(fake.last) == [("bytes", expected.data)]
    assert '"mime_type": "image/png"' in fake.last.body.decode()


async def test_image_url_is_downloaded_off_the_event_loop(
    fake: GeminiFake, image_host: FakeServer
) -> None:
    url = f"{image_host.url}/cat.png"
    message = Message(role="user", content=[ImagePart.from_url(url)])
    with make_gate(fake, allow_image_download=True) as g:
        await g.acompletion(MODEL, [message])
    assert [kind for kind, _ in wire.images(fake.last)] == ["bytes"]


def test_image_download_limits(fake: GeminiFake, image_host: FakeServer) -> None:
    too_big = Message(role="user", content=[ImagePart.from_url(f"{image_host.url}/cat.png")])
    with make_gate(fake, allow_image_download=True, image_download_max_bytes=10) as g:
        with pytest.raises(InvalidRequestError, match="limit"):
            g.completion(MODEL, [too_big])
    missing = Message(role="user", content=[ImagePart.from_url(f"{image_host.url}/dog.png")])
    with make_gate(fake, allow_image_download=True) as g:
        with pytest.raises(InvalidRequestError, match="could not download"):
            g.completion(MODEL, [missing])
    assert fake.requests == []


def test_image_url_without_opt_in(gate: LLMGate, fake: GeminiFake) -> None:
    message = Message(role="user", content=[ImagePart.from_url("https://example.test/cat.png")])
    with pytest.raises(VisionNotSupported, match="allow_image_download"):
        gate.completion(MODEL, [message])
    assert fake.requests == []


# --------------------------------------------------------------------------- errors


def test_retry_info_in_the_error_body(gate: LLMGate, fake: GeminiFake) -> None:
    body = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}],
        }
    }
    fake.push(Fault(status=429, body=body))
    with pytest.raises(RateLimitError) as info:
        gate.completion(MODEL, USER)
    assert info.value.retry_after == 12.0
    assert info.value.message == "Resource has been exhausted"


def test_invalid_key_answer_is_an_auth_error(gate: LLMGate, fake: GeminiFake) -> None:
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
    fake.push(Fault(status=400, body=body))
    with pytest.raises(AuthError):
        gate.completion(MODEL, USER)


def test_sdk_makes_one_attempt(fake: GeminiFake) -> None:
    fake.push(Fault(status=503), Fault(status=503), Reply(text="late"))
    with make_gate(fake) as g, pytest.raises(ServerError):
        g.completion(MODEL, USER)
    assert len(fake.requests) == 1


def test_prompt_blocked(gate: LLMGate, fake: GeminiFake) -> None:
    # A 200 answer with no candidates, scripted through the raw-body override.
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "responseId": "b1"}
    fake.push(Fault(status=200, body=blocked))
    response = gate.completion(MODEL, USER)
    assert response.finish_reason == "content_filter"
    assert response.text == ""


# --------------------------------------------------------------------------- streams and async


async def test_async_stream_close_releases_connection(gate: LLMGate, fake: GeminiFake) -> None:
    server = fake.server
    assert server is not None
    baseline = server.open_connections
    fake.push(Reply(text=" ".join(["word"] * 200), chunk_delay=0.01))
    stream = await gate.acompletion(MODEL, USER, stream=True)
    await stream.__anext__()
    await stream.aclose()
    deadline = time.monotonic() + 3
    while server.open_connections > baseline and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert server.open_connections == baseline


def test_each_event_loop_gets_its_own_pool_closed_at_shutdown(
    gate: LLMGate, fake: GeminiFake
) -> None:
    gate.completion(MODEL, USER)
    server = fake.server
    assert server is not None
    baseline = server.open_connections  # the sync client's kept-alive connection
    (provider,) = gate._providers.values()

    async def call() -> Any:
        await gate.acompletion(MODEL, USER)
        return provider.async_client

    first, second = asyncio.run(call()), asyncio.run(call())
    assert first is not second
    assert provider.client.aio not in (first, second)
    deadline = time.monotonic() + 3
    while server.open_connections > baseline and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.open_connections == baseline
    assert len(fake.requests) == 3


def test_ssl_context_is_built_once(gate: LLMGate, fake: GeminiFake) -> None:
    gate.completion(MODEL, USER)
    (provider,) = gate._providers.values()
    context = provider._ssl_context  # type: ignore[attr-defined]
    asyncio.run(gate.acompletion(MODEL, USER))
    assert context is not None and provider._ssl_context is context  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- embeddings


def test_embedding_parameters_on_the_wire(gate: LLMGate, fake: GeminiFake) -> None:
    fake.push(EmbeddingReply(vectors=[[0.5, 0.25]]))
    gate.embed(
        "gemini/gemini-embedding-001",
        "doc text",
        task_type="RETRIEVAL_DOCUMENT",
        title="A title",
        dimensions=2,
    )
    (item,) = fake.last.json["requests"]
    assert (item["taskType"], item["title"], item["outputDimensionality"]) == (
        "RETRIEVAL_DOCUMENT",
        "A title",
        2,
    )
    assert item["model"] == "models/gemini-embedding-001"
    assert fake.last.path == "/v1/models/gemini-embedding-001:batchEmbedContents"


def test_input_type_maps_to_task_type(gate: LLMGate, fake: GeminiFake) -> None:
    gate.embed("gemini/gemini-embedding-001", ["q"], input_type="search_query")
    assert fake.last.json["requests"][0]["taskType"] == "RETRIEVAL_QUERY"


def test_large_inputs_are_split_at_100(gate: LLMGate, fake: GeminiFake) -> None:
    texts = [f"text {i}" for i in range(150)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        response = gate.embed("gemini/gemini-embedding-001", texts)
    assert len(response.embeddings) == 150
    sizes = sorted(len(r.json["requests"]) for r in fake.requests)
    assert sizes == [50, 100]
    assert response.usage.prompt_tokens == 10


def test_gemma_gets_system_text_in_the_user_turn(gate: LLMGate, fake: GeminiFake) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *USER]
    gate.completion("gemini/gemma-3-27b-it", messages)
    assert wire.system(fake.last) is None
    assert fake.last.json["contents"][0]["parts"] == [{"text": "Be brief."}, {"text": "Hi there"}]


def test_gemma_refuses_tools_before_sending(gate: LLMGate, fake: GeminiFake) -> None:
    from llmgate.exceptions import ToolsNotSupported

    with pytest.raises(ToolsNotSupported):
        gate.completion("gemini/gemma-3-27b-it", USER, tools=[WEATHER])
    assert fake.requests == []


def test_the_fake_refuses_oversized_batches_as_the_api_does(fake: GeminiFake) -> None:
    from google.genai import Client
    from google.genai import errors as genai_errors
    from google.genai import types as gt

    client = Client(api_key=FAKE_KEY, http_options=gt.HttpOptions(base_url=fake.base_url))
    with pytest.raises(genai_errors.ClientError, match="at most 100"):
        client.models.embed_content(model="gemini-embedding-001", contents=["x"] * 101)
