"""Mid-stream fallback: restart | prefill | user_turn, de-overlap, tools, usage, flags."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from llmgate import LLMGate, RetryPolicy
from llmgate._fallback import DEFAULT_RESUME_PROMPT, _Overlap, overlap
from llmgate._registry import BUILTIN_SPECS, Capabilities, ProviderSpec, Registry
from llmgate.exceptions import AllProvidersFailedError, ProviderConnectionError, RateLimitError
from llmgate.testing import MockProvider, MockReply, scripted
from llmgate.types import CompletionRequest, CompletionResponse, StreamChunk, TokenUsage

USER = [{"role": "user", "content": "Tell me a story"}]
STORY = "Once upon a time there was a small fox"
NO_RETRY = RetryPolicy(max_retries=0)


class _UsageThenCut(MockProvider):
    """Streams some text and a usage report, then the connection drops."""

    def _pieces(self, model: str) -> list[StreamChunk]:
        return [
            StreamChunk(model=model, provider=self.name, delta="Once upon"),
            StreamChunk(
                model=model,
                provider=self.name,
                usage=TokenUsage(prompt_tokens=10, completion_tokens=2),
            ),
        ]

    def stream(self, request: CompletionRequest, model: str) -> Iterator[StreamChunk]:
        self._reply(request, model)
        yield from self._pieces(model)
        raise ProviderConnectionError("cut", provider=self.name, model=model)

    async def _agen(self, request: CompletionRequest, model: str) -> AsyncIterator[StreamChunk]:
        self._reply(request, model)
        for chunk in self._pieces(model):
            yield chunk
        raise ProviderConnectionError("cut", provider=self.name, model=model)

    def astream(self, request: CompletionRequest, model: str) -> AsyncIterator[StreamChunk]:
        return self._agen(request, model)


def _registry() -> Registry:
    registry = Registry(BUILTIN_SPECS)
    registry.register(
        ProviderSpec(
            name="plain",
            module="llmgate.testing:MockProvider",
            key_required=False,
            capabilities=Capabilities(prefill=False),
            model_capabilities=(("prefillable-*", {"prefill": True}),),
        )
    )
    registry.register(
        ProviderSpec(
            name="cutter",
            module="tests.unit.test_fallback_stream:_UsageThenCut",
            key_required=False,
            capabilities=Capabilities(prefill=True),
        ),
        _UsageThenCut,
    )
    return registry


def _gate(**kwargs: Any) -> LLMGate:
    return LLMGate(retry_policy=NO_RETRY, registry=_registry(), **kwargs)


def _stream(
    gate: LLMGate, models: list[str], is_async: bool, **kwargs: Any
) -> tuple[list[StreamChunk], CompletionResponse]:
    """All chunks of a streamed call and its final response, the sync or the async way."""
    if not is_async:
        stream = gate.completion(models, USER, stream=True, **kwargs)
        chunks = list(stream)
        return chunks, stream.final_response()

    async def run() -> tuple[list[StreamChunk], CompletionResponse]:
        stream = await gate.acompletion(models, USER, stream=True, **kwargs)
        chunks = [chunk async for chunk in stream]
        return chunks, stream.final_response()

    return asyncio.run(run())


def _text(chunks: list[StreamChunk]) -> str:
    return "".join(chunk.delta for chunk in chunks)


modes = pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])


@modes
def test_restart_says_so_on_the_first_chunk_of_the_new_answer(is_async: bool) -> None:
    cut = MockReply(text="Il etait une fois", fail_after=2)
    with _gate() as gate, scripted(cut, MockReply(text=STORY)) as script:
        chunks, response = _stream(gate, ["mock/a", "mock/b"], is_async)
    switch = next(i for i, c in enumerate(chunks) if c.fallback_attempts)
    assert _text(chunks[:switch]) == "Il etait"
    assert chunks[switch].restarted
    assert not any(c.restarted for c in chunks[switch + 1 :])
    assert all(c.fallback_attempts == ["mock/a"] for c in chunks[switch:])
    assert not any(c.resumed_from_partial for c in chunks)
    assert response.text == STORY, "the accumulator clears what the failed model said"
    assert response.fallback_attempts == ["mock/a"]
    assert response.attempts == 2
    assert script.requests[1].messages == script.requests[0].messages


@modes
def test_prefill_continues_without_repeating_the_overlap(is_async: bool) -> None:
    cut = MockReply(text=STORY, fail_after=4)  # "Once upon a time" reached the caller
    repeat = MockReply(text="a time there was a small fox")  # repeats "a time"
    with _gate() as gate, scripted(cut, repeat) as script:
        chunks, response = _stream(
            gate, ["mock/a", "mock/b"], is_async, stream_fallback_mode="prefill"
        )
    assert _text(chunks) == STORY
    assert response.text == STORY
    continuation = script.requests[1].messages
    assert [m.role for m in continuation] == ["user", "assistant"]
    assert continuation[-1].text == "Once upon a time"
    resumed = [c for c in chunks if c.fallback_attempts]
    assert resumed and all(c.resumed_from_partial for c in resumed)
    assert not any(c.restarted for c in chunks)


@modes
def test_user_turn_sends_the_partial_answer_and_a_resume_prompt(is_async: bool) -> None:
    cut = MockReply(text=STORY, fail_after=3)
    rest = MockReply(text=" time there was a small fox")
    with _gate() as gate, scripted(cut, rest) as script:
        chunks, _ = _stream(gate, ["mock/a", "mock/b"], is_async, stream_fallback_mode="user_turn")
    assert _text(chunks) == STORY
    sent = script.requests[1].messages
    assert [(m.role, m.text) for m in sent[1:]] == [
        ("assistant", "Once upon a"),
        ("user", DEFAULT_RESUME_PROMPT),
    ]


def test_custom_resume_prompt() -> None:
    cut = MockReply(text=STORY, fail_after=3)
    with _gate() as gate, scripted(cut, MockReply(text=" time")) as script:
        _stream(
            gate,
            ["mock/a", "mock/b"],
            False,
            stream_fallback_mode="user_turn",
            stream_resume_prompt="Go on.",
        )
    assert script.requests[1].messages[-1].text == "Go on."


def test_gate_default_mode_applies() -> None:
    cut = MockReply(text=STORY, fail_after=3)
    with _gate(stream_fallback_mode="prefill") as gate, scripted(cut, MockReply(text=" x")) as s:
        _stream(gate, ["mock/a", "mock/b"], False)
    assert s.requests[1].messages[-1].role == "assistant"


@modes
def test_prefill_falls_back_to_user_turn_with_a_warning(is_async: bool) -> None:
    cut = MockReply(text=STORY, fail_after=3)
    with _gate() as gate, scripted(cut, MockReply(text=" time")) as script:
        with pytest.warns(UserWarning, match="prefill"):
            chunks, _ = _stream(
                gate, ["mock/a", "plain/model"], is_async, stream_fallback_mode="prefill"
            )
    assert script.requests[1].messages[-1].role == "user"
    assert _text(chunks) == "Once upon a time"


def test_prefill_is_a_capability_per_model() -> None:
    cut = MockReply(text=STORY, fail_after=3)
    with _gate() as gate, scripted(cut, MockReply(text=" time")) as script:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _stream(gate, ["mock/a", "plain/prefillable-1"], False, stream_fallback_mode="prefill")
    assert script.requests[1].messages[-1].role == "assistant"


@modes
def test_a_stream_cut_inside_a_tool_call_restarts(is_async: bool) -> None:
    call = {"id": "call_1", "name": "lookup", "arguments": {"q": "fox"}}
    cut = MockReply(text="Let me look", tool_calls=[call], fail_after=4)  # after the tool delta
    again = MockReply(text="", tool_calls=[{"id": "call_9", "name": "lookup", "arguments": {}}])
    with _gate() as gate, scripted(cut, again) as script:
        chunks, response = _stream(
            gate, ["mock/a", "mock/b"], is_async, stream_fallback_mode="prefill"
        )
    assert script.requests[1].messages == script.requests[0].messages, "no continuation"
    switch = next(c for c in chunks if c.fallback_attempts)
    assert switch.restarted
    assert response.tool_calls is not None
    assert [(c.id, c.arguments) for c in response.tool_calls] == [("call_9", {})]
    assert response.text == ""


def test_a_stream_cut_during_reasoning_restarts() -> None:
    cut = MockReply(reasoning="hmm", text=STORY, fail_after=1)
    with _gate() as gate, scripted(cut, MockReply(text="Fresh")) as script:
        chunks, response = _stream(
            gate, ["mock/a", "mock/b"], False, stream_fallback_mode="prefill"
        )
    assert script.requests[1].messages == script.requests[0].messages
    assert next(c for c in chunks if c.fallback_attempts).restarted
    assert (response.text, response.reasoning) == ("Fresh", None)


def test_failure_before_anything_was_delivered_is_a_plain_switch() -> None:
    with _gate() as gate, scripted(MockReply(error_status=503), MockReply(text="b b")):
        chunks, response = _stream(
            gate, ["mock/a", "mock/b"], False, stream_fallback_mode="prefill"
        )
    assert all(c.fallback_attempts == ["mock/a"] for c in chunks)
    assert not any(c.restarted or c.resumed_from_partial for c in chunks)
    assert response.text == "b b"


@modes
@pytest.mark.parametrize("mode", ["restart", "prefill"])
def test_usage_of_the_failed_attempt_is_kept(is_async: bool, mode: str) -> None:
    tail = MockReply(text=" a time", usage=TokenUsage(prompt_tokens=20, completion_tokens=3))
    with _gate() as gate, scripted(MockReply(), tail):
        _, response = _stream(gate, ["cutter/x", "mock/b"], is_async, stream_fallback_mode=mode)
    assert response.usage.prompt_tokens == 30
    assert response.usage.completion_tokens == 5
    assert response.usage.total_tokens == 35


def test_usage_of_a_failed_attempt_is_reported_even_if_the_last_model_reports_none() -> None:
    class _Silent(MockProvider):
        def stream(self, request: CompletionRequest, model: str) -> Iterator[StreamChunk]:
            self._reply(request, model)
            yield StreamChunk(delta=" a time", finish_reason="stop")

    registry = _registry()
    registry.register(
        ProviderSpec(
            name="silent", module="x:y", key_required=False, capabilities=Capabilities(prefill=True)
        ),
        _Silent,
    )
    with (
        LLMGate(retry_policy=NO_RETRY, registry=registry) as gate,
        scripted(MockReply(), MockReply()),
    ):
        stream = gate.completion(
            ["cutter/x", "silent/y"], USER, stream=True, stream_fallback_mode="prefill"
        )
        chunks = list(stream)
    assert chunks[-1].usage == TokenUsage(prompt_tokens=10, completion_tokens=2)
    assert stream.final_response().usage.total_tokens == 12


class _CutAtTheEnd(MockProvider):
    """Streams a whole answer, finish reason included, then the connection drops."""

    def _iterate(
        self, chunks: list[StreamChunk], reply: MockReply, model: str
    ) -> Iterator[StreamChunk]:
        yield from chunks
        raise ProviderConnectionError("cut after the end", provider=self.name, model=model)


def test_a_cut_after_the_finish_reason_ends_the_stream_normally() -> None:
    registry = _registry()
    registry.register(ProviderSpec(name="ender", module="x:y", key_required=False), _CutAtTheEnd)
    gate = LLMGate(retry_policy=NO_RETRY, registry=registry)
    with gate, scripted(MockReply(text="all done"), MockReply(text="x")) as s:
        _, response = _stream(gate, ["ender/a", "mock/b"], False)
    assert response.text == "all done" and response.finish_reason == "stop"
    assert len(s.requests) == 1


def test_an_error_finish_reason_is_not_a_complete_answer() -> None:
    registry = _registry()
    registry.register(ProviderSpec(name="ender", module="x:y", key_required=False), _CutAtTheEnd)
    gate = LLMGate(retry_policy=NO_RETRY, registry=registry)
    with gate, scripted(MockReply(text="half", finish_reason="error"), "whole") as s:
        _, response = _stream(gate, ["ender/a", "mock/b"], False)
    assert (response.text, response.finish_reason) == ("whole", "stop")
    assert len(s.requests) == 2


@modes
def test_every_model_failing_mid_stream_raises_all_failed(is_async: bool) -> None:
    cuts = [MockReply(text=STORY, fail_after=2), MockReply(text=STORY, fail_after=2)]
    with _gate() as gate, scripted(*cuts), pytest.raises(AllProvidersFailedError) as info:
        _stream(gate, ["mock/a", "mock/b"], is_async)
    assert [model for model, _ in info.value.errors] == ["mock/a", "mock/b"]
    assert all(isinstance(error, ProviderConnectionError) for _, error in info.value.errors)


def test_an_error_outside_fallback_on_is_raised_mid_stream() -> None:
    with _gate() as gate, scripted(MockReply(text=STORY, fail_after=2), MockReply(text="x")) as s:
        stream = gate.completion(
            ["mock/a", "mock/b"], USER, stream=True, fallback_on=RateLimitError
        )
        with pytest.raises(ProviderConnectionError):
            list(stream)
    assert stream.text == "Once upon"
    assert len(s.requests) == 1


def test_the_callers_own_prefill_goes_on() -> None:
    messages = [*USER, {"role": "assistant", "content": "Once"}]
    with (
        _gate() as gate,
        scripted(MockReply(text=" upon a time", fail_after=3), MockReply(text=" a time")) as s,
    ):
        stream = gate.completion(
            ["mock/a", "mock/b"], messages, stream=True, stream_fallback_mode="prefill"
        )
        assert "".join(c.delta for c in stream) == " upon a time"
    assert [(m.role, m.text) for m in s.requests[1].messages] == [
        ("user", "Tell me a story"),
        ("assistant", "Once upon a"),
    ]


def test_trailing_whitespace_is_not_sent_nor_doubled() -> None:
    cut = MockReply(chunks=["Once ", "upon ", "a ", "time"], text="Once upon a time", fail_after=2)
    with _gate() as gate, scripted(cut, MockReply(chunks=[" a", " time"], text=" a time")) as s:
        _, response = _stream(gate, ["mock/a", "mock/b"], False, stream_fallback_mode="prefill")
    assert s.requests[1].messages[-1].text == "Once upon"
    assert response.text == "Once upon a time"


def test_closing_a_fallback_stream_early_stops_everything() -> None:
    with _gate() as gate, scripted(MockReply(text=STORY), MockReply(text="x")) as s:
        stream = gate.completion(["mock/a", "mock/b"], USER, stream=True)
        next(stream)
        stream.close()
        assert list(stream) == []
    assert len(s.requests) == 1


def test_structured_output_restarts_cleanly() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    cut = MockReply(chunks=['{"n"', ": 1", "}"], text='{"n": 1}', fail_after=1)
    with _gate() as gate, scripted(cut, MockReply(chunks=['{"n": 2', "}"], text='{"n": 2}')):
        chunks, response = _stream(gate, ["mock/a", "mock/b"], False, response_format=schema)
    assert chunks[-1].parsed == {"n": 2}
    assert response.parsed == {"n": 2}


# ----------------------------------------------------------------------- de-overlap


@pytest.mark.parametrize(
    ("delivered", "continuation", "size"),
    [
        ("Once upon a time", " there was", 0),
        ("Once upon a time", "a time there was", 6),
        ("Once upon a time", "Once upon a time there", 16),
        ("Once upon a time", "time there", 4),
        ("Hi", "Hi there", 2),  # the whole delivered text, however short
        ("Hello worl", "ld", 0),  # two characters could be a coincidence: kept
        ("Once upon", " a time", 0),
        (" upon a", " a time", 2),  # a whole short word repeated
        ("I said no", "now", 0),  # not a whole word
        ("Once upon ", "  a time", 2),  # sent without its trailing space: no double space
        ("Once upon ", "upon a time", 5),
    ],
)
def test_overlap(delivered: str, continuation: str, size: int) -> None:
    assert overlap(delivered, continuation) == size


def test_overlap_holds_text_back_only_while_it_may_be_a_repeat() -> None:
    dedup = _Overlap("the cat sat on the mat")
    assert dedup.feed("the") == ""  # could be the start of a repeat
    assert dedup.feed(" mat") == ""  # still inside the delivered text
    assert dedup.feed(" and purred") == " and purred"
    assert dedup.feed(" loudly") == " loudly"  # decided once: later text passes through


def test_overlap_flushes_what_it_held_at_the_end() -> None:
    dedup = _Overlap("the cat sat")
    assert dedup.feed("the c") == ""
    assert dedup.feed("", final=True) == "the c"
