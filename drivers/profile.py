"""Device profiles as data: one YAML file per device model, loaded into frozen dataclasses.

A profile is a register table (``points``), an ``identification`` block a scan reads to tell
the model, optional ``unreadable`` address ranges the read planner never touches, and for noise
loggers a ``recording`` block naming the recording-protocol registers. Shipped profiles live
in ``drivers/profiles/*.yaml``; a user directory (config ``profiles_dir``) adds models and
overrides shipped ones by name. docs/profiles.md is the YAML reference.

Public API (stable; the bus runner, scan/probe and the simulators use it)::

    load_profile(path) -> Profile                       # raises ProfileError file:line:col: ...
    parse_profile(text, source) -> Profile              # same, from a string
    ProfileRegistry(user_dir=None): .get(name), .names(), .all(), .exists(name)
    Profile.point(name) -> Point; Profile.with_overrides({point: PointOverride | mapping})
    Point.register_count  (registers, or bits for coils / discrete inputs)
    IdentCheck.matches(decoded_value) -> bool
    FUNCTIONS, TYPES, KINDS, REGISTER_WIDTH

Every problem is a ``drivers.errors.ProfileError`` whose message names file, line, column
and field, e.g. ``lr10.yaml:14:11: points[3].type: 'f33' is not one of u16, i16, ...``.
The YAML reader itself is ``drivers.profile_yaml``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from drivers.errors import ProfileError

__all__ = [
    "FUNCTIONS",
    "KINDS",
    "REGISTER_WIDTH",
    "SHIPPED_DIR",
    "TYPES",
    "IdentCheck",
    "Point",
    "PointOverride",
    "Profile",
    "ProfileRegistry",
    "RecordingBlock",
    "load_profile",
    "parse_profile",
]

Function = Literal["coil", "discrete", "input", "holding"]
Order = Literal["big", "little"]

FUNCTIONS: tuple[str, ...] = ("coil", "discrete", "input", "holding")
BIT_FUNCTIONS = frozenset({"coil", "discrete"})
KINDS: tuple[str, ...] = (
    "noise_logger",
    "level",
    "gas",
    "rain",
    "pressure",
    "pump_controller",
    "cover",
)
# Registers per value; ``string`` takes ``count`` registers, ``bool`` is one coil / input bit.
REGISTER_WIDTH: dict[str, int] = {
    "u16": 1,
    "i16": 1,
    "bitfield": 1,
    "u32": 2,
    "i32": 2,
    "f32": 2,
    "bitfield32": 2,
    "u64": 4,
    "i64": 4,
    "f64": 4,
    "string": 0,
    "bool": 1,
}
TYPES: tuple[str, ...] = tuple(REGISTER_WIDTH)
BITFIELD_TYPES = frozenset({"bitfield", "bitfield32"})
NUMERIC_TYPES = frozenset({"u16", "i16", "u32", "i32", "f32", "u64", "i64", "f64"})
SHIPPED_DIR = Path(__file__).parent / "profiles"


@dataclass(frozen=True, slots=True)
class Point:
    """One value in a device's register map.

    ``count`` is the register count of a ``string`` (1 otherwise); decoded values are
    ``raw * scale + offset``. ``fault_bits`` / ``status_bits`` name the bits of a bitfield
    point (bit number -> name). ``fault_point`` names a bitfield point of the same profile
    whose ``fault_on`` bits (the loader fills in all its fault bits when the YAML names none)
    mark *this* point as a fault (e.g. a gas channel's sensor-fault or over-range flag). ``role``
    tells rules what the value means (``level_mm``, ``gas_lel``, ``pump_running``, ...).
    """

    name: str
    function: Function
    address: int
    type: str
    count: int = 1
    word_order: Order = "big"
    byte_order: Order = "big"
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    valid_range: tuple[float, float] | None = None
    fault_bits: tuple[tuple[int, str], ...] = ()
    status_bits: tuple[tuple[int, str], ...] = ()
    fault_point: str | None = None
    fault_on: tuple[str, ...] = ()
    role: str | None = None
    writable: bool = False
    enabled: bool = True
    description: str = ""
    deadband: float | None = None  # telemetry: the smallest change worth sending

    @property
    def register_count(self) -> int:
        """Registers (or bits, for coils and discrete inputs) this point spans."""
        return self.count if self.type == "string" else REGISTER_WIDTH[self.type]

    @property
    def end(self) -> int:
        """Last address (inclusive)."""
        return self.address + self.register_count - 1

    @property
    def is_bits(self) -> bool:
        return self.function in BIT_FUNCTIONS

    def fault_mask(self) -> int:
        """Bit mask of this bitfield point's fault bits."""
        return sum(1 << bit for bit, _ in self.fault_bits)

    def bit_mask(self, names: Iterable[str]) -> int:
        """Bit mask of the named fault / status bits of this bitfield point."""
        wanted = set(names)
        return sum(1 << b for b, n in (*self.fault_bits, *self.status_bits) if n in wanted)


@dataclass(frozen=True, slots=True)
class IdentCheck:
    """One identification register and the value that model answers with."""

    point: Point
    expected: int | str

    def matches(self, value: object) -> bool:
        """Whether a decoded value is this model's (strings compare without padding)."""
        if isinstance(self.expected, str):
            return isinstance(value, str) and value.strip("\x00 ") == self.expected
        return value == self.expected


@dataclass(frozen=True, slots=True)
class RecordingBlock:
    """Holding-register addresses of the noise-logger recording protocol
    (docs/architecture.md); 32-bit values use ``word_order``."""

    control: int
    duration_s: int
    sample_rate: int
    status: int
    sample_count: int
    scale: int
    crc32: int
    block_index: int
    block: int
    block_size: int
    word_order: Order = "big"
    default_duration_s: int = 8
    max_duration_s: int = 60


@dataclass(frozen=True, slots=True)
class PointOverride:
    """Config ``overrides.points.<name>``: ``None`` keeps the profile's value."""

    scale: float | None = None
    offset: float | None = None
    range: tuple[float, float] | None = None
    unit: str | None = None
    enabled: bool | None = None
    deadband: float | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """A device model: its register map, identification and (loggers) recording block."""

    name: str
    model: str
    vendor: str
    kind: str
    description: str
    points: tuple[Point, ...]
    identification: tuple[IdentCheck, ...] = ()
    recording: RecordingBlock | None = None
    unreadable: tuple[tuple[str, int, int], ...] = ()
    source: str = "<memory>"
    _by_name: dict[str, Point] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {p.name: p for p in self.points})

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
            for key in ("scale", "offset", "unit", "enabled", "deadband"):
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
            if updates and point.type in ("string", "bool", *BITFIELD_TYPES):
                numeric = {"scale", "offset", "valid_range"} & updates.keys()
                if numeric:
                    raise ProfileError(
                        f"override {name}: {', '.join(sorted(numeric))} do not apply to a "
                        f"{point.type} point"
                    )
            changed[name] = replace(point, **updates)
        return replace(self, points=tuple(changed[p.name] for p in self.points))


def _override_values(override: Any) -> dict[str, Any]:
    if isinstance(override, Mapping):
        unknown = set(override) - {*_OVERRIDE_KEYS, "valid_range"}
        if unknown:
            raise ProfileError(f"override: unknown key(s) {', '.join(sorted(unknown))}")
        return dict(override)
    return {key: getattr(override, key, None) for key in (*_OVERRIDE_KEYS, "valid_range")}


_OVERRIDE_KEYS = ("scale", "offset", "range", "unit", "enabled", "deadband")


# --------------------------------------------------------------------------- loading


def load_profile(path: str | Path) -> Profile:
    """Load and validate one profile file. Raises ``ProfileError`` (unreadable file, bad
    YAML, bad field) with file:line:col and the field path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc}") from exc
    return parse_profile(text, str(path))


def parse_profile(text: str, source: str = "<profile>") -> Profile:
    """Parse and validate profile YAML text; ``source`` names it in errors. Raises
    ``ProfileError`` (bad YAML, bad field) with file:line:col and the field path."""
    from .profile_yaml import parse  # the reader builds this module's shapes: import it late

    return parse(text, source)


# --------------------------------------------------------------------------- registry


class ProfileRegistry:
    """Shipped profiles plus a user directory; a user profile overrides a shipped one of the
    same name. Files are loaded eagerly so a bad one fails at startup, naming file and line.

    Raises ``ProfileError`` from the constructor for a bad file, two files of the same name in
    one directory, or a ``user_dir`` that is not a readable directory.
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
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            profile = load_profile(path)
            if profile.name in found:
                raise ProfileError(
                    f"{path}: profile name {profile.name!r} is also used by "
                    f"{found[profile.name].source}"
                )
            found[profile.name] = profile
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
