"""OpenAI Chat Completions, Azure OpenAI and every OpenAI-compatible preset.

``_convert`` translates requests and wire results (no SDK import); ``provider`` holds the
error table and the :class:`OpenAIProvider` class built on the ``openai`` SDK.
"""

# The SDK is imported before anything it brings along (httpx2, anyio), so that a missing
# SDK is reported as the missing ``llmgate[openai]`` extra.
import openai  # noqa: F401

from .provider import OpenAIProvider

__all__ = ["OpenAIProvider"]
