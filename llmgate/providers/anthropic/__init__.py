"""The Anthropic provider (``anthropic/<model>``, bare ``claude-*`` names).

``_convert`` holds the pure request and result translation; ``provider`` holds the error
mapping and the class, and is the only module that imports the ``anthropic`` SDK.
"""

from __future__ import annotations

from .provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
