"""The Cohere provider (``cohere/<model>``, bare ``command-*`` and ``embed-*`` names).

``_convert`` holds the pure request and result translation; ``provider`` holds the error
mapping and the class, and is the only module that imports the ``cohere`` SDK.
"""

from __future__ import annotations

from .provider import CohereProvider

__all__ = ["CohereProvider"]
