"""The YAML reader of device profiles: composed nodes in, ``drivers.profile`` dataclasses out.

Every value is read through ``_Node``, which knows its node's line and column and its field
path (``points[3].type``), so every problem becomes one ``ProfileError`` line
``file:line:col: field: problem``. Cross-field checks (overlapping points, fault references,
unreadable ranges, a recording block only on a noise logger) run as the profile is read.
docs/profiles.md is the format reference; use ``drivers.profile.load_profile`` /
``parse_profile``, not this module.
"""

from __future__ import annotations

import builtins
import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import yaml

from drivers.errors import ProfileError
from yamlread.scalar import scalar_value

from .profile import (
    BIT_FUNCTIONS,
    BITFIELD_TYPES,
    FUNCTIONS,
    KINDS,
    NUMERIC_TYPES,
    REGISTER_WIDTH,
    TYPES,
    IdentCheck,
    Point,
    Profile,
    RecordingBlock,
)

__all__ = ["parse"]

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_POINT_RE = re.compile(r"[a-z][a-z0-9_]*")
_MAX_ADDRESS = 65535


class _Node:
    """A YAML node with its path, for errors that name file:line:col and the field."""

    def __init__(self, node: yaml.Node, path: str, source: str):
        self.node = node
        self.path = path
        self.source = source

    def error(self, message: str) -> ProfileError:
        mark = self.node.start_mark
        where = f"{self.source}:{mark.line + 1}:{mark.column + 1}"
        return ProfileError(f"{where}: {self.path or 'profile'}: {message}")

    def _sub(self, path: str) -> str:
        return f"{self.path}.{path}" if self.path else path

    def mapping(self, required: Iterable[str], optional: Iterable[str]) -> dict[str, _Node]:
        if not isinstance(self.node, yaml.MappingNode):
            raise self.error("expected a mapping")
        allowed = [*required, *optional]
        out: dict[str, _Node] = {}
        for key_node, value_node in self.node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key not in allowed:
                raise _Node(key_node, self.path, self.source).error(
                    f"unknown key {key!r} (allowed: {', '.join(allowed)})"
                )
            if key in out:
                raise _Node(key_node, self.path, self.source).error(f"duplicate key {key!r}")
            out[key] = _Node(value_node, self._sub(key), self.source)
        missing = [k for k in required if k not in out]
        if missing:
            raise self.error(f"missing required key {missing[0]!r}")
        return out

    def child(self, key: str) -> _Node:
        """The value node of ``key`` in this (already validated) mapping."""
        for key_node, value_node in self.node.value:
            if key_node.value == key:
                return _Node(value_node, self._sub(key), self.source)
        raise KeyError(key)  # callers only ask for keys the mapping was checked to have

    def sequence(self) -> list[_Node]:
        if not isinstance(self.node, yaml.SequenceNode):
            raise self.error("expected a list")
        return [_Node(n, f"{self.path}[{i}]", self.source) for i, n in enumerate(self.node.value)]

    def scalar(self) -> Any:
        if not isinstance(self.node, yaml.ScalarNode):
            raise self.error("expected a single value")
        try:
            return scalar_value(self.node)
        except ValueError as exc:
            raise self.error(f"cannot read this value: {exc}") from exc

    def str(self, pattern: re.Pattern[str] | None = None) -> str:
        value = self.scalar()
        if not isinstance(value, str):
            raise self.error(f"expected text, got {value!r}")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.error(f"{value!r} does not match {pattern.pattern}")
        return value

    def choice(self, options: Iterable[builtins.str]) -> builtins.str:  # (str: the method above)
        value = self.scalar()
        options = tuple(options)
        if value not in options:
            raise self.error(f"{value!r} is not one of {', '.join(options)}")
        return value

    def int(self, lo: int = 0, hi: int = _MAX_ADDRESS) -> int:
        value = self.scalar()
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected an integer, got {value!r}")
        if not lo <= value <= hi:
            raise self.error(f"{value} is not in {lo}..{hi}")
        return value

    def float(self) -> float:
        value = self.scalar()
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"expected a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            number = math.inf
        if not math.isfinite(number):
            raise self.error(f"{self.node.value[:20]!r} is not a finite number")
        return number

    def bool(self) -> bool:
        value = self.scalar()
        if not isinstance(value, bool):
            raise self.error(f"expected true or false, got {value!r}")
        return value


_PROFILE_KEYS = ("name", "vendor", "model", "kind", "points")
_PROFILE_OPTIONAL = (
    "description",
    "word_order",
    "byte_order",
    "identification",
    "recording",
    "unreadable",
)
_POINT_KEYS = ("name", "function", "address", "type")
_POINT_OPTIONAL = (
    "count",
    "word_order",
    "byte_order",
    "scale",
    "offset",
    "unit",
    "range",
    "fault_bits",
    "status_bits",
    "fault",
    "role",
    "writable",
    "deadband",
    "description",
)
_RECORDING_KEYS = (
    "control",
    "duration_s",
    "sample_rate",
    "status",
    "sample_count",
    "scale",
    "crc32",
    "block_index",
    "block",
    "block_size",
)
_RECORDING_OPTIONAL = ("word_order", "default_duration_s", "max_duration_s")


def parse(text: str, source: str) -> Profile:
    """Parse and validate profile YAML text; ``source`` names it in errors. Raises
    ``ProfileError`` (bad YAML, bad field) with file:line:col and the field path."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProfileError(f"{where}: invalid YAML: {problem}") from exc
    if root is None:
        raise ProfileError(f"{source}: empty profile file")
    top = _Node(root, "", source).mapping(_PROFILE_KEYS, _PROFILE_OPTIONAL)
    word_order = top["word_order"].choice(("big", "little")) if "word_order" in top else "big"
    byte_order = top["byte_order"].choice(("big", "little")) if "byte_order" in top else "big"

    points: list[Point] = []
    point_nodes: dict[str, _Node] = {}
    for node in top["points"].sequence():
        point = _parse_point(node, word_order, byte_order)
        if point.name in point_nodes:
            raise node.error(f"duplicate point name {point.name!r}")
        points.append(point)
        point_nodes[point.name] = node
    if not points:
        raise top["points"].error("a profile needs at least one point")
    _check_faults(points, point_nodes)
    _check_overlaps(points, point_nodes)

    unreadable: list[tuple[str, int, int]] = []
    if "unreadable" in top:
        for node in top["unreadable"].sequence():
            fields = node.mapping(("function", "start", "end"), ())
            start = fields["start"].int()
            end = fields["end"].int()
            if end < start:
                raise fields["end"].error(f"{end} is below start {start}")
            unreadable.append((fields["function"].choice(FUNCTIONS), start, end))
    for point in points:
        for function, start, end in unreadable:
            if point.function == function and point.address <= end and start <= point.end:
                raise point_nodes[point.name].error(
                    f"point {point.name!r} lies in the unreadable range {function} {start}..{end}"
                )

    idents: list[IdentCheck] = []
    if "identification" in top:
        for node in top["identification"].sequence():
            idents.append(_parse_ident(node, word_order, byte_order))

    for check, node in zip(idents, top["identification"].sequence() if idents else (), strict=True):
        for function, start, end in unreadable:
            if (
                check.point.function == function
                and check.point.address <= end
                and start <= check.point.end
            ):
                raise node.error(
                    f"identification register lies in unreadable {function} {start}..{end}"
                )

    recording = None
    if "recording" in top:
        recording = _parse_recording(top["recording"])

    kind = top["kind"].choice(KINDS)
    if recording is not None and kind != "noise_logger":
        raise top["recording"].error("only a noise_logger profile has a recording block")
    return Profile(
        name=top["name"].str(_NAME_RE),
        model=top["model"].str(),
        vendor=top["vendor"].str(),
        kind=kind,
        description=top["description"].str() if "description" in top else "",
        points=tuple(points),
        identification=tuple(idents),
        recording=recording,
        unreadable=tuple(unreadable),
        source=source,
    )


def _parse_point(node: _Node, word_order: str, byte_order: str) -> Point:
    f = node.mapping(_POINT_KEYS, _POINT_OPTIONAL)
    function = f["function"].choice(FUNCTIONS)
    type_ = f["type"].choice(TYPES)
    if function in BIT_FUNCTIONS and type_ != "bool":
        raise f["type"].error(f"a {function} point is type bool, not {type_!r}")
    if function not in BIT_FUNCTIONS and type_ == "bool":
        raise f["type"].error(
            f"bool is for coil / discrete points; a {function} register uses bitfield"
        )
    count = 1
    if type_ == "string":
        if "count" not in f:
            raise node.error("a string point needs count (registers, two characters each)")
        count = f["count"].int(1, 125)
    elif "count" in f:
        raise f["count"].error("count is only for string points")
    address = f["address"].int()
    width = count if type_ == "string" else REGISTER_WIDTH[type_]
    if address + width - 1 > _MAX_ADDRESS:
        raise f["address"].error(f"{type_} at {address} runs past {_MAX_ADDRESS}")
    numeric = type_ in NUMERIC_TYPES
    for key in ("scale", "offset", "range", "unit"):
        if key in f and not numeric:
            raise f[key].error(f"{key} applies to numeric points, not {type_}")
    scale = f["scale"].float() if "scale" in f else 1.0
    if scale == 0:
        raise f["scale"].error("scale must not be 0")
    valid_range = None
    if "range" in f:
        items = f["range"].sequence()
        if len(items) != 2:
            raise f["range"].error("expected [low, high]")
        lo, hi = items[0].float(), items[1].float()
        if not lo < hi:
            raise f["range"].error(f"low {lo} is not below high {hi}")
        valid_range = (lo, hi)
    bits_width = 32 if type_ == "bitfield32" else 16
    fault_bits = _parse_bits(f.get("fault_bits"), type_, bits_width)
    status_bits = _parse_bits(f.get("status_bits"), type_, bits_width)
    names = [n for _, n in (*fault_bits, *status_bits)]
    if len(set(names)) != len(names):
        raise node.error("bit names must be unique within a point")
    fault_point, fault_on = None, tuple[str, ...]()
    if "fault" in f:
        ff = f["fault"].mapping(("point",), ("bits",))
        fault_point = ff["point"].str(_POINT_RE)
        if "bits" in ff:
            fault_on = tuple(n.str() for n in ff["bits"].sequence())
    deadband = None
    if "deadband" in f:
        if not numeric:
            raise f["deadband"].error(f"deadband applies to numeric points, not {type_}")
        deadband = f["deadband"].float()
        if deadband < 0:
            raise f["deadband"].error("must not be negative")
    writable = f["writable"].bool() if "writable" in f else False
    if writable and function in ("discrete", "input"):
        raise f["writable"].error(f"{function} points are read-only in Modbus")
    return Point(
        name=f["name"].str(_POINT_RE),
        function=function,  # type: ignore[arg-type]
        address=address,
        type=type_,
        count=count,
        word_order=f["word_order"].choice(("big", "little")) if "word_order" in f else word_order,  # type: ignore[arg-type]
        byte_order=f["byte_order"].choice(("big", "little")) if "byte_order" in f else byte_order,  # type: ignore[arg-type]
        scale=scale,
        offset=f["offset"].float() if "offset" in f else 0.0,
        unit=f["unit"].str() if "unit" in f else "",
        valid_range=valid_range,
        fault_bits=fault_bits,
        status_bits=status_bits,
        fault_point=fault_point,
        fault_on=fault_on,
        role=f["role"].str(_POINT_RE) if "role" in f else None,
        writable=writable,
        description=f["description"].str() if "description" in f else "",
        deadband=deadband,
    )


def _parse_bits(node: _Node | None, type_: str, width: int) -> tuple[tuple[int, str], ...]:
    if node is None:
        return ()
    if type_ not in BITFIELD_TYPES:
        raise node.error(f"bit names apply to bitfield points, not {type_}")
    if not isinstance(node.node, yaml.MappingNode):
        raise node.error("expected a mapping of bit number -> name")
    bits: list[tuple[int, str]] = []
    for key_node, value_node in node.node.value:
        key = _Node(key_node, node.path, node.source)
        bit = key.int(0, width - 1)
        name = _Node(value_node, f"{node.path}.{bit}", node.source).str(_POINT_RE)
        if any(b == bit for b, _ in bits):
            raise key.error(f"bit {bit} named twice")
        bits.append((bit, name))
    return tuple(sorted(bits))


def _check_faults(points: list[Point], nodes: dict[str, _Node]) -> None:
    """Check fault references; an empty ``fault.bits`` becomes all the target's fault bits."""
    by_name = {p.name: p for p in points}
    for i, point in enumerate(points):
        if point.fault_point is None:
            continue
        fault = nodes[point.name].child("fault")
        target = by_name.get(point.fault_point)
        if target is None or target.type not in BITFIELD_TYPES:
            raise fault.child("point").error(
                f"{point.fault_point!r} is not a bitfield point of this profile"
            )
        known = {n for _, n in (*target.fault_bits, *target.status_bits)}
        for name in point.fault_on:
            if name not in known:
                raise fault.child("bits").error(
                    f"{target.name!r} has no bit {name!r} (bits: {', '.join(sorted(known))})"
                )
        if not point.fault_on:
            points[i] = replace(point, fault_on=tuple(n for _, n in target.fault_bits))


def _check_overlaps(points: list[Point], nodes: dict[str, _Node]) -> None:
    ordered = sorted(points, key=lambda p: (p.function, p.address))
    for a, b in itertools.pairwise(ordered):
        if a.function == b.function and b.address <= a.end:
            raise nodes[b.name].error(
                f"point {b.name!r} overlaps {a.name!r} ({a.function} {a.address}..{a.end})"
            )


def _parse_ident(node: _Node, word_order: str, byte_order: str) -> IdentCheck:
    f = node.mapping(("name", "function", "address", "type", "equals"), ("count", "word_order"))
    function = f["function"].choice(("input", "holding"))
    type_ = f["type"].choice(("u16", "u32", "string"))
    count = 1
    if type_ == "string":
        if "count" not in f:
            raise node.error("a string identification needs count")
        count = f["count"].int(1, 125)
    point = Point(
        name=f["name"].str(_POINT_RE),
        function=function,  # type: ignore[arg-type]
        address=f["address"].int(),
        type=type_,
        count=count,
        word_order=f["word_order"].choice(("big", "little")) if "word_order" in f else word_order,  # type: ignore[arg-type]
        byte_order=byte_order,  # type: ignore[arg-type]
    )
    expected: int | str
    if type_ == "string":
        expected = f["equals"].str()
        if len(expected) > 2 * count:
            raise f["equals"].error(f"{expected!r} does not fit in {count} registers")
    else:
        expected = f["equals"].int(0, 0xFFFF if type_ == "u16" else 0xFFFFFFFF)
    return IdentCheck(point=point, expected=expected)


def _parse_recording(node: _Node) -> RecordingBlock:
    f = node.mapping(_RECORDING_KEYS, _RECORDING_OPTIONAL)
    values = {key: f[key].int() for key in _RECORDING_KEYS}
    if not 1 <= values["block_size"] <= 125:
        raise f["block_size"].error(f"{values['block_size']} is not in 1..125")
    default_duration = f["default_duration_s"].int(1, 3600) if "default_duration_s" in f else 8
    max_duration = f["max_duration_s"].int(1, 3600) if "max_duration_s" in f else 60
    if default_duration > max_duration:
        raise f["default_duration_s"].error(f"above max_duration_s {max_duration}")
    return RecordingBlock(
        **values,
        word_order=f["word_order"].choice(("big", "little")) if "word_order" in f else "big",  # type: ignore[arg-type]
        default_duration_s=default_duration,
        max_duration_s=max_duration,
    )
