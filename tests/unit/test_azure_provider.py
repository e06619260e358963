"""Azure OpenAI: endpoint, deployment paths, API version and credentials on the wire."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llmgate import LLMGate
from llmgate.exceptions import ConfigError
from tests.fakes.openai import OpenAIFake
from tests.fakes.server import FakeServer, FakeVendor

USER = [{"role": "user", "content": "Hi"}]
DEFAULT_VERSION = LLMGate().registry.get("azure").options["api_version"]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(OpenAIFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[FakeVendor]:
    server.vendor.reset()
    yield server.vendor
    server.vendor.reset()


def azure_gate(fake: FakeVendor, **options: Any) -> LLMGate:
    settings = {"api_key": "azure-key", "base_url": fake.base_url, **options}
    return LLMGate(max_retries=0, provider_options={"azure": settings})


def test_deployment_path_version_and_key_header(fake: FakeVendor) -> None:
    with azure_gate(fake, api_version="2024-10-21") as gate:
        gate.completion("azure/gpt4o-prod", USER, max_tokens=7)
    sent = fake.last
    assert sent.path == "/openai/deployments/gpt4o-prod/chat/completions"
    assert sent.query["api-version"] == ["2024-10-21"]
    assert sent.headers["api-key"] == "azure-key"
    assert "authorization" not in sent.headers
    assert sent.json["max_completion_tokens"] == 7


def test_default_version_and_environment_override(
    fake: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    with azure_gate(fake) as gate:
        gate.completion("azure/dep", USER)
    assert fake.last.query["api-version"] == [DEFAULT_VERSION]
    monkeypatch.setenv("OPENAI_API_VERSION", "2025-01-01-preview")
    with azure_gate(fake) as gate:
        gate.completion("azure/dep", USER)
    assert fake.last.query["api-version"] == ["2025-01-01-preview"]
    with azure_gate(fake, api_version="2024-06-01") as gate:
        gate.completion("azure/dep", USER)
    assert fake.last.query["api-version"] == ["2024-06-01"], "an explicit option wins"


def test_endpoint_and_key_from_the_environment(
    fake: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", fake.base_url)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "env-azure-key")
    with LLMGate(max_retries=0) as gate:
        assert gate.completion("azure/dep", USER).text
    assert fake.last.headers["api-key"] == "env-azure-key"


def test_missing_endpoint_is_a_config_error(fake: FakeVendor) -> None:
    options = {"azure": {"api_key": "azure-key"}}
    with LLMGate(max_retries=0, provider_options=options) as gate:
        with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
            gate.completion("azure/dep", USER)
    assert fake.requests == []


def test_entra_id_token_instead_of_a_key(fake: FakeVendor) -> None:
    options = {"azure": {"base_url": fake.base_url, "azure_ad_token": "entra-token"}}
    with LLMGate(max_retries=0, provider_options=options) as gate:
        gate.completion("azure/dep", USER)
    assert fake.last.headers["authorization"] == "Bearer entra-token"
    assert "api-key" not in fake.last.headers


def test_embeddings_use_the_deployment_path(fake: FakeVendor) -> None:
    with azure_gate(fake) as gate:
        response = gate.embed("azure/emb-small", ["a", "b"], dimensions=3)
    assert fake.last.path == "/openai/deployments/emb-small/embeddings"
    assert [len(v) for v in response.embeddings] == [3, 3]


async def test_async_stream(fake: FakeVendor) -> None:
    async with azure_gate(fake) as gate:
        stream = await gate.acompletion("azure/dep", USER, stream=True)
        response = await stream.until_done()
    assert response.text and response.provider == "azure"
    assert fake.last.path == "/openai/deployments/dep/chat/completions"
