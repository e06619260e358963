"""llmgate: one call shape for every LLM vendor, on each vendor's official SDK.

Everything public is re-exported here lazily (PEP 562), so ``import llmgate`` loads no
vendor SDK and almost nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.9.0"

_EXPORTS: dict[str, str] = {
    # functions
    "abatch": "llmgate._api",
    "acompletion": "llmgate._api",
    "aembed": "llmgate._api",
    "aparse": "llmgate._api",
    "batch": "llmgate._api",
    "completion": "llmgate._api",
    "embed": "llmgate._api",
    "parse": "llmgate._api",
    # the gate, streams, registry
    "AsyncStream": "llmgate._streaming",
    "BatchProgress": "llmgate._batch",
    "Capabilities": "llmgate._registry",
    "LLMGate": "llmgate._gate",
    "ProviderSpec": "llmgate._registry",
    "RetryPolicy": "llmgate._retry",
    "Stream": "llmgate._streaming",
    "register_provider": "llmgate._registry",
    # types
    "BatchError": "llmgate.types",
    "BatchResult": "llmgate.types",
    "Choice": "llmgate.types",
    "CompletionRequest": "llmgate.types",
    "CompletionResponse": "llmgate.types",
    "EmbeddingRequest": "llmgate.types",
    "EmbeddingResponse": "llmgate.types",
    "FunctionDefinition": "llmgate.types",
    "ImageBytes": "llmgate.types",
    "ImagePart": "llmgate.types",
    "ImageURL": "llmgate.types",
    "Message": "llmgate.types",
    "StreamChunk": "llmgate.types",
    "TextPart": "llmgate.types",
    "TokenUsage": "llmgate.types",
    "ToolCall": "llmgate.types",
    "ToolCallDelta": "llmgate.types",
    "ToolDefinition": "llmgate.types",
    # errors
    "AllProvidersFailedError": "llmgate.exceptions",
    "AuthError": "llmgate.exceptions",
    "BatchTimeoutError": "llmgate.exceptions",
    "ConfigError": "llmgate.exceptions",
    "DroppedParameterWarning": "llmgate.exceptions",
    "EmbeddingsNotSupported": "llmgate.exceptions",
    "InvalidRequestError": "llmgate.exceptions",
    "LLMGateError": "llmgate.exceptions",
    "ModelNotFoundError": "llmgate.exceptions",
    "ProviderAPIError": "llmgate.exceptions",
    "ProviderError": "llmgate.exceptions",
    "RateLimitError": "llmgate.exceptions",
    "StreamingNotSupported": "llmgate.exceptions",
    "StructuredOutputError": "llmgate.exceptions",
    "VisionNotSupported": "llmgate.exceptions",
}

__all__ = [
    "AllProvidersFailedError",
    "AsyncStream",
    "AuthError",
    "BatchError",
    "BatchProgress",
    "BatchResult",
    "BatchTimeoutError",
    "Capabilities",
    "Choice",
    "CompletionRequest",
    "CompletionResponse",
    "ConfigError",
    "DroppedParameterWarning",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EmbeddingsNotSupported",
    "FunctionDefinition",
    "ImageBytes",
    "ImagePart",
    "ImageURL",
    "InvalidRequestError",
    "LLMGate",
    "LLMGateError",
    "Message",
    "ModelNotFoundError",
    "ProviderAPIError",
    "ProviderError",
    "ProviderSpec",
    "RateLimitError",
    "RetryPolicy",
    "Stream",
    "StreamChunk",
    "StreamingNotSupported",
    "StructuredOutputError",
    "TextPart",
    "TokenUsage",
    "ToolCall",
    "ToolCallDelta",
    "ToolDefinition",
    "VisionNotSupported",
    "__version__",
    "abatch",
    "acompletion",
    "aembed",
    "aparse",
    "batch",
    "completion",
    "embed",
    "parse",
    "register_provider",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmgate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from ._api import abatch, acompletion, aembed, aparse, batch, completion, embed, parse
    from ._batch import BatchProgress
    from ._gate import LLMGate
    from ._registry import Capabilities, ProviderSpec, register_provider
    from ._retry import RetryPolicy
    from ._streaming import AsyncStream, Stream
    from .exceptions import (
        AllProvidersFailedError,
        AuthError,
        BatchTimeoutError,
        ConfigError,
        DroppedParameterWarning,
        EmbeddingsNotSupported,
        InvalidRequestError,
        LLMGateError,
        ModelNotFoundError,
        ProviderAPIError,
        ProviderError,
        RateLimitError,
        StreamingNotSupported,
        StructuredOutputError,
        VisionNotSupported,
    )
    from .types import (
        BatchError,
        BatchResult,
        Choice,
        CompletionRequest,
        CompletionResponse,
        EmbeddingRequest,
        EmbeddingResponse,
        FunctionDefinition,
        ImageBytes,
        ImagePart,
        ImageURL,
        Message,
        StreamChunk,
        TextPart,
        TokenUsage,
        ToolCall,
        ToolCallDelta,
        ToolDefinition,
    )
