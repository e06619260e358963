"""Non-streaming completions: the same behaviour, checked on the wire, for every vendor."""

from __future__ import annotations

import warnings

import pytest

from llmgate import LLMGate
from llmgate.exceptions import ConfigError, LLMGateError, UnsupportedFeatureError
from llmgate.types import ImagePart, Message, TextPart, ToolCall
from tests.fakes.server import FakeToolCall, FakeVendor, Reply

from .conftest import skip_if_not_applicable
from .helpers import PNG_BYTES, TIME_TOOL, USER, WEATHER_TOOL, provider_name, vendor_model
from .target import Target


def test_text(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text="Hello world", prompt_tokens=12, completion_tokens=3))
    response = gate.completion(target.model, USER)
    assert response.text == "Hello world"
    assert response.finish_reason == "stop"
    assert response.usage.prompt_tokens == 12
    assert response.usage.completion_tokens == 3
    assert response.usage.total_tokens == 15
    assert response.provider == provider_name(target)
    assert response.attempts == 1
    assert len(fake.requests) == 1
    sent = fake.last
    assert target.wire.model(sent) == vendor_model(target)
    assert target.wire.turns(sent) == [("user", "Hi there")]
    assert target.wire.system(sent) is None
    assert not target.wire.is_stream(sent)


def test_system_prompt(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *USER]
    gate.completion(target.model, messages)
    assert target.wire.system(fake.last) == "Be brief."
    assert target.wire.turns(fake.last) == [("user", "Hi there")]


def test_multi_turn(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    messages = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        Message(role="user", content=[TextPart(text="What is my name?")]),
    ]
    fake.push(Reply(text="Ada."))
    assert gate.completion(target.model, messages).text == "Ada."
    assert target.wire.turns(fake.last) == [
        ("user", "My name is Ada."),
        ("assistant", "Hello Ada."),
        ("user", "What is my name?"),
    ]


def test_max_tokens(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    gate.completion(target.model, USER, max_tokens=50)
    assert target.wire.max_tokens(fake.last) == 50


def test_temperature(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    skip_if_not_applicable(target, "temperature")
    gate.completion(target.model, USER, temperature=0.25)
    assert target.wire.temperature(fake.last) == pytest.approx(0.25)


def test_length_finish_reason(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(text="cut", finish_reason="length"))
    assert gate.completion(target.model, USER, max_tokens=1).finish_reason == "length"


def test_tool_call(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(tool_calls=[FakeToolCall("get_weather", {"city": "Paris"}, id="call_1")]))
    response = gate.completion(target.model, USER, tools=[WEATHER_TOOL])
    assert response.finish_reason == "tool_calls"
    calls = response.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].name == "get_weather"
    assert calls[0].arguments == {"city": "Paris"}
    assert calls[0].id
    sent = fake.last
    assert target.wire.tool_names(sent) == ["get_weather"]
    schema = target.wire.tool_schema(sent, "get_weather")
    assert schema["properties"]["city"]["type"] == "string"
    assert schema["required"] == ["city"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "function": {"name": "get_time"}}, ("named", "get_time")),
        ("get_time", ("named", "get_time")),
    ],
    ids=["auto", "none", "required", "named-dict", "named-str"],
)
def test_tool_choice(
    gate: LLMGate, fake: FakeVendor, target: Target, choice: object, expected: object
) -> None:
    case = "tool_choice_named" if isinstance(expected, tuple) else f"tool_choice_{expected}"
    skip_if_not_applicable(target, case)
    gate.completion(target.model, USER, tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=choice)
    assert target.wire.tool_choice(fake.last) == expected


def test_parallel_tool_calls(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    skip_if_not_applicable(target, "parallel_tool_calls")
    fake.push(
        Reply(
            tool_calls=[
                FakeToolCall("get_weather", {"city": "Paris"}, id="call_a"),
                FakeToolCall("get_time", {"city": "Oslo"}, id="call_b"),
            ]
        )
    )
    calls = gate.completion(target.model, USER, tools=[WEATHER_TOOL, TIME_TOOL]).tool_calls
    assert calls is not None
    assert [(c.name, c.arguments) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"city": "Oslo"}),
    ]
    assert len({c.id for c in calls}) == 2


def test_tool_result_round_trip(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    fake.push(Reply(tool_calls=[FakeToolCall("get_weather", {"city": "Paris"}, id="call_1")]))
    first = gate.completion(target.model, USER, tools=[WEATHER_TOOL])
    assert first.tool_calls is not None
    call = first.tool_calls[0]
    fake.push(Reply(text="It is 18C in Paris."))
    history = [
        *USER,
        first.message,
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ]
    second = gate.completion(target.model, history, tools=[WEATHER_TOOL])
    assert second.text == "It is 18C in Paris."
    sent = fake.last
    assert [(n, a) for _, n, a in target.wire.assistant_tool_calls(sent)] == [
        ("get_weather", {"city": "Paris"})
    ]
    results = target.wire.tool_results(sent)
    assert len(results) == 1
    assert results[0][0] in (call.id, "get_weather")
    assert results[0][1] == "18C"


def test_openai_shaped_history(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    """History written for OpenAI (JSON-string arguments) works unchanged on every vendor."""
    history = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": "21C"},
    ]
    gate.completion(target.model, history, tools=[WEATHER_TOOL])
    assert [(n, a) for _, n, a in target.wire.assistant_tool_calls(fake.last)] == [
        ("get_weather", {"city": "Rome"})
    ]


def test_image_bytes(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    message = Message(
        role="user",
        content=[TextPart(text="What is this?"), ImagePart.from_bytes(PNG_BYTES, "image/png")],
    )
    gate.completion(target.model, [message])
    images = target.wire.images(fake.last)
    assert len(images) == 1
    kind, value = images[0]
    assert kind == "bytes"
    assert value.endswith(ImagePart.from_bytes(PNG_BYTES).image_bytes.data)  # type: ignore[union-attr]


def test_image_url(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    url = "https://images.example.test/cat.png"
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": url}},
        ],
    }
    if not target.image_urls:
        with pytest.raises(UnsupportedFeatureError, match="bytes"):
            gate.completion(target.model, [message])
        assert fake.requests == []
        return
    gate.completion(target.model, [message])
    assert target.wire.images(fake.last) == [("url", url)]


def test_reasoning(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    skip_if_not_applicable(target, "reasoning")
    fake.push(Reply(text="42", reasoning="Six times seven.", reasoning_signature="sig-1"))
    response = gate.completion(target.model, USER)
    assert response.text == "42"
    assert response.reasoning == "Six times seven."


def test_assistant_message_round_trips(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    """A returned assistant message (reasoning and vendor blocks included) can be sent back."""
    skip_if_not_applicable(target, "reasoning")
    fake.push(Reply(text="42", reasoning="Six times seven.", reasoning_signature="sig-1"))
    first = gate.completion(target.model, USER)
    gate.completion(target.model, [*USER, first.message, {"role": "user", "content": "Why?"}])
    turns = target.wire.turns(fake.last)
    assert turns[1][0] == "assistant" and "42" in turns[1][1]


def test_missing_key_is_config_error(fake: FakeVendor, target: Target) -> None:
    spec_needs_key = LLMGate().registry.resolve(target.model)[0].key_required
    if not spec_needs_key:
        pytest.skip(f"{target.id} authenticates without an API key")
    with LLMGate(base_url=fake.base_url) as gate, pytest.raises(ConfigError) as info:
        gate.completion(target.model, USER)
    spec = gate.registry.resolve(target.model)[0]
    assert any(name in str(info.value) for name in spec.env_keys)
    assert fake.requests == []


def test_extra_kwargs_reach_the_sdk(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    """Unknown keywords are handed to the SDK call unchanged (the escape hatch)."""
    skip_if_not_applicable(target, "extra_kwargs")
    extra = getattr(target.wire, "extra_kwargs_example", None)
    if extra is None:
        pytest.skip(f"{target.id}: its wire view names no extra-kwargs example")
    name, value, read = extra
    gate.completion(target.model, USER, **{name: value})
    assert read(fake.last) == value


def test_api_key_never_in_errors(fake: FakeVendor, target: Target) -> None:
    from tests.fakes.server import Fault

    secret = "sk-test-SECRET-0123456789"
    kwargs = target.gate_kwargs(fake.base_url)
    kwargs["api_key"] = secret
    options = kwargs.get("provider_options") or {}
    for opts in options.values():
        opts.pop("api_key", None)
    fake.push(Fault(status=401, message="bad key"))
    with LLMGate(max_retries=0, **kwargs) as gate:
        with warnings.catch_warnings(), pytest.raises(LLMGateError) as info:
            warnings.simplefilter("ignore")
            gate.completion(target.model, USER)
        assert secret not in repr(gate)
    error = info.value
    assert secret not in f"{error!s} {error!r} {error.__cause__!s} {error.__cause__!r}"


def test_tool_call_objects_are_accepted(gate: LLMGate, fake: FakeVendor, target: Target) -> None:
    history = [
        *USER,
        Message(
            role="assistant",
            tool_calls=[ToolCall(id="call_7", name="get_time", arguments={"city": "Lima"})],
        ),
        Message(role="tool", tool_call_id="call_7", content="09:00"),
    ]
    gate.completion(target.model, history, tools=[TIME_TOOL])
    assert [n for _, n, _ in target.wire.assistant_tool_calls(fake.last)] == ["get_time"]
