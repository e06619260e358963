"""Ollama provider paths the conformance suite does not reach, through the real ollama SDK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llmgate import LLMGate
from llmgate.exceptions import ProviderConnectionError
from tests.fakes.ollama import OllamaFake
from tests.fakes.server import FakeServer, Reply, Response

USER = [{"role": "user", "content": "Hi"}]
MODEL = "ollama/llama3.2:3b"


class CutBeforeDone(OllamaFake):
    """Ends the NDJSON stream cleanly, but without its final ``done`` line."""

    def stream_response(self, reply: Reply, body: dict[str, Any]) -> Response:
        whole = super().stream_response(reply, body)
        assert whole.stream is not None
        pieces = [p for p in whole.stream if isinstance(p, bytes)]
        return Response(status=200, headers=whole.headers, stream=pieces[:-1])


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(OllamaFake()) as running:
        yield running


def gate_for(url: str) -> LLMGate:
    options = {"ollama": {"api_key": "fake-ollama-key", "base_url": url}}
    return LLMGate(max_retries=0, provider_options=options)


async def test_async_stream_cut_before_its_done_line_is_an_error() -> None:
    with FakeServer(CutBeforeDone()) as cut:
        async with gate_for(cut.url) as gate:
            stream = await gate.acompletion(MODEL, USER, stream=True)
            with pytest.raises(ProviderConnectionError, match="before its final"):
                async for _ in stream:
                    pass
    assert stream.text == "Hello from the fake."


def test_many_distinct_call_timeouts_keep_working(server: FakeServer) -> None:
    server.vendor.reset()
    with gate_for(server.url) as gate:
        answers = [gate.completion(MODEL, USER, timeout=5 + i / 10).text for i in range(10)]
    assert len(answers) == 10 and all(answers)


async def test_many_distinct_async_call_timeouts_keep_working(server: FakeServer) -> None:
    server.vendor.reset()
    async with gate_for(server.url) as gate:
        answers = [
            (await gate.acompletion(MODEL, USER, timeout=5 + i / 10)).text for i in range(10)
        ]
    assert len(answers) == 10 and all(answers)
