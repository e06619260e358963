"""The Ollama provider (``ollama/<model>``; tags keep their ``:``, e.g. ``ollama/llama3.2:3b``).

``_convert`` holds the pure request and result translation; ``provider`` holds the error
mapping and the class, and is the only module that imports the ``ollama`` SDK.
"""

from __future__ import annotations

# The SDK is imported before anything it brings along (httpx), so that a missing SDK is
# reported as the missing ``llmgate[ollama]`` extra.
import ollama  # noqa: F401

from .provider import OllamaProvider

__all__ = ["OllamaProvider"]
