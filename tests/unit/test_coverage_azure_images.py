"""Azure OpenAI settings, and the opt-in image download, against loopback servers only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typing_extensions import override

from llmgate import LLMGate
from llmgate._images import fetch_image
from llmgate.exceptions import ConfigError, InvalidRequestError
from tests.fakes.openai import AZURE_API_VERSION, OpenAIFake
from tests.fakes.server import FakeServer, FakeVendor, RecordedRequest, Response

USER = [{"role": "user", "content": "Hi"}]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24

# --------------------------------------------------------------------------- Azure


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(OpenAIFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeServer) -> Iterator[FakeVendor]:
    server.vendor.reset()
    yield server.vendor
    server.vendor.reset()


def test_azure_without_an_api_version_is_a_config_error(
    fake: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_VERSION", raising=False)
    options = {"azure": {"api_key": "k", "base_url": fake.base_url, "api_version": ""}}
    with LLMGate(provider_options=options) as gate:
        with pytest.raises(ConfigError, match="no Azure OpenAI API version"):
            gate.completion("azure/my-deployment", USER)
    assert fake.requests == []


def test_azure_api_version_from_the_environment_and_client_options(
    fake: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_VERSION", AZURE_API_VERSION)
    options = {
        "azure": {
            "api_key": "k",
            "base_url": fake.base_url,
            "default_headers": {"X-Team": "search"},
            "default_query": {"trace": "1"},
        }
    }
    with LLMGate(max_retries=0, provider_options=options) as gate:
        assert gate.completion("azure/my-deployment", USER).text
    sent = fake.last
    assert sent.query["api-version"] == [AZURE_API_VERSION]
    assert sent.query["trace"] == ["1"]
    assert sent.headers["x-team"] == "search"
    assert sent.path == "/openai/deployments/my-deployment/chat/completions"


# --------------------------------------------------------------------------- image download


class Images(FakeVendor):
    """Serves ``/big`` (a chunked body with no length), ``/stall`` (a body that stops)."""

    name = "images"

    @override
    def handle(self, request: RecordedRequest) -> Response:
        headers = {"content-type": "image/png"}
        if request.path == "/big":
            return Response(headers=headers, stream=[PNG, b"\x00" * 64, b"\x00" * 64])
        if request.path == "/stall":
            return Response(headers=headers, stream=[PNG, 2.0, b"\x00" * 8])
        return Response(headers=headers, body=PNG)


@pytest.fixture(scope="module")
def images() -> Iterator[FakeServer]:
    with FakeServer(Images()) as running:
        yield running


def test_download_of_a_small_image(images: FakeServer) -> None:
    data, mime = fetch_image(f"{images.url}/cat", max_bytes=1024, timeout=5)
    assert (data, mime) == (PNG, "image/png")
    assert images.vendor.last.headers["user-agent"] == "llmgate"


def test_download_without_a_length_stops_at_the_limit(images: FakeServer) -> None:
    with pytest.raises(InvalidRequestError, match="over the 100-byte limit"):
        fetch_image(f"{images.url}/big", max_bytes=100, timeout=5)


def test_download_that_stalls_times_out(images: FakeServer) -> None:
    with pytest.raises(InvalidRequestError, match=r"timed out after 0\.3 s"):
        fetch_image(f"{images.url}/stall", max_bytes=1024, timeout=0.3)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/cat.png", "data:,x"])
def test_only_http_urls_are_downloaded(url: str) -> None:
    with pytest.raises(InvalidRequestError, match="only http and https"):
        fetch_image(url)
