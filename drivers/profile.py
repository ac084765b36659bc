"""Device profiles as data: one YAML file per device model, read into frozen dataclasses.

A profile is a register table (``points``), an ``identification`` block a scan reads to tell
the model, optional ``unreadable`` address ranges the read planner never touches, and for noise
loggers a ``recording`` block naming the recording-protocol registers. Shipped profiles live
in ``drivers/profiles/*.yaml``; a user directory (config ``profiles_dir``) adds models and
overrides shipped ones by name. docs/profiles.md is the YAML reference.

The dataclasses below are the file format: ``yamlread`` reads a file into them by their field
types and ``meta()``; rules across fields are each class's ``config_checks()``.

Public API (stable; the bus runner, scan/probe and the simulators use it)::

    load_profile(path) -> Profile                       # raises ProfileError file:line:col: ...
    parse_profile(text, source) -> Profile              # same, from a string
    ProfileRegistry(user_dir=None): .get(name), .names(), .all(), .exists(name)
    Profile.point(name) -> Point; Profile.with_overrides({point: PointOverride | mapping})
    Point.register_count  (registers, or bits for coils / discrete inputs)
    IdentCheck.matches(decoded_value) -> bool
    FUNCTIONS, TYPES, KINDS, REGISTER_WIDTH

Every problem of a file is one line of a ``drivers.errors.ProfileError`` naming file, line,
column and field, e.g. ``lr10.yaml:14:11: points[3].type: 'f33' is not one of u16, i16, ...``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from drivers.errors import ProfileError
from sitemodel.site import DEVICE_KINDS, DeviceKind
from yamlread import INTERNAL, Problem, ReadError, is_bad, meta, read_file, read_text
from yamlread.convert import KeyPath

__all__ = [
    "FUNCTIONS",
    "KINDS",
    "REGISTER_WIDTH",
    "SHIPPED_DIR",
    "TYPES",
    "FaultRef",
    "IdentCheck",
    "Point",
    "PointOverride",
    "Profile",
    "ProfileRegistry",
    "RecordingBlock",
    "UnreadableRange",
    "load_profile",
    "parse_profile",
]

Function = Literal["coil", "discrete", "input", "holding"]
Order = Literal["big", "little"]
PointType = Literal[
    "u16", "i16", "bitfield", "u32", "i32", "f32", "bitfield32", "u64", "i64", "f64", "string",
    "bool",
]  # fmt: skip

FUNCTIONS: tuple[str, ...] = get_args(Function)
BIT_FUNCTIONS = frozenset({"coil", "discrete"})
KINDS: tuple[str, ...] = DEVICE_KINDS
TYPES: tuple[str, ...] = get_args(PointType)
# Registers per value; ``string`` takes ``count`` registers, ``bool`` is one coil / input bit.
REGISTER_WIDTH: dict[str, int] = {
    "u16": 1, "i16": 1, "bitfield": 1, "u32": 2, "i32": 2, "f32": 2, "bitfield32": 2,
    "u64": 4, "i64": 4, "f64": 4, "string": 0, "bool": 1,
}  # fmt: skip
BITFIELD_TYPES = frozenset({"bitfield", "bitfield32"})
NUMERIC_TYPES = frozenset({"u16", "i16", "u32", "i32", "f32", "u64", "i64", "f64"})
FLOAT_TYPES = frozenset({"f32", "f64"})
SHIPPED_DIR = Path(__file__).parent / "profiles"
MAX_ADDRESS = 65535
MAX_STRING_REGISTERS = 125  # one read request

_NAME = meta(
    "profile name (the config's profile: refers to it)",
    pattern=r"[a-z0-9][a-z0-9_.-]*",
    pattern_help="use lower-case letters, digits, '_', '.' or '-', starting with a letter or digit",
)
_POINT_PATTERN = r"[a-z][a-z0-9_]*"
_POINT_HELP = "use lower-case letters, digits or '_', starting with a letter"


def _point_name(help: str) -> dict[str, Any]:
    return meta(help, pattern=_POINT_PATTERN, pattern_help=_POINT_HELP)


def _address(help: str) -> dict[str, Any]:
    return meta(help, min=0, max=MAX_ADDRESS)


# Left out of a point or an identification register, the order is the profile's.
_WORD_ORDER = meta("word order of multi-register values (the profile's)", inherit=True)
_BYTE_ORDER = meta("byte order within a register (the profile's)", inherit=True)


@dataclass(frozen=True, slots=True)
class FaultRef:
    """``fault: {point, bits}``: these bits of a bitfield point of the profile set mark the
    point as a fault (a gas channel's sensor-fault flag); no ``bits`` = all its fault bits."""

    point: str = field(metadata=_point_name("the bitfield point"))
    bits: tuple[str, ...] = field(default=(), metadata=meta("its bit names (all fault bits)"))


@dataclass(frozen=True, slots=True)
class Point:
    """One value in a device's register map.

    ``count`` is the register count of a ``string``; decoded values are ``raw * scale +
    offset``. ``fault_bits`` / ``status_bits`` name the bits of a bitfield point (bit number
    -> name; left out of the hash). ``fault`` names a bitfield point of the same profile whose
    bits mark *this* point as a fault. ``role`` tells rules what the value means
    (``level_mm``, ``gas_lel``, ``pump_running``, ...).
    """

    name: str = field(metadata=_point_name("point name, unique in the profile"))
    function: Function = field(metadata=meta("Modbus table"))
    address: int = field(metadata=_address("0-based protocol address"))
    type: PointType = field(metadata=meta("value type"))
    count: int | None = field(
        default=None,
        metadata=meta("registers of a string (two characters each)", min=1, max=125),
    )
    word_order: Order = field(default="big", metadata=_WORD_ORDER)
    byte_order: Order = field(default="big", metadata=_BYTE_ORDER)
    scale: float = field(default=1.0, metadata=meta("value = raw * scale + offset"))
    offset: float = field(default=0.0, metadata=meta("added after scaling"))
    unit: str = field(default="", metadata=meta("unit after scaling"))
    valid_range: tuple[float, float] | None = field(
        default=None, metadata=meta("valid [low, high]; outside is out of range", key="range")
    )
    fault_bits: dict[int, str] = field(
        default_factory=dict,
        hash=False,
        metadata=meta("bit number -> name of fault bits", pattern=_POINT_PATTERN),
    )
    status_bits: dict[int, str] = field(
        default_factory=dict,
        hash=False,
        metadata=meta("bit number -> name of status bits", pattern=_POINT_PATTERN),
    )
    fault: FaultRef | None = field(default=None, metadata=meta("fault flags of this point"))
    role: str | None = field(default=None, metadata=_point_name("what rules do with it"))
    writable: bool = field(default=False, metadata=meta("coils and holding registers only"))
    enabled: bool = field(default=True, metadata=INTERNAL)  # a config override turns it off
    description: str = field(default="", metadata=meta("shown by probe"))
    deadband: float | None = field(
        default=None, metadata=meta("telemetry: the smallest change worth sending", min=0)
    )
    resolution: float | None = field(
        default=None,
        metadata=meta(
            "the smallest step the value resolves: values are rounded to it (null: an integer "
            "type's scale; 7 significant digits of an f32)",
            min=0,
            exclusive_min=True,
        ),
    )

    @property
    def step(self) -> float | None:
        """The resolution values are rounded to: ``resolution``, else an integer type's
        ``scale`` (None: a float without one, a bool, a bitfield or a string)."""
        if self.resolution is not None:
            return self.resolution
        if self.type in NUMERIC_TYPES and self.type not in FLOAT_TYPES:
            return abs(self.scale)
        return None

    @property
    def register_count(self) -> int:
        """Registers (or bits, for coils and discrete inputs) this point spans."""
        return (self.count or 0) if self.type == "string" else REGISTER_WIDTH[self.type]

    @property
    def end(self) -> int:
        """Last address (inclusive)."""
        return self.address + self.register_count - 1

    @property
    def is_bits(self) -> bool:
        return self.function in BIT_FUNCTIONS

    @property
    def fault_point(self) -> str | None:
        return self.fault.point if self.fault is not None else None

    @property
    def fault_on(self) -> tuple[str, ...]:
        """The bits of ``fault_point`` that mark this point as a fault."""
        return self.fault.bits if self.fault is not None else ()

    def fault_mask(self) -> int:
        """Bit mask of this bitfield point's fault bits."""
        return sum(1 << bit for bit in self.fault_bits)

    def bit_mask(self, names: Iterable[str]) -> int:
        """Bit mask of the named fault / status bits of this bitfield point."""
        wanted = set(names)
        bits = (*self.fault_bits.items(), *self.status_bits.items())
        return sum(1 << b for b, n in bits if n in wanted)

    def config_checks(self) -> Iterator[tuple[str, str]]:
        kind, function = self.type, self.function
        if function in BIT_FUNCTIONS and kind != "bool":
            yield "type", f"a {function} point is type bool, not {kind!r}"
        elif function not in BIT_FUNCTIONS and kind == "bool":
            yield "type", f"bool is for coil / discrete points; a {function} register uses bitfield"
        if kind == "string" and self.count is None:
            yield "", "a string point needs count (registers, two characters each)"
        elif kind != "string" and self.count is not None:
            yield "count", "count is only for string points"
        elif self.end > MAX_ADDRESS:
            yield "address", f"{kind} at {self.address} runs past {MAX_ADDRESS}"
        if kind not in NUMERIC_TYPES:
            changed = {
                "scale": self.scale != 1.0,
                "offset": self.offset != 0.0,
                "range": self.valid_range is not None,
                "unit": self.unit != "",
                "deadband": self.deadband is not None,
                "resolution": self.resolution is not None,
            }
            for key in (k for k, given in changed.items() if given):
                yield key, f"{key} applies to numeric points, not {kind}"
        if self.scale == 0:
            yield "scale", "scale must not be 0"
        if self.valid_range is not None and not self.valid_range[0] < self.valid_range[1]:
            yield "range", f"low {self.valid_range[0]} is not below high {self.valid_range[1]}"
        yield from self._bit_checks()
        if self.writable and function in ("discrete", "input"):
            yield "writable", f"{function} points are read-only in Modbus"

    def _bit_checks(self) -> Iterator[tuple[str, str]]:
        width = 32 if self.type == "bitfield32" else 16
        for key in ("fault_bits", "status_bits"):
            bits: dict[int, str] = getattr(self, key)
            if bits and self.type not in BITFIELD_TYPES:
                yield key, f"bit names apply to bitfield points, not {self.type}"
                continue
            for bit in bits:
                if not 0 <= bit < width:
                    yield KeyPath(f"{key}.{bit}"), f"{bit} is not in 0..{width - 1}"
        names = [*self.fault_bits.values(), *self.status_bits.values()]
        if len(set(names)) != len(names):
            yield "", "bit names must be unique within a point"


@dataclass(frozen=True, slots=True)
class IdentCheck:
    """One identification register and the value this model answers with."""

    name: str = field(metadata=_point_name("register name"))
    function: Literal["input", "holding"] = field(metadata=meta("Modbus table"))
    address: int = field(metadata=_address("0-based protocol address"))
    type: Literal["u16", "u32", "string"] = field(metadata=meta("value type"))
    equals: int | str = field(metadata=meta("the value this model answers with"))
    count: int | None = field(
        default=None, metadata=meta("registers of a string", min=1, max=MAX_STRING_REGISTERS)
    )
    word_order: Order = field(default="big", metadata=_WORD_ORDER)
    byte_order: Order = field(default="big", metadata=_BYTE_ORDER)

    @property
    def point(self) -> Point:
        """The register as a point the codec decodes."""
        count = self.count if self.type == "string" else None
        return Point(
            name=self.name,
            function=self.function,
            address=self.address,
            type=self.type,
            count=count,
            word_order=self.word_order,
            byte_order=self.byte_order,
        )

    @property
    def expected(self) -> int | str:
        return self.equals

    def matches(self, value: object) -> bool:
        """Whether a decoded value is this model's (strings compare without padding)."""
        if isinstance(self.equals, str):
            return isinstance(value, str) and value.strip("\x00 ") == self.equals
        return value == self.equals

    def config_checks(self) -> Iterator[tuple[str, str]]:
        if self.type == "string":
            if self.count is None:
                yield "", "a string identification needs count"
            elif not isinstance(self.equals, str):
                yield "equals", f"expected text, got {self.equals!r}"
            elif len(self.equals) > 2 * self.count:
                yield "equals", f"{self.equals!r} does not fit in {self.count} registers"
            return
        top = 0xFFFF if self.type == "u16" else 0xFFFFFFFF
        if not isinstance(self.equals, int):
            yield "equals", f"expected an integer, got {self.equals!r}"
        elif not 0 <= self.equals <= top:
            yield "equals", f"{self.equals} is not in 0..{top}"


@dataclass(frozen=True, slots=True)
class RecordingBlock:
    """Holding-register addresses of the noise-logger recording protocol
    (docs/architecture.md); 32-bit values use ``word_order``."""

    control: int = field(metadata=_address("write 1 start, 0 abort"))
    duration_s: int = field(metadata=_address("seconds to record"))
    sample_rate: int = field(metadata=_address("Hz"))
    status: int = field(metadata=_address("0 idle, 1 recording, 2 ready, 3 error"))
    sample_count: int = field(metadata=_address("u32 samples in the recording"))
    scale: int = field(metadata=_address("f32 physical units per count"))
    crc32: int = field(metadata=_address("u32 CRC-32 of the samples"))
    block_index: int = field(metadata=_address("write N to map block N into the window"))
    block: int = field(metadata=_address("the window of block_size samples"))
    block_size: int = field(metadata=meta("samples per block", min=1, max=MAX_STRING_REGISTERS))
    word_order: Order = field(default="big", metadata=meta("of the 32-bit registers"))
    default_duration_s: int = field(default=8, metadata=meta("seconds", min=1, max=3600))
    max_duration_s: int = field(default=60, metadata=meta("seconds", min=1, max=3600))

    def config_checks(self) -> Iterator[tuple[str, str]]:
        if self.default_duration_s > self.max_duration_s:
            yield "default_duration_s", f"above max_duration_s {self.max_duration_s}"


@dataclass(frozen=True, slots=True)
class UnreadableRange:
    """Addresses the device refuses: a read spanning one fails as a whole."""

    function: Function = field(metadata=meta("Modbus table"))
    start: int = field(metadata=_address("first address"))
    end: int = field(metadata=_address("last address (inclusive)"))

    def covers(self, function: str, start: int, end: int) -> bool:
        return self.function == function and self.start <= end and start <= self.end

    def config_checks(self) -> Iterator[tuple[str, str]]:
        if self.end < self.start:
            yield "end", f"{self.end} is below start {self.start}"


@dataclass(frozen=True, slots=True)
class PointOverride:
    """Site-specific changes to one profile point; ``null`` keeps the profile's value."""

    scale: float | None = field(default=None, metadata=meta("multiply the raw value"))
    offset: float | None = field(default=None, metadata=meta("then add this"))
    range: tuple[float, float] | None = field(
        default=None, metadata=meta("valid [low, high]; outside is bad quality")
    )
    unit: str | None = field(default=None, metadata=meta("unit after scaling"))
    deadband: float | None = field(
        default=None, metadata=meta("telemetry deadband in the point's unit", min=0)
    )
    resolution: float | None = field(
        default=None,
        metadata=meta("round values to this step, in the point's unit", min=0, exclusive_min=True),
    )
    enabled: bool | None = field(
        default=None, metadata=meta("poll this point (null: as the profile says)")
    )

    def config_checks(self) -> Iterator[tuple[str, str]]:
        if self.scale == 0:
            yield "scale", "must not be 0"
        if self.range is not None and not self.range[0] < self.range[1]:
            yield "range", f"low {self.range[0]:g} must be below high {self.range[1]:g}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """A device model: its register map, identification and (loggers) recording block."""

    name: str = field(metadata=_NAME)
    vendor: str = field(metadata=meta("manufacturer"))
    model: str = field(metadata=meta("model name"))
    kind: DeviceKind = field(metadata=meta("what kind of device"))
    description: str = field(default="", metadata=meta("one paragraph"))
    word_order: Order = field(default="big", metadata=meta("of every point that does not say"))
    byte_order: Order = field(default="big", metadata=meta("of every point that does not say"))
    identification: tuple[IdentCheck, ...] = field(
        default=(), metadata=meta("what a scan reads to tell the model")
    )
    unreadable: tuple[UnreadableRange, ...] = field(
        default=(), metadata=meta("ranges the device refuses")
    )
    points: tuple[Point, ...] = field(metadata=meta("the register table"))
    recording: RecordingBlock | None = field(
        default=None, metadata=meta("noise loggers: the recording protocol's registers")
    )
    source: str = field(default="<memory>", metadata=INTERNAL)
    _by_name: dict[str, Point] = field(
        default_factory=dict, compare=False, repr=False, metadata=INTERNAL
    )

    def __post_init__(self) -> None:
        points = tuple(self._with_fault_bits(p) for p in self.points)
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "_by_name", {p.name: p for p in points})

    def _with_fault_bits(self, point: Point) -> Point:
        """``fault: {point: status}`` without bits means every fault bit of ``status``."""
        if point.fault is None or point.fault.bits:
            return point
        target = next((p for p in self.points if p.name == point.fault.point), None)
        if target is None or not target.fault_bits:
            return point
        bits = tuple(name for _, name in sorted(target.fault_bits.items()))
        return replace(point, fault=replace(point.fault, bits=bits))

    def point(self, name: str) -> Point:
        """The point called ``name``; raises ``ProfileError`` naming the known points."""
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name)
            raise ProfileError(
                f"profile {self.name!r} has no point {name!r} (points: {known})"
            ) from None

    def has_point(self, name: str) -> bool:
        return name in self._by_name

    def points_with_role(self, role: str) -> tuple[Point, ...]:
        return tuple(p for p in self.points if p.role == role)

    @property
    def enabled_points(self) -> tuple[Point, ...]:
        return tuple(p for p in self.points if p.enabled)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Profile:
        """A copy with per-point overrides from the gateway config applied.

        ``overrides`` maps a point name to a ``PointOverride``, any object with the same
        attributes, or a mapping with those keys (``range`` may also be ``valid_range``).
        Raises ``ProfileError`` for an unknown point or a bad value.
        """
        changed = dict(self._by_name)
        for name, override in overrides.items():
            point = self.point(name)
            values = _override_values(override)
            updates: dict[str, Any] = {}
            for key in ("scale", "offset", "unit", "enabled", "deadband", "resolution"):
                if values.get(key) is not None:
                    updates[key] = values[key]
            rng = values.get("range", values.get("valid_range"))
            if rng is not None:
                lo, hi = (float(v) for v in rng)
                if not lo < hi:
                    raise ProfileError(f"override {name}.range: {lo} is not below {hi}")
                updates["valid_range"] = (lo, hi)
            if updates.get("scale") == 0:
                raise ProfileError(f"override {name}.scale: must not be 0")
            if updates.get("deadband", 0) < 0:
                raise ProfileError(f"override {name}.deadband: must not be negative")
            if updates.get("resolution", 1) <= 0:
                raise ProfileError(f"override {name}.resolution: must be above 0")
            if updates and point.type in ("string", "bool", *BITFIELD_TYPES):
                numeric = {"scale", "offset", "valid_range", "resolution"} & updates.keys()
                if numeric:
                    raise ProfileError(
                        f"override {name}: {', '.join(sorted(numeric))} do not apply to a "
                        f"{point.type} point"
                    )
            changed[name] = replace(point, **updates)
        return replace(self, points=tuple(changed[p.name] for p in self.points))

    def config_checks(self) -> Iterator[tuple[str, str]]:
        if not self.points:
            yield "points", "a profile needs at least one point"
        points = [(i, p) for i, p in enumerate(self.points) if not is_bad(p)]
        first: dict[str, int] = {}
        for i, p in points:
            if p.name in first:
                yield f"points[{i}]", f"duplicate point name {p.name!r}"
            first.setdefault(p.name, i)
        if len(points) == len(self.points):  # a reference is only unknown if all could be read
            yield from _fault_checks(points)
        ordered = sorted(points, key=lambda ip: (ip[1].function, ip[1].address))
        for (_, a), (j, b) in itertools.pairwise(ordered):
            if a.function == b.function and b.address <= a.end:
                where = f"({a.function} {a.address}..{a.end})"
                yield f"points[{j}]", f"point {b.name!r} overlaps {a.name!r} {where}"
        ranges = [r for r in self.unreadable if not is_bad(r)]
        for r in ranges:
            span = f"{r.function} {r.start}..{r.end}"
            for i, p in points:
                if r.covers(p.function, p.address, p.end):
                    yield f"points[{i}]", f"point {p.name!r} lies in the unreadable range {span}"
            for j, check in enumerate(self.identification):
                if not is_bad(check) and r.covers(check.function, check.address, check.address):
                    yield (
                        f"identification[{j}]",
                        f"identification register lies in unreadable {span}",
                    )
        if self.recording is not None and self.kind != "noise_logger":
            yield "recording", "only a noise_logger profile has a recording block"


def _fault_checks(points: list[tuple[int, Point]]) -> Iterator[tuple[str, str]]:
    by_name = {p.name: p for _, p in points}
    for i, p in points:
        if p.fault is None:
            continue
        target = by_name.get(p.fault.point)
        if target is None or target.type not in BITFIELD_TYPES:
            yield (
                f"points[{i}].fault.point",
                f"{p.fault.point!r} is not a bitfield point of this profile",
            )
            continue
        known = {*target.fault_bits.values(), *target.status_bits.values()}
        for name in p.fault.bits:
            if name not in known:
                listed = ", ".join(sorted(known))
                yield (
                    f"points[{i}].fault.bits",
                    f"{target.name!r} has no bit {name!r} (bits: {listed})",
                )


def _override_values(override: Any) -> dict[str, Any]:
    if isinstance(override, Mapping):
        unknown = set(override) - {*_OVERRIDE_KEYS, "valid_range"}
        if unknown:
            raise ProfileError(f"override: unknown key(s) {', '.join(sorted(unknown))}")
        return dict(override)
    return {key: getattr(override, key, None) for key in (*_OVERRIDE_KEYS, "valid_range")}


_OVERRIDE_KEYS = ("scale", "offset", "range", "unit", "enabled", "deadband", "resolution")


# --------------------------------------------------------------------------- loading


def load_profile(path: str | Path) -> Profile:
    """Load and validate one profile file. Raises ``ProfileError`` (unreadable file, bad
    YAML, bad fields: one line each with file:line:col and the field path)."""
    profile = read_file(path, Profile, what="profile", error=ProfileError, empty=_EMPTY)
    return replace(profile, source=str(path))


def parse_profile(text: str, source: str = "<profile>") -> Profile:
    """Parse and validate profile YAML text; ``source`` names it in errors. Raises
    ``ProfileError`` (bad YAML, bad fields) with file:line:col and the field path."""
    profile = read_text(text, Profile, file=source, error=ProfileError, empty=_EMPTY)
    return replace(profile, source=source)


_EMPTY = "empty profile file"


# --------------------------------------------------------------------------- registry


class ProfileRegistry:
    """Shipped profiles plus a user directory; a user profile overrides a shipped one of the
    same name. Files are loaded eagerly so a bad one fails at startup, naming file and line.

    Raises ``ProfileError`` from the constructor listing every problem of every bad file, two
    files of the same name in one directory, or a ``user_dir`` that is not a directory.
    """

    def __init__(self, user_dir: str | Path | None = None, *, shipped_dir: Path = SHIPPED_DIR):
        self._profiles: dict[str, Profile] = {}
        self._profiles.update(self._load_dir(shipped_dir))
        if user_dir is not None:
            user_dir = Path(user_dir)
            if not user_dir.is_dir():
                raise ProfileError(f"{user_dir}: profiles directory does not exist")
            self._profiles.update(self._load_dir(user_dir))

    @staticmethod
    def _load_dir(directory: Path) -> dict[str, Profile]:
        found: dict[str, Profile] = {}
        problems: list[Problem] = []
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            try:
                profile = load_profile(path)
            except ReadError as exc:
                problems += exc.problems or [Problem(str(path), None, None, "", str(exc))]
                continue
            if profile.name in found:
                message = (
                    f"profile name {profile.name!r} is also used by {found[profile.name].source}"
                )
                problems.append(Problem(str(path), None, None, "", message))
                continue
            found[profile.name] = profile
        if problems:
            raise ProfileError(problems)
        return found

    def get(self, name: str) -> Profile:
        """The profile called ``name``; raises ``ProfileError`` listing the known ones."""
        try:
            return self._profiles[name]
        except KeyError:
            raise ProfileError(
                f"unknown profile {name!r} (known: {', '.join(self.names())})"
            ) from None

    def exists(self, name: str) -> bool:
        return name in self._profiles

    def names(self) -> list[str]:
        return sorted(self._profiles)

    def all(self) -> list[Profile]:
        return [self._profiles[n] for n in self.names()]
