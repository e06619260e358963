"""What the conformance suite needs from each vendor: a fake, a model string, a wire view.

Each fake module in ``tests/fakes/`` exposes ``TARGETS: list[Target]``; the suite collects
them all (see ``targets.py``), so a new vendor joins the suite without editing shared files.

A :class:`WireView` reads a recorded request in neutral terms, so one test can assert on
what went over the wire for every vendor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import FakeVendor, RecordedRequest

# A tool choice as the suite sees it on the wire.
#   "auto" | "none" | "required" | ("named", "<function name>") | None (not sent)
ToolChoice = Any


class WireView:
    """Neutral accessors over one vendor's recorded request. Override every method."""

    def model(self, req: RecordedRequest) -> str:
        raise NotImplementedError

    def is_stream(self, req: RecordedRequest) -> bool:
        raise NotImplementedError

    def system(self, req: RecordedRequest) -> str | None:
        """The system prompt text sent (joined), or None."""
        raise NotImplementedError

    def turns(self, req: RecordedRequest) -> list[tuple[str, str]]:
        """Non-system turns as (role, text): role in user | assistant | tool."""
        raise NotImplementedError

    def max_tokens(self, req: RecordedRequest) -> int | None:
        raise NotImplementedError

    def temperature(self, req: RecordedRequest) -> float | None:
        raise NotImplementedError

    def tool_names(self, req: RecordedRequest) -> list[str]:
        raise NotImplementedError

    def tool_schema(self, req: RecordedRequest, name: str) -> dict[str, Any]:
        """The JSON schema of a tool's parameters as sent."""
        raise NotImplementedError

    def tool_choice(self, req: RecordedRequest) -> ToolChoice:
        raise NotImplementedError

    def assistant_tool_calls(self, req: RecordedRequest) -> list[tuple[str, str, dict[str, Any]]]:
        """Tool calls of assistant turns sent back as history: (id, name, arguments)."""
        raise NotImplementedError

    def tool_results(self, req: RecordedRequest) -> list[tuple[str, str]]:
        """Tool results sent: (tool call id, text). Vendors without ids use the name."""
        raise NotImplementedError

    def images(self, req: RecordedRequest) -> list[tuple[str, str]]:
        """Images sent: ("url", url) or ("bytes", base64 data)."""
        raise NotImplementedError

    def response_schema(self, req: RecordedRequest) -> dict[str, Any] | None:
        """The structured-output JSON schema sent (decoded if the vendor wants a string)."""
        raise NotImplementedError

    def embedding_inputs(self, req: RecordedRequest) -> list[str]:
        raise NotImplementedError


@dataclass
class Target:
    """One row of the conformance suite.

    ``gate_kwargs(base_url)`` returns the LLMGate(...) keyword arguments that point the
    provider at the running fake with fake credentials (never a real key, never another host).
    ``not_applicable`` maps a case name to the reason the vendor truly lacks the feature.
    """

    id: str
    make_vendor: Callable[[], FakeVendor]
    model: str
    gate_kwargs: Callable[[str], dict[str, Any]]
    wire: WireView
    embedding_model: str | None = None
    image_urls: bool = True  # False: the vendor takes only bytes (a URL must raise)
    reasoning: bool = True  # the fake can return reasoning/thinking the provider maps
    request_ids: bool = True  # the vendor returns a request id on errors
    error_headers: bool = True  # the SDK exposes error response headers (Retry-After)
    not_applicable: dict[str, str] = field(default_factory=dict)
    api_key_env: tuple[str, ...] = ()  # variables that must be unset for the missing-key case
