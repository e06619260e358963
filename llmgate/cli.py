"""The ``llmgate`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> int:
    from ._gate import LLMGate

    model = args.model or "mock/demo"
    gate = LLMGate()
    messages = [{"role": "user", "content": "Say hello to llmgate."}]
    print(f"== completion ({model})")
    response = gate.completion(model, messages)
    print(response.text)
    print(f"   usage: {response.usage.total_tokens} tokens")
    print(f"== streaming ({model})")
    with gate.stream(
        model, [{"role": "user", "content": "Streaming works chunk by chunk."}]
    ) as stream:
        for chunk in stream:
            print(chunk.delta, end="", flush=True)
    print()
    return 0


def _providers(args: argparse.Namespace) -> int:
    import importlib.util

    from ._registry import default_registry

    for spec in default_registry.specs():
        sdk = spec.sdk_package
        installed = sdk is None or importlib.util.find_spec(sdk.split(".")[0]) is not None
        key = (
            "set" if spec.env_api_key() else ("not needed" if not spec.key_required else "missing")
        )
        print(
            f"{spec.name:12} sdk={'yes' if installed else 'no':3} key={key:10} {spec.description}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmgate", description="One call shape for every LLM vendor."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="a tour of llmgate (offline on mock/ by default)")
    demo.add_argument("-m", "--model", help="a real model to run the tour on")
    demo.set_defaults(func=_demo)
    providers = sub.add_parser("providers", help="list providers, SDKs and keys")
    providers.set_defaults(func=_providers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .exceptions import LLMGateError

    try:
        code: int = args.func(args)
    except LLMGateError as exc:
        print(f"llmgate: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
