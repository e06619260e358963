"""Google Gemini through the official ``google-genai`` SDK (``google.genai.Client``)."""

from __future__ import annotations

import sys

from ...exceptions import ConfigError

# google-genai 3.x, which this provider is written for, needs Python 3.11 (a plain runtime
# check: mypy would take `sys.version_info < (3, 11)` as always true for its 3.10 target).
_PYTHON = sys.version_info[:2]
if _PYTHON < (3, 11):  # pragma: no cover
    raise ConfigError(
        "the 'gemini' provider needs google-genai>=3.0, which needs Python 3.11 or newer"
    )

# The SDK is imported before anything it brings along (httpx2), so that a missing SDK is
# reported as the missing ``llmgate[gemini]`` extra.
import google.genai  # noqa: E402, F401

from .provider import GeminiProvider  # noqa: E402

__all__ = ["GeminiProvider"]
