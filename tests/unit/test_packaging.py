"""The package's shape: exact public names, lazy vendor imports, extras for every provider."""

from __future__ import annotations

import subprocess
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
from pathlib import Path

import pytest

import llmgate
from llmgate._registry import BUILTIN_SPECS

ROOT = Path(__file__).resolve().parents[2]
VENDOR_SDKS = (
    "openai",
    "anthropic",
    "google.genai",
    "mistralai",
    "cohere",
    "boto3",
    "botocore",
    "ollama",
)

EXPECTED_ALL = sorted(
    [
        "AllProvidersFailedError",
        "AsyncStream",
        "AuthError",
        "BatchError",
        "BatchProgress",
        "BatchResult",
        "BatchTimeoutError",
        "Capabilities",
        "Choice",
        "CompletionRequest",
        "CompletionResponse",
        "ConfigError",
        "DroppedParameterWarning",
        "EmbeddingRequest",
        "EmbeddingResponse",
        "EmbeddingsNotSupported",
        "FunctionDefinition",
        "ImageBytes",
        "ImagePart",
        "ImageURL",
        "InvalidRequestError",
        "LLMGate",
        "LLMGateError",
        "Message",
        "ModelNotFoundError",
        "ProviderAPIError",
        "ProviderError",
        "ProviderSpec",
        "RateLimitError",
        "RetryPolicy",
        "Stream",
        "StreamChunk",
        "StreamingNotSupported",
        "StructuredOutputError",
        "TextPart",
        "TokenUsage",
        "ToolCall",
        "ToolCallDelta",
        "ToolDefinition",
        "VisionNotSupported",
        "__version__",
        "abatch",
        "acompletion",
        "aembed",
        "aparse",
        "batch",
        "completion",
        "embed",
        "parse",
        "register_provider",
    ]
)


def _pyproject() -> dict:  # type: ignore[type-arg]
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)  # type: ignore[no-any-return]


def test_all_is_exact_and_sorted() -> None:
    assert llmgate.__all__ == EXPECTED_ALL


def test_every_public_name_resolves() -> None:
    for name in llmgate.__all__:
        assert getattr(llmgate, name) is not None


def test_unknown_attribute_is_attribute_error() -> None:
    with pytest.raises(AttributeError):
        llmgate.no_such_thing  # noqa: B018


def test_import_loads_no_vendor_sdk() -> None:
    code = (
        "import sys, llmgate\n"
        "from llmgate import completion, LLMGate, Message\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {list({s.split('.')[0] for s in VENDOR_SDKS})!r}"
        " or m.startswith('google.genai')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_bare_import_is_light() -> None:
    """`import llmgate` alone loads neither pydantic nor any vendor SDK (lazy re-exports)."""
    code = "import sys, llmgate; print(sorted(m for m in sys.modules if m.startswith(('pydantic', 'httpx'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_sync_program_never_imports_asyncio_or_difflib() -> None:
    """A sync completion and batch load neither asyncio (only async paths need it) nor
    difflib (only the unknown-model error does): both cost a fresh process's first call."""
    code = (
        "import sys, llmgate\n"
        "gate = llmgate.LLMGate()\n"
        "assert gate.completion('mock/m', [{'role': 'user', 'content': 'hi'}]).text\n"
        "assert gate.batch([{'model': 'mock/m', 'messages': [{'role': 'user', 'content': 'x'}]}]"
        ").successful == 1\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('asyncio', 'difflib')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_provider_has_an_extra_inside_all() -> None:
    extras = _pyproject()["project"]["optional-dependencies"]
    all_requirements = set(extras["all"])
    for spec in BUILTIN_SPECS:
        if spec.extra is None:
            assert spec.name == "mock", f"{spec.name} has no extra"
            continue
        assert spec.extra in extras, f"{spec.name}: extra {spec.extra!r} missing from pyproject"
        assert set(extras[spec.extra]) <= all_requirements, f"{spec.extra} is not inside 'all'"


def test_core_depends_on_pydantic_only() -> None:
    deps = _pyproject()["project"]["dependencies"]
    assert [d.split(">")[0].split("=")[0] for d in deps] == ["pydantic"]


def test_py_typed_is_shipped() -> None:
    assert (ROOT / "llmgate" / "py.typed").exists()


@pytest.mark.parametrize("spec", [s for s in BUILTIN_SPECS if s.sdk_package], ids=lambda s: s.name)
def test_missing_sdk_names_the_extra(spec: object) -> None:
    """Using a provider whose SDK is absent says which extra to install."""
    from llmgate._registry import ProviderSpec

    assert isinstance(spec, ProviderSpec)
    root = spec.sdk_package.split(".")[0]  # type: ignore[union-attr]
    code = (
        "import sys\n"
        f"sys.modules[{root!r}] = None\n"
        f"sys.modules[{spec.sdk_package!r}] = None\n"
        # what the SDKs bring along is absent too, as in a bare install
        "for name in ('httpx', 'httpx2', 'anyio'):\n"
        "    sys.modules[name] = None\n"
        "import llmgate\n"
        "try:\n"
        f"    llmgate.completion({spec.name + '/some-model'!r}, [{{'role': 'user', 'content': 'x'}}], api_key='k', base_url='http://127.0.0.1:9')\n"
        "except llmgate.ConfigError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    expected = f"pip install 'llmgate[{spec.extra}]'"
    if spec.name == "gemini" and sys.version_info < (3, 11):
        expected = "which needs Python 3.11 or newer"  # google-genai 3.x
    assert expected in out.stdout, out.stdout + out.stderr
