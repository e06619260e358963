"""``llmgate demo``: a tour of every feature, offline on ``mock/`` or on a real model."""

from __future__ import annotations

from typing import TextIO

from pydantic import BaseModel

from ._gate import LLMGate
from .exceptions import LLMGateError
from .testing import MockReply, scripted
from .types import ToolCall

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


class City(BaseModel):
    name: str
    country: str
    population_millions: float


def _offline_script() -> list[MockReply]:
    return [
        MockReply(text="Hello! I am the offline mock provider, answering through llmgate."),
        MockReply(text="Streams arrive chunk by chunk, with usage on the last one."),
        MockReply(
            tool_calls=[ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})]
        ),
        MockReply(text="It is 18°C and sunny in Paris."),
        MockReply(text='{"name": "Paris", "country": "France", "population_millions": 2.1}'),
        *[MockReply(text=f"Answer {i}") for i in range(6)],
        MockReply(error_status=503, error_message="primary model is down"),
        MockReply(text="The backup model answered."),
    ]


def run_demo(model: str, out: TextIO) -> int:
    offline = model.startswith("mock/")
    with LLMGate(max_retries=0) as gate:
        if offline:
            with scripted(*_offline_script()):
                _tour(gate, model, out, offline=True)
        else:
            _tour(gate, model, out, offline=False)
    return 0


def _tour(gate: LLMGate, model: str, out: TextIO, *, offline: bool) -> None:
    def section(title: str) -> None:
        out.write(f"\n== {title}\n")

    ask = [{"role": "user", "content": "Say hello in one sentence."}]
    section(f"completion ({model})")
    response = gate.completion(model, ask)
    out.write(f"{response.text}\n   {response.usage.total_tokens} tokens, {response.provider}\n")

    section("streaming")
    with gate.stream(model, [{"role": "user", "content": "Explain streaming in a sentence."}]) as s:
        for chunk in s:
            out.write(chunk.delta)
            out.flush()
    out.write(f"\n   finish={s.final_response().finish_reason}\n")

    section("tools")
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = gate.completion(model, question, tools=[WEATHER_TOOL], tool_choice="required")
    for call in first.tool_calls or []:
        out.write(f"   model called {call.name}({call.arguments})\n")
        history = [
            *question,
            first.message,
            {"role": "tool", "tool_call_id": call.id, "content": "18°C, sunny"},
        ]
        out.write(gate.completion(model, history, tools=[WEATHER_TOOL]).text + "\n")

    section("structured output")
    city = gate.parse(model, [{"role": "user", "content": "Describe Paris."}], response_format=City)
    out.write(f"   {city!r}\n")

    section("embeddings")
    embed_model = "mock/embed" if offline else model
    try:
        vectors = gate.embed(embed_model, ["llmgate", "one call shape"]).embeddings
        out.write(f"   {len(vectors)} vectors of {len(vectors[0])} dimensions\n")
    except LLMGateError as exc:
        out.write(f"   skipped: {exc}\n")

    section("batch with progress")
    requests = [
        {"model": model, "messages": [{"role": "user", "content": f"Q{i}"}]} for i in range(6)
    ]

    def progress(p: object) -> None:
        out.write(f"\r   {p.finished}/{p.total} done")  # type: ignore[attr-defined]
        out.flush()

    result = gate.batch(requests, max_concurrency=3, progress=progress)
    out.write(
        f"\n   {result.successful} ok, {result.failed} failed, {result.total_tokens} tokens\n"
    )

    section("fallback")
    chain = ["mock/primary", "mock/backup"] if offline else ["mock/unreachable", model]
    if offline:
        answer = gate.completion(chain, ask)
    else:
        with scripted(MockReply(error_status=503, error_message="primary model is down")):
            answer = gate.completion(chain, ask)
    out.write(f"{answer.text}\n   failed first: {answer.fallback_attempts}\n")
