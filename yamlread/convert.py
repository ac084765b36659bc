"""The type-directed converter: YAML nodes -> frozen dataclasses, one problem per mistake.

``Converter`` walks composed YAML nodes (which keep their line and column) against the field
types of a dataclass (see ``yamlread.fields`` for the allowed types and ``meta()``), recording
every problem instead of stopping at the first: wrong types, unknown keys (with a
did-you-mean), missing and duplicate keys, bounds, patterns, and the records' own
``config_checks()``. A record with a bad field comes back as a ``PartialRecord`` so that
checks across records can still look at its good fields.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import yaml

from yamlread.fields import Section, config_fields, reading_plan, tag_of, type_shape, yaml_key
from yamlread.partial import INVALID, PartialRecord, PartialTuple, Unknown, is_bad
from yamlread.problems import (
    Problem,
    cut,
    fmt_num,
    has_other_line_breaks,
    join_path,
    show_value,
    suggest,
    text_position,
)
from yamlread.scalar import scalar_value

__all__ = ["MAX_NODE_VISITS", "Checks", "Converter", "KeyPath", "TooBig"]

# A config is a few hundred nodes; aliases can multiply a small file into millions of visits.
# A larger file may visit one node per character of its text (a site of a whole district).
MAX_NODE_VISITS = 200_000

_TAG = "tag:yaml.org,2002:"
_WORDS_RE = re.compile(r"[\w-]+(\|[\w-]+)+")  # a pattern that is a list of choices
_SCALAR_WHAT = {str: "text", int: "an integer", float: "a number", bool: "true or false"}

# What a record's ``config_checks()`` and a format's own check functions yield.
Checks = Iterable[tuple[str, str]]


class TooBig(Exception):
    """The alias-expanded document exceeds the converter's node budget."""


_ABSENT = object()


class KeyPath(str):
    """A field path (``fault_bits.16``) whose problem is reported at the mapping key rather
    than at its value: yield it from a check when the key itself is wrong."""


class Converter:
    """Walks YAML nodes against dataclass types, recording problems and marks.

    ``marks`` maps every converted path to the (line, col) of its value, ``key_marks`` every
    mapping entry's path to its key. ``numbers_as_text``: a text field also takes a number or
    a date as written (ids such as ``0001`` in site files); otherwise it asks for quotes.
    """

    def __init__(
        self,
        file: str,
        base_dir: str = "",
        *,
        max_visits: int = MAX_NODE_VISITS,
        numbers_as_text: bool = False,
        text: str = "",
    ) -> None:
        self.file = file
        # Positions as an editor counts lines, where YAML would count more (see problems.py).
        self.recount = text if has_other_line_breaks(text) else None
        self.base_dir = base_dir
        self.max_visits = max_visits
        self.numbers_as_text = numbers_as_text
        self.problems: list[Problem] = []
        self.marks: dict[str, tuple[int, int]] = {}
        self.key_marks: dict[str, tuple[int, int]] = {}
        self.visits = 0
        self.merging: set[int] = set()  # mappings whose merge keys are being expanded
        self.records: list[dict[str, Any]] = []  # values of the records being read (inherit)

    # -- problems ----------------------------------------------------------------------------

    def problem(self, node: yaml.Node | None, path: str, message: str) -> None:
        line, col = (None, None) if node is None else self.pos(node)
        self.problems.append(Problem(self.file, line, col, path, message))

    def problem_at(
        self, path: str, message: str, fallback: yaml.Node | None = None, *, at_key: bool = False
    ) -> None:
        """A problem at a path converted earlier (checks across fields and records)."""
        mark = (self.key_marks if at_key else self.marks).get(path) or self.marks.get(path)
        if mark is None and fallback is not None:
            mark = self.pos(fallback)
        line, col = mark if mark else (1, 1)
        self.problems.append(Problem(self.file, line, col, path, message))

    def pos(self, node: yaml.Node) -> tuple[int, int]:
        mark = node.start_mark
        if self.recount is not None:
            return text_position(self.recount, mark.index)
        return mark.line + 1, mark.column + 1

    # -- node helpers ------------------------------------------------------------------------

    def visit(self) -> None:
        self.visits += 1
        if self.visits > self.max_visits:
            raise TooBig

    @staticmethod
    def is_null(node: yaml.Node) -> bool:
        return isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null"

    def scalar(self, node: yaml.ScalarNode) -> tuple[bool, Any]:
        """(True, value) or (False, why it cannot be read)."""
        try:
            return True, scalar_value(node)
        except ValueError as exc:
            return False, str(exc)

    def describe(self, node: yaml.Node, secret: bool = False) -> str:
        """'a mapping', 'integer 12', 'text 'x'' ... for 'expected X, got Y'."""
        if isinstance(node, yaml.MappingNode):
            return "a mapping"
        if isinstance(node, yaml.SequenceNode):
            return "a list"
        tag = node.tag.removeprefix(_TAG)
        kind = {
            "null": "null",
            "bool": "boolean",
            "int": "integer",
            "float": "number",
            "str": "text",
            "timestamp": "a date",
            "binary": "binary data",
        }.get(tag, f"a value tagged {node.tag}")
        if secret or tag == "null" or kind.startswith("a "):
            return kind
        shown = show_value(node.value) if tag == "str" else cut(node.value)
        return f"{kind} {shown}"

    def entries(
        self, node: yaml.MappingNode, path: str, key_type: type = str
    ) -> dict[Any, tuple[yaml.Node, yaml.Node]]:
        """Key -> (key node, value node), with merge keys (``<<: *defaults``) applied and
        duplicate keys or keys not of ``key_type`` (text or integer) reported."""
        explicit: dict[Any, tuple[yaml.Node, yaml.Node]] = {}
        merged: dict[Any, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            self.visit()
            if key_node.tag == _TAG + "merge":
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for src in sources:
                    if not isinstance(src, yaml.MappingNode):
                        self.problem(src, path, "a merge key (<<) needs a mapping or aliases")
                        continue
                    if id(src) in self.merging or src is node:
                        self.problem(src, path, "a merge key (<<) brings in its own mapping")
                        continue
                    self.merging.add(id(node))
                    try:
                        for k, kv in self.entries(src, path, key_type).items():
                            merged.setdefault(k, kv)
                    finally:
                        self.merging.discard(id(node))
                continue
            key = self.key(key_node, path, key_type)
            if key is _ABSENT:
                continue
            if key in explicit:
                first = self.pos(explicit[key][0])[0]
                self.problem(
                    key_node, join_path(path, str(key)), f"duplicate key (first at line {first})"
                )
                continue
            explicit[key] = (key_node, value_node)
        return {**merged, **explicit}

    def key(self, key_node: yaml.Node, path: str, key_type: type) -> Any:
        """A mapping key as ``key_type``, or ``_ABSENT`` (its problem recorded)."""
        if key_type is str:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _TAG + "str":
                return key_node.value
            self.problem(key_node, path, f"keys must be text, got {self.describe(key_node)}")
            return _ABSENT
        ok, value = (False, None)
        if isinstance(key_node, yaml.ScalarNode):
            ok, value = self.scalar(key_node)
        if ok and isinstance(value, int) and not isinstance(value, bool):
            return value
        self.problem(key_node, path, f"keys must be integers, got {self.describe(key_node)}")
        return _ABSENT

    # -- conversion --------------------------------------------------------------------------

    def convert(self, node: yaml.Node, tp: Any, path: str, fmeta: Mapping[str, Any]) -> Any:
        self.visit()
        self.marks.setdefault(path, self.pos(node))
        shape, args = type_shape(tp)
        if shape == "optional":
            return None if self.is_null(node) else self.convert(node, args[0], path, fmeta)
        if shape == "records":
            return self.convert_tagged(node, list(args), path)
        if shape == "scalars":
            return self.convert_scalar_union(node, list(args), path, fmeta)
        if shape == "section":
            return Section(node, path, self.file, self.base_dir)
        if shape == "record":
            return self.convert_dataclass(node, tp, path)
        if shape == "list":
            return self.convert_list(node, args, path, fmeta)
        if shape == "dict":
            return self.convert_dict(node, args[0], args[1], path, fmeta)
        if shape == "literal":
            return self.convert_literal(node, args, path, fmeta)
        return self.convert_scalar(node, tp, path, fmeta)

    def expect(self, node: yaml.Node, path: str, what: str, fmeta: Mapping[str, Any]) -> Any:
        got = self.describe(node, secret=bool(fmeta.get("secret")))
        hint = ""
        if what == "text" and isinstance(node, yaml.ScalarNode) and not self.is_null(node):
            hint = " (put it in quotes)"
        self.problem(node, path, f"expected {what}, got {got}{hint}")
        return INVALID

    def convert_scalar(self, node: yaml.Node, tp: Any, path: str, fmeta: Mapping[str, Any]) -> Any:
        what = _SCALAR_WHAT.get(tp)
        if what is None:  # a programming error in a format's dataclass, not a user mistake
            raise TypeError(f"unsupported field type {tp!r} at {path}")
        if not isinstance(node, yaml.ScalarNode):
            return self.expect(node, path, what, fmeta)
        if tp is str and self.numbers_as_text and _is_number_or_date(node):
            return self.check_text(node, node.value, path, fmeta)
        ok, value = self.scalar(node)
        if not ok:
            self.problem(node, path, f"cannot read this value: {value}")
            return INVALID
        if tp is bool:
            return value if isinstance(value, bool) else self.expect(node, path, what, fmeta)
        if tp is str:
            if not isinstance(value, str):
                return self.expect(node, path, what, fmeta)
            return self.check_text(node, value, path, fmeta)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self.expect(node, path, what, fmeta)
        if tp is int and not isinstance(value, int):
            return self.expect(node, path, what, fmeta)
        if tp is float:
            try:
                value = float(value)
            except OverflowError:  # an integer with hundreds of digits
                self.problem(node, path, f"{cut(node.value)} is too large for a number")
                return INVALID
            if not math.isfinite(value):
                self.problem(node, path, f"{cut(node.value)} is not a finite number")
                return INVALID
        return self.check_bounds(node, value, path, fmeta)

    def convert_scalar_union(
        self, node: yaml.Node, members: list[Any], path: str, fmeta: Mapping[str, Any]
    ) -> Any:
        """``int | str`` and the like: the member the written value is."""
        if isinstance(node, yaml.ScalarNode):
            ok, value = self.scalar(node)
            for tp in members:
                if ok and _is_of(value, tp):
                    return self.convert_scalar(node, tp, path, fmeta)
        return self.expect(node, path, " or ".join(_SCALAR_WHAT[m] for m in members), fmeta)

    def check_text(self, node: yaml.Node, value: str, path: str, fmeta: Mapping[str, Any]) -> Any:
        pattern = fmeta.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            why = fmeta.get("pattern_help") or f"it must match {pattern}"
            shown = "this value" if fmeta.get("secret") else show_value(value)
            hint = ""
            if _WORDS_RE.fullmatch(pattern) and not fmeta.get("secret"):
                hint = suggest(value, pattern.split("|"))
                hint = hint if "did you mean" in hint else ""
            self.problem(node, path, f"{shown} is not allowed: {why}{hint}")
            return INVALID
        if fmeta.get("path"):
            if not value:
                self.problem(node, path, "an empty path is not allowed")
                return INVALID
            return os.path.normpath(os.path.join(self.base_dir, value))
        return value

    def check_bounds(
        self, node: yaml.Node, value: float, path: str, fmeta: Mapping[str, Any]
    ) -> Any:
        lo, hi = fmeta.get("min"), fmeta.get("max")
        shown = cut(node.value) if isinstance(node, yaml.ScalarNode) else fmt_num(value)
        if fmeta.get("exclusive_min") and lo is not None and not value > lo:
            self.problem(node, path, f"{shown} must be greater than {fmt_num(lo)}")
            return INVALID
        if lo is not None and hi is not None and not lo <= value <= hi:
            self.problem(node, path, f"{shown} is not in {fmt_num(lo)}..{fmt_num(hi)}")
            return INVALID
        if lo is not None and value < lo:
            self.problem(node, path, f"{shown} is less than the minimum {fmt_num(lo)}")
            return INVALID
        if hi is not None and value > hi:
            self.problem(node, path, f"{shown} is more than the maximum {fmt_num(hi)}")
            return INVALID
        return value

    def convert_literal(
        self, node: yaml.Node, choices: tuple[Any, ...], path: str, fmeta: Mapping[str, Any]
    ) -> Any:
        ok, value = self.scalar(node) if isinstance(node, yaml.ScalarNode) else (False, None)
        if ok and any(_same_literal(c, value) for c in choices):
            return value
        listed = ", ".join(_literal_text(c) for c in choices)
        what = f"one of {listed}" if len(choices) > 1 else _literal_text(choices[0])
        if not isinstance(node, yaml.ScalarNode):
            return self.expect(node, path, what, fmeta)
        if ok and not isinstance(value, str | int | float):  # null, a date, binary
            return self.expect(node, path, what, fmeta)
        text = node.value if isinstance(node.value, str) else str(node.value)
        if path == "version":
            self.problem(
                node, path, f"{show_value(text)} is not supported (this edge-agent reads {what})"
            )
            return INVALID
        suggestion = suggest(text, [_literal_text(c) for c in choices])
        if "did you mean" not in suggestion:
            suggestion = ""
        self.problem(node, path, f"{show_value(text)} is not one of {listed}{suggestion}")
        return INVALID

    def convert_list(
        self, node: yaml.Node, args: tuple[Any, ...], path: str, fmeta: Mapping[str, Any]
    ) -> Any:
        variadic = len(args) == 2 and args[1] is Ellipsis
        what = "a list" if variadic else f"a list of {len(args)}"
        if not isinstance(node, yaml.SequenceNode):
            return self.expect(node, path, what, fmeta)
        if not variadic and len(node.value) != len(args):
            self.problem(node, path, f"expected {what} values, got {len(node.value)}")
            return INVALID
        out = []
        for i, item in enumerate(node.value):
            tp = args[0] if variadic else args[i]
            out.append(self.convert(item, tp, f"{path}[{i}]", fmeta))
        if any(is_bad(v) for v in out):
            return PartialTuple(out)
        return tuple(out)

    def convert_dict(
        self,
        node: yaml.Node,
        key_tp: type,
        value_tp: Any,
        path: str,
        fmeta: Mapping[str, Any],
    ) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self.expect(node, path, "a mapping", fmeta)
        # A pattern checks the names of a dict[str, X], the values of any other dict.
        key_meta = {k: fmeta.get(k) for k in ("pattern", "pattern_help")} if key_tp is str else {}
        value_meta = {k: v for k, v in fmeta.items() if k not in key_meta}
        out: dict[Any, Any] = {}
        bad = False
        for key, (key_node, value_node) in self.entries(node, path, key_tp).items():
            sub = join_path(path, str(key))
            self.key_marks.setdefault(sub, self.pos(key_node))
            if key_meta.get("pattern") and self.check_text(key_node, key, sub, key_meta) is INVALID:
                bad = True
                continue
            out[key] = self.convert(value_node, value_tp, sub, value_meta)
            bad = bad or is_bad(out[key])
        return INVALID if bad else out

    def convert_tagged(self, node: yaml.Node, members: list[type], path: str) -> Any:
        by_tag = {tag: m for m in members if (tag := tag_of(m)) is not None}
        listed = ", ".join(str(t) for t in by_tag)
        if not isinstance(node, yaml.MappingNode):
            return self.expect(node, path, "a mapping", {})
        entries = self.entries(node, path)
        if "type" not in entries:
            self.problem(node, path, f"missing required key 'type' (one of {listed})")
            return INVALID
        type_node = entries["type"][1]
        type_path = join_path(path, "type")
        self.marks.setdefault(type_path, self.pos(type_node))
        ok, value = (False, None)
        if isinstance(type_node, yaml.ScalarNode):
            ok, value = self.scalar(type_node)
        if not ok or not isinstance(value, str):
            return self.expect(type_node, type_path, f"one of {listed}", {})
        if value not in by_tag:
            hint = suggest(value, [str(t) for t in by_tag])
            self.problem(type_node, type_path, f"{show_value(value)} is not one of {listed}{hint}")
            return INVALID
        others = {t: m for t, m in by_tag.items() if t != value and t is not None}
        return self.convert_dataclass(node, by_tag[value], path, others)

    def convert_dataclass(
        self, node: yaml.Node, cls: type, path: str, others: Mapping[str, type] | None = None
    ) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self.expect(node, path, "a mapping", {})
        values = self.fields_of(node, cls, path, others)
        if any(is_bad(v) for v in values.values()):
            partial = PartialRecord(cls, values)
            self.run_checks(partial, node, path)
            return partial
        obj = cls(**values)
        self.run_checks(obj, node, path)
        return obj

    def fields_of(
        self,
        node: yaml.MappingNode,
        cls: type,
        path: str,
        others: Mapping[str, type] | None = None,
    ) -> dict[str, Any]:
        """Convert the keys of one mapping into ``cls``'s field values (``INVALID`` or a
        ``PartialTuple`` where something was wrong; missing optional keys are left out).
        Plain values are read before nested records, so that a record's ``inherit`` and
        ``type_from`` fields see the values of the records around them."""
        plan = reading_plan(cls)
        entries = self.entries(node, path)
        for key, (key_node, _) in entries.items():
            if key not in plan.keys:
                self.problem(key_node, join_path(path, key), self.unknown_key(key, cls, others))
        values: dict[str, Any] = {}
        self.records.append(values)
        try:
            for f, tp, key in plan.order:
                type_from = f.metadata.get("type_from")
                if type_from is not None:
                    tp = self.chosen_type(type_from, values)
                    if tp is None:  # the field it depends on is bad: already reported
                        values[f.name] = INVALID
                        continue
                if key in entries:
                    sub = join_path(path, key)
                    values[f.name] = self.convert(entries[key][1], tp, sub, f.metadata)
                elif type_from is not None:
                    values[f.name] = tp()
                elif f.metadata.get("inherit"):
                    inherited = self.inherited(f.name)
                    if inherited is not _ABSENT:
                        values[f.name] = inherited
        finally:
            self.records.pop()
        for f, key in plan.required:
            if key not in entries and f.name not in values:
                self.problem(node, path, f"missing required key {key!r}")
                values[f.name] = INVALID
        return values

    @staticmethod
    def chosen_type(type_from: tuple[str, Mapping[Any, type]], values: dict[str, Any]) -> Any:
        sibling, choices = type_from
        value = values.get(sibling, INVALID)
        return None if is_bad(value) else choices.get(value)

    def inherited(self, name: str) -> Any:
        """The value of field ``name`` in the nearest enclosing record that has it."""
        for record in reversed(self.records[:-1]):
            if name in record:
                return record[name]
        return _ABSENT

    @staticmethod
    def unknown_key(key: str, cls: type, others: Mapping[str, type] | None) -> str:
        """'unknown key (did you mean ...)', or, in a tagged union, which type has that key."""
        owners = [
            t
            for t, m in (others or {}).items()
            if key in {yaml_key(f) for f, _ in config_fields(m)}
        ]
        if owners:
            listed = " or ".join(map(repr, owners))
            return f"not a key of type {tag_of(cls)!r} (only type {listed} has it)"
        return "unknown key" + suggest(key, [yaml_key(f) for f, _ in config_fields(cls)])

    # -- checks ------------------------------------------------------------------------------

    def run_checks(self, obj: Any, node: yaml.Node, path: str) -> None:
        """A record's own ``config_checks()``."""
        cls = obj._cls if isinstance(obj, PartialRecord) else type(obj)
        checks = getattr(cls, "config_checks", None)
        if checks is not None:
            self.check(checks, obj, node, path)

    def check(self, checks: Callable[[Any], Checks], obj: Any, node: yaml.Node, path: str) -> None:
        """Record the problems ``checks(obj)`` yields, at paths under ``path``. On a partly
        invalid record (a ``PartialRecord``) a check stops where it touches a bad value
        (its problem is already reported); on a whole one a failing check is a bug and
        raises."""
        partial = isinstance(obj, PartialRecord)
        cls = obj._cls if partial else type(obj)
        try:
            for field_name, message in checks(obj):
                sub = _join(path, field_name, cls) if field_name else path
                at_key = isinstance(field_name, KeyPath)
                self.problem_at(sub, message, fallback=node, at_key=at_key)
        except (Unknown, AttributeError, TypeError, KeyError):
            if not partial:
                raise


def _join(path: str, field_path: str, cls: type) -> str:
    """``path`` + a check's field path (``points[1].fault.point``, ``[2]``), its first field
    name spelt as the YAML key."""
    head = re.match(r"[^.\[]*", field_path).group(0)  # type: ignore[union-attr]
    for f in dataclasses.fields(cls):
        if f.name == head and f.metadata.get("key"):
            field_path = f.metadata["key"] + field_path[len(head) :]
    if not path or field_path.startswith("["):
        return path + field_path
    return f"{path}.{field_path}"


def _is_number_or_date(node: yaml.ScalarNode) -> bool:
    return node.tag in (_TAG + "int", _TAG + "float", _TAG + "timestamp")


def _is_of(value: Any, tp: Any) -> bool:
    if tp is bool or isinstance(value, bool):
        return tp is bool and isinstance(value, bool)
    if tp is int:
        return isinstance(value, int)
    if tp is float:
        return isinstance(value, int | float)
    return isinstance(value, str)


def _same_literal(choice: Any, value: Any) -> bool:
    """YAML value equals a Literal choice without bool/int or text/number confusion."""
    if isinstance(choice, bool) or isinstance(value, bool):
        return isinstance(choice, bool) and isinstance(value, bool) and choice == value
    if isinstance(choice, str) or isinstance(value, str):
        return isinstance(choice, str) and isinstance(value, str) and choice == value
    return isinstance(value, int | float) and value == choice


def _literal_text(v: Any) -> str:
    return str(v) if not isinstance(v, bool) else str(v).lower()
