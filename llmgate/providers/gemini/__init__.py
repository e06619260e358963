"""Google Gemini through the official ``google-genai`` SDK (``google.genai.Client``)."""

from __future__ import annotations

from .provider import GeminiProvider

__all__ = ["GeminiProvider"]
