"""llmgate.testing and the pytest plugin, used the way an application's test suite uses them."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import llmgate
from llmgate.testing import (
    MockReply,
    _is_local,
    block_network,
    deterministic_vector,
    sample_for_schema,
    scripted,
)

USER = [{"role": "user", "content": "hello"}]
TOOLS = [
    {"name": "first", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}},
    {"name": "second", "parameters": {"type": "object", "properties": {"b": {"type": "boolean"}}}},
]


# --------------------------------------------------------------------------- the mock provider


def test_echo_without_a_user_turn_is_empty() -> None:
    response = llmgate.completion("mock/a", [{"role": "system", "content": "be brief"}])
    assert response.text == "" and response.finish_reason == "stop"


def test_tool_choice_by_openai_dict_forces_that_tool() -> None:
    choice = {"type": "function", "function": {"name": "second"}}
    response = llmgate.completion("mock/a", USER, tools=TOOLS, tool_choice=choice)
    assert response.tool_calls is not None
    assert [(c.name, c.arguments) for c in response.tool_calls] == [("second", {"b": True})]


@pytest.mark.parametrize("choice", ["auto", "none", None])
def test_tool_choice_that_forces_nothing_echoes(choice: str | None) -> None:
    response = llmgate.completion("mock/a", USER, tools=TOOLS, tool_choice=choice)
    assert response.tool_calls is None and response.text == "hello"


def test_delayed_stream_still_delivers_every_chunk() -> None:
    with scripted(MockReply(text="slow but sure", delay=0.001)):
        chunks = list(llmgate.completion("mock/a", USER, stream=True))
    assert "".join(c.delta for c in chunks) == "slow but sure"


async def test_async_delayed_stream_and_break() -> None:
    replies = (MockReply(text="a b c", delay=0.001), MockReply(text="x y z", fail_after=1))
    with scripted(*replies):
        stream = await llmgate.acompletion("mock/a", USER, stream=True)
        assert (await stream.until_done()).text == "a b c"
        broken = await llmgate.acompletion("mock/a", USER, stream=True, max_retries=0)
        with pytest.raises(llmgate.ProviderError, match="the mock stream was cut"):
            async for _ in broken:
                pass
    assert broken.text == "x"


async def test_async_completion_with_delay_and_reasoning() -> None:
    with scripted(MockReply(text="ok", reasoning="thinking", delay=0.001)):
        response = await llmgate.acompletion("mock/a", USER)
    assert (response.text, response.reasoning) == ("ok", "thinking")


# --------------------------------------------------------------------------- sample_for_schema


def test_sample_follows_refs_consts_unions_and_type_lists() -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"const": "invoice"},
            "owner": {"$ref": "#/$defs/Person"},
            "note": {"anyOf": [{"type": "null"}, {"type": "string"}]},
            "count": {"type": ["null", "integer"], "minimum": 3},
            "ratio": {"type": "number"},
            "blob": {"type": "whatever"},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 2}, "minItems": 2},
        },
        "$defs": {"Person": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    assert sample_for_schema(schema) == {
        "kind": "invoice",
        "owner": {"name": "example"},
        "note": "example",
        "count": 3,
        "ratio": 1.5,
        "blob": None,
        "tags": ["xxxxxxx", "xxxxxxx"],
    }


def test_sample_of_a_recursive_schema_stops() -> None:
    schema = {
        "$ref": "#/definitions/Node",
        "definitions": {
            "Node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/definitions/Node"}, "v": {"type": "integer"}},
            }
        },
    }
    value: Any = sample_for_schema(schema)
    depth = 0
    while isinstance(value, dict) and value.get("child") is not None:
        value = value["child"]
        depth += 1
    assert 0 < depth <= 12
    assert sample_for_schema({"type": "object", "properties": {"x": True}}) == {"x": None}


# --------------------------------------------------------------------------- network guard


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("/tmp/some.sock", True),
        (("localhost", 80), True),
        (("127.0.0.2", 80), True),
        (("::1", 80, 0, 0), True),
        (("fe80::1%eth0", 80, 0, 0), False),
        (("10.1.2.3", 80), False),
        (("api.openai.com", 443), False),
    ],
)
def test_which_addresses_count_as_this_machine(address: Any, local: bool) -> None:
    assert _is_local(address) is local


def test_connect_ex_to_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with block_network(), socket.socket() as client:
            assert client.connect_ex(server.getsockname()) == 0


def test_guard_restores_the_socket_functions_when_the_last_one_exits() -> None:
    code = textwrap.dedent(
        """
        import socket
        from llmgate.testing import block_network
        original = socket.socket.connect, socket.socket.connect_ex
        with block_network():
            with block_network():
                pass
            still = socket.socket.connect is not original[0]
        restored = (socket.socket.connect, socket.socket.connect_ex) == original
        print(still, restored)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["True", "True"]


# --------------------------------------------------------------------------- vectors


def test_long_deterministic_vectors_are_unit_length() -> None:
    vector = deterministic_vector("long", 100)
    assert len(vector) == 100
    assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0)
    assert vector == deterministic_vector("long", 100)
    assert vector[:8] != deterministic_vector("other", 100)[:8]


# --------------------------------------------------------------------------- the pytest plugin


def test_fixtures_reach_an_application_test_suite_through_the_entry_point(tmp_path: Path) -> None:
    (tmp_path / "test_app.py").write_text(
        textwrap.dedent(
            """
            import socket

            import llmgate


            def test_scripted_answer(llmgate_mock, llmgate_block_network):
                llmgate_mock.push("scripted for the app")
                reply = llmgate.completion("mock/x", [{"role": "user", "content": "hi"}])
                assert reply.text == "scripted for the app"
                assert llmgate_mock.requests[0].messages[0].text == "hi"
                assert socket.socket.connect.__name__ == "guarded_connect"
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
