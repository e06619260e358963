"""The `llmgate` command on bad input and failures, run in-process (and once as a process)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llmgate.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main
from llmgate.testing import MockReply, scripted


def run(
    capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None
) -> tuple[int, str, str]:
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue(), capsys.readouterr().err


@pytest.fixture(autouse=True)
def _restore_stdin() -> Any:
    saved = sys.stdin
    yield
    sys.stdin = saved


# --------------------------------------------------------------------------- chat / embed


def test_chat_schema_file_that_is_missing_or_not_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(
        capsys, "chat", "-m", "mock/a", "--json-schema", str(tmp_path / "no.json"), "hi"
    )
    assert code == EXIT_USAGE and "cannot read" in err
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    code, _, err = run(capsys, "chat", "-m", "mock/a", "--json-schema", str(broken), "hi")
    assert code == EXIT_USAGE and "is not valid JSON" in err


def test_chat_with_a_schema_and_a_system_prompt(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    schema = tmp_path / "city.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"name": {"type": "string"}}}))
    with scripted('{"name": "Oslo"}') as script:
        code, out, _ = run(
            capsys,
            "chat",
            "-m",
            "mock/a",
            "--system",
            "be terse",
            "--json-schema",
            str(schema),
            "a city",
        )
    assert code == EXIT_OK
    assert json.loads(out.strip()) == {"name": "Oslo"}
    (request,) = script.requests
    assert [m.role for m in request.messages] == ["system", "user"]  # type: ignore[union-attr]


def test_chat_without_a_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "chat", "-m", "mock/a", stdin="   \n")
    assert code == EXIT_USAGE and "no prompt" in err


def test_chat_reads_the_prompt_from_stdin(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "chat", "-m", "mock/a", "--no-stream", stdin="echo me\n")
    assert code == EXIT_OK and out.strip() == "echo me"


def test_vendor_failure_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with scripted(MockReply(error_status=400, error_message="the vendor said no")):
        code, _, err = run(capsys, "chat", "-m", "mock/a", "--no-stream", "hi")
    assert code == EXIT_FAILED
    assert err.startswith("llmgate: failed:") and "the vendor said no" in err


def test_interrupt_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    class Interrupted(io.StringIO):
        def read(self, *args: Any) -> str:
            raise KeyboardInterrupt

    sys.stdin = Interrupted()
    code, _, err = run(capsys, "chat", "-m", "mock/a")
    assert code == EXIT_INTERRUPTED and "interrupted" in err


def test_embed_without_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "embed", "-m", "mock/e", stdin="\n\n")
    assert code == EXIT_USAGE and "no text to embed" in err


def test_embed_reads_lines_from_stdin(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "embed", "-m", "mock/e", "--dimensions", "3", stdin="a\n\nb\n")
    payload = json.loads(out)
    assert code == EXIT_OK and len(payload["embeddings"]) == 2
    assert all(len(v) == 3 for v in payload["embeddings"])


def test_output_closed_early_is_not_an_error() -> None:
    """`llmgate embed ... | head -c 10`: the reader goes away, the command still exits 0."""
    texts = [f"text number {i}" for i in range(40)]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmgate.cli",
            "embed",
            "-m",
            "mock/e",
            "--dimensions",
            "64",
            *texts,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before anything was written
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == EXIT_OK, err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- batch


def test_batch_input_that_cannot_be_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "batch", str(tmp_path / "missing.jsonl"))
    assert code == EXIT_USAGE and "cannot read" in err


def test_batch_records_bad_lines_and_resumes_after_a_half_written_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "jobs.jsonl"
    source.write_text(
        "\n".join(
            [
                json.dumps({"prompt": "first"}),
                "{broken",
                json.dumps(["not", "an", "object"]),
                json.dumps({"prompt": "fourth", "custom_id": "job-4"}),
                "",  # blank lines are skipped
            ]
        )
        + "\n"
    )
    output = tmp_path / "jobs.out.jsonl"
    output.write_text(
        json.dumps({"line": 1, "response": {"text": "first"}}) + "\n" + '{"line": 4, "resp'
    )
    code, _, err = run(capsys, "batch", str(source), "-m", "mock/a", "-q")
    assert code == EXIT_FAILED  # the two bad lines failed
    assert "line 2: invalid JSON" in err and "line 3: each line must be a JSON object" in err
    records = [json.loads(line) for line in output.read_text().splitlines()]
    by_line = {r["line"]: r for r in records}
    assert sorted(by_line) == [1, 2, 3, 4]
    assert len(records) == 4, "the half-written line was dropped, line 1 was not redone"
    assert by_line[4]["custom_id"] == "job-4" and by_line[4]["response"]["text"] == "fourth"
    assert by_line[2]["error"]["type"] == "InvalidInput"
    assert "1 skipped" in err


def test_batch_progress_bar_and_retry_of_failed_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "jobs.jsonl"
    source.write_text(json.dumps({"model": "mock/a", "prompt": "again"}) + "\n")
    output = tmp_path / "out.jsonl"
    output.write_text(json.dumps({"line": 1, "error": {"type": "ServerError"}}) + "\n")
    code, _, err = run(capsys, "batch", str(source), "-o", str(output), "--retry-failed")
    assert code == EXIT_OK
    assert "1/1 ok=1 failed=0" in err  # the progress bar
    (record,) = [json.loads(line) for line in output.read_text().splitlines()]
    assert record["response"]["text"] == "again"


# --------------------------------------------------------------------------- providers


def test_providers_report_keys_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "fake-mistral-key")
    code, out, _ = run(capsys, "providers", "--json")
    rows = {row["provider"]: row for row in json.loads(out)}
    assert code == EXIT_OK
    assert rows["mistral"]["key"] == "set"
    assert rows["openai"]["key"] == "missing"
    assert rows["ollama"]["key"] == "optional"
    assert "fake-mistral-key" not in out
