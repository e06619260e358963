"""The `llmgate` command, run as a subprocess the way users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "llmgate.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
    )


def test_demo_runs_offline() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    for section in (
        "completion",
        "streaming",
        "tools",
        "structured output",
        "embeddings",
        "batch",
        "fallback",
    ):
        assert f"== {section}" in result.stdout
    assert "get_weather" in result.stdout
    assert "City(name='Paris'" in result.stdout
    assert "failed first: ['mock/primary']" in result.stdout


def test_chat_argument_and_stdin() -> None:
    assert run("chat", "-m", "mock/echo", "hello", "world").stdout == "hello world\n"
    assert run("chat", "-m", "mock/echo", stdin="from stdin").stdout == "from stdin\n"
    assert run("chat", "-m", "mock/echo", "--no-stream", "whole").stdout == "whole\n"


def test_chat_with_json_schema(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(
        json.dumps({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    )
    result = run("chat", "-m", "mock/x", "--json-schema", str(schema), "give n")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"n": 1}


def test_chat_errors_have_exit_codes(tmp_path: Path) -> None:
    unknown = run("chat", "-m", "no-such-model", "hi")
    assert unknown.returncode == 2 and "cannot find a provider" in unknown.stderr
    missing_key = run("chat", "-m", "openai/gpt-4o", "hi")
    assert missing_key.returncode == 2 and "OPENAI_API_KEY" in missing_key.stderr
    unreadable = run("chat", "-m", "mock/x", "--json-schema", str(tmp_path / "nope.json"), "hi")
    assert unreadable.returncode == 2 and "cannot read" in unreadable.stderr
    assert run("chat", "-m", "mock/x", stdin="").returncode == 2


def test_embed_prints_json() -> None:
    result = run("embed", "-m", "mock/e", "a", "b", "--dimensions", "4")
    payload = json.loads(result.stdout)
    assert len(payload["embeddings"]) == 2 and len(payload["embeddings"][0]) == 4


def test_batch_writes_every_line_and_resumes(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(
            [
                json.dumps({"prompt": "one", "custom_id": "a"}),
                "{not json",
                json.dumps({"model": "mock/x", "messages": [{"role": "user", "content": "three"}]}),
                json.dumps({"model": "unknown-model", "prompt": "four"}),
            ]
        )
        + "\n"
    )
    output = tmp_path / "out.jsonl"
    first = run("batch", str(source), "-o", str(output), "-m", "mock/m", "--concurrency", "2")
    assert first.returncode == 1  # some lines failed
    assert "line 2: invalid JSON" in first.stderr
    records = {r["line"]: r for r in map(json.loads, output.read_text().splitlines())}
    assert set(records) == {1, 2, 3, 4}
    assert records[1]["response"]["text"] == "one" and records[1]["custom_id"] == "a"
    assert records[3]["response"]["text"] == "three"
    assert records[4]["error"]["type"] == "ModelNotFoundError"
    assert records[2]["error"]["type"] == "InvalidInput"

    again = run("batch", str(source), "-o", str(output), "-m", "mock/m", "-q")
    assert again.returncode == 0
    assert "4 skipped" in again.stderr
    assert len(output.read_text().splitlines()) == 4

    retried = run("batch", str(source), "-o", str(output), "-m", "mock/m", "-q", "--retry-failed")
    assert "2 skipped" in retried.stderr
    assert len(output.read_text().splitlines()) == 4


def test_batch_unreadable_file(tmp_path: Path) -> None:
    result = run("batch", str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_providers_lists_sdk_key_and_capabilities() -> None:
    rows = json.loads(run("providers", "--json").stdout)
    by_name = {r["provider"]: r for r in rows}
    assert (
        by_name["openai"]["key"] == "missing"
        and "OPENAI_API_KEY" in by_name["openai"]["key_variables"]
    )
    assert by_name["mock"]["sdk_installed"] is True
    assert "embeddings" in by_name["cohere"]["capabilities"]
    assert "embeddings" not in by_name["anthropic"]["capabilities"]
    table = run("providers").stdout
    assert table.splitlines()[0].startswith("provider")


@pytest.mark.parametrize("argv", [["--help"], ["chat", "--help"], ["batch", "--help"]])
def test_help(argv: list[str]) -> None:
    assert run(*argv).returncode == 0
