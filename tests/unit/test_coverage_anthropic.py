"""Anthropic provider paths the conformance suite does not reach, through the real SDK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typing_extensions import override

from llmgate import LLMGate
from llmgate.exceptions import ProviderAPIError, ServerError
from tests.fakes.anthropic import FAKE_API_KEY, AnthropicFake
from tests.fakes.server import FakeServer, RecordedRequest, Reply, Response, json_response

USER = [{"role": "user", "content": "Hi"}]
MODEL = "anthropic/claude-sonnet-4-6"


class OddAnthropic(AnthropicFake):
    """The real fake, with frames inserted into its streams or its JSON body replaced."""

    def __init__(self) -> None:
        super().__init__()
        self.insert: list[tuple[int, bytes]] = []
        self.body: Any = None

    @override
    def reset(self) -> None:
        super().reset()
        self.insert = []
        self.body = None

    @override
    def handle(self, request: RecordedRequest) -> Response:
        response = super().handle(request)
        if self.body is not None:
            return json_response(self.body, headers={"request-id": "req_odd"})
        if response.stream is not None and self.insert:
            pieces = list(response.stream)
            for position, frame in self.insert:
                pieces.insert(position, frame)
            response.stream = pieces
        return response


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(OddAnthropic()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[OddAnthropic]:
    vendor = server.vendor
    assert isinstance(vendor, OddAnthropic)
    vendor.reset()
    yield vendor
    vendor.reset()


def gate_for(fake: OddAnthropic, **options: Any) -> LLMGate:
    settings = {"api_key": FAKE_API_KEY, "base_url": fake.base_url, **options}
    return LLMGate(max_retries=0, provider_options={"anthropic": settings})


def test_default_headers_option_reaches_the_wire(fake: OddAnthropic) -> None:
    with gate_for(fake, default_headers={"anthropic-beta": "fake-beta-1"}) as gate:
        assert gate.completion(MODEL, USER).text
    assert fake.last.headers["anthropic-beta"] == "fake-beta-1"


@pytest.mark.parametrize("body", [["not", "an", "object"], "just a string"])
def test_a_body_that_is_not_a_message_object_is_a_provider_error(
    fake: OddAnthropic, body: Any
) -> None:
    fake.body = body
    with gate_for(fake) as gate, pytest.raises(ProviderAPIError, match="cannot read"):
        gate.completion(MODEL, USER)


async def test_async_body_that_is_not_a_message_object(fake: OddAnthropic) -> None:
    fake.body = [1, 2, 3]
    async with gate_for(fake) as gate:
        with pytest.raises(ProviderAPIError, match="cannot read"):
            await gate.acompletion(MODEL, USER)


EMPTY_EVENT = b"event: content_block_stop\ndata: \n\n"
UNREADABLE_ERROR = b"event: error\ndata: upstream exploded\n\n"


def test_stream_events_without_data_are_skipped(fake: OddAnthropic) -> None:
    fake.push(Reply(text="one two three"))
    fake.insert = [(3, EMPTY_EVENT)]
    with gate_for(fake) as gate:
        response = gate.completion(MODEL, USER, stream=True).until_done()
    assert response.text == "one two three"
    assert response.finish_reason == "stop"


async def test_async_stream_events_without_data_are_skipped(fake: OddAnthropic) -> None:
    fake.push(Reply(text="one two three"))
    fake.insert = [(3, EMPTY_EVENT)]
    async with gate_for(fake) as gate:
        stream = await gate.acompletion(MODEL, USER, stream=True)
        response = await stream.until_done()
    assert response.text == "one two three"


def test_error_frame_that_is_not_json_is_a_server_error(fake: OddAnthropic) -> None:
    fake.push(Reply(text="one two three four"))
    fake.insert = [(4, UNREADABLE_ERROR)]
    with gate_for(fake) as gate:
        stream = gate.completion(MODEL, USER, stream=True)
        with pytest.raises(ServerError, match="upstream exploded"):
            list(stream)


async def test_async_error_frame_that_is_not_json_is_a_server_error(fake: OddAnthropic) -> None:
    fake.push(Reply(text="one two three four"))
    fake.insert = [(4, UNREADABLE_ERROR)]
    async with gate_for(fake) as gate:
        stream = await gate.acompletion(MODEL, USER, stream=True)
        with pytest.raises(ServerError, match="upstream exploded"):
            async for _ in stream:
                pass


CR_ERROR_EVENT = (
    b'event: error\rdata: {"type": "error", "error": {"type": "overloaded_error", '
    b'"message": "overloaded at the very end"}}\r\r'
)


def test_stream_ending_on_a_bare_cr_line_end_reads_its_last_event(fake: OddAnthropic) -> None:
    fake.push(Reply(text="nearly there"))
    fake.insert = [(10_000, CR_ERROR_EVENT)]  # last, and nothing after its final CR
    with gate_for(fake) as gate:
        stream = gate.completion(MODEL, USER, stream=True)
        with pytest.raises(ServerError, match="overloaded at the very end") as info:
            list(stream)
    assert info.value.status_code == 529
    assert stream.text == "nearly there"


async def test_async_stream_ending_on_a_bare_cr_line_end_reads_its_last_event(
    fake: OddAnthropic,
) -> None:
    fake.push(Reply(text="nearly there"))
    fake.insert = [(10_000, CR_ERROR_EVENT)]
    async with gate_for(fake) as gate:
        stream = await gate.acompletion(MODEL, USER, stream=True)
        with pytest.raises(ServerError, match="overloaded at the very end"):
            async for _ in stream:
                pass
    assert stream.text == "nearly there"
