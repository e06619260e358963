"""llmgate.testing: what users rely on to test their own apps."""

from __future__ import annotations

import socket

import pytest
from pydantic import BaseModel

import llmgate
from llmgate.exceptions import ProviderConnectionError, RateLimitError
from llmgate.testing import (
    MockReply,
    RealNetworkCallError,
    block_network,
    deterministic_vector,
    sample_for_schema,
    scripted,
)

USER = [{"role": "user", "content": "hello"}]


class Invoice(BaseModel):
    number: int
    customer: str
    lines: list[str]
    paid: bool | None = None


def test_echo_by_default() -> None:
    assert llmgate.completion("mock/any", USER).text == "hello"


def test_scripted_text_tool_calls_and_requests() -> None:
    calls = [{"id": "c1", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}]
    with scripted("first", MockReply(tool_calls=calls)) as script:
        assert llmgate.completion("mock/a", USER).text == "first"
        second = llmgate.completion("mock/a", USER)
    assert second.tool_calls is not None and second.tool_calls[0].arguments == {"q": "x"}
    assert second.finish_reason == "tool_calls"
    assert len(script.requests) == 2


def test_scripted_errors_with_retry_after() -> None:
    with scripted(MockReply(error_status=429, retry_after=12)):
        with pytest.raises(RateLimitError) as info:
            llmgate.completion("mock/a", USER, max_retries=0)
    assert info.value.retry_after == 12 and info.value.status_code == 429


def test_stream_that_breaks() -> None:
    with scripted(MockReply(text="a b c d", fail_after=2)):
        stream = llmgate.completion("mock/a", USER, stream=True, max_retries=0)
        with pytest.raises(ProviderConnectionError):
            list(stream)
    assert stream.text == "a b"


def test_explicit_chunks() -> None:
    with scripted(MockReply(text="abc", chunks=["a", "bc"])):
        assert [c.delta for c in llmgate.completion("mock/a", USER, stream=True)] == ["a", "bc", ""]


def test_schema_valid_structured_output_when_unscripted() -> None:
    invoice = llmgate.parse("mock/a", USER, response_format=Invoice)
    assert isinstance(invoice, Invoice)
    assert Invoice.model_validate(sample_for_schema(Invoice.model_json_schema())) == invoice


def test_forced_tool_call_when_unscripted() -> None:
    tool = {
        "name": "add",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
    }
    response = llmgate.completion("mock/a", USER, tools=[tool], tool_choice="required")
    assert response.tool_calls is not None and response.tool_calls[0].arguments == {"a": 1}


def test_deterministic_embeddings() -> None:
    first = llmgate.embed("mock/e", ["x", "y"], dimensions=16)
    again = llmgate.embed("mock/e", ["x", "y"], dimensions=16)
    assert first.embeddings == again.embeddings
    assert first.embeddings[0] == deterministic_vector("x", 16)
    assert first.embeddings[0] != first.embeddings[1]


def test_block_network_refuses_other_hosts() -> None:
    with block_network(), socket.socket() as sock:
        with pytest.raises(RealNetworkCallError, match=r"203\.0\.113\.9"):
            sock.connect(("203.0.113.9", 443))


def test_block_network_allows_loopback() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with block_network(), socket.socket() as client:
            client.connect(server.getsockname())


def test_pytest_fixtures(llmgate_mock: object, llmgate_block_network: None) -> None:
    llmgate_mock.push("from the fixture")  # type: ignore[attr-defined]
    assert llmgate.completion("mock/a", USER).text == "from the fixture"


def test_large_embedding_input_is_split_and_kept_in_order() -> None:
    texts = [f"text {i}" for i in range(600)]  # the mock takes 256 a request
    response = llmgate.embed("mock/e", texts, dimensions=4)
    assert response.embeddings == [deterministic_vector(t, 4) for t in texts]
    assert response.provider_details == {"requests": 3}
    one_by_one = sum(llmgate.embed("mock/e", t).usage.prompt_tokens for t in texts)
    assert response.usage.prompt_tokens == one_by_one


async def test_large_embedding_input_async() -> None:
    texts = [f"t{i}" for i in range(513)]
    response = await llmgate.aembed("mock/e", texts, dimensions=4)
    assert response.embeddings == [deterministic_vector(t, 4) for t in texts]


def test_empty_embedding_input_is_an_error() -> None:
    from llmgate.exceptions import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="empty"):
        llmgate.embed("mock/e", [])
    assert llmgate.embed("mock/e", "").embeddings[0] == deterministic_vector("", 8)
