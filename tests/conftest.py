"""Test-wide safety: no traffic leaves 127.0.0.1, no real credentials are read."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from llmgate.testing import block_network

# botocore otherwise probes the instance-metadata address for credentials.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

_CREDENTIAL_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_AUTH_TOKEN",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "MISTRAL_API_KEY",
    "CO_API_KEY",
    "COHERE_API_KEY",
    "CO_API_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    "OLLAMA_HOST",
    "OLLAMA_API_KEY",
    "GROQ_API_KEY",
)
for _name in _CREDENTIAL_VARIABLES:
    os.environ.pop(_name, None)
# Anthropic's SDK reads profile files when no key is passed: point it at an empty place.
os.environ.setdefault("ANTHROPIC_CONFIG_DIR", "/nonexistent-llmgate-test-config")

# Every test runs behind llmgate's own network guard: only loopback connections succeed.
_network_guard = block_network()
_network_guard.__enter__()


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
