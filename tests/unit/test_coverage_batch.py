"""batch / abatch on their less travelled paths: odd items, keys per item, fail_fast with work
in flight. A small plugin provider answers by the prompt's text, so concurrency cannot change
which item fails."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from llmgate import LLMGate
from llmgate._errors import make_provider_error
from llmgate._registry import ProviderSpec, Registry
from llmgate.providers.base import Provider
from llmgate.testing import scripted
from llmgate.types import Choice, CompletionRequest, CompletionResponse, Message, TokenUsage


class ByPrompt(Provider):
    """``fail`` fails at once, ``slow`` takes a while, anything else answers at once."""

    def _answer(self, request: CompletionRequest, model: str) -> CompletionResponse:
        prompt = request.messages[-1].text
        if prompt == "fail":
            raise make_provider_error("refused", status=400, provider=self.name, model=model)
        return CompletionResponse(
            id=prompt,
            model=model,
            provider=self.name,
            choices=[
                Choice(
                    index=0, message=Message(role="assistant", content=prompt), finish_reason="stop"
                )
            ],
            usage=TokenUsage(prompt_tokens=1, completion_tokens=1),
        )

    def complete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        if request.messages[-1].text == "slow":
            time.sleep(0.3)
        return self._answer(request, model)

    async def acomplete(self, request: CompletionRequest, model: str) -> CompletionResponse:
        prompt = request.messages[-1].text
        if prompt == "slow":
            await asyncio.sleep(5)  # cancelled by fail_fast long before this ends
        elif prompt == "fail":
            await asyncio.sleep(0.01)  # let the slow item start first
        return self._answer(request, model)


@pytest.fixture
def gate() -> LLMGate:
    registry = Registry()
    registry.register(
        ProviderSpec(name="byprompt", module="unused:X", key_required=False), ByPrompt
    )
    return LLMGate(registry=registry, max_retries=0)


def item(prompt: str) -> dict[str, Any]:
    return {"model": "byprompt/m", "messages": [{"role": "user", "content": prompt}]}


def test_items_of_the_wrong_type_fail_alone(gate: LLMGate) -> None:
    result = gate.batch([item("a"), "not a request", item("b")])  # type: ignore[list-item]
    assert [r.text if r else None for r in result.results] == ["a", None, "b"]
    (error,) = result.errors
    assert (error.index, error.error_type) == (1, "InvalidRequestError")
    assert "must be a CompletionRequest or a dict, not str" in error.error


def test_request_objects_keep_their_own_key() -> None:
    request = CompletionRequest(
        model="mock/a", messages=[{"role": "user", "content": "hi"}], api_key="sk-item-key"
    )
    with scripted("ok") as script:
        result = LLMGate().batch([request], temperature=0.5)
    assert result.successful == 1
    (seen,) = script.requests
    assert isinstance(seen, CompletionRequest)
    assert seen.api_key_value == "sk-item-key"
    assert seen.temperature == 0.5


def test_fail_fast_cancels_work_in_flight_and_waiting(gate: LLMGate) -> None:
    requests = [item("fail"), item("slow"), item("never"), item("started")]
    result = gate.batch(requests, max_concurrency=2, fail_fast=True)
    by_index = {e.index: e for e in result.errors}
    assert by_index[0].error_type == "BadRequestError"
    assert set(by_index) == {0, 1, 2, 3}
    for index in (1, 2, 3):
        assert by_index[index].error_type == "Cancelled"
        assert "request 0 failed and fail_fast is on" in by_index[index].error
    assert result.successful == 0 and result.failed == 4


async def test_async_fail_fast_cancels_work_in_flight_and_waiting(gate: LLMGate) -> None:
    requests = [item("slow"), item("fail"), item("never"), item("later")]
    result = await gate.abatch(requests, max_concurrency=2, fail_fast=True)
    by_index = {e.index: e for e in result.errors}
    assert by_index[1].error_type == "BadRequestError"
    assert set(by_index) == {0, 1, 2, 3}
    for index in (0, 2, 3):
        assert by_index[index].error_type == "Cancelled"
        assert "an earlier request failed" in by_index[index].error
    assert result.success_rate == 0.0


async def test_async_batch_without_fail_fast_keeps_going(gate: LLMGate) -> None:
    result = await gate.abatch([item("fail"), item("a"), item("b")], max_concurrency=1)
    assert [r.text if r else None for r in result.results] == [None, "a", "b"]
    assert result.failed == 1 and result.total_tokens == 4
