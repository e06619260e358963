"""Developer sessions: tests, bare install, lint, typecheck, docs, bench."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "bare", "lint", "typecheck"]
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite, as CI runs it."""
    session.install("-e", ".[all,dev]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python="3.11")
def bare(session: nox.Session) -> None:
    """No extras: `import llmgate` works, and a provider names the extra it needs."""
    session.install(".")
    session.run(
        "python",
        "-c",
        "import llmgate, sys;"
        "r = llmgate.completion('mock/x', [{'role': 'user', 'content': 'ok'}]);"
        "assert r.text == 'ok', r.text;"
        "vendors = ('openai', 'anthropic', 'google', 'mistralai', 'cohere', 'boto3', 'ollama');"
        "assert not [m for m in sys.modules if m.split('.')[0] in vendors]",
    )
    session.run(
        "python",
        "-c",
        "import llmgate\n"
        "for model in ('openai/gpt-4o', 'anthropic/claude-x', 'gemini/gemini-2.5-flash',"
        " 'mistral/mistral-small', 'cohere/command-r', 'bedrock/amazon.nova-lite-v1:0',"
        " 'ollama/llama3'):\n"
        "    try:\n"
        "        llmgate.completion(model, [{'role': 'user', 'content': 'x'}], api_key='k')\n"
        "    except llmgate.ConfigError as exc:\n"
        "        assert 'pip install' in str(exc), exc\n"
        "        print('ok:', exc)\n"
        "    else:\n"
        "        raise SystemExit(f'{model} did not name its extra')\n",
    )


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "llmgate", "tests", "benchmarks")
    session.run("ruff", "format", "--check", "llmgate", "tests", "benchmarks")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[all,dev]")
    session.run("mypy", "--strict", "llmgate")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    session.install("-e", ".[all,docs]")
    session.run("mkdocs", "build", "--strict")


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks against the loopback fakes; writes docs/performance.md.

    LiteLLM and any-llm are measured too, from a venv of their own (`.bench-peers/`, made on
    first use: they pin SDK versions that must not reach this one); `-- --no-peers` skips them.
    """
    session.install("-e", ".[all,dev]")
    peers = [] if "--no-peers" in session.posargs else ["--peers"]
    session.run("python", "-m", "benchmarks.run", *peers, *session.posargs)
