"""Field metadata for the dataclasses of a file format, and the introspection the reader, the
JSON Schema and the docs generators share.

A format is a tree of frozen dataclasses; each field carries ``metadata=meta(...)``. The reader
(``yamlread.convert``) turns YAML into these dataclasses and reports problems with
file:line:col; generators (``edge_agent.config.schema`` and ``reference``) describe the same
fields, so reader, schema and docs never disagree.

Allowed field types: ``str``, ``int``, ``float``, ``bool``, ``Literal[...]``, ``X | None``, a
union of scalars (``int | str``), ``tuple[X, ...]`` (a list), ``tuple[X, X]`` (a fixed-length
list), ``dict[str, X]`` and ``dict[int, X]``, a nested frozen dataclass, a union of dataclasses
told apart by a ``type: Literal["..."]`` field, and ``Section`` (a part of the file kept as YAML
for another package to read with this reader).

Bounds (``min``, ``max``, ``exclusive_min``) apply to numbers, also to each number inside a list
or a dict. ``pattern`` is a full-match regex for strings; on a ``dict[str, X]`` field it checks
the keys (on a ``dict[int, str]`` the values). A dataclass may define ``config_checks(self)``
for rules that span fields; it yields ``(field, message)`` pairs (``field`` names the field
the problem is reported at, ``""`` for the record itself, ``KeyPath(...)`` for a mapping key)
and the reader adds file:line:col. A field with ``metadata=INTERNAL`` is not a YAML key
(derived or bookkeeping values; it needs a default).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

import yaml

__all__ = [
    "INTERNAL",
    "ReadingPlan",
    "Section",
    "config_fields",
    "help_text",
    "is_required",
    "meta",
    "reading_plan",
    "tag_of",
    "type_shape",
    "union_args",
    "yaml_key",
]

# The metadata of a field that is not a YAML key.
INTERNAL: Mapping[str, Any] = {"internal": True}


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
    key: str | None = None,
    inherit: bool = False,
    type_from: tuple[str, Mapping[Any, type]] | None = None,
) -> dict[str, Any]:
    """Describe a field.

    ``help`` is the one-line description for docs and schema; ``min``/``max`` are inclusive
    bounds unless ``exclusive_min`` (then the value must be greater than ``min``); ``pattern``
    is a full-match regex and ``pattern_help`` says in words what it allows; ``secret`` fields
    never have their value printed, logged or put into an error message; ``path`` marks a file
    or directory path (relative ones resolve against the file's directory); ``unit`` is shown
    in docs; ``example`` is a value shown in docs.

    ``key`` is the YAML key when it differs from the field name (``from`` is a Python
    keyword). ``inherit``: when the key is left out, take the value of the same field of the
    nearest enclosing record that has it (a profile's ``word_order`` for its points).
    ``type_from=(sibling, {value: dataclass})``: the field's dataclass is chosen by the value
    of a sibling field (a device's ``sim:`` block by its ``kind``); left out, it is that
    dataclass with its defaults.
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
        "key": key,
        "inherit": inherit,
        "type_from": type_from,
    }


def help_text(fmeta: Mapping[str, Any]) -> str:
    """A field's one-line description as docs and schema show it: help, then ``[unit]``."""
    text = fmeta.get("help") or ""
    return f"{text} [{fmeta['unit']}]" if fmeta.get("unit") else text


_HINTS: dict[type, dict[str, Any]] = {}


def config_fields(cls: type) -> list[tuple[dataclasses.Field[Any], Any]]:
    """The YAML-visible fields of a dataclass with their resolved types, in the order docs
    and the schema show them (``name`` and ``type`` first)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    out = [(f, hints[f.name]) for f in dataclasses.fields(cls) if not f.metadata.get("internal")]
    first = {"name": 0, "type": 1}
    return sorted(out, key=lambda ft: first.get(ft[0].name, 2))


def yaml_key(f: dataclasses.Field[Any]) -> str:
    """The YAML key of a field: its ``meta(key=...)`` or its name."""
    return f.metadata.get("key") or f.name


def is_required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def union_args(tp: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        return typing.get_args(tp)
    return None


def tag_of(cls: type) -> str | None:
    """The ``type:`` value of one member of a tagged union of dataclasses."""
    for f, tp in config_fields(cls):
        if f.name == "type" and typing.get_origin(tp) is Literal:
            value = typing.get_args(tp)[0]
            return value if isinstance(value, str) else None
    return None


@dataclasses.dataclass(frozen=True, eq=False)
class Section:
    """A part of a file kept as composed YAML for its owner to read with this reader (the site
    file's ``scenarios:`` belong to the simulator): the node, its path and the file."""

    node: yaml.Node
    path: str
    file: str
    base_dir: str = ""


@dataclasses.dataclass(frozen=True)
class ReadingPlan:
    """How to read one dataclass: its YAML keys, its fields in reading order (plain values
    before nested records) with their YAML keys, its required fields."""

    keys: frozenset[str]
    order: tuple[tuple[dataclasses.Field[Any], Any, str], ...]
    required: tuple[tuple[dataclasses.Field[Any], str], ...]


@functools.cache
def reading_plan(cls: type) -> ReadingPlan:
    fields = config_fields(cls)
    return ReadingPlan(
        keys=frozenset(yaml_key(f) for f, _ in fields),
        order=tuple(
            (f, tp, yaml_key(f)) for f, tp in sorted(fields, key=lambda ft: holds_records(ft[1]))
        ),
        required=tuple((f, yaml_key(f)) for f, _ in fields if is_required(f)),
    )


@functools.cache
def type_shape(tp: Any) -> tuple[str, tuple[Any, ...]]:
    """What kind of value a field type asks for, and its type arguments (cached: the reader
    asks for every value it reads)."""
    args = union_args(tp)
    if args is not None:
        members = tuple(a for a in args if a is not type(None))
        if len(members) < len(args):  # X | None: X, or null
            inner = members[0] if len(members) == 1 else typing.Union[members]  # noqa: UP007
            return "optional", (inner,)
        if all(dataclasses.is_dataclass(m) for m in members):
            return "records", members
        return "scalars", members
    if tp is Section:
        return "section", ()
    if dataclasses.is_dataclass(tp):
        return "record", ()
    origin = typing.get_origin(tp)
    if origin is tuple:
        return "list", typing.get_args(tp)
    if origin is dict:
        return "dict", typing.get_args(tp)
    if origin is Literal:
        return "literal", typing.get_args(tp)
    return "scalar", ()


def holds_records(tp: Any) -> bool:
    """Whether values of ``tp`` contain dataclasses (read after the plain fields)."""
    if dataclasses.is_dataclass(tp):
        return True
    return any(holds_records(a) for a in typing.get_args(tp) if a is not Ellipsis)
