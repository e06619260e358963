"""OpenAI Chat Completions, Azure OpenAI and every OpenAI-compatible preset.

``_convert`` translates requests and wire results (no SDK import); ``provider`` holds the
error table and the :class:`OpenAIProvider` class built on the ``openai`` SDK.
"""

from .provider import OpenAIProvider

__all__ = ["OpenAIProvider"]
