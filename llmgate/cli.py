"""The ``llmgate`` command: chat, embed, batch, providers, demo.

Exit codes: 0 success, 1 the vendor failed, 2 bad input or setup (unknown model, missing
key, unreadable file, bad arguments), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ._batch import BatchProgress
from .exceptions import (
    ConfigError,
    InvalidRequestError,
    LLMGateError,
    ModelNotFoundError,
    UnsupportedFeatureError,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEMO_MODEL = "mock/demo"


class UsageError(Exception):
    """Bad command-line input: reported on stderr with exit code 2."""


# --------------------------------------------------------------------------- chat


def _read_json_file(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from exc


def _chat(args: argparse.Namespace, out: TextIO) -> int:
    from ._gate import LLMGate

    prompt = " ".join(args.prompt) if args.prompt else sys.stdin.read()
    if not prompt.strip():
        raise UsageError("no prompt: give it as an argument or on standard input")
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": prompt})
    options: dict[str, Any] = {"temperature": args.temperature, "max_tokens": args.max_tokens}
    if args.json_schema:
        options["response_format"] = _read_json_file(args.json_schema)
    with LLMGate() as gate:
        if args.no_stream:
            response = gate.completion(args.model, messages, **options)
            out.write(response.text + "\n")
        else:
            with gate.stream(args.model, messages, **options) as stream:
                for chunk in stream:
                    if chunk.delta:
                        out.write(chunk.delta)
                        out.flush()
            out.write("\n")
            response = stream.final_response()
    if args.json_schema and response.parsed is not None:
        print(json.dumps(response.parsed, indent=2), file=sys.stderr)
    return EXIT_OK


# --------------------------------------------------------------------------- embed


def _embed(args: argparse.Namespace, out: TextIO) -> int:
    from ._gate import LLMGate

    texts = list(args.text) or [line for line in sys.stdin.read().splitlines() if line]
    if not texts:
        raise UsageError("no text to embed: give texts as arguments or lines on standard input")
    with LLMGate() as gate:
        response = gate.embed(args.model, texts, dimensions=args.dimensions)
    payload = {
        "model": response.model,
        "provider": response.provider,
        "embeddings": response.embeddings,
        "usage": response.usage.model_dump(exclude_none=True),
    }
    out.write(json.dumps(payload) + "\n")
    return EXIT_OK


# --------------------------------------------------------------------------- batch


def _load_batch_input(
    path: str, default_model: str | None
) -> tuple[list[tuple[int, Any]], list[tuple[int, str]]]:
    """``(line number, request)`` pairs and ``(line number, problem)`` for bad lines."""
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    requests: list[tuple[int, Any]] = []
    problems: list[tuple[int, str]] = []
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append((number, f"invalid JSON: {exc.msg} (column {exc.colno})"))
                continue
            if not isinstance(item, dict):
                problems.append((number, "each line must be a JSON object"))
                continue
            if "prompt" in item and "messages" not in item:
                item["messages"] = [{"role": "user", "content": str(item.pop("prompt"))}]
            if "model" not in item and default_model:
                item["model"] = default_model
            requests.append((number, item))
    return requests, problems


def _already_written(path: str, retry_failed: bool) -> set[int]:
    done: set[int] = set()
    if not os.path.exists(path):
        return done
    kept: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a half-written last line from an interrupted run
            if retry_failed and "error" in record:
                continue
            done.add(int(record["line"]))
            kept.append(line if line.endswith("\n") else line + "\n")
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(kept)
    return done


class _ProgressBar:
    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled

    def __call__(self, progress: BatchProgress) -> None:
        if not self.enabled:
            return
        width = 28
        filled = int(width * progress.finished / progress.total) if progress.total else width
        eta = f"{progress.eta:5.0f}s" if progress.eta is not None else "    ?"
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {progress.finished}/{progress.total} "
            f"ok={progress.done} failed={progress.failed} tokens={progress.tokens} "
            f"{progress.rate:6.1f}/s eta {eta}"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def _error_record(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "status_code": getattr(exc, "status_code", None),
    }


def _batch(args: argparse.Namespace, out: TextIO) -> int:
    from ._batch import iter_batch
    from ._gate import LLMGate

    requests, problems = _load_batch_input(args.input, args.model)
    output = args.output or (os.path.splitext(args.input)[0] + ".out.jsonl")
    done = _already_written(output, args.retry_failed)
    todo = [(n, item) for n, item in requests if n not in done]
    problems = [(n, p) for n, p in problems if n not in done]
    bar = _ProgressBar(sys.stderr, not args.quiet)
    failed = 0
    with open(output, "a", encoding="utf-8") as sink, LLMGate() as gate:
        for number, problem in problems:
            print(f"llmgate: line {number}: {problem}", file=sys.stderr)
            bad = {"line": number, "error": {"type": "InvalidInput", "message": problem}}
            sink.write(json.dumps(bad) + "\n")
            failed += 1
        items = [item for _, item in todo]
        custom_ids = [item.pop("custom_id", None) for item in items]
        outcomes = iter_batch(
            gate,
            items,
            max_concurrency=args.concurrency,
            timeout=args.timeout,
            progress=bar,
        )
        for index, response, error in outcomes:
            number = todo[index][0]
            record: dict[str, Any] = {"line": number}
            if custom_ids[index] is not None:
                record["custom_id"] = custom_ids[index]
            if response is not None:
                record["response"] = {
                    "text": response.text,
                    "tool_calls": [c.model_dump() for c in response.tool_calls or []] or None,
                    "finish_reason": response.finish_reason,
                    "model": response.model,
                    "provider": response.provider,
                    "usage": response.usage.model_dump(exclude_none=True),
                }
            else:
                assert error is not None
                failed += 1
                cause = error.exception if error.exception is not None else None
                record["error"] = (
                    _error_record(cause)
                    if cause is not None
                    else {"type": error.error_type, "message": error.error}
                )
            sink.write(json.dumps(record) + "\n")
            sink.flush()
    bar.close()
    total = len(todo) + len(problems)
    print(
        f"llmgate: {total - failed} succeeded, {failed} failed, {len(done)} skipped "
        f"(already in {output})",
        file=sys.stderr,
    )
    return EXIT_FAILED if failed else EXIT_OK


# --------------------------------------------------------------------------- providers


def _providers(args: argparse.Namespace, out: TextIO) -> int:
    import importlib.util

    from ._registry import default_registry

    rows: list[dict[str, Any]] = []
    for spec in default_registry.specs():
        sdk = spec.sdk_package
        installed = sdk is None or importlib.util.find_spec(sdk.split(".")[0]) is not None
        if spec.env_api_key():
            key = "set"
        elif not spec.key_required:
            key = "optional"
        else:
            key = "missing"
        caps = spec.capabilities.as_dict()
        rows.append(
            {
                "provider": spec.name,
                "sdk_installed": installed,
                "extra": spec.extra,
                "key": key,
                "key_variables": list(spec.env_keys),
                "capabilities": [name for name, on in caps.items() if on],
                "description": spec.description,
            }
        )
    if args.json:
        out.write(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    out.write(f"{'provider':12} {'sdk':4} {'key':9} capabilities\n")
    for row in rows:
        sdk_text = "yes" if row["sdk_installed"] else "no"
        out.write(
            f"{row['provider']:12} {sdk_text:4} {row['key']:9} {', '.join(row['capabilities'])}\n"
        )
    return EXIT_OK


# --------------------------------------------------------------------------- demo


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from .demo import run_demo

    return run_demo(args.model or DEMO_MODEL, out)


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmgate", description="One call shape for every LLM vendor."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="stream a completion to the terminal")
    chat.add_argument("-m", "--model", required=True, help="provider/model, e.g. openai/gpt-4o")
    chat.add_argument("prompt", nargs="*", help="the prompt (read from stdin when omitted)")
    chat.add_argument("--system", help="a system prompt")
    chat.add_argument("--json-schema", metavar="FILE", help="answer as JSON matching this schema")
    chat.add_argument("--temperature", type=float)
    chat.add_argument("--max-tokens", type=int)
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole answer")
    chat.set_defaults(func=_chat)

    embed = sub.add_parser("embed", help="print embeddings as JSON")
    embed.add_argument("-m", "--model", required=True)
    embed.add_argument("text", nargs="*", help="texts (lines of stdin when omitted)")
    embed.add_argument("--dimensions", type=int)
    embed.set_defaults(func=_embed)

    batch = sub.add_parser("batch", help="run a JSONL file of requests, resumably")
    batch.add_argument("input", help="JSONL: one request per line (model, messages | prompt, ...)")
    batch.add_argument("-o", "--output", help="JSONL results (default INPUT.out.jsonl)")
    batch.add_argument("-m", "--model", help="model for lines that name none")
    batch.add_argument("-c", "--concurrency", type=int, default=8)
    batch.add_argument("--timeout", type=float, help="seconds per request")
    batch.add_argument("--retry-failed", action="store_true", help="redo lines that failed before")
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    batch.set_defaults(func=_batch)

    providers = sub.add_parser("providers", help="providers, SDKs, keys and capabilities")
    providers.add_argument("--json", action="store_true")
    providers.set_defaults(func=_providers)

    demo = sub.add_parser("demo", help="a tour of llmgate (offline on mock/ unless -m is given)")
    demo.add_argument("-m", "--model", help="a real model to run the tour on")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args, out or sys.stdout)
    except UsageError as exc:
        print(f"llmgate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (
        ConfigError,
        ModelNotFoundError,
        InvalidRequestError,
        UnsupportedFeatureError,
    ) as exc:
        print(f"llmgate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LLMGateError as exc:
        print(f"llmgate: failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("llmgate: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `llmgate providers | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return code


if __name__ == "__main__":
    sys.exit(main())
