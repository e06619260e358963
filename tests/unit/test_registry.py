"""Model strings, bare names, presets, plugins and the not-found message."""

from __future__ import annotations

import pytest

import llmgate
from llmgate import LLMGate
from llmgate._registry import BUILTIN_SPECS, ProviderSpec, Registry
from llmgate.exceptions import ModelNotFoundError
from llmgate.providers.base import Provider
from llmgate.testing import MockProvider


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.mark.parametrize(
    ("model", "provider", "vendor_model"),
    [
        ("openai/gpt-4o", "openai", "gpt-4o"),
        ("anthropic/claude-sonnet-4-6", "anthropic", "claude-sonnet-4-6"),
        ("openrouter/meta-llama/llama-3-70b", "openrouter", "meta-llama/llama-3-70b"),
        (
            "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
            "bedrock",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
        ),
        ("ollama/llama3.2:3b", "ollama", "llama3.2:3b"),
        ("gpt-4.1-mini", "openai", "gpt-4.1-mini"),
        ("o3-mini", "openai", "o3-mini"),
        ("o4-mini", "openai", "o4-mini"),
        ("o1", "openai", "o1"),
        ("chatgpt-4o-latest", "openai", "chatgpt-4o-latest"),
        ("claude-3-haiku", "anthropic", "claude-3-haiku"),
        ("gemini-2.5-flash", "gemini", "gemini-2.5-flash"),
        ("mistral-large-latest", "mistral", "mistral-large-latest"),
        ("codestral-latest", "mistral", "codestral-latest"),
        ("command-r-plus", "cohere", "command-r-plus"),
        ("groq/llama-3.3-70b", "groq", "llama-3.3-70b"),
    ],
)
def test_resolve(registry: Registry, model: str, provider: str, vendor_model: str) -> None:
    spec, name = registry.resolve(model)
    assert (spec.name, name) == (provider, vendor_model)


def test_provider_argument_overrides(registry: Registry) -> None:
    spec, name = registry.resolve("gpt-4o", provider="azure")
    assert (spec.name, name) == ("azure", "gpt-4o")
    spec, name = registry.resolve("groq/llama", provider="groq")
    assert (spec.name, name) == ("groq", "llama")
    spec, name = registry.resolve("meta/llama", provider="vllm")
    assert (spec.name, name) == ("vllm", "meta/llama")


def test_unknown_bare_name(registry: Registry) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        registry.resolve("llama-3-70b")
    message = str(info.value)
    assert "llama-3-70b" in message and "provider/model" in message


def test_unknown_prefix_suggests_closest(registry: Registry) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        registry.resolve("antropic/claude-3")
    assert "anthropic" in info.value.suggestions
    assert "did you mean 'anthropic/'?" in str(info.value)


def test_prefix_without_model(registry: Registry) -> None:
    with pytest.raises(ModelNotFoundError, match="no model"):
        registry.resolve("openai/")


def test_empty_model(registry: Registry) -> None:
    with pytest.raises(ModelNotFoundError):
        registry.resolve("")


def test_presets_point_at_openai_provider() -> None:
    presets = {s.name: s for s in BUILTIN_SPECS if s.openai_compatible}
    for name in (
        "groq",
        "deepseek",
        "together",
        "openrouter",
        "fireworks",
        "xai",
        "vllm",
        "lmstudio",
        "llamacpp",
    ):
        spec = presets[name]
        assert spec.module == "llmgate.providers.openai:OpenAIProvider"
        assert spec.default_base_url and spec.default_base_url.startswith("http")
        assert spec.env_keys
    assert not presets["vllm"].key_required


def test_capabilities_per_model() -> None:
    spec = next(s for s in BUILTIN_SPECS if s.name == "openai")
    assert spec.capabilities_for("gpt-4o").parallel_tools
    assert not spec.capabilities_for("o1-mini").parallel_tools


class EchoPlugin(MockProvider):
    pass


def test_register_provider_at_run_time() -> None:
    llmgate.register_provider("echoplugin", EchoPlugin, prefixes=("echo-",))
    try:
        gate = LLMGate()
        response = gate.completion("echoplugin/x", [{"role": "user", "content": "ping"}])
        assert response.text == "ping" and response.provider == "echoplugin"
        assert gate.completion("echo-7", [{"role": "user", "content": "pong"}]).text == "pong"
    finally:
        from llmgate._registry import default_registry

        default_registry.unregister("echoplugin")


def test_entry_point_plugins_are_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    class FakeEntryPoint:
        name = "viaentrypoint"
        value = "tests.unit.test_registry:EchoPlugin"

        def load(self) -> type[Provider]:
            return EchoPlugin

    def entry_points(group: str) -> list[FakeEntryPoint]:
        return [FakeEntryPoint()] if group == "llmgate.providers" else []

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    registry = Registry()
    assert "viaentrypoint" in registry.names()
    spec, name = registry.resolve("viaentrypoint/m")
    assert isinstance(spec, ProviderSpec) and name == "m"
    assert registry.provider_class(spec) is EchoPlugin


def test_dict_provider_options_are_accepted() -> None:
    """Options such as default_headers are dicts: the client cache must still key on them."""
    from llmgate.testing import MockScript

    script = MockScript().push("scripted via option")
    gate = LLMGate(provider_options={"mock": {"script": script, "default_headers": {"x-a": "1"}}})
    assert (
        gate.completion("mock/m", [{"role": "user", "content": "hi"}]).text == "scripted via option"
    )
    gate.completion("mock/m", [{"role": "user", "content": "again"}])
    assert len(gate._providers) == 1


def test_plugin_bare_names_work_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    class Plugin(EchoPlugin):
        pass

    class FakeEntryPoint:
        name = "bareplugin"
        value = "x:Plugin"

        def load(self) -> object:
            return ProviderSpec(
                name="bareplugin", module="tests.unit.test_registry:EchoPlugin", prefixes=("bp-",)
            )

    monkeypatch.setattr(metadata, "entry_points", lambda group: [FakeEntryPoint()])
    registry = Registry()
    spec, name = registry.resolve("bp-model")
    assert (spec.name, name) == ("bareplugin", "bp-model")


def test_unknown_keyword_for_the_sdk_is_invalid_request() -> None:
    from llmgate.exceptions import InvalidRequestError
    from llmgate.testing import MockProvider

    class Strict(MockProvider):
        def complete(self, request, model):  # type: ignore[no-untyped-def,override]
            def sdk_call(*, model: str) -> None:
                return None

            sdk_call(model=model, **request.extra_kwargs)
            return super().complete(request, model)

    llmgate.register_provider("strictsdk", Strict)
    try:
        with pytest.raises(InvalidRequestError, match="bogus"):
            LLMGate().completion("strictsdk/m", [{"role": "user", "content": "x"}], bogus=1)
    finally:
        from llmgate._registry import default_registry

        default_registry.unregister("strictsdk")
