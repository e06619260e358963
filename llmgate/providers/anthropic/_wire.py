"""A ``messages.create`` request sent through the SDK's generic ``post``, as ``create`` sends it.

``create`` only arranges its keyword arguments into a JSON body and request options, then
calls ``client.post("/v1/messages", ...)``; ``with_raw_response`` adds a wrapper object on
top. Calling ``post`` with ``cast_to=httpx2.Response`` directly gives the same request (the
body keys in ``create``'s order, the same options, timeout and tracing span) and hands back
the HTTP response with no wrapper. The SDK still prepares the body, builds headers and auth,
sends, and raises its typed errors.

``create`` reads a few SDK internals (the non-streaming timeout rule, the deprecation
tables, the span attributes); when one is missing, :func:`post_arguments` returns None and
the provider takes the public ``with_raw_response`` path instead.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import Any

MESSAGES_PATH = "/v1/messages"
SPAN_NAME = "anthropic.messages.create"

# The parameters of ``create`` that are not body keys.
_NOT_BODY = frozenset(
    {
        "self",
        "user_profile_id",
        "workspace_id",
        "extra_headers",
        "extra_query",
        "extra_body",
        "timeout",
    }
)
# Parameters this module does not send itself: the public path sends them.
_PUBLIC_ONLY = frozenset({"user_profile_id", "workspace_id"})

try:
    from anthropic._base_client import make_request_options
    from anthropic._constants import DEFAULT_TIMEOUT, MODEL_NONSTREAMING_TOKENS
    from anthropic._data import DEPRECATED_MODELS, MODELS_TO_WARN_WITH_THINKING_ENABLED
    from anthropic._types import not_given, omit
    from anthropic.lib._tracing import messages_create_request_attributes
    from anthropic.resources.messages import Messages

    _BODY_KEYS: tuple[str, ...] | None = tuple(
        name for name in inspect.signature(Messages.create).parameters if name not in _NOT_BODY
    )
except ImportError:  # an SDK without these internals: the public path only
    _BODY_KEYS = None


def available() -> bool:
    return _BODY_KEYS is not None


def post_arguments(
    client: Any, kwargs: Mapping[str, Any], *, stream: bool
) -> tuple[dict[str, Any], Any] | None:
    """``(body, options)`` for ``client.post(MESSAGES_PATH, ...)`` equal to what
    ``client.messages.create(**kwargs, stream=stream)`` sends; None where only ``create`` can
    send the request. Raises and warns as ``create`` does before sending."""
    if _BODY_KEYS is None or not _PUBLIC_ONLY.isdisjoint(kwargs):
        return None
    calculate = getattr(client, "_calculate_nonstreaming_timeout", None)
    if calculate is None:
        return None
    model = kwargs["model"]
    timeout = kwargs.get("timeout", not_given)
    if not stream and "timeout" not in kwargs and client.timeout == DEFAULT_TIMEOUT:
        timeout = calculate(kwargs["max_tokens"], MODEL_NONSTREAMING_TOKENS.get(model, None))
    if model in DEPRECATED_MODELS:
        warnings.warn(
            f"The model '{model}' is deprecated and will reach end-of-life on "
            f"{DEPRECATED_MODELS[model]}.\nPlease migrate to a newer model. Visit "
            "https://docs.anthropic.com/en/docs/resources/model-deprecations for more "
            "information.",
            DeprecationWarning,
            stacklevel=3,
        )
    thinking = kwargs.get("thinking")
    if model in MODELS_TO_WARN_WITH_THINKING_ENABLED and thinking and thinking["type"] == "enabled":
        warnings.warn(
            f"Using Claude with {model} and 'thinking.type=enabled' is deprecated. Use "
            "'thinking.type=adaptive' instead which results in better model performance in our "
            "testing: https://platform.claude.com/docs/en/build-with-claude/adaptive-thinking",
            UserWarning,
            stacklevel=3,
        )
    body: dict[str, Any]
    if "extra_body" in kwargs:
        # extra_body's keys replace create()'s in place: absent ones keep their slots (omitted).
        body = {key: kwargs.get(key, omit) for key in _BODY_KEYS}
        if stream:
            body["stream"] = True
    else:
        body = {}
        for key in _BODY_KEYS:
            if key in kwargs:
                body[key] = kwargs[key]
            elif stream and key == "stream":
                body[key] = True
    options = make_request_options(
        extra_headers=dict(kwargs.get("extra_headers") or {}),
        extra_query=kwargs.get("extra_query"),
        extra_body=kwargs.get("extra_body"),
        timeout=timeout,
        span_name=SPAN_NAME,
        span_route=MESSAGES_PATH,
        span_attributes=messages_create_request_attributes,
    )
    return body, options
