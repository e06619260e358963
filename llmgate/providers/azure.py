"""Azure OpenAI: the OpenAI provider on the ``openai`` SDK's Azure clients.

The model is the deployment name. The endpoint is the provider's base URL (the
``base_url`` option, or ``AZURE_OPENAI_ENDPOINT``); the API version is the ``api_version``
option, else ``OPENAI_API_VERSION``, else the registry default. Authentication is the
``api-key`` header from ``AZURE_OPENAI_API_KEY`` (or the ``api_key`` option), or an Entra ID
token through the ``azure_ad_token`` / ``azure_ad_token_provider`` options. Request and
result translation, streaming and error mapping are the OpenAI provider's.
"""

from __future__ import annotations

import os
from typing import Any

import openai
from typing_extensions import override

from ..exceptions import ConfigError
from .openai import OpenAIProvider

__all__ = ["AzureProvider"]

_TOKEN_OPTIONS = ("azure_ad_token", "azure_ad_token_provider")
_CLIENT_OPTIONS = ("organization", "project", "default_headers", "default_query")


class AzureProvider(OpenAIProvider):
    """Azure OpenAI deployments (``azure/<deployment>``)."""

    def api_version(self) -> str:
        option = self.settings.option("api_version")
        default = self.spec.options.get("api_version")
        from_env = os.environ.get("OPENAI_API_VERSION")
        if from_env and (option is None or option == default):
            return from_env
        if not option:
            raise ConfigError(
                "no Azure OpenAI API version: pass provider_options={'azure': "
                "{'api_version': ...}} or set OPENAI_API_VERSION"
            )
        return str(option)

    @override
    def client_kwargs(self) -> dict[str, Any]:
        endpoint = self.base_url
        if not endpoint:
            raise ConfigError(
                "no Azure OpenAI endpoint: set AZURE_OPENAI_ENDPOINT or pass "
                "provider_options={'azure': {'base_url': 'https://<resource>.openai.azure.com'}}"
            )
        kwargs: dict[str, Any] = {
            "azure_endpoint": endpoint,
            "api_version": self.api_version(),
            "max_retries": 0,
        }
        tokens = {name: self.settings.option(name) for name in _TOKEN_OPTIONS}
        tokens = {name: value for name, value in tokens.items() if value is not None}
        if tokens:
            kwargs.update(tokens)
        else:
            kwargs["api_key"] = self.api_key()
        for name in _CLIENT_OPTIONS:
            value = self.settings.option(name)
            if value is not None:
                kwargs[name] = value
        return kwargs

    @override
    def create_client(self) -> openai.AzureOpenAI:
        return openai.AzureOpenAI(**self.client_kwargs())

    @override
    def create_async_client(self) -> openai.AsyncAzureOpenAI:
        return openai.AsyncAzureOpenAI(**self.client_kwargs())
