"""The Gemini wire path (``providers/gemini/_wire.py``) against the SDK's public path.

Every case runs twice against the loopback fake: once as llmgate runs it (the SDK sends,
llmgate reads the JSON) and once through google-genai's public methods (``_wire.api_client``
made to refuse). The requests on the wire, the results, the stream chunks, the errors and
the SDK objects behind ``.raw`` must be the same. The first tests pin the SDK internals the
wire path uses: when google-genai moves them, these fail instead of llmgate silently
falling back to the slower path.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("google.genai", minversion="3", reason="google-genai 3.x needs Python 3.11")

from google import genai
from google.genai import _common, _extra_utils
from google.genai import models as genai_models
from google.genai import types as gt

from llmgate import LLMGate
from llmgate.exceptions import LLMGateError
from llmgate.providers.gemini import _wire
from llmgate.providers.gemini._convert import (
    CandidateOutput,
    StreamTranslator,
    plain_candidate,
    response_from_sdk,
    response_from_wire,
)
from llmgate.types import ImagePart, Message, TextPart
from tests.fakes.gemini import FAKE_KEY, GeminiFake
from tests.fakes.server import (
    EmbeddingReply,
    FakeServer,
    FakeToolCall,
    Fault,
    Reply,
)

MODEL = "gemini/gemini-2.5-flash"
EMBEDDING_MODEL = "gemini/gemini-embedding-001"
USER = [{"role": "user", "content": "Hi there"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


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


def make_gate(fake: GeminiFake, **options: Any) -> LLMGate:
    settings = {"api_key": FAKE_KEY, "base_url": fake.base_url, **options}
    return LLMGate(max_retries=0, provider_options={"gemini": settings})


def both_paths(
    fake: GeminiFake,
    monkeypatch: pytest.MonkeyPatch,
    scripts: list[Any],
    run: Callable[[LLMGate], Any],
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """``((wire result, wire request), (public result, public request))``, each path
    served the same scripts; a raised LLMGateError is the result."""
    outcomes = []
    for public in (False, True):
        fake.reset()
        fake.push(*scripts)
        with monkeypatch.context() as patch:
            if public:
                patch.setattr(_wire, "api_client", lambda client: None)
            with make_gate(fake) as gate:
                try:
                    result = run(gate)
                except LLMGateError as exc:
                    result = (type(exc), str(exc), exc.status_code, exc.retry_after)
        outcomes.append(
            (result, [(r.path, r.json, _sdk_headers(r.headers)) for r in fake.requests])
        )
    return outcomes[0], outcomes[1]


def _sdk_headers(headers: dict[str, str]) -> dict[str, str]:
    kept = ("x-goog-api-key", "x-goog-api-client", "user-agent", "x-server-timeout", "content-type")
    return {name: headers[name] for name in kept if name in headers}


def _raw(result: Any) -> Any:
    """The SDK object's dump, without the Date header (the two calls are not simultaneous)."""
    dumped = result.model_dump()
    http = dumped.get("sdk_http_response") or {}
    for headers in [http.get("headers") or {}]:
        headers.pop("date", None)
    return dumped


# --------------------------------------------------------------------------- the SDK's shape


def test_the_sdk_still_has_what_the_wire_path_uses() -> None:
    client = genai.Client(api_key="k", http_options=gt.HttpOptions(base_url="http://127.0.0.1:9"))
    try:
        assert _wire._SDK_READY, "google-genai moved a converter or helper _wire.py uses"
        assert _wire.api_client(client) is client._api_client
        assert _wire.api_client(client.aio) is client.aio._api_client
        api = client._api_client
        request = api._build_request("post", "models/m:generateContent", {"a": 1}, None)
        assert request.url == "http://127.0.0.1:9/v1/models/m:generateContent"
        assert request.headers["x-goog-api-key"] == "k"
        assert request.data == {"a": 1}
    finally:
        client.close()


def test_a_vertex_client_takes_the_public_path() -> None:
    client = genai.Client(vertexai=True, api_key="k")
    try:
        assert _wire.api_client(client) is None
    finally:
        client.close()


def test_model_paths_as_the_sdk_writes_them() -> None:
    api = genai.Client(api_key="k")._api_client
    from google.genai import _transformers

    for model in ("gemini-2.5-flash", "models/x", "tunedModels/t-1"):
        assert _wire.model_path(model) == _transformers.t_model(api, model)
    for bad in ("", "a..b", "a?b", "a&b"):
        with pytest.raises(ValueError) as ours:
            _wire.model_path(bad)
        with pytest.raises(ValueError) as theirs:
            _transformers.t_model(api, bad)
        assert str(ours.value) == str(theirs.value)


def test_continuation_helpers_are_the_sdks() -> None:
    body = _wire.with_continuation_token({"contents": []}, b"\xfftok")
    assert body["continuationToken"] == _common.encode_unserializable_types({"t": b"\xfftok"})["t"]
    assert _extra_utils.should_continue_generation is not None
    assert genai_models._GenerateContentResponse_from_mldev is not None


# --------------------------------------------------------------------------- requests and results

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("plain", {}),
    ("options", {"max_tokens": 5, "temperature": 0.2, "top_p": 0.5, "stop": ["x", "y"]}),
    ("timeout", {"timeout": 2.5}),
    ("tools", {"tools": [WEATHER], "tool_choice": "required"}),
    ("named tool", {"tools": [WEATHER], "tool_choice": "get_weather"}),
    (
        "tool dict",
        {
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        },
    ),
    ("tool none", {"tools": [WEATHER], "tool_choice": "none"}),
    ("tool auto", {"tools": [WEATHER], "tool_choice": "auto"}),
]


@pytest.mark.parametrize("name, options", REQUESTS, ids=[name for name, _ in REQUESTS])
def test_calls_match_the_public_path(
    fake: GeminiFake, monkeypatch: pytest.MonkeyPatch, name: str, options: dict[str, Any]
) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *USER]
    reply = Reply(text="Hello.", reasoning="Think.", prompt_tokens=9, reasoning_tokens=2)
    ours, theirs = both_paths(
        fake, monkeypatch, [reply], lambda g: g.completion(MODEL, messages, **options)
    )
    assert ours[1] == theirs[1]
    assert ours[0].model_dump() == theirs[0].model_dump()
    assert _raw(ours[0].raw) == _raw(theirs[0].raw)


def test_conversations_match_the_public_path(
    fake: GeminiFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = base64.b64encode(b"\x89PNG-not-really\xff\xfe").decode()
    uri = "https://generativelanguage.googleapis.com/v1beta/files/cat-123"
    messages: list[Any] = [
        {"role": "system", "content": "One."},
        {"role": "system", "content": "Two."},
        Message(
            role="user",
            content=[
                TextPart(text="Look"),
                ImagePart.from_bytes(base64.b64decode(png), "image/png"),
                ImagePart.from_url(uri),
            ],
        ),
        {
            "role": "assistant",
            "content": "Calling.",
            "tool_calls": [
                {"id": "c1", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "18C"},
        {"role": "user", "content": ""},
    ]
    ours, theirs = both_paths(
        fake,
        monkeypatch,
        [Reply(text="ok")],
        lambda g: g.completion(MODEL, messages, tools=[WEATHER]),
    )
    assert ours[1] == theirs[1]
    assert ours[0].model_dump() == theirs[0].model_dump()


def test_structured_output_matches_the_public_path(
    fake: GeminiFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str

    reply = Reply(text='{"name": "Oslo"}')
    ours, theirs = both_paths(
        fake, monkeypatch, [reply], lambda g: g.completion(MODEL, USER, response_format=City)
    )
    assert ours[1] == theirs[1]
    assert ours[0].model_dump() == theirs[0].model_dump()
    assert ours[0].raw.parsed == theirs[0].raw.parsed == {"name": "Oslo"}
    assert _raw(ours[0].raw) == _raw(theirs[0].raw)


def test_models_without_system_instructions_match(
    fake: GeminiFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *USER]
    ours, theirs = both_paths(
        fake,
        monkeypatch,
        [Reply(text="ok")],
        lambda g: g.completion("gemini/gemma-3-27b-it", messages),
    )
    assert ours[1] == theirs[1]
    assert ours[0].model_dump() == theirs[0].model_dump()


REPLIES = [
    Reply(text="Hello."),
    Reply(text="", tool_calls=[FakeToolCall("get_weather", {"city": "Rome"})]),
    Reply(
        text="Sure.",
        reasoning="Hm.",
        tool_calls=[FakeToolCall("a", {}), FakeToolCall("b", {"x": [1]})],
    ),
    Reply(text="Signed.", reasoning="Hm.", reasoning_signature="sig"),
    Reply(text="Cut.", finish_reason="length", cached_tokens=3),
    Reply(text="Odd.", finish_reason="error"),
    Reply(text="A longer answer in pieces", chunks=5, model="gemini-2.5-flash-001"),
]


@pytest.mark.parametrize("reply", REPLIES)
@pytest.mark.parametrize("native_ids", [False, True])
def test_results_and_streams_match_the_public_path(
    fake: GeminiFake, monkeypatch: pytest.MonkeyPatch, reply: Reply, native_ids: bool
) -> None:
    fake.native_call_ids = native_ids
    ours, theirs = both_paths(
        fake, monkeypatch, [reply], lambda g: g.completion(MODEL, USER, tools=[WEATHER])
    )
    assert ours[0].model_dump() == theirs[0].model_dump()
    assert _raw(ours[0].raw) == _raw(theirs[0].raw)
    ours, theirs = both_paths(
        fake,
        monkeypatch,
        [reply],
        lambda g: [c.model_dump() for c in g.completion(MODEL, USER, tools=[WEATHER], stream=True)],
    )
    assert ours == theirs


ANSWERS: list[dict[str, Any]] = [
    {},
    {"candidates": []},
    {"candidates": [{"content": {"parts": [{"text": "a"}, {"text": "b", "thought": False}]}}]},
    {
        "candidates": [
            {
                "finishReason": "SAFETY",
                "safetyRatings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "HIGH"}],
            }
        ]
    },
    {"promptFeedback": {"blockReason": "SAFETY"}, "responseId": "r"},
    {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "NEW_REASON"}]},
    {"candidates": [{"content": {"parts": [{"text": "x", "futureField": 1}]}}]},
    {
        "candidates": [
            {"content": {"parts": [{"executableCode": {"code": "1", "language": "PYTHON"}}]}}
        ]
    },
    {
        "candidates": [
            {
                "content": {"parts": [{"text": "x"}], "role": "model"},
                "index": 0,
                "avgLogprobs": -0.5,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 3,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 3}],
        },
        "modelVersion": "m-1",
        "responseId": "r",
    },
    {
        "candidates": [{"content": {"parts": [{"text": "x"}]}}],
        "usageMetadata": {"promptTokenCount": 3, "trafficType": "ON_DEMAND"},
    },
    {
        "candidates": [
            {"content": {"parts": [{"functionCall": {"name": "f"}}]}, "finishReason": "STOP"}
        ]
    },
]


@pytest.mark.filterwarnings("ignore:NEW_REASON is not a valid FinishReason")
@pytest.mark.parametrize("answer", ANSWERS)
def test_unusual_answers_match_the_public_path(
    fake: GeminiFake, monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any]
) -> None:
    script = Fault(status=200, body=answer)
    ours, theirs = both_paths(fake, monkeypatch, [script], lambda g: g.completion(MODEL, USER))
    assert ours[0].model_dump() == theirs[0].model_dump()
    assert _raw(ours[0].raw) == _raw(theirs[0].raw)
    events = b"".join(b"data: " + json.dumps(answer).encode() + b"\n\n" for _ in range(2))
    stream_script = Fault(status=200, body=events, headers={"content-type": "text/event-stream"})
    ours, theirs = both_paths(
        fake,
        monkeypatch,
        [stream_script],
        lambda g: [c.model_dump() for c in g.completion(MODEL, USER, stream=True)],
    )
    assert ours == theirs


def test_plain_answers_are_read_without_the_sdk() -> None:
    plain, candidate = plain_candidate(ANSWERS[8])
    assert plain and candidate is not None
    for answer in ANSWERS[3:8] + ANSWERS[9:10]:
        assert not plain_candidate(answer)[0], answer

    def refuse() -> gt.GenerateContentResponse:
        raise AssertionError("the SDK object was built")

    response = response_from_wire(ANSWERS[8], "m", refuse)
    assert response.text == "x" and response.usage.prompt_tokens == 3


def test_raw_is_built_once_on_first_access(fake: GeminiFake) -> None:
    with make_gate(fake) as gate:
        response = gate.completion(MODEL, USER)
        assert response._raw is None
        raw = response.raw
        assert isinstance(raw, gt.GenerateContentResponse)
        assert response.raw is raw
        assert raw.sdk_http_response is not None and raw.sdk_http_response.headers
        assert raw.automatic_function_calling_history == []


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "script",
    [
        Fault(status=429, headers={"retry-after": "7"}),
        Fault(
            status=400,
            body={
                "error": {
                    "code": 400,
                    "message": "bad",
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                        }
                    ],
                }
            },
        ),
        Fault(status=500),
        Fault(status=200, body="{not json"),
        Fault(status=200, body=""),
        Fault(status=200, body=[1, 2]),
        Fault(status=200, body={"candidates": [{"content": {"parts": [{"text": 5}]}}]}),
        Reply(error_after=2, error_status=429, chunks=4, text="a b c d"),
        Reply(malformed_after=1, chunks=3, text="a b c"),
    ],
)
def test_errors_match_the_public_path(
    fake: GeminiFake, monkeypatch: pytest.MonkeyPatch, script: Any
) -> None:
    def call(gate: LLMGate) -> Any:
        result = gate.completion(MODEL, USER)
        return result.model_dump()

    def stream(gate: LLMGate) -> Any:
        return [c.model_dump() for c in gate.completion(MODEL, USER, stream=True)]

    for run in (call, stream):
        ours, theirs = both_paths(fake, monkeypatch, [script], run)
        assert ours[0] == theirs[0]


async def test_async_calls_and_streams_match(
    fake: GeminiFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    reply = Reply(
        text="one two three", chunks=3, reasoning="r", tool_calls=[FakeToolCall("f", {"a": 1})]
    )
    results = []
    for public in (False, True):
        fake.reset()
        fake.push(reply, reply, Fault(status=429), EmbeddingReply(vectors=[[1, 0.5]]))
        with monkeypatch.context() as patch:
            if public:
                patch.setattr(_wire, "api_client", lambda client: None)
            async with make_gate(fake) as gate:
                whole = await gate.acompletion(MODEL, USER)
                stream = await gate.acompletion(MODEL, USER, stream=True)
                chunks = [c.model_dump() async for c in stream]
                with pytest.raises(LLMGateError) as error:
                    await gate.acompletion(MODEL, USER)
                vectors = await gate.aembed(EMBEDDING_MODEL, ["alpha"])
        results.append(
            (
                whole.model_dump(),
                _raw(whole.raw),
                chunks,
                (type(error.value), error.value.status_code),
                vectors.model_dump(),
                _raw(vectors.raw),
                [(r.path, r.json) for r in fake.requests],
            )
        )
    assert results[0] == results[1]


# --------------------------------------------------------------------------- embeddings

EMBEDDINGS: list[tuple[Any, dict[str, Any]]] = [
    (EmbeddingReply(), {}),
    (EmbeddingReply(vectors=[[1, 2], [0.5, -1e-3]]), {"dimensions": 2, "task_type": "CLUSTERING"}),
    (EmbeddingReply(), {"title": "T"}),
    (EmbeddingReply(), {"input_type": "search_query", "timeout": 3}),
    (
        Fault(
            status=200,
            body={"embeddings": [{"values": [1, 2]}], "metadata": {"billableCharacterCount": 9}},
        ),
        {},
    ),
    (Fault(status=200, body={"embeddings": [{"values": ["x"]}]}), {}),
    (Fault(status=200, body={}), {}),
]


@pytest.mark.parametrize("script, options", EMBEDDINGS)
def test_embeddings_match_the_public_path(
    fake: GeminiFake, monkeypatch: pytest.MonkeyPatch, script: Any, options: dict[str, Any]
) -> None:
    def run(gate: LLMGate) -> Any:
        result = gate.embed(EMBEDDING_MODEL, ["alpha", "beta"], **options)
        return result.model_dump(), _raw(result.raw)

    ours, theirs = both_paths(fake, monkeypatch, [script], run)
    assert ours == theirs


# --------------------------------------------------------------------------- continuation


def _hop(text: str, token: str | None, finish: str, prompt: int) -> Fault:
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": [{"text": text}]},
        "finishReason": finish,
    }
    if token is not None:
        candidate["continuationToken"] = token
    usage = {"promptTokenCount": prompt, "candidatesTokenCount": 2, "totalTokenCount": prompt + 2}
    return Fault(status=200, body={"candidates": [candidate], "usageMetadata": usage})


@pytest.mark.parametrize("options", [{}, {"max_tokens": 9}])
def test_continued_answers_match_the_public_path(
    fake: GeminiFake, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any]
) -> None:
    token = base64.b64encode(b"resume-here").decode()
    hops = [
        _hop("first ", token, "CONTINUATION", 5),
        _hop("second ", base64.b64encode(b"again").decode(), "CONTINUATION", 6),
        _hop("third", None, "STOP", 7),
    ]
    ours, theirs = both_paths(
        fake, monkeypatch, hops, lambda g: g.completion(MODEL, USER, **options)
    )
    assert ours[1] == theirs[1]
    assert len(ours[1]) == 3
    assert ours[0].model_dump() == theirs[0].model_dump()
    assert ours[0].text == "first second third"
    assert _raw(ours[0].raw) == _raw(theirs[0].raw)


def test_candidate_output_reads_text_as_the_sdk_parts_do() -> None:
    pieces = [("a", False), ("", False), ("t", True), ("", True), ("b", False), ("c", False)]
    ours, theirs = CandidateOutput("r"), CandidateOutput("r")
    for text, thought in pieces:
        assert (
            ours.add_text(text, thought)
            == theirs.add(gt.Part(text=text, thought=thought or None))[:2]
        )
    assert ours.message() == theirs.message()


def test_stream_translator_takes_sdk_objects_for_unusual_events() -> None:
    built: list[Any] = []

    def to_sdk(event: Any) -> gt.GenerateContentResponse:
        built.append(event)
        return _wire.generate_response(event, None, None)

    translator = StreamTranslator("m")
    assert translator.feed_wire({"candidates": [{"content": {"parts": [{"text": "a"}]}}]}, to_sdk)
    unusual = {"candidates": [{"content": {"parts": [{"text": "b"}]}, "safetyRatings": []}]}
    chunk = translator.feed_wire(unusual, to_sdk)
    assert chunk is not None and chunk.delta == "b"
    assert built == [unusual]
    expected = response_from_sdk(
        _wire.generate_response(
            {"candidates": [{"content": {"parts": [{"text": "ab"}]}}]}, None, None
        ),
        "m",
    )
    assert translator.output is not None
    assert translator.output.message() == expected.message


# --------------------------------------------------------------------------- SSE reading

BODIES = [
    b'data: {"a": 1}\n\ndata: {"b": [2]}\n\n',
    b'data: {"a": 1}\r\n\r\ndata: {"b": 2}\r\rdata: {"c": 3}\n\n',
    b'data: {"a":\ndata: 1}\n\n',
    b'{\n  "error": {\n    "code": 500,\n    "message": "a } in \\" text"\n  }\n}\n',
    b'data: {"a": 1}\n\ndata: {"unterminated": \n\n',
    b'data: {"a": "caf\xc3\xa9 \xff"}\n\n',
    b'data: {"a": 1}',
    b'data: {"a": 1}\n\ndata: ',
    b'data:{"no": "space"}\n\n',
    b'data: {"a": 1}\n\n}\n',
    b'event: x\ndata: {"a": 1}\n\n',
    b'data: {"a": 1}\r',
]


def _pieces(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)] if size else [body]


def _outcomes(read: Callable[[], Iterator[Any]]) -> list[Any]:
    events: list[Any] = []
    try:
        for event in read():
            events.append(event)
    except Exception as exc:
        events.append((type(exc), str(exc)))
    return events


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 16])
def test_events_are_read_as_the_sdk_reads_them(body: bytes, size: int) -> None:
    import httpx2
    from google.genai._api_client import HttpResponse

    class Pieces(httpx2.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield from _pieces(body, size)

    def sdk() -> Iterator[Any]:
        response = httpx2.Response(200, stream=Pieces())
        return HttpResponse(response.headers, response).segments()

    def ours() -> Iterator[Any]:
        reader = _wire.EventReader()
        for piece in _pieces(body, size):
            for text in reader.feed(piece):
                yield _wire.load_event(text)
        for text in reader.close():
            yield _wire.load_event(text)

    assert _outcomes(ours) == _outcomes(sdk)


def _sse(*events: dict[str, Any]) -> Fault:
    body = b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events)
    return Fault(status=200, body=body, headers={"content-type": "text/event-stream"})


def _event(text: str, **candidate: Any) -> dict[str, Any]:
    usage = {"promptTokenCount": 4, "candidatesTokenCount": len(text), "totalTokenCount": 9}
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, **candidate}],
        "usageMetadata": usage,
        "responseId": "r1",
    }


CONTINUED_STREAMS = [
    [
        _sse(
            _event("one "),
            _event("two ", finishReason="CONTINUATION", continuationToken="dG9rZW4="),
        ),
        _sse(_event("three "), _event("four", finishReason="STOP")),
    ],
    [
        _sse(_event("one ", continuationToken="Y2hlY2s="), _event("two ")),
        _sse(_event("three", finishReason="MAX_TOKENS")),
    ],
    [
        _sse(_event("one ", finishReason="CONTINUATION", continuationToken="dG9rZW4=")),
        Fault(status=429),
    ],
]


@pytest.mark.parametrize("hops", CONTINUED_STREAMS)
def test_continued_streams_match_the_public_path(
    fake: GeminiFake, monkeypatch: pytest.MonkeyPatch, hops: list[Fault]
) -> None:
    def run(gate: LLMGate) -> Any:
        return [c.model_dump() for c in gate.completion(MODEL, USER, stream=True)]

    ours, theirs = both_paths(fake, monkeypatch, hops, run)
    assert ours == theirs
    assert len(ours[1]) == 2


@pytest.mark.parametrize("hops", CONTINUED_STREAMS[:2])
async def test_continued_async_streams_match_the_public_path(
    fake: GeminiFake, monkeypatch: pytest.MonkeyPatch, hops: list[Fault]
) -> None:
    outcomes = []
    for public in (False, True):
        fake.reset()
        fake.push(*hops)
        with monkeypatch.context() as patch:
            if public:
                patch.setattr(_wire, "api_client", lambda client: None)
            async with make_gate(fake) as gate:
                stream = await gate.acompletion(MODEL, USER, stream=True)
                chunks = [c.model_dump() async for c in stream]
        outcomes.append((chunks, [(r.path, r.json) for r in fake.requests]))
    assert outcomes[0] == outcomes[1]
