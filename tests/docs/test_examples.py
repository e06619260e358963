"""Every ```python block of the docs (and the README) runs here.

The blocks of one page run in order in one namespace. Vendor models are served by the
wire-level fakes: every LLMGate (the default one included) gets the fakes' provider options
unless the example sets its own, so `llmgate.completion("anthropic/...")` in a guide really
goes through the Anthropic SDK, to 127.0.0.1. `mock/` models need nothing.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import llmgate._api
from llmgate._gate import LLMGate
from tests.conformance.targets import TARGETS
from tests.fakes.server import FakeServer

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(page: Path) -> list[str]:
    return [m.group(1) for m in FENCE.finditer(page.read_text(encoding="utf-8"))]


PAGES_WITH_CODE = [p for p in PAGES if _blocks(p)]


@pytest.fixture(scope="module")
def fake_options() -> Iterator[dict[str, dict[str, Any]]]:
    servers: list[FakeServer] = []
    options: dict[str, dict[str, Any]] = {}
    by_vendor: dict[type, FakeServer] = {}
    for target in TARGETS:
        vendor_cls = target.make_vendor
        server = by_vendor.get(vendor_cls)  # type: ignore[call-overload]
        if server is None:
            server = FakeServer(target.make_vendor()).start()
            by_vendor[vendor_cls] = server  # type: ignore[index]
            servers.append(server)
        for name, opts in target.gate_kwargs(server.url).get("provider_options", {}).items():
            options[name] = dict(opts)
    yield options
    for server in servers:
        server.stop()


@pytest.fixture
def docs_environment(
    fake_options: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    original_init = LLMGate.__init__

    def init_with_fakes(self: LLMGate, **kwargs: Any) -> None:
        merged = {name: dict(opts) for name, opts in fake_options.items()}
        for name, opts in (kwargs.pop("provider_options", None) or {}).items():
            merged.setdefault(name, {}).update(opts)
        original_init(self, provider_options=merged, **kwargs)

    monkeypatch.setattr(LLMGate, "__init__", init_with_fakes)
    monkeypatch.setattr(llmgate._api, "_default", None)
    yield
    monkeypatch.setattr(llmgate._api, "_default", None)


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run(page: Path, docs_environment: None) -> None:
    if sys.version_info < (3, 11) and any("gemini/" in block for block in _blocks(page)):
        pytest.skip("the page runs Gemini: google-genai 3.x needs Python 3.11")
    namespace: dict[str, Any] = {"__name__": f"docs_example_{page.stem}"}
    for number, block in enumerate(_blocks(page), start=1):
        code = compile(block, f"{page.relative_to(ROOT)}[block {number}]", "exec")
        if "await " in block and "async def" not in block.split("await ", 1)[0]:
            wrapped = (
                "async def __docs_main__():\n"
                + "".join(f"    {line}\n" for line in block.splitlines())
                + "    return locals()\n"
            )
            exec(compile(wrapped, f"{page.relative_to(ROOT)}[block {number}]", "exec"), namespace)
            namespace.update(asyncio.run(namespace.pop("__docs_main__")()))
        else:
            exec(code, namespace)


def test_capability_matrix_is_current() -> None:
    from llmgate._docs import capability_matrix

    page = ROOT / "docs" / "capabilities.md"
    assert page.read_text(encoding="utf-8") == capability_matrix(), (
        "docs/capabilities.md is stale: run `python -m llmgate._docs > docs/capabilities.md`"
    )
