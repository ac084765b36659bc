"""YAML -> frozen config dataclasses, with every problem reported as ``file:line:col: path: what``.

The YAML is composed (not constructed) with PyYAML's safe loader so every value keeps its
position; a type-directed converter then walks the nodes against the dataclass field types
(see ``edge_agent.config.fields`` for the allowed types and ``meta()``), collecting *all*
problems in one pass: wrong types, unknown keys (with a did-you-mean), missing keys, duplicate
keys, bounds, patterns, the sections' own ``config_checks()``, then cross checks over the whole
file (unique names, device -> bus, unit ids, profiles, uplink URL and TLS, files that must
exist). ``load_config`` either returns a ``GatewayConfig`` or raises ``ConfigError`` holding
every ``Problem``.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import re
import types
import typing
import urllib.parse
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from drivers.errors import ProfileError
from edge_agent.config.model import CONFIG_VERSION, GatewayConfig
from edge_agent.config.secrets import Secret, SecretError, resolve_secret
from edge_agent.errors import UsageError

__all__ = [
    "ConfigError",
    "Problem",
    "config_fields",
    "load_config",
    "parse_config",
    "resolve_uplink_password",
]

# Given the resolved profiles_dir (or None), the known device profiles by name.
ProfileSource = Callable[[str | None], Mapping[str, Any]]

# A config is a few hundred nodes; aliases can multiply a small file into millions of visits.
MAX_NODE_VISITS = 200_000
# Values echoed in messages are cut to this many characters.
MAX_SHOWN_CHARS = 40

_TAG = "tag:yaml.org,2002:"
_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_SECRETISH_RE = re.compile(r"pass|secret|token|credential", re.IGNORECASE)
_WORDS_RE = re.compile(r"[\w-]+(\|[\w-]+)+")  # a pattern that is a list of choices


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config file. ``line``/``col`` are 1-based (``None`` when the
    problem is the file as a whole, e.g. unreadable); ``path`` is the YAML path
    (``devices[2].unit_id``, indexes from 0), ``""`` for the document itself."""

    file: str
    line: int | None
    col: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.col}"
        line = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        # One problem, one line: whatever a value or file name holds, never a raw line break
        # or control character on the terminal.
        return line if line.isprintable() else "".join(_escape_char(ch) for ch in line)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ConfigError(UsageError):
    """The config file is unusable; ``problems`` lists every problem, ``str()`` gives one
    line per problem."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class _TooBig(Exception):
    """Internal: the alias-expanded document exceeds ``MAX_NODE_VISITS``."""


class _Unknown(Exception):
    """Internal: a section check touched a value that failed conversion."""


class _InvalidType:
    """Marker for a value that failed conversion (its problem is already recorded). Using it
    in a comparison, a test or a format raises ``_Unknown``, so a section's ``config_checks``
    run on a partly invalid section skips the checks that depend on the bad value."""

    def __repr__(self) -> str:
        return "<invalid>"

    def _unknown(self, *args: object) -> Any:
        raise _Unknown

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _unknown  # type: ignore[assignment]
    __bool__ = __format__ = __hash__ = __iter__ = __len__ = __getitem__ = _unknown  # type: ignore[assignment]
    __contains__ = __float__ = __int__ = __index__ = __neg__ = __abs__ = _unknown  # type: ignore[assignment]
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _unknown  # type: ignore[assignment]
    __truediv__ = __rtruediv__ = __mod__ = __pow__ = _unknown  # type: ignore[assignment]


_INVALID: Any = _InvalidType()


# --------------------------------------------------------------------------------------------
# Dataclass introspection shared with the schema and docs generators


_HINTS: dict[type, dict[str, Any]] = {}


def config_fields(cls: type) -> list[tuple[dataclasses.Field[Any], Any]]:
    """The YAML-visible fields of a config dataclass with their resolved types, in the order
    docs and the schema show them (``name`` and ``type`` first)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    out = [(f, hints[f.name]) for f in dataclasses.fields(cls) if not f.metadata.get("internal")]
    first = {"name": 0, "type": 1}
    return sorted(out, key=lambda ft: first.get(ft[0].name, 2))


def _is_required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        return typing.get_args(tp)
    return None


def _tag_of(cls: type) -> str | None:
    """The ``type:`` value of one member of a tagged union of dataclasses."""
    for f, tp in config_fields(cls):
        if f.name == "type" and typing.get_origin(tp) is Literal:
            return typing.get_args(tp)[0]
    return None


# --------------------------------------------------------------------------------------------
# Small formatting helpers


def _join(path: str, key: str) -> str:
    part = key if _PLAIN_KEY_RE.fullmatch(key) else repr(key)
    if not _PLAIN_KEY_RE.fullmatch(key):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _shown(text: str) -> str:
    if len(text) > MAX_SHOWN_CHARS:
        text = text[: MAX_SHOWN_CHARS - 3] + "..."
    return repr(text)


def _escape_char(ch: str) -> str:
    return ch if ch.isprintable() else repr(ch)[1:-1]


def _printable(text: str) -> str:
    """``text`` as is when it prints on one line, else its escaped repr."""
    return text if text.isprintable() else repr(text)


def _suggest(word: str, choices: Iterable[str]) -> str:
    choices = sorted(set(choices))
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if 0 < len(choices) <= 12:
        return f" (expected one of: {', '.join(choices)})"
    return ""


def _same_literal(choice: Any, value: Any) -> bool:
    """YAML value equals a Literal choice without bool/int or text/number confusion."""
    if isinstance(choice, bool) or isinstance(value, bool):
        return isinstance(choice, bool) and isinstance(value, bool) and choice == value
    if isinstance(choice, str) or isinstance(value, str):
        return isinstance(choice, str) and isinstance(value, str) and choice == value
    return isinstance(value, int | float) and value == choice


def _literal_text(v: Any) -> str:
    return str(v) if not isinstance(v, bool) else str(v).lower()


# --------------------------------------------------------------------------------------------
# The converter


class _Converter:
    """Walks YAML nodes against dataclass types, recording problems and marks."""

    def __init__(self, file: str, base_dir: str) -> None:
        self.file = file
        self.base_dir = base_dir
        self.problems: list[Problem] = []
        self.marks: dict[str, tuple[int, int]] = {}
        self.constructor = yaml.constructor.SafeConstructor()
        self.visits = 0

    # -- problems ----------------------------------------------------------------------------

    def problem(self, node: yaml.Node | None, path: str, message: str) -> None:
        line, col = (None, None) if node is None else self.pos(node)
        self.problems.append(Problem(self.file, line, col, path, message))

    def problem_at(self, path: str, message: str, fallback: yaml.Node | None = None) -> None:
        """A problem at a path converted earlier (cross checks)."""
        mark = self.marks.get(path)
        if mark is None and fallback is not None:
            mark = self.pos(fallback)
        line, col = mark if mark else (1, 1)
        self.problems.append(Problem(self.file, line, col, path, message))

    @staticmethod
    def pos(node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    # -- node helpers ------------------------------------------------------------------------

    def visit(self) -> None:
        self.visits += 1
        if self.visits > MAX_NODE_VISITS:
            raise _TooBig

    @staticmethod
    def is_null(node: yaml.Node) -> bool:
        return isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null"

    def scalar(self, node: yaml.ScalarNode) -> tuple[bool, Any]:
        try:
            return True, self.constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            return False, reason

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
        shown = _shown(node.value) if tag == "str" else node.value
        return f"{kind} {shown}"

    def entries(self, node: yaml.MappingNode, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Key -> (key node, value node), with merge keys (``<<: *defaults``) applied and
        duplicate or non-text keys reported."""
        explicit: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
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
                    for k, kv in self.entries(src, path).items():
                        merged.setdefault(k, kv)
                continue
            if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag == _TAG + "str"):
                self.problem(key_node, path, f"keys must be text, got {self.describe(key_node)}")
                continue
            key = key_node.value
            if key in explicit:
                first = explicit[key][0].start_mark.line + 1
                self.problem(key_node, _join(path, key), f"duplicate key (first at line {first})")
                continue
            explicit[key] = (key_node, value_node)
        return {**merged, **explicit}

    # -- conversion --------------------------------------------------------------------------

    def convert(self, node: yaml.Node, tp: Any, path: str, fmeta: Mapping[str, Any]) -> Any:
        self.visit()
        self.marks.setdefault(path, self.pos(node))
        args = _union_args(tp)
        if args is not None:
            members = [a for a in args if a is not type(None)]
            if self.is_null(node) and len(members) < len(args):
                return None
            if len(members) == 1:
                return self.convert(node, members[0], path, fmeta)
            return self.convert_tagged(node, members, path)
        if dataclasses.is_dataclass(tp):
            return self.convert_dataclass(node, tp, path)
        origin = typing.get_origin(tp)
        if origin is tuple:
            return self.convert_list(node, typing.get_args(tp), path, fmeta)
        if origin is dict:
            return self.convert_dict(node, typing.get_args(tp)[1], path, fmeta)
        if origin is Literal:
            return self.convert_literal(node, typing.get_args(tp), path, fmeta)
        return self.convert_scalar(node, tp, path, fmeta)

    def expect(self, node: yaml.Node, path: str, what: str, fmeta: Mapping[str, Any]) -> Any:
        got = self.describe(node, secret=bool(fmeta.get("secret")))
        hint = ""
        if what == "text" and isinstance(node, yaml.ScalarNode) and not self.is_null(node):
            hint = " (put it in quotes)"
        self.problem(node, path, f"expected {what}, got {got}{hint}")
        return _INVALID

    def convert_scalar(self, node: yaml.Node, tp: Any, path: str, fmeta: Mapping[str, Any]) -> Any:
        what = {str: "text", int: "an integer", float: "a number", bool: "true or false"}.get(tp)
        if what is None:  # a programming error in a config dataclass, not a user mistake
            raise TypeError(f"unsupported config field type {tp!r} at {path}")
        if not isinstance(node, yaml.ScalarNode):
            return self.expect(node, path, what, fmeta)
        ok, value = self.scalar(node)
        if not ok:
            self.problem(node, path, f"cannot read this value: {value}")
            return _INVALID
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
        if not math.isfinite(value):
            self.problem(node, path, f"{node.value} is not a finite number")
            return _INVALID
        return self.check_bounds(node, tp(value), path, fmeta)

    def check_text(self, node: yaml.Node, value: str, path: str, fmeta: Mapping[str, Any]) -> Any:
        pattern = fmeta.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            why = fmeta.get("pattern_help") or f"it must match {pattern}"
            shown = "this value" if fmeta.get("secret") else _shown(value)
            hint = ""
            if _WORDS_RE.fullmatch(pattern) and not fmeta.get("secret"):
                hint = _suggest(value, pattern.split("|"))
                hint = hint if "did you mean" in hint else ""
            self.problem(node, path, f"{shown} is not allowed: {why}{hint}")
            return _INVALID
        if fmeta.get("path"):
            if not value:
                self.problem(node, path, "an empty path is not allowed")
                return _INVALID
            return os.path.normpath(os.path.join(self.base_dir, value))
        return value

    def check_bounds(self, node: yaml.Node, value: float, path: str, fmeta: Mapping[str, Any]):
        lo, hi = fmeta.get("min"), fmeta.get("max")
        shown = node.value if isinstance(node, yaml.ScalarNode) else _num(value)
        if fmeta.get("exclusive_min") and lo is not None and not value > lo:
            self.problem(node, path, f"{shown} must be greater than {_num(lo)}")
            return _INVALID
        if lo is not None and hi is not None and not lo <= value <= hi:
            self.problem(node, path, f"{shown} is not in {_num(lo)}..{_num(hi)}")
            return _INVALID
        if lo is not None and value < lo:
            self.problem(node, path, f"{shown} is less than the minimum {_num(lo)}")
            return _INVALID
        if hi is not None and value > hi:
            self.problem(node, path, f"{shown} is more than the maximum {_num(hi)}")
            return _INVALID
        return value

    def convert_literal(self, node: yaml.Node, choices: tuple[Any, ...], path: str, fmeta):
        listed = ", ".join(_literal_text(c) for c in choices)
        what = f"one of {listed}" if len(choices) > 1 else _literal_text(choices[0])
        if not isinstance(node, yaml.ScalarNode):
            return self.expect(node, path, what, fmeta)
        ok, value = self.scalar(node)
        if ok and any(_same_literal(c, value) for c in choices):
            return value
        if ok and not isinstance(value, str | int | float):  # null, a date, binary
            return self.expect(node, path, what, fmeta)
        text = node.value if isinstance(node.value, str) else str(node.value)
        if path == "version":
            self.problem(
                node, path, f"{_shown(text)} is not supported (this edge-agent reads {what})"
            )
            return _INVALID
        suggestion = _suggest(text, [_literal_text(c) for c in choices])
        if "did you mean" not in suggestion:
            suggestion = ""
        self.problem(node, path, f"{_shown(text)} is not one of {listed}{suggestion}")
        return _INVALID

    def convert_list(self, node: yaml.Node, args: tuple[Any, ...], path: str, fmeta) -> Any:
        variadic = len(args) == 2 and args[1] is Ellipsis
        what = "a list" if variadic else f"a list of {len(args)}"
        if not isinstance(node, yaml.SequenceNode):
            return self.expect(node, path, what, fmeta)
        if not variadic and len(node.value) != len(args):
            self.problem(node, path, f"expected {what} values, got {len(node.value)}")
            return _INVALID
        out = []
        for i, item in enumerate(node.value):
            tp = args[0] if variadic else args[i]
            out.append(self.convert(item, tp, f"{path}[{i}]", fmeta))
        if any(_is_bad(v) for v in out):
            return _PartialTuple(out)
        return tuple(out)

    def convert_dict(self, node: yaml.Node, value_tp: Any, path: str, fmeta) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self.expect(node, path, "a mapping", fmeta)
        key_meta = {k: fmeta.get(k) for k in ("pattern", "pattern_help")}
        value_meta = {k: v for k, v in fmeta.items() if k not in ("pattern", "pattern_help")}
        out: dict[str, Any] = {}
        bad = False
        for key, (key_node, value_node) in self.entries(node, path).items():
            sub = _join(path, key)
            if key_meta["pattern"] and self.check_text(key_node, key, sub, key_meta) is _INVALID:
                bad = True
                continue
            out[key] = self.convert(value_node, value_tp, sub, value_meta)
            bad = bad or _is_bad(out[key])
        return _INVALID if bad else out

    def convert_tagged(self, node: yaml.Node, members: list[type], path: str) -> Any:
        by_tag = {_tag_of(m): m for m in members}
        listed = ", ".join(str(t) for t in by_tag)
        if not isinstance(node, yaml.MappingNode):
            return self.expect(node, path, "a mapping", {})
        entries = self.entries(node, path)
        if "type" not in entries:
            self.problem(node, path, f"missing required key 'type' (one of {listed})")
            return _INVALID
        type_node = entries["type"][1]
        type_path = _join(path, "type")
        self.marks.setdefault(type_path, self.pos(type_node))
        ok, value = (False, None)
        if isinstance(type_node, yaml.ScalarNode):
            ok, value = self.scalar(type_node)
        if not ok or not isinstance(value, str):
            return self.expect(type_node, type_path, f"one of {listed}", {})
        if value not in by_tag:
            hint = _suggest(value, by_tag)
            self.problem(type_node, type_path, f"{_shown(value)} is not one of {listed}{hint}")
            return _INVALID
        return self.convert_dataclass(node, by_tag[value], path)

    def convert_dataclass(self, node: yaml.Node, cls: type, path: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self.expect(node, path, "a mapping", {})
        values = self.fields_of(node, cls, path)
        if any(_is_bad(v) for v in values.values()):
            partial = _PartialRecord(cls, values)
            self.run_checks(partial, node, path)
            return partial
        obj = cls(**values)
        self.run_checks(obj, node, path)
        return obj

    def fields_of(self, node: yaml.MappingNode, cls: type, path: str) -> dict[str, Any]:
        """Convert the keys of one mapping into ``cls``'s field values (``_INVALID`` or a
        ``_PartialTuple`` where something was wrong; missing optional keys are left out)."""
        fields = config_fields(cls)
        known = {f.name: (f, tp) for f, tp in fields}
        entries = self.entries(node, path)
        values: dict[str, Any] = {}
        for key, (key_node, value_node) in entries.items():
            if key not in known:
                self.problem(key_node, _join(path, key), "unknown key" + _suggest(key, known))
                continue
            f, tp = known[key]
            values[key] = self.convert(value_node, tp, _join(path, key), f.metadata)
        for f, _ in fields:
            if f.name not in entries and _is_required(f):
                self.problem(node, path, f"missing required key {f.name!r}")
                values[f.name] = _INVALID
        return values

    def run_checks(self, obj: Any, node: yaml.Node, path: str) -> None:
        """A section's own ``config_checks()``. On a partly invalid section (a
        ``_PartialRecord``) the checks that touch a bad value are skipped, the others run."""
        partial = isinstance(obj, _PartialRecord)
        checks = getattr(obj._cls if partial else type(obj), "config_checks", None)
        if checks is None:
            return
        results = iter(checks(obj))
        while True:
            try:
                field_name, message = next(results)
            except StopIteration:
                return
            except (_Unknown, AttributeError, TypeError):
                # Only a partial section can meet a bad value here; a whole one re-raises
                # (a bug in a check must show, not hide).
                if not partial:
                    raise
                return
            sub = _join(path, field_name) if field_name else path
            self.problem_at(sub, message, fallback=node)


class _PartialTuple(list):
    """A list some of whose items are invalid: the cross checks still look at the good ones."""


class _PartialRecord:
    """A section with some invalid fields (already reported). The cross checks read its good
    fields through attributes; a bad or missing required one reads as ``_INVALID``."""

    def __init__(self, cls: type, values: dict[str, Any]) -> None:
        self._cls = cls
        self._values = values

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__["_values"]
        if name in values:
            return values[name]
        for f in dataclasses.fields(self.__dict__["_cls"]):
            if f.name == name:
                if f.default is not dataclasses.MISSING:
                    return f.default
                if f.default_factory is not dataclasses.MISSING:
                    return f.default_factory()
                return _INVALID
        raise AttributeError(name)


def _is_bad(value: Any) -> bool:
    """Invalid, or a list / section with something invalid inside."""
    return value is _INVALID or isinstance(value, _PartialTuple | _PartialRecord)


def _ok(value: Any) -> bool:
    """Something a cross check can read: not itself invalid (a section may be partial)."""
    return value is not _INVALID


# --------------------------------------------------------------------------------------------
# Cross checks over the whole file


def _good(items: Any) -> list[tuple[int, Any]]:
    if not isinstance(items, tuple | list):
        return []
    return [(i, v) for i, v in enumerate(items) if v is not _INVALID]


def _cross_checks(
    conv: _Converter,
    values: dict[str, Any],
    profile_exists: Callable[[str], bool] | None,
    profile_names: Collection[str] | None,
    profiles: ProfileSource | None,
) -> None:
    known_profiles: Mapping[str, Any] | None = None
    if profiles is not None and "profiles_dir" in values and values["profiles_dir"] is _INVALID:
        profiles = None  # its own problem is reported; do not guess another directory
    if profiles is not None:
        try:
            known_profiles = profiles(values.get("profiles_dir"))
        except (ProfileError, UsageError) as exc:
            conv.problem_at("profiles_dir", _printable((str(exc).splitlines() or [""])[0]))
        else:
            profile_names = list(known_profiles)
            profile_exists = known_profiles.__contains__
    buses = _good(values.get("buses", ()))
    devices = _good(values.get("devices", ()))

    seen_bus: dict[str, int] = {}
    serial_ports: dict[str, str] = {}
    for i, bus in buses:
        if not _ok(bus.name):
            continue
        if bus.name in seen_bus:
            conv.problem_at(
                f"buses[{i}].name",
                f"duplicate bus name {bus.name!r} (also buses[{seen_bus[bus.name]}])",
            )
        else:
            seen_bus[bus.name] = i
        if bus.type == "rtu" and _ok(bus.port):
            if bus.port in serial_ports:
                conv.problem_at(
                    f"buses[{i}].port",
                    f"{_shown(bus.port)} is already used by bus {serial_ports[bus.port]!r} "
                    "(a serial port belongs to one bus)",
                )
            else:
                serial_ports[bus.port] = bus.name

    # A device's bus is only "unknown" when every bus name could be read.
    bus_list = values.get("buses", ())
    all_bus_names = isinstance(bus_list, tuple | list) and all(
        _ok(b) and _ok(b.name) for b in bus_list
    )
    exists = profile_exists
    if exists is None and profile_names is not None:
        exists = profile_names.__contains__
    seen_dev: dict[str, int] = {}
    units: dict[tuple[str, int], int] = {}
    for i, dev in devices:
        if _ok(dev.name):
            if dev.name in seen_dev:
                conv.problem_at(
                    f"devices[{i}].name",
                    f"duplicate device name {dev.name!r} (also devices[{seen_dev[dev.name]}])",
                )
            else:
                seen_dev[dev.name] = i
        if _ok(dev.bus) and all_bus_names and dev.bus not in seen_bus:
            conv.problem_at(
                f"devices[{i}].bus", f"no bus named {_shown(dev.bus)}{_suggest(dev.bus, seen_bus)}"
            )
        if _ok(dev.bus) and _ok(dev.unit_id):
            key = (dev.bus, dev.unit_id)
            if key in units:
                j = units[key]
                conv.problem_at(
                    f"devices[{i}].unit_id",
                    f"unit {dev.unit_id} is already used on bus {dev.bus!r} by devices[{j}]",
                )
            else:
                units[key] = i
        if not _ok(dev.profile) or exists is None:
            continue
        if not exists(dev.profile):
            hint = _suggest(dev.profile, profile_names) if profile_names else ""
            if "did you mean" not in hint:
                hint = ""
            conv.problem_at(f"devices[{i}].profile", f"unknown profile {_shown(dev.profile)}{hint}")
        elif known_profiles is not None:
            _check_overrides(conv, i, dev, known_profiles[dev.profile])

    dev_list = values.get("devices", ())
    all_device_names = isinstance(dev_list, tuple | list) and all(
        _ok(d) and _ok(d.name) for d in dev_list
    )
    for i, dev in devices:
        if not (_ok(dev.rules) and all_device_names):
            continue
        for ref in ("rain_gauge", "wet_well"):
            target = getattr(dev.rules, ref, None)
            if _ok(target) and target is not None and target not in seen_dev:
                conv.problem_at(
                    f"devices[{i}].rules.{ref}",
                    f"no device named {_shown(target)}{_suggest(target, seen_dev)}",
                )

    for key, what in (("site_file", os.path.isfile), ("profiles_dir", os.path.isdir)):
        path = values.get(key)
        if isinstance(path, str) and not what(path):
            kind = "file" if key == "site_file" else "directory"
            conv.problem_at(key, f"no such {kind}: {_printable(path)}")

    uplink = values.get("uplink")
    if uplink is not None and _ok(uplink):
        _check_uplink(conv, uplink)


def _dict_at(section: Any, name: str) -> dict[str, Any]:
    """``section.name`` when both could be read, else ``{}`` (their problems are reported)."""
    if not _ok(section):
        return {}
    value = getattr(section, name, None)
    return value if isinstance(value, dict) else {}


def _check_overrides(conv: _Converter, i: int, dev: Any, profile: Any) -> None:
    """Point overrides and per-point rules must name points the profile has; overrides must
    fit the point's type."""
    points = getattr(profile, "points", None)
    names = [p.name for p in points] if points is not None else None
    rule_points = _dict_at(dev.rules, "points")
    if names is not None:
        for point_name in rule_points:
            if point_name not in names:
                conv.problem_at(
                    _join(f"devices[{i}].rules.points", point_name),
                    f"profile {dev.profile!r} has no point {_shown(point_name)}"
                    + _suggest(point_name, names),
                )
    for point_name, override in _dict_at(dev.overrides, "points").items():
        path = _join(f"devices[{i}].overrides.points", point_name)
        if names is not None and point_name not in names:
            conv.problem_at(
                path,
                f"profile {dev.profile!r} has no point {_shown(point_name)}"
                + _suggest(point_name, names),
            )
            continue
        with_overrides = getattr(profile, "with_overrides", None)
        if with_overrides is None:
            continue
        try:
            with_overrides({point_name: override})
        except ProfileError as exc:
            message = (str(exc).removeprefix("override ").splitlines() or ["invalid"])[0]
            conv.problem_at(path, _printable(message))


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_uplink(conv: _Converter, uplink: Any) -> None:
    tls = uplink.tls
    insecure = tls.insecure_plaintext if _ok(tls) else _INVALID
    if uplink.url is not None and _ok(uplink.url) and _ok(insecure):
        # Never echo the URL: someone may have written user:password@ into it.
        try:
            parts = urllib.parse.urlsplit(uplink.url)
            port = parts.port
        except ValueError:
            conv.problem_at("uplink.url", "is not a valid URL (mqtts://host:port)")
            return
        if parts.scheme not in ("mqtt", "mqtts"):
            conv.problem_at("uplink.url", "the scheme must be mqtts:// (TLS) or mqtt://")
        elif parts.username is not None or parts.password is not None:
            conv.problem_at(
                "uplink.url", "credentials do not belong in the URL: use username and password_env"
            )
        elif not parts.hostname:
            conv.problem_at("uplink.url", "names no host (mqtts://host:port)")
        elif parts.path not in ("", "/") or parts.query or parts.fragment:
            conv.problem_at("uplink.url", "must be just mqtts://host:port (no path or query)")
        elif port == 0:
            conv.problem_at("uplink.url", "port 0 is not a broker port")
        elif parts.scheme == "mqtt" and not _is_loopback(parts.hostname):
            if not insecure:
                conv.problem_at(
                    "uplink.url",
                    f"plaintext mqtt:// to {_printable(parts.hostname)} (not loopback): use "
                    "mqtts:// or set "
                    "uplink.tls.insecure_plaintext: true",
                )
        elif parts.scheme == "mqtts" and insecure:
            conv.problem_at(
                "uplink.tls.insecure_plaintext", "contradicts the mqtts:// url (TLS is on)"
            )
    for key in ("ca_file", "cert_file", "key_file"):
        path = getattr(tls, key) if _ok(tls) else None
        if isinstance(path, str) and not os.path.isfile(path):
            conv.problem_at(f"uplink.tls.{key}", f"no such file: {_printable(path)}")
    if isinstance(uplink.password_file, str) and not os.path.isfile(uplink.password_file):
        conv.problem_at("uplink.password_file", "no such file")


# --------------------------------------------------------------------------------------------
# Entry points


def _redact(message: str, text: str, line: int) -> str:
    """PyYAML quotes the offending token (``found undefined alias 'hunter2'``); on a line that
    looks like it holds a secret, the token must not reach a terminal or a log."""
    lines = text.splitlines()
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    if _SECRETISH_RE.search(source):
        return re.sub(r"'[^']*'", "'***'", message)
    return message


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def parse_config(
    text: str,
    *,
    file: str = "<config>",
    base_dir: str | None = None,
    profile_exists: Callable[[str], bool] | None = None,
    profile_names: Collection[str] | None = None,
    profiles: ProfileSource | None = None,
) -> GatewayConfig:
    """Parse config text. ``file`` names it in problems; relative paths resolve against
    ``base_dir`` (default: the current directory).

    Device profiles are checked by whichever is given: ``profiles`` (called with the resolved
    ``profiles_dir`` or ``None``; returns the known profiles by name, e.g.
    ``{p.name: p for p in ProfileRegistry(user_dir).all()}``; profile objects with ``points``
    and ``with_overrides()`` also get each device's point overrides checked; a
    ``ProfileError``/``UsageError`` it raises becomes a problem at ``profiles_dir``),
    ``profile_names`` (also feeds did-you-mean) or ``profile_exists``. None of them skips
    the check.

    Raises ``ConfigError`` listing every problem.
    """
    base = os.path.abspath(base_dir or os.getcwd())
    conv = _Converter(file, base)

    def fail(line: int, col: int, message: str) -> ConfigError:
        return ConfigError([Problem(file, line, col, "", message)])

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        raise fail(line, col, f"YAML syntax: {_redact(what, text, line)}") from None
    except yaml.reader.ReaderError as exc:
        line, col = _position(text, exc.position)
        ch = exc.character
        shown = f"#x{ch:04x}" if isinstance(ch, int) else f"#x{ord(ch):04x}"
        raise fail(
            line, col, f"YAML syntax: unacceptable character {shown}: {exc.reason}"
        ) from None
    except yaml.YAMLError as exc:
        raise fail(1, 1, f"YAML syntax: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise fail(1, 1, "YAML nesting is too deep") from None
    if root is None:
        raise fail(1, 1, "the file is empty (expected a mapping with version, gateway, buses)")
    if not isinstance(root, yaml.MappingNode):
        line, col = conv.pos(root)
        raise fail(line, col, f"expected a mapping at the top level, got {conv.describe(root)}")

    try:
        entries = conv.entries(root, "")
        if "version" not in entries:
            conv.problem(
                root, "", f"missing required key 'version' (this edge-agent reads {CONFIG_VERSION})"
            )
            raise ConfigError(conv.problems)
        version_node = entries["version"][1]
        before = len(conv.problems)
        conv.convert(version_node, Literal[1], "version", {})
        if len(conv.problems) > before:
            raise ConfigError(conv.problems)
        conv.problems.clear()  # entries() runs again below and reports duplicates once
        values = conv.fields_of(root, GatewayConfig, "")
        _cross_checks(conv, values, profile_exists, profile_names, profiles)
    except _TooBig:
        raise fail(
            1, 1, f"the document expands to more than {MAX_NODE_VISITS} values (aliases?)"
        ) from None
    if conv.problems:
        conv.problems.sort(key=lambda p: (p.line or 0, p.col or 0))
        raise ConfigError(conv.problems)
    return GatewayConfig(**values, source_path=file, marks=conv.marks)


def load_config(
    path: str | os.PathLike[str],
    *,
    profile_exists: Callable[[str], bool] | None = None,
    profile_names: Collection[str] | None = None,
    profiles: ProfileSource | None = None,
) -> GatewayConfig:
    """Read and validate a gateway config file; relative paths in it resolve against its
    directory. See ``parse_config`` for the profile check.

    Raises ``ConfigError`` (a ``UsageError``: exit 2) listing every problem, or one problem
    without line/col when the file cannot be read or is not UTF-8 text.
    """
    file = os.fspath(path)
    try:
        with open(file, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError(
            [Problem(file, None, None, "", f"cannot read: {exc.strerror or exc}")]
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _position(raw.decode("utf-8", "replace"), exc.start)
        raise ConfigError([Problem(file, line, col, "", "not UTF-8 text")]) from None
    return parse_config(
        text,
        file=file,
        base_dir=os.path.dirname(os.path.abspath(file)),
        profile_exists=profile_exists,
        profile_names=profile_names,
        profiles=profiles,
    )


def resolve_uplink_password(
    cfg: GatewayConfig, environ: Mapping[str, str] | None = None
) -> Secret | None:
    """The MQTT password from ``uplink.password_env`` / ``password_file`` (``None`` if neither).

    Raises ``ConfigError`` pointing at the config line when the variable is unset or the file
    cannot be read; the message never contains the secret.
    """
    up = cfg.uplink
    try:
        return resolve_secret(env=up.password_env, file=up.password_file, environ=environ)
    except SecretError as exc:
        key = "uplink.password_env" if up.password_env is not None else "uplink.password_file"
        line, col = cfg.marks.get(key, (None, None))
        message = str(exc).removeprefix("password: ")
        raise ConfigError([Problem(cfg.source_path, line, col, key, message)]) from None
