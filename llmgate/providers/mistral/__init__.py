"""The Mistral provider (``mistral/<model>``, bare ``mistral-*``, ``magistral-*``, ... names).

``_convert`` holds the pure request and result translation; ``provider`` holds the error
mapping and the class.
"""

from __future__ import annotations

from .provider import MistralProvider

__all__ = ["MistralProvider"]
