"""Provider lookup and plugins: entry points of every form, suggestions, broken plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmgate import LLMGate, register_provider
from llmgate._registry import ENTRY_POINT_GROUP, Capabilities, ProviderSpec, Registry
from llmgate.exceptions import ConfigError, ModelNotFoundError, StreamingNotSupported
from llmgate.testing import MockProvider, scripted

USER = [{"role": "user", "content": "hi"}]


class SpecPlugin(MockProvider):
    """A plugin class that carries its own spec."""

    spec = ProviderSpec(
        name="specplug", module="tests.unit.test_coverage_registry:SpecPlugin", key_required=False
    )


class BarePlugin(MockProvider):
    """A plugin class with nothing but capabilities: the entry point name becomes its name."""

    capabilities = Capabilities(streaming=False, embeddings=True)


SPEC_ROW = ProviderSpec(
    name="specrow",
    module="llmgate.testing:MockProvider",
    key_required=False,
    description="a plugin that is only a spec row",
)


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake installed distribution that declares llmgate.providers entry points."""
    dist = tmp_path / "llmgate_fake_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: llmgate-fake-plugins\nVersion: 1.0\n"
    )
    here = "tests.unit.test_coverage_registry"
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        f"openai = {here}:BarePlugin\n"  # a built-in name: never overridden by a plugin
        f"specplug = {here}:SpecPlugin\n"
        f"bareplug = {here}:BarePlugin\n"
        f"specrow = {here}:SPEC_ROW\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_entry_point_plugins_of_every_form_are_found(plugin_path: Path) -> None:
    registry = Registry()
    names = registry.names()
    assert {"specplug", "bareplug", "specrow"} <= set(names)
    assert registry.get("openai").module == "llmgate.providers.openai:OpenAIProvider"
    assert registry.provider_class(registry.get("specplug")) is SpecPlugin
    bare = registry.get("bareplug")
    assert bare.module == "tests.unit.test_coverage_registry:BarePlugin"
    assert bare.capabilities == Capabilities(streaming=False, embeddings=True)
    assert registry.get("specrow").description == "a plugin that is only a spec row"


def test_a_plugin_model_resolves_and_answers(plugin_path: Path) -> None:
    gate = LLMGate(registry=Registry())
    with scripted("from the plugin"):
        assert gate.completion("bareplug/any", USER).text == "from the plugin"
    with pytest.raises(StreamingNotSupported, match="bareplug/any cannot stream"):
        gate.completion("bareplug/any", USER, stream=True)


def test_unknown_provider_argument_suggests_close_names() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        LLMGate().completion("gpt-4o", USER, provider="opnai")
    assert "unknown provider 'opnai'; did you mean 'openai'" in str(info.value)
    assert info.value.suggestions[0] == "openai"


def test_unknown_provider_without_anything_close() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        Registry().get("zzzzzz")
    assert str(info.value) == "unknown provider 'zzzzzz'"
    assert info.value.suggestions == []


def test_register_provider_needs_a_class() -> None:
    with pytest.raises(ConfigError, match="the class is required"):
        register_provider("nameonly")


def test_a_plugin_with_a_broken_import_shows_its_own_error() -> None:
    registry = Registry()
    registry.register(
        ProviderSpec(
            name="broken",
            module="llmgate_plugin_that_is_not_installed.provider:Broken",
            extra="broken",
            sdk_package="brokensdk",
            key_required=False,
        )
    )
    with pytest.raises(ModuleNotFoundError, match="llmgate_plugin_that_is_not_installed"):
        LLMGate(registry=registry).completion("broken/m", USER)


def test_unregistered_provider_is_forgotten() -> None:
    registry = Registry()
    registry.register(SPEC_ROW)
    assert registry.get("specrow") is SPEC_ROW
    registry.unregister("specrow")
    with pytest.raises(ModelNotFoundError):
        registry.get("specrow")
