"""Middleware: code that runs around every call (sync, async, streaming, embeddings)."""

from __future__ import annotations

from .base import BaseMiddleware, CallContext

__all__ = ["BaseMiddleware", "CallContext"]
