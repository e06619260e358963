"""Generated documentation fragments (checked in CI so they cannot drift from the code)."""

from __future__ import annotations

from ._registry import BUILTIN_SPECS, Capabilities, ProviderSpec

_COLUMNS: tuple[tuple[str, str], ...] = (
    ("streaming", "Streaming"),
    ("tools", "Tools"),
    ("tool_choice_required", "Forced tool use"),
    ("parallel_tools", "Parallel tools"),
    ("vision", "Vision"),
    ("image_urls", "Image URLs"),
    ("structured_output", "Structured output"),
    ("embeddings", "Embeddings"),
    ("prefill", "Assistant prefill"),
    ("reasoning", "Reasoning"),
)


def _mark(value: bool) -> str:
    return "yes" if value else "—"


def capability_matrix(specs: tuple[ProviderSpec, ...] = BUILTIN_SPECS) -> str:
    """The capability matrix page, as Markdown, from the registry's capability data."""
    header = "| Provider | Extra | Key variable | " + " | ".join(t for _, t in _COLUMNS) + " |"
    rule = "|" + "---|" * (3 + len(_COLUMNS))
    rows = []
    overrides = []
    for spec in specs:
        caps: Capabilities = spec.capabilities
        values = caps.as_dict()
        cells = [
            f"`{spec.name}/`",
            f"`{spec.extra}`" if spec.extra else "(none)",
            ", ".join(f"`{k}`" for k in spec.env_keys) or "—",
            *(_mark(values[name]) for name, _ in _COLUMNS),
        ]
        rows.append("| " + " | ".join(cells) + " |")
        for pattern, changes in spec.model_capabilities:
            listed = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in sorted(changes.items()))
            overrides.append(f"| `{spec.name}/{pattern}` | {listed} |")
    parts = [
        "# Capability matrix",
        "",
        "Generated from the registry's capability data (`llmgate._docs.capability_matrix()`);",
        "a test fails when this page and the code disagree. The fallback layer and the checks",
        "made before each request read the same data.",
        "",
        header,
        rule,
        *rows,
    ]
    if overrides:
        parts += [
            "",
            "## Per-model differences",
            "",
            "| Models | Differs in |",
            "|---|---|",
            *overrides,
        ]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(capability_matrix(), end="")
