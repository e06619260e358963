"""Bedrock provider paths the conformance suite does not reach, through real boto3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmgate import LLMGate
from llmgate.exceptions import ConfigError, ProviderError, ServerError
from tests.fakes.bedrock import BedrockFake, gate_kwargs
from tests.fakes.server import FakeServer, FakeVendor, Reply

USER = [{"role": "user", "content": "Hi"}]
MODEL = "bedrock/anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(BedrockFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[FakeVendor]:
    server.vendor.reset()
    yield server.vendor
    server.vendor.reset()


def gate_for(fake: FakeVendor, **options: Any) -> LLMGate:
    kwargs = gate_kwargs(fake.base_url)
    kwargs["provider_options"]["bedrock"].update(options)
    return LLMGate(max_retries=0, **kwargs)


def test_model_stream_error_is_a_retryable_server_error(fake: FakeVendor) -> None:
    fake.push(Reply(text="one two three", error_after=1, error_status=424))
    with gate_for(fake) as gate:
        with pytest.raises(ServerError, match="ModelStreamErrorException") as info:
            list(gate.completion(MODEL, USER, stream=True))
    assert info.value.retryable and info.value.request_id == "bedrock-req-0001"


@pytest.mark.xfail(
    reason="botocore parses an in-stream exception into {'Error': {'Code', 'Message'}} only, so "
    "the originalStatusCode that map_client_error looks for at the top of the response is "
    "never there: the model's own status never reaches the error",
    strict=True,
)
def test_model_stream_error_names_the_models_own_status(fake: FakeVendor) -> None:
    fake.push(Reply(text="one two three", error_after=1, error_status=424))
    with gate_for(fake) as gate:
        with pytest.raises(ProviderError) as info:
            list(gate.completion(MODEL, USER, stream=True))
    assert "ModelStreamErrorException" in info.value.message
    assert "(model status 424)" in info.value.message


def test_unknown_aws_profile_is_a_config_error(
    fake: FakeVendor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    with gate_for(fake, profile="no-such-profile-llmgate") as gate:
        with pytest.raises(ConfigError, match="AWS profile not found"):
            gate.completion(MODEL, USER)
    assert fake.requests == []


def test_many_distinct_call_timeouts_keep_working(fake: FakeVendor) -> None:
    with gate_for(fake) as gate:
        answers = [
            gate.completion(MODEL, USER, timeout=5.0 + i / 10).text for i in range(18)
        ]  # more distinct timeouts than the provider keeps clients for
        again = gate.completion(MODEL, USER, timeout=5.0).text
    assert len(answers) == 18 and all(answers) and again
    assert len(fake.requests) == 19
