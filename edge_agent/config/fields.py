"""Field metadata for config dataclasses: the one convention every section follows.

A config section is a frozen dataclass; each field carries ``metadata=meta(...)``. The loader
(``edge_agent.config.loader``) turns YAML into these dataclasses and reports problems with
file:line:col; the JSON Schema (``edge_agent.config.schema``) and ``docs/config.md`` are
generated from the same fields, so the three never disagree.

Allowed field types: ``str``, ``int``, ``float``, ``bool``, ``Literal[...]``, ``X | None``,
``tuple[X, ...]`` (a list), ``tuple[X, X]`` (a fixed-length list), ``dict[str, X]``, a nested
frozen dataclass, and a union of dataclasses told apart by a ``type: Literal["..."]`` field.

Bounds (``min``, ``max``, ``exclusive_min``) apply to numbers, also to each number inside a list
or a dict. ``pattern`` is a full-match regex for strings; on a ``dict[str, X]`` field it checks
the keys. A section may define a method ``config_checks(self) -> Iterable[tuple[str, str]]``
for rules that span fields; it yields ``(field, message)`` pairs (``field`` names the field the
problem is reported at, ``""`` for the section itself) and the loader adds file:line:col.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["NAME_HELP", "NAME_PATTERN", "help_text", "meta"]

# Names that become MQTT topic levels (site, gateway, bus, device): no '/', '+', '#', no
# control characters, never empty, never a leading '$' (reserved for broker topics).
NAME_PATTERN = r"[A-Za-z0-9_.-]+"
NAME_HELP = "use letters, digits, '_', '.' or '-' (it becomes an MQTT topic level)"


def meta(
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    exclusive_min: bool = False,
    pattern: str | None = None,
    pattern_help: str | None = None,
    secret: bool = False,
    path: bool = False,
    unit: str | None = None,
    example: Any = None,
) -> dict[str, Any]:
    """Describe a config field.

    ``help`` is the one-line description for docs and schema; ``min``/``max`` are inclusive
    bounds unless ``exclusive_min`` (then the value must be greater than ``min``); ``pattern``
    is a full-match regex and ``pattern_help`` says in words what it allows; ``secret`` fields
    never have their value printed, logged or put into an error message; ``path`` marks a file
    or directory path (relative ones resolve against the config file's directory); ``unit`` is
    shown in docs; ``example`` is a value shown in docs.
    """
    return {
        "help": help,
        "min": min,
        "max": max,
        "exclusive_min": exclusive_min,
        "pattern": pattern,
        "pattern_help": pattern_help,
        "secret": secret,
        "path": path,
        "unit": unit,
        "example": example,
    }


def help_text(fmeta: Mapping[str, Any]) -> str:
    """A field's one-line description as docs and schema show it: help, then ``[unit]``."""
    text = fmeta.get("help") or ""
    return f"{text} [{fmeta['unit']}]" if fmeta.get("unit") else text
