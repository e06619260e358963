"""Collect every vendor's conformance rows from ``tests/fakes/*.py`` (their ``TARGETS``)."""

from __future__ import annotations

import importlib
import pkgutil

import tests.fakes

from .target import Target


def all_targets() -> list[Target]:
    found: list[Target] = []
    for info in sorted(pkgutil.iter_modules(tests.fakes.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"tests.fakes.{info.name}")
        found.extend(getattr(module, "TARGETS", []))
    return found


TARGETS = all_targets()
