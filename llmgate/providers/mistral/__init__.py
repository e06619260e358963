"""The Mistral provider (``mistral/<model>``, bare ``mistral-*``, ``magistral-*``, ... names).

``_convert`` holds the pure request and result translation; ``provider`` holds the error
mapping and the class.
"""

from __future__ import annotations

# The SDK is imported before anything it brings along (httpx2), so that a missing SDK is
# reported as the missing ``llmgate[mistral]`` extra.
import mistralai  # noqa: F401

from .provider import MistralProvider

__all__ = ["MistralProvider"]
