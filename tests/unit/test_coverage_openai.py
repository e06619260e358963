"""OpenAI provider paths the conformance suite does not reach, through the real openai SDK.

Odd wire shapes are served by a loopback fake that answers with scripted raw responses.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest
from typing_extensions import override

import llmgate
from llmgate import LLMGate
from llmgate.providers.openai._convert import (
    chat_kwargs,
    message_from_wire,
    wire_message,
)
from llmgate.types import CompletionRequest, Message, ToolCall
from tests.fakes.openai import OpenAIFake
from tests.fakes.server import (
    FakeServer,
    FakeVendor,
    RecordedRequest,
    Reply,
    Response,
    json_response,
)

USER = [{"role": "user", "content": "Hi"}]
USAGE = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
SSE = {"content-type": "text/event-stream"}


class RawBodies(FakeVendor):
    """Answers each request with the next raw Response queued on it."""

    name = "openai-raw-coverage"

    def __init__(self) -> None:
        super().__init__()
        self.responses: deque[Response] = deque()

    @override
    def handle(self, request: RecordedRequest) -> Response:
        return self.responses.popleft()


@pytest.fixture(scope="module")
def raw_server() -> Iterator[FakeServer]:
    with FakeServer(RawBodies()) as running:
        yield running


@pytest.fixture
def raw(raw_server: FakeServer) -> Iterator[RawBodies]:
    vendor = raw_server.vendor
    assert isinstance(vendor, RawBodies)
    vendor.reset()
    vendor.responses.clear()
    yield vendor
    vendor.responses.clear()


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(OpenAIFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[FakeVendor]:
    server.vendor.reset()
    yield server.vendor
    server.vendor.reset()


def gate_for(base_url: str, **options: Any) -> LLMGate:
    settings = {"api_key": "sk-fake", "base_url": f"{base_url}/v1", **options}
    return LLMGate(max_retries=0, provider_options={"openai": settings})


def sse(*payloads: Any) -> list[bytes]:
    return [f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n".encode() for p in payloads]


def delta(fields: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "s1",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": fields, "finish_reason": finish}],
        **extra,
    }


def plain_completion(text: str) -> dict[str, Any]:
    return {
        "id": "j1",
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": USAGE,
    }


# --------------------------------------------------------------------------- the wire


def test_client_options_and_escape_hatches_reach_the_wire(fake: FakeVendor) -> None:
    with gate_for(
        fake.base_url, organization="org-7", project="proj-3", default_headers={"X-Team": "ml"}
    ) as gate:
        gate.completion(
            "openai/gpt-4o-mini",
            USER,
            extra_headers={"X-Trace": "t-1"},
            extra_query={"debug": "1"},
            extra_body={"metadata": {"run": "42"}},
        )
    sent = fake.last
    assert sent.headers["openai-organization"] == "org-7"
    assert sent.headers["openai-project"] == "proj-3"
    assert sent.headers["x-team"] == "ml"
    assert sent.headers["x-trace"] == "t-1"
    assert sent.query["debug"] == ["1"]
    assert sent.json["metadata"] == {"run": "42"}
    assert "extra_body" not in sent.json and "extra_query" not in sent.json


def test_response_without_a_request_id_header(raw: RawBodies, raw_server: FakeServer) -> None:
    raw.responses.append(json_response(plain_completion("no id")))
    with gate_for(raw_server.url) as gate:
        response = gate.completion("openai/gpt-4o-mini", USER)
    assert response.text == "no id"
    assert "request_id" not in response.provider_details


def test_named_messages_and_strict_tools_are_sent(fake: FakeVendor) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {}},
            "strict": True,
        },
    }
    history = [
        {"role": "user", "content": "Hi", "name": "alice"},
        {"role": "assistant", "content": "Hello Alice", "name": "helper"},
        {"role": "user", "content": "Look it up"},
    ]
    with gate_for(fake.base_url) as gate:
        gate.completion("openai/gpt-4o-mini", history, tools=[tool])
    sent = fake.last.json
    assert sent["messages"][0] == {"role": "user", "content": "Hi", "name": "alice"}
    assert sent["messages"][1]["name"] == "helper"
    assert sent["tools"][0]["function"]["strict"] is True
    assert "description" not in sent["tools"][0]["function"]


@pytest.mark.filterwarnings("ignore:parameter 'task_type' dropped")
def test_openai_drops_warn_with_the_public_warning_class(fake: FakeVendor) -> None:
    with gate_for(fake.base_url) as gate:
        with pytest.warns(llmgate.DroppedParameterWarning, match="task_type"):
            gate.embed("openai/text-embedding-3-small", "x", task_type="retrieval_query")


def test_strict_gate_refuses_what_openai_would_drop(fake: FakeVendor) -> None:
    options = {"openai": {"api_key": "sk-fake", "base_url": f"{fake.base_url}/v1"}}
    with LLMGate(max_retries=0, provider_options=options, strict_params=True) as gate:
        with pytest.raises(llmgate.InvalidRequestError, match="task_type"):
            gate.embed("openai/text-embedding-3-small", "x", task_type="retrieval_query")
    assert fake.requests == []


# --------------------------------------------------------------------------- odd streams


def test_stream_whose_last_event_has_no_blank_line(raw: RawBodies, raw_server: FakeServer) -> None:
    pieces = sse(delta({"content": "Hel"}), delta({"content": "lo"}))
    last = json.dumps(delta({}, "stop", usage=USAGE))
    pieces.append(f"data: {last}".encode())  # the server hung up without the closing blank line
    raw.responses.append(Response(headers=SSE, stream=pieces))
    with gate_for(raw_server.url) as gate:
        response = gate.completion("openai/gpt-4o-mini", USER, stream=True).until_done()
    assert response.text == "Hello"
    assert response.finish_reason == "stop" and response.usage.total_tokens == 6


async def test_async_stream_whose_last_event_has_no_blank_line(
    raw: RawBodies, raw_server: FakeServer
) -> None:
    pieces = sse(delta({"content": "a"}))
    pieces.append(f"data: {json.dumps(delta({}, 'length', usage=USAGE))}".encode())
    raw.responses.append(Response(headers=SSE, stream=pieces))
    async with gate_for(raw_server.url) as gate:
        stream = await gate.acompletion("openai/gpt-4o-mini", USER, stream=True)
        response = await stream.until_done()
    assert response.text == "a" and response.finish_reason == "length"
    assert response.usage.total_tokens == 6


async def test_async_stream_request_answered_with_plain_json(
    raw: RawBodies, raw_server: FakeServer
) -> None:
    raw.responses.append(json_response(plain_completion("whole answer")))
    async with gate_for(raw_server.url) as gate:
        stream = await gate.acompletion("openai/gpt-4o-mini", USER, stream=True)
        chunks = [chunk async for chunk in stream]
    assert "".join(c.delta for c in chunks) == "whole answer"
    assert chunks[-1].finish_reason == "stop"
    assert stream.final_response().usage.total_tokens == 6


def _done_then_cut() -> Response:
    pieces = sse(delta({"content": "complete"}), delta({}, "stop", usage=USAGE), "[DONE]")
    pieces += [b": the server keeps talking\n\n", b": and then drops the line\n\n"]
    return Response(headers=SSE, stream=pieces, drop_after=4)


def test_connection_dropped_after_done_does_not_fail_the_answer(
    raw: RawBodies, raw_server: FakeServer
) -> None:
    raw.responses.append(_done_then_cut())
    with gate_for(raw_server.url) as gate:
        response = gate.completion("openai/gpt-4o-mini", USER, stream=True).until_done()
    assert response.text == "complete" and response.finish_reason == "stop"
    assert response.usage.total_tokens == 6


async def test_async_connection_dropped_after_done_does_not_fail_the_answer(
    raw: RawBodies, raw_server: FakeServer
) -> None:
    raw.responses.append(_done_then_cut())
    async with gate_for(raw_server.url) as gate:
        stream = await gate.acompletion("openai/gpt-4o-mini", USER, stream=True)
        response = await stream.until_done()
    assert response.text == "complete" and response.usage.total_tokens == 6


def test_stream_of_a_whole_reply_from_the_standard_fake(fake: FakeVendor) -> None:
    fake.push(Reply(text="one two", reasoning="think"))
    with gate_for(fake.base_url) as gate:
        response = gate.completion("openai/gpt-4o-mini", USER, stream=True).until_done()
    assert response.text == "one two"
    assert response.reasoning == "think"


# --------------------------------------------------------------------------- pure translation


def test_content_of_unexpected_type_is_read_as_text() -> None:
    message = message_from_wire({"role": "assistant", "content": 42}, "openai")
    assert message.text == "42"


def test_tool_call_arguments_sent_as_an_object_or_missing() -> None:
    message = message_from_wire(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "a", "function": {"name": "f", "arguments": {"x": 1}}},
                {"id": "b", "function": {"name": "g"}},
            ],
        },
        "openai",
    )
    assert message.tool_calls == [
        ToolCall(id="a", name="f", arguments={"x": 1}),
        ToolCall(id="b", name="g", arguments={}),
    ]


def test_assistant_name_goes_back_on_the_wire() -> None:
    wire = wire_message(Message(role="assistant", content="hi", name="bot"), "openai")
    assert wire == {"role": "assistant", "content": "hi", "name": "bot"}


def test_tool_choice_is_not_sent_without_tools() -> None:
    request = CompletionRequest(model="openai/gpt-4o-mini", messages=USER, tool_choice="auto")
    sent = chat_kwargs(
        request,
        "gpt-4o-mini",
        provider="openai",
        accepted=frozenset(),
        compatible=False,
        strict=False,
        stream=False,
    )
    assert "tool_choice" not in sent and "tools" not in sent
