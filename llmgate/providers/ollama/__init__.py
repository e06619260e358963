"""The Ollama provider (``ollama/<model>``; tags keep their ``:``, e.g. ``ollama/llama3.2:3b``).

``_convert`` holds the pure request and result translation; ``provider`` holds the error
mapping and the class, and is the only module that imports the ``ollama`` SDK.
"""

from __future__ import annotations

from .provider import OllamaProvider

__all__ = ["OllamaProvider"]
