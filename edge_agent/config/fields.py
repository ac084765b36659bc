"""Field metadata for config dataclasses: the one convention every section follows.

A config section is a frozen dataclass; each field carries ``metadata=meta(...)``. The loader
(``edge_agent.config.loader``) turns YAML into these dataclasses and reports problems with
file:line:col; the JSON Schema (``edge_agent.config.schema``) is generated from the same fields.
"""

from __future__ import annotations

from typing import Any

__all__ = ["meta"]


def meta(
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    pattern: str | None = None,
    secret: bool = False,
    unit: str | None = None,
) -> dict[str, Any]:
    """Describe a config field: ``help`` for docs/schema, bounds, a regex, ``secret`` (never
    printed or logged), ``unit`` (shown in docs)."""
    return {
        "help": help,
        "min": min,
        "max": max,
        "pattern": pattern,
        "secret": secret,
        "unit": unit,
    }
