"""FallbackMiddleware: more models to try when the call's model fails.

It adds its models to the call's list and the gate runs the one fallback implementation
(:mod:`llmgate._fallback`), streams and mid-stream recovery included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from typing_extensions import override

from ..exceptions import ConfigError
from .base import SettingsMiddleware


class FallbackMiddleware(SettingsMiddleware):
    """Try ``models`` in order after the call's own model(s) failed.

    ``fallback_on`` names the errors that move on to the next model (default: the gate's,
    which is any :class:`~llmgate.exceptions.ProviderError`). Embedding calls are refused
    with a ConfigError: vectors from another model would not be comparable.
    """

    supports: ClassVar[frozenset[str]] = frozenset({"sync", "async", "completion", "stream"})

    def __init__(
        self,
        models: Sequence[str] = (),
        *,
        fallback_on: type[BaseException] | Sequence[type[BaseException]] | None = None,
    ) -> None:
        if isinstance(models, str):
            models = [models]
        self.fallback_models: tuple[str, ...] = tuple(models)
        if fallback_on is None:
            self.fallback_on: tuple[type[BaseException], ...] | None = None
        else:
            if isinstance(fallback_on, type):
                errors: tuple[Any, ...] = (fallback_on,)
            elif isinstance(fallback_on, (list, tuple, set, frozenset)):
                errors = tuple(fallback_on)
            else:
                raise ConfigError(
                    f"fallback_on takes exception classes, not {fallback_on!r}: "
                    "pass e.g. fallback_on=(RateLimitError, ServerError)"
                )
            for error in errors:
                if not (isinstance(error, type) and issubclass(error, BaseException)):
                    raise ConfigError(f"fallback_on takes exception classes, not {error!r}")
            self.fallback_on = errors

    @override
    def __repr__(self) -> str:
        return f"FallbackMiddleware(models={list(self.fallback_models)!r})"
