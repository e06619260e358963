"""Ollama embeddings read from the wire agree with the SDK's own ``Client.embed``.

llmgate sends the embed request through the SDK client's ``_request_raw`` and reads the
JSON into an EmbeddingResponse itself, building the SDK's ``EmbedResponse`` only when
``raw`` is read; a reply it cannot vouch for still goes through that model. These tests
serve the same bytes to the raw SDK and to llmgate (on the wire path and on the public
``embed()`` path an SDK without those internals gets) and compare requests, results and
errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ollama
import pytest

from llmgate import LLMGate
from llmgate.exceptions import LLMGateError
from llmgate.providers.ollama import provider as ollama_provider
from llmgate.providers.ollama._convert import plain_embeddings
from llmgate.providers.ollama.provider import _embed_body, map_ollama_error
from llmgate.types import EmbeddingResponse
from tests.fakes.ollama import OllamaFake
from tests.fakes.server import EmbeddingReply, FakeServer, Fault, Reply, Response

MODEL = "nomic-embed-text"
KEY = "fake-ollama-key"


class EmbedBodyFake(OllamaFake):
    """Answers /api/embed with exactly the body it is given (or the usual fake reply)."""

    body: bytes | None = None

    def embedding_response(self, reply: EmbeddingReply, body: dict[str, Any]) -> Response:
        if self.body is None:
            return super().embedding_response(reply, body)
        return Response(status=200, headers={"content-type": "application/json"}, body=self.body)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(EmbedBodyFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[EmbedBodyFake]:
    vendor = server.vendor
    assert isinstance(vendor, EmbedBodyFake)
    vendor.reset()
    vendor.body = None
    yield vendor
    vendor.reset()
    vendor.body = None


@pytest.fixture(params=["wire", "embed()"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param != "wire":
        monkeypatch.setattr(ollama_provider, "_EMBED_WIRE", False)
    return str(request.param)


def gate_for(fake: EmbedBodyFake) -> LLMGate:
    options = {"ollama": {"api_key": KEY, "base_url": fake.base_url}}
    return LLMGate(max_retries=0, provider_options=options)


def sdk_client(fake: EmbedBodyFake) -> ollama.Client:
    return ollama.Client(host=fake.base_url, headers={"authorization": f"Bearer {KEY}"})


def expected_from(result: ollama.EmbedResponse) -> dict[str, Any]:
    """What an EmbeddingResponse must hold for the SDK's own result."""
    prompt = result.prompt_eval_count or 0
    completion = result.eval_count or 0
    return {
        "embeddings": [[float(x) for x in vector] for vector in result.embeddings],
        "model": result.model or MODEL,
        "provider": "ollama",
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "cached_prompt_tokens": None,
            "reasoning_tokens": None,
        },
        "attempts": 1,
        "provider_details": {},
    }


def dump(response: EmbeddingResponse) -> dict[str, Any]:
    return response.model_dump()


# --------------------------------------------------------------------------- requests

CALLS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "plain": ({}, {}),
    "one text": ({"input": "solo"}, {"input": "solo"}),
    "truncate and dimensions": (
        {"truncate": "false", "dimensions": 3},
        {"truncate": False, "dimensions": 3},
    ),
    "keep_alive and options": (
        {"keep_alive": 5, "num_ctx": 512, "options": {"seed": 1}},
        {"keep_alive": 5, "options": {"num_ctx": 512, "seed": 1}},
    ),
}


@pytest.mark.parametrize("call", list(CALLS))
async def test_the_request_is_the_one_embed_sends(
    fake: EmbedBodyFake, path: str, call: str
) -> None:
    ours_kwargs, sdk_kwargs = (dict(kwargs) for kwargs in CALLS[call])
    texts = sdk_kwargs.pop("input", ["alpha", "beta"])
    ours_input = ours_kwargs.pop("input", texts)
    with gate_for(fake) as gate:
        gate.embed(f"ollama/{MODEL}", ours_input, **ours_kwargs)
        await gate.aembed(f"ollama/{MODEL}", ours_input, **ours_kwargs)
    sdk_client(fake).embed(
        model=MODEL, input=texts if isinstance(texts, list) else [texts], **sdk_kwargs
    )
    ours, ours_async, theirs = fake.requests
    for request in (ours, ours_async):
        assert (request.method, request.path) == (theirs.method, theirs.path)
        assert request.body == theirs.body
        for name in ("content-type", "accept", "user-agent", "authorization"):
            assert request.headers.get(name) == theirs.headers.get(name)


EMBED_KWARGS: list[dict[str, Any]] = [
    {"model": MODEL, "input": ["a", "b"]},
    {"model": MODEL, "input": []},
    {"model": MODEL, "input": ["a"], "truncate": True, "dimensions": 8},
    {"model": MODEL, "input": ["a"], "truncate": False},
    {"model": MODEL, "input": ["a"], "keep_alive": 5},
    {"model": MODEL, "input": ["a"], "keep_alive": "5m", "options": {"seed": 1}},
    {"model": MODEL, "input": ["a"], "options": {}},
    {"model": MODEL, "input": "a"},
]


@pytest.mark.parametrize("kwargs", EMBED_KWARGS, ids=lambda k: json.dumps(k)[:60])
def test_embed_bodies_are_the_ones_embed_request_gives(kwargs: dict[str, Any]) -> None:
    from ollama._types import EmbedRequest

    sdk = EmbedRequest(**kwargs).model_dump(exclude_none=True)
    assert json.dumps(_embed_body(kwargs)) == json.dumps(sdk)


def test_an_empty_model_is_refused_as_embed_refuses_it() -> None:
    with pytest.raises(Exception) as sdk_error:
        ollama.Client(host="http://127.0.0.1:9").embed(model="", input=["a"])
    with pytest.raises(type(sdk_error.value)):
        _embed_body({"model": "", "input": ["a"]})


# --------------------------------------------------------------------------- results

BASE: dict[str, Any] = {
    "model": MODEL,
    "embeddings": [[0.5, -0.25, 1.0], [0.0, 0.125, -1.0]],
    "total_duration": 14_143_917,
    "load_duration": 1_019_500,
    "prompt_eval_count": 5,
}
BODIES: dict[str, Any] = {
    "plain": BASE,
    "ints in a vector": {**BASE, "embeddings": [[0, 1, -2], [0.5, 1, 3]]},
    "no model, no counters": {"embeddings": [[0.5, 0.5, 0.5], [1.5, 2.5, 3.5]]},
    "empty model, eval count": {**BASE, "model": "", "eval_count": 2},
    "nulls": {**BASE, "load_duration": None, "prompt_eval_count": None, "done": None},
    "extra keys": {**BASE, "created_at": "2026-01-01T00:00:00Z", "done": True, "other": [1]},
    "numbers as text": {**BASE, "embeddings": [["0.5", 1.0, 2.0], [1.0, 2.0, 3.0]]},
    "float counter": {**BASE, "prompt_eval_count": 5.0},
    "bool in a vector": {**BASE, "embeddings": [[True, 1.0, 2.0], [1.0, 2.0, 3.0]]},
    "huge int in a vector": {**BASE, "embeddings": [[10**400, 1.0, 2.0], [1.0, 2.0, 3.0]]},
    "model not text": {**BASE, "model": 3},
}


@pytest.mark.parametrize("shape", list(BODIES))
async def test_results_are_the_ones_embed_gives(fake: EmbedBodyFake, path: str, shape: str) -> None:
    fake.body = json.dumps(BODIES[shape]).encode()
    try:
        sdk_result = sdk_client(fake).embed(model=MODEL, input=["alpha", "beta"])
    except Exception as exc:  # the SDK refuses this reply: llmgate must fail the same way
        theirs = map_ollama_error(exc, provider="ollama", model=MODEL)
        with gate_for(fake) as gate:
            with pytest.raises(LLMGateError) as info:
                gate.embed(f"ollama/{MODEL}", ["alpha", "beta"])
            with pytest.raises(LLMGateError) as async_info:
                await gate.aembed(f"ollama/{MODEL}", ["alpha", "beta"])
        for error in (info.value, async_info.value):
            assert type(error) is type(theirs)
            assert str(error) == str(theirs)
        return
    expected = expected_from(sdk_result)
    with gate_for(fake) as gate:
        ours = gate.embed(f"ollama/{MODEL}", ["alpha", "beta"])
        ours_async = await gate.aembed(f"ollama/{MODEL}", ["alpha", "beta"])
    for response in (ours, ours_async):
        assert dump(response) == expected
        assert all(type(x) is float for vector in response.embeddings for x in vector)
        assert isinstance(response.raw, ollama.EmbedResponse)
        assert response.raw == sdk_result


def test_raw_is_built_only_when_read(fake: EmbedBodyFake) -> None:
    fake.body = json.dumps(BASE).encode()
    with gate_for(fake) as gate:
        response = gate.embed(f"ollama/{MODEL}", ["alpha", "beta"])
    assert response._raw is None
    assert response.raw == ollama.EmbedResponse(**BASE)
    assert response.raw is response.raw


@pytest.mark.parametrize(
    "part",
    [
        BODIES["numbers as text"],
        BODIES["float counter"],
        BODIES["bool in a vector"],
        BODIES["huge int in a vector"],
        BODIES["model not text"],
        {**BASE, "embeddings": None},
        {**BASE, "embeddings": [(0.5,), [1.0]]},
        {**BASE, "done": 1},
        {**BASE, "created_at": 5},
        [BASE],
    ],
)
def test_only_plain_replies_skip_the_sdk_model(part: Any) -> None:
    assert plain_embeddings(part) is None
    assert plain_embeddings(BASE) == BASE["embeddings"]
    assert plain_embeddings(BODIES["ints in a vector"]) == [[0.0, 1.0, -2.0], [0.5, 1.0, 3.0]]


# --------------------------------------------------------------------------- errors


async def test_a_count_mismatch_is_refused(fake: EmbedBodyFake, path: str) -> None:
    fake.body = json.dumps({**BASE, "embeddings": [[0.5]]}).encode()
    with gate_for(fake) as gate:
        with pytest.raises(LLMGateError, match="1 embeddings for 2 inputs"):
            gate.embed(f"ollama/{MODEL}", ["alpha", "beta"])
        with pytest.raises(LLMGateError, match="1 embeddings for 2 inputs"):
            await gate.aembed(f"ollama/{MODEL}", ["alpha", "beta"])


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b""], ids=["broken", "list", "empty"])
async def test_unreadable_bodies_fail_as_embed_fails(
    fake: EmbedBodyFake, path: str, body: bytes
) -> None:
    fake.body = body
    with pytest.raises(Exception) as sdk_error:
        sdk_client(fake).embed(model=MODEL, input=["alpha", "beta"])
    theirs = map_ollama_error(sdk_error.value, provider="ollama", model=MODEL)
    with gate_for(fake) as gate:
        with pytest.raises(LLMGateError) as info:
            gate.embed(f"ollama/{MODEL}", ["alpha", "beta"])
        with pytest.raises(LLMGateError) as async_info:
            await gate.aembed(f"ollama/{MODEL}", ["alpha", "beta"])
    for error in (info.value, async_info.value):
        assert type(error) is type(theirs)
        assert str(error) == str(theirs)


@pytest.mark.parametrize("status", [400, 404, 429, 500, 503])
async def test_http_errors_are_the_ones_embed_raises(
    fake: EmbedBodyFake, path: str, status: int
) -> None:
    fault = Fault(status=status, message="nope", headers={"retry-after": "2"})
    fake.push(fault, fault, fault)
    with pytest.raises(Exception) as sdk_error:
        sdk_client(fake).embed(model=MODEL, input=["alpha", "beta"])
    theirs = map_ollama_error(sdk_error.value, provider="ollama", model=MODEL)
    with gate_for(fake) as gate:
        with pytest.raises(LLMGateError) as info:
            gate.embed(f"ollama/{MODEL}", ["alpha", "beta"])
        with pytest.raises(LLMGateError) as async_info:
            await gate.aembed(f"ollama/{MODEL}", ["alpha", "beta"])
    for error in (info.value, async_info.value):
        assert type(error) is type(theirs)
        assert str(error) == str(theirs)
        for name in ("status_code", "retry_after", "retryable", "request_id"):
            assert getattr(error, name, None) == getattr(theirs, name, None)
        assert isinstance(error.__cause__, ollama.ResponseError)


async def test_a_refused_connection_is_the_one_embed_raises(path: str) -> None:
    options = {"ollama": {"base_url": "http://127.0.0.1:9"}}
    with pytest.raises(Exception) as sdk_error:
        ollama.Client(host="http://127.0.0.1:9").embed(model=MODEL, input=["a"])
    theirs = map_ollama_error(sdk_error.value, provider="ollama", model=MODEL)
    with LLMGate(max_retries=0, provider_options=options) as gate:
        with pytest.raises(LLMGateError) as info:
            gate.embed(f"ollama/{MODEL}", ["a"])
        with pytest.raises(LLMGateError) as async_info:
            await gate.aembed(f"ollama/{MODEL}", ["a"])
    for error in (info.value, async_info.value):
        assert type(error) is type(theirs)
        assert str(error) == str(theirs)


def test_the_usual_fake_reply_reads_the_same_both_ways(
    fake: EmbedBodyFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.push(EmbeddingReply(dimensions=16), EmbeddingReply(dimensions=16))
    with gate_for(fake) as gate:
        wire = gate.embed(f"ollama/{MODEL}", ["alpha", "beta"])
        monkeypatch.setattr(ollama_provider, "_EMBED_WIRE", False)
        public = gate.embed(f"ollama/{MODEL}", ["alpha", "beta"])
    assert dump(wire) == dump(public)
    assert wire.raw == public.raw
    assert len(wire.embeddings[0]) == 16


def test_chat_is_unaffected(fake: EmbedBodyFake) -> None:
    fake.push(Reply(text="hi"))
    with gate_for(fake) as gate:
        assert gate.completion(f"ollama/{MODEL}", [{"role": "user", "content": "x"}]).text == "hi"
