"""The site file: what a city information model (CIM) platform knows about one district.

A site is a pipe network (nodes with local x/y metres east/north of an origin, pipes with
material and size), the devices placed on it (every one with an asset id and coordinates),
the loopback buses the simulator serves them on, and the scenarios the simulator plays
(leaks, storms, gas episodes, dropouts, faults, opened covers, sewer blockages) in seconds of
sim time.

``load_site(path) -> Site`` parses and validates the YAML once into frozen dataclasses;
everything downstream (simulators, coverage, the daemon) reads those, never raw dicts.
A bad file raises ``SiteError`` with one line naming file, line, column and field:
``site.yaml:23:5: devices[2].unit_id: 300 is not in 1..247``. The format is documented in
docs/architecture.md ("The site file") and docs/simulator.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import yaml

from dsp.pipes import MATERIALS, wave_speed

from .errors import DriverError

if TYPE_CHECKING:
    from .profile import ProfileRegistry

__all__ = [
    "DEVICE_KINDS",
    "BlockageScenario",
    "CoverParams",
    "CoverScenario",
    "DropoutScenario",
    "FaultScenario",
    "GasParams",
    "GasScenario",
    "LeakScenario",
    "LevelParams",
    "Node",
    "NoiseLoggerParams",
    "Pipe",
    "PressureParams",
    "PumpControllerParams",
    "RainParams",
    "Scenarios",
    "SimBus",
    "Site",
    "SiteDevice",
    "SiteError",
    "StormScenario",
    "load_site",
    "parse_site",
]

EARTH_RADIUS_M = 6_371_008.8
# A device's lat/lon may sit this far from its placement on the pipe (chambers sit beside the
# main); further than that is a typo in one of the two, which would misplace events on the twin.
PLACEMENT_TOLERANCE_M = 50.0
# A pipe's length may exceed the straight line between its nodes (bends), never undercut it.
LENGTH_SLACK = 0.99
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")
DEFAULT_NOISE_FLOOR_DB = 0.0
SIM_HOST = "127.0.0.1"

DeviceKind = Literal["noise_logger", "level", "gas", "rain", "pressure", "pump_controller", "cover"]
DEVICE_KINDS: tuple[str, ...] = get_args(DeviceKind)


class SiteError(DriverError):
    """The site file is invalid: the message names file, line, column and field."""


# --- per-kind simulator parameters (the optional `sim:` block of a device) -------------------


def _p(default: Any, lo: float | None = None, hi: float | None = None) -> Any:
    """A `sim:` parameter with its default and its allowed range (checked by the loader)."""
    return field(default=default, metadata={"min": lo, "max": hi})


@dataclass(frozen=True, slots=True)
class NoiseLoggerParams:
    """What a logger hears besides leaks: road traffic and a nearby pump's tone."""

    traffic_per_min: float = _p(0.5, 0, 60)  # passing vehicles per minute of daytime
    pump_tone_hz: float | None = _p(None, 10, 1000)  # pump hum (e.g. 50 or 100 Hz), None = none
    ambient_db: float | None = _p(None, -120, 120)  # None = the site's noise_floor_db


@dataclass(frozen=True, slots=True)
class LevelParams:
    """A level gauge: in a sewer manhole, or in a pump station's wet well (``station``)."""

    station: str | None = None  # a pump_controller device: this gauge reads its wet well
    cover_depth_mm: float = _p(3000.0, 100, 50_000)  # invert to cover: where it overflows
    dry_level_mm: float = _p(350.0, 0, 50_000)  # dry-weather level (before the diurnal swing)
    diurnal_mm: float = _p(60.0, 0, 5_000)  # dry-weather swing over the day
    storm_gain_mm_per_mm_h: float = _p(35.0, 0, 1_000)  # settled rise per mm/h of rain
    lag_s: float = _p(420.0, 1, 86_400)  # first-order lag of the catchment's response


@dataclass(frozen=True, slots=True)
class RainParams:
    mm_per_tip: float = _p(0.2, 0.01, 10)


@dataclass(frozen=True, slots=True)
class GasParams:
    background_lel: float = _p(1.0, 0, 100)  # %LEL in a ventilated chamber


@dataclass(frozen=True, slots=True)
class PressureParams:
    mean_bar: float = _p(2.5, 0, 1_000)
    diurnal_bar: float = _p(0.12, 0, 1_000)  # lower at the morning and evening demand peaks


@dataclass(frozen=True, slots=True)
class PumpControllerParams:
    """A sewer pump station: wet-well volume balance with duty/standby pumps."""

    pumps: int = _p(2, 1, 3)
    wet_well_area_m2: float = _p(6.0, 0.1, 1_000)
    overflow_level_mm: float = _p(4000.0, 100, 50_000)  # where the wet well spills
    start_level_mm: float = _p(1600.0, 1, 50_000)  # duty pump starts
    assist_level_mm: float = _p(2200.0, 1, 50_000)  # standby pump joins
    stop_level_mm: float = _p(500.0, 0, 50_000)
    pump_rate_l_s: float = _p(30.0, 0.1, 10_000)
    dry_inflow_l_s: float = _p(6.0, 0, 10_000)
    storm_inflow_l_s_per_mm_h: float = _p(2.5, 0, 10_000)
    lag_s: float = _p(420.0, 1, 86_400)

    def problem(self) -> str | None:
        if not (
            self.stop_level_mm
            < self.start_level_mm
            <= self.assist_level_mm
            < self.overflow_level_mm
        ):
            return "needs stop < start <= assist < overflow (the *_level_mm values)"
        return None


@dataclass(frozen=True, slots=True)
class CoverParams:
    battery_v: float = _p(3.6, 0, 60)


_PARAMS_BY_KIND: dict[str, type] = {
    "noise_logger": NoiseLoggerParams,
    "level": LevelParams,
    "rain": RainParams,
    "gas": GasParams,
    "pressure": PressureParams,
    "pump_controller": PumpControllerParams,
    "cover": CoverParams,
}

DeviceParams = (
    NoiseLoggerParams
    | LevelParams
    | RainParams
    | GasParams
    | PressureParams
    | PumpControllerParams
    | CoverParams
)


# --- the network and the devices ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    """A junction of the network at local x/y metres (east/north of the site origin)."""

    id: str
    x: float
    y: float
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Pipe:
    """A pipe segment from node ``from_node`` to ``to_node``; offsets count from ``from_node``."""

    id: str
    from_node: str
    to_node: str
    material: str
    diameter_mm: float
    wall_mm: float
    length_m: float

    @property
    def wave_speed_m_s(self) -> float:
        """Korteweg speed of leak noise in this pipe (dsp.pipes)."""
        return wave_speed(self.material, self.diameter_mm, self.wall_mm)


@dataclass(frozen=True, slots=True)
class SiteDevice:
    """One device as the CIM platform knows it, and where the simulator serves it."""

    name: str
    kind: str  # one of DEVICE_KINDS
    profile: str
    asset_id: str
    lat: float
    lon: float
    x: float
    y: float
    bus: str
    unit_id: int
    pipe: str | None = None
    offset_m: float | None = None
    description: str = ""
    sim: DeviceParams = field(default_factory=NoiseLoggerParams)


@dataclass(frozen=True, slots=True)
class SimBus:
    """A simulator bus: one loopback TCP port (or one pty) serving several unit ids."""

    name: str
    port: int
    host: str = SIM_HOST


@dataclass(frozen=True, slots=True)
class LeakScenario:
    id: str
    pipe: str
    offset_m: float
    level_db: float  # source level (dB re 1 unit) at the leak
    start_s: float = 0.0
    duration_s: float | None = None  # None = until repaired (forever)

    def active(self, t: float) -> bool:
        return _active(t, self.start_s, self.duration_s)


@dataclass(frozen=True, slots=True)
class StormScenario:
    start_s: float
    duration_s: float
    peak_mm_per_h: float


@dataclass(frozen=True, slots=True)
class GasScenario:
    device: str
    start_s: float
    duration_s: float
    peak_lel: float


@dataclass(frozen=True, slots=True)
class DropoutScenario:
    device: str
    start_s: float
    duration_s: float


@dataclass(frozen=True, slots=True)
class FaultScenario:
    device: str
    start_s: float
    duration_s: float
    bits: int  # OR-ed into the device's fault/status word while active


@dataclass(frozen=True, slots=True)
class CoverScenario:
    device: str
    start_s: float
    duration_s: float
    tilt: bool = False  # lifted and tilted (broken / displaced), not just opened


@dataclass(frozen=True, slots=True)
class BlockageScenario:
    """Debris blocks the sewer below a level gauge: its level climbs in dry weather."""

    device: str
    start_s: float
    duration_s: float
    rise_mm_per_min: float = 5.0


@dataclass(frozen=True, slots=True)
class Scenarios:
    leaks: tuple[LeakScenario, ...] = ()
    storms: tuple[StormScenario, ...] = ()
    gas: tuple[GasScenario, ...] = ()
    dropouts: tuple[DropoutScenario, ...] = ()
    faults: tuple[FaultScenario, ...] = ()
    covers: tuple[CoverScenario, ...] = ()
    blockages: tuple[BlockageScenario, ...] = ()


@dataclass(frozen=True, slots=True)
class Site:
    """A validated site file. Lookups by id raise ``KeyError``."""

    site: str
    name: str
    origin_lat: float
    origin_lon: float
    noise_floor_db: float
    nodes: tuple[Node, ...]
    pipes: tuple[Pipe, ...]
    devices: tuple[SiteDevice, ...]
    sim_buses: tuple[SimBus, ...]
    scenarios: Scenarios
    source: str = "<site>"

    def node(self, node_id: str) -> Node:
        return _find(self.nodes, "id", node_id)

    def pipe(self, pipe_id: str) -> Pipe:
        return _find(self.pipes, "id", pipe_id)

    def device(self, name: str) -> SiteDevice:
        return _find(self.devices, "name", name)

    def sim_bus(self, name: str) -> SimBus:
        return _find(self.sim_buses, "name", name)

    def devices_on(self, bus: str) -> tuple[SiteDevice, ...]:
        return tuple(d for d in self.devices if d.bus == bus)

    def devices_of(self, kind: str) -> tuple[SiteDevice, ...]:
        return tuple(d for d in self.devices if d.kind == kind)

    def point_on_pipe(self, pipe_id: str, offset_m: float) -> tuple[float, float]:
        """Local x/y of the spot ``offset_m`` along a pipe from its ``from`` node (straight)."""
        p = self.pipe(pipe_id)
        a, b = self.node(p.from_node), self.node(p.to_node)
        f = offset_m / p.length_m
        return a.x + f * (b.x - a.x), a.y + f * (b.y - a.y)

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        return local_to_latlon(self.origin_lat, self.origin_lon, x, y)


def local_to_latlon(lat0: float, lon0: float, x: float, y: float) -> tuple[float, float]:
    """Equirectangular projection: plenty for a district a few km across."""
    lat = lat0 + math.degrees(y / EARTH_RADIUS_M)
    lon = lon0 + math.degrees(x / (EARTH_RADIUS_M * math.cos(math.radians(lat0))))
    return lat, lon


def latlon_to_local(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    y = math.radians(lat - lat0) * EARTH_RADIUS_M
    x = math.radians(lon - lon0) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
    return x, y


def _active(t: float, start_s: float, duration_s: float | None) -> bool:
    return t >= start_s and (duration_s is None or t < start_s + duration_s)


def _find(items: Iterable[Any], attr: str, key: str) -> Any:
    for item in items:
        if getattr(item, attr) == key:
            return item
    raise KeyError(key)


# --- loading -----------------------------------------------------------------------------------


def load_site(path: str | Path, *, profiles: ProfileRegistry | None = None) -> Site:
    """Read and validate a site file.

    With ``profiles`` (a ``drivers.profile.ProfileRegistry``), every device's profile must
    exist and be of the device's kind. Raises ``SiteError`` (one line:
    ``file:line:col: field: problem``) for anything wrong in the file, including a file that
    cannot be read.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteError(f"{p}: cannot read site file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SiteError(f"{p}: not a UTF-8 text file") from exc
    return parse_site(text, source=str(p), profiles=profiles)


def parse_site(
    text: str, *, source: str = "<site>", profiles: ProfileRegistry | None = None
) -> Site:
    """Validate site YAML given as text; ``source`` names it in errors. Raises ``SiteError``."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise SiteError(f"{where}: YAML syntax: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise SiteError(f"{source}: YAML syntax: {exc}") from exc
    if root is None:
        raise SiteError(f"{source}: the file is empty")
    return _SiteParser(source, profiles).site(_Val(root, "", source))


class _Val:
    """A YAML node with its field path, for errors that name file:line:col and field."""

    def __init__(self, node: yaml.Node, path: str, source: str):
        self.node, self.path, self.source = node, path, source

    def fail(self, problem: str) -> SiteError:
        m = self.node.start_mark
        name = self.path or "(top level)"
        return SiteError(f"{self.source}:{m.line + 1}:{m.column + 1}: {name}: {problem}")

    def _child(self, node: yaml.Node, suffix: str) -> _Val:
        sep = "." if self.path and not suffix.startswith("[") else ""
        return _Val(node, f"{self.path}{sep}{suffix}", self.source)

    def mapping(self, allowed: Iterable[str], required: Iterable[str] = ()) -> dict[str, _Val]:
        if not isinstance(self.node, yaml.MappingNode):
            raise self.fail("expected a mapping")
        allowed = tuple(allowed)
        out: dict[str, _Val] = {}
        for key_node, value_node in self.node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            kv = self._child(key_node, str(key))
            if key not in allowed:
                raise kv.fail(f"unknown key (allowed: {', '.join(allowed)})")
            if key in out:
                raise kv.fail("duplicate key")
            out[key] = self._child(value_node, key)
        for key in required:
            if key not in out:
                raise self.fail(f"missing required key {key!r}")
        return out

    def items(self) -> list[_Val]:
        if not isinstance(self.node, yaml.SequenceNode):
            raise self.fail("expected a list")
        return [self._child(n, f"[{i}]") for i, n in enumerate(self.node.value)]

    def is_null(self) -> bool:
        return isinstance(self.node, yaml.ScalarNode) and self.node.tag.endswith(":null")

    def str(self, *, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(self.node, yaml.ScalarNode) or self.node.tag.endswith((":null", ":bool")):
            raise self.fail("expected a string")
        value = str(self.node.value)
        if not value:
            raise self.fail("must not be empty")
        if pattern is not None and not pattern.match(value):
            raise self.fail(f"{value!r} may only use letters, digits, '_', '.', '-'")
        return value

    def number(self, lo: float | None = None, hi: float | None = None) -> float:
        if not isinstance(self.node, yaml.ScalarNode) or not self.node.tag.endswith(
            (":int", ":float")
        ):
            raise self.fail(f"expected a number, got {self.node.value!r}")
        try:
            value = float(yaml.safe_load(self.node.value))
        except OverflowError:  # an integer of hundreds of digits
            value = math.inf
        if not math.isfinite(value):
            raise self.fail(f"{value} is not a finite number")
        _check_range(self, value, lo, hi)
        return value

    def integer(self, lo: int | None = None, hi: int | None = None) -> int:
        if not isinstance(self.node, yaml.ScalarNode) or not self.node.tag.endswith(":int"):
            raise self.fail(f"expected an integer, got {self.node.value!r}")
        value = int(yaml.safe_load(self.node.value))
        _check_range(self, value, lo, hi)
        return value

    def boolean(self) -> bool:
        if not isinstance(self.node, yaml.ScalarNode) or not self.node.tag.endswith(":bool"):
            raise self.fail(f"expected true or false, got {self.node.value!r}")
        return bool(yaml.safe_load(self.node.value))


def _check_range(v: _Val, value: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise v.fail(f"{_fmt(value)} is not in {_fmt(lo)}..{_fmt(hi)}")
    if lo is not None and value < lo:
        raise v.fail(f"{_fmt(value)} is below the minimum {_fmt(lo)}")
    if hi is not None and value > hi:
        raise v.fail(f"{_fmt(value)} is above the maximum {_fmt(hi)}")


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class _SiteParser:
    """Builds a ``Site`` from the composed YAML tree, checking references as it goes."""

    def __init__(self, source: str, profiles: ProfileRegistry | None):
        self.source = source
        self.profiles = profiles

    def site(self, root: _Val) -> Site:
        top = root.mapping(
            (
                "site",
                "name",
                "origin",
                "noise_floor_db",
                "nodes",
                "pipes",
                "devices",
                "sim_buses",
                "scenarios",
            ),
            ("site", "origin", "nodes", "pipes", "devices", "sim_buses"),
        )
        site_id = top["site"].str(pattern=NAME_PATTERN)
        origin = top["origin"].mapping(("lat", "lon"), ("lat", "lon"))
        self.lat0 = origin["lat"].number(-85, 85)
        self.lon0 = origin["lon"].number(-180, 180)
        self.nodes = self._unique([self._node(v) for v in top["nodes"].items()], "id")
        self.pipes = self._unique([self._pipe(v) for v in top["pipes"].items()], "id")
        self.buses = self._unique([self._bus(v) for v in top["sim_buses"].items()], "name")
        _unique_values(top["sim_buses"], [b.port for b in self.buses.values()], "port")
        self.device_vals: dict[str, _Val] = {}
        self.devices = self._unique([self._device(v) for v in top["devices"].items()], "name")
        self._check_units()
        self._check_stations()
        scenarios = self._scenarios(top["scenarios"]) if "scenarios" in top else Scenarios()
        return Site(
            site=site_id,
            name=top["name"].str() if "name" in top else site_id,
            origin_lat=self.lat0,
            origin_lon=self.lon0,
            noise_floor_db=(
                top["noise_floor_db"].number(-120, 120)
                if "noise_floor_db" in top
                else DEFAULT_NOISE_FLOOR_DB
            ),
            nodes=tuple(self.nodes.values()),
            pipes=tuple(self.pipes.values()),
            devices=tuple(self.devices.values()),
            sim_buses=tuple(self.buses.values()),
            scenarios=scenarios,
            source=self.source,
        )

    def _unique(self, items: list[tuple[Any, _Val]], attr: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for item, v in items:
            key = getattr(item, attr)
            if key in out:
                raise v.fail(f"duplicate {attr} {key!r}")
            out[key] = item
        return out

    def _node(self, v: _Val) -> tuple[Node, _Val]:
        m = v.mapping(("id", "x", "y"), ("id", "x", "y"))
        x, y = m["x"].number(-50_000, 50_000), m["y"].number(-50_000, 50_000)
        lat, lon = local_to_latlon(self.lat0, self.lon0, x, y)
        return Node(m["id"].str(pattern=NAME_PATTERN), x, y, lat, lon), m["id"]

    def _pipe(self, v: _Val) -> tuple[Pipe, _Val]:
        m = v.mapping(
            ("id", "from", "to", "material", "diameter_mm", "wall_mm", "length_m"),
            ("id", "from", "to", "material"),
        )
        ends = []
        for key in ("from", "to"):
            node_id = m[key].str()
            if node_id not in self.nodes:
                raise m[key].fail(f"unknown node {node_id!r}")
            ends.append(self.nodes[node_id])
        if ends[0].id == ends[1].id:
            raise m["to"].fail("a pipe must join two different nodes")
        material = m["material"].str()
        if material not in MATERIALS:
            raise m["material"].fail(
                f"unknown material {material!r} (known: {', '.join(sorted(MATERIALS))})"
            )
        mat = MATERIALS[material]
        diameter = m["diameter_mm"].number(10, 3000) if "diameter_mm" in m else None
        wall = m["wall_mm"].number(1, 200) if "wall_mm" in m else None
        diameter = diameter if diameter is not None else mat.default_diameter_mm
        wall = wall if wall is not None else mat.default_wall_mm
        if wall * 2 >= diameter:
            raise (m.get("wall_mm") or v).fail(f"wall {wall:g} mm too thick for DN{diameter:g}")
        straight = math.hypot(ends[1].x - ends[0].x, ends[1].y - ends[0].y)
        if "length_m" in m:
            length = m["length_m"].number(0.1, 100_000)
            if length < straight * LENGTH_SLACK:
                raise m["length_m"].fail(
                    f"{length:g} m is shorter than the {straight:.1f} m between its nodes"
                )
        else:
            length = straight
            if length < 0.1:
                raise v.fail("its nodes coincide: give length_m")
        pid = m["id"].str(pattern=NAME_PATTERN)
        return Pipe(pid, ends[0].id, ends[1].id, material, diameter, wall, length), m["id"]

    def _bus(self, v: _Val) -> tuple[SimBus, _Val]:
        m = v.mapping(("name", "port"), ("name", "port"))
        return SimBus(m["name"].str(pattern=NAME_PATTERN), m["port"].integer(1, 65535)), m["name"]

    def _device(self, v: _Val) -> tuple[SiteDevice, _Val]:
        m = v.mapping(
            (
                "name",
                "kind",
                "profile",
                "asset_id",
                "lat",
                "lon",
                "pipe",
                "offset_m",
                "bus",
                "unit_id",
                "description",
                "sim",
            ),
            ("name", "kind", "profile", "asset_id", "bus", "unit_id"),
        )
        name = m["name"].str(pattern=NAME_PATTERN)
        kind = m["kind"].str()
        if kind not in DEVICE_KINDS:
            raise m["kind"].fail(f"unknown kind {kind!r} (known: {', '.join(DEVICE_KINDS)})")
        bus = m["bus"].str()
        if bus not in self.buses:
            raise m["bus"].fail(f"unknown sim bus {bus!r} (see sim_buses)")
        pipe_id, offset = self._placement(m, v, kind)
        x, y, lat, lon = self._position(m, v, pipe_id, offset)
        params_cls = _PARAMS_BY_KIND[kind]
        params = _params(params_cls, m["sim"]) if "sim" in m else params_cls()
        profile = m["profile"].str(pattern=NAME_PATTERN)
        if self.profiles is not None:
            if not self.profiles.exists(profile):
                known = ", ".join(self.profiles.names())
                raise m["profile"].fail(f"unknown profile {profile!r} (known: {known})")
            if self.profiles.get(profile).kind != kind:
                other = self.profiles.get(profile).kind
                raise m["profile"].fail(f"{profile!r} is a {other} profile, not {kind}")
        device = SiteDevice(
            name=name,
            kind=kind,
            profile=profile,
            asset_id=m["asset_id"].str(),
            lat=lat,
            lon=lon,
            x=x,
            y=y,
            bus=bus,
            unit_id=m["unit_id"].integer(1, 247),
            pipe=pipe_id,
            offset_m=offset,
            description=m["description"].str() if "description" in m else "",
            sim=params,
        )
        self.device_vals[name] = v
        return device, m["name"]

    def _placement(self, m: dict[str, _Val], v: _Val, kind: str) -> tuple[str | None, float | None]:
        if "pipe" not in m:
            if "offset_m" in m:
                raise m["offset_m"].fail("offset_m needs a pipe")
            if kind == "noise_logger":
                raise v.fail("a noise_logger needs a pipe placement (pipe, offset_m)")
            return None, None
        pipe_id = m["pipe"].str()
        if pipe_id not in self.pipes:
            raise m["pipe"].fail(f"unknown pipe {pipe_id!r}")
        length = self.pipes[pipe_id].length_m
        offset = m["offset_m"].number(0, round(length, 3)) if "offset_m" in m else 0.0
        return pipe_id, offset

    def _position(
        self, m: dict[str, _Val], v: _Val, pipe_id: str | None, offset: float | None
    ) -> tuple[float, float, float, float]:
        on_pipe = None
        if pipe_id is not None and offset is not None:
            p = self.pipes[pipe_id]
            a, b = self.nodes[p.from_node], self.nodes[p.to_node]
            f = offset / p.length_m
            on_pipe = (a.x + f * (b.x - a.x), a.y + f * (b.y - a.y))
        if ("lat" in m) != ("lon" in m):
            raise v.fail("give both lat and lon, or neither")
        if "lat" not in m:
            if on_pipe is None:
                raise v.fail("missing coordinates: give lat and lon (or a pipe placement)")
            return (*on_pipe, *local_to_latlon(self.lat0, self.lon0, *on_pipe))
        lat, lon = m["lat"].number(-90, 90), m["lon"].number(-180, 180)
        x, y = latlon_to_local(self.lat0, self.lon0, lat, lon)
        if on_pipe is not None:
            gap = math.hypot(x - on_pipe[0], y - on_pipe[1])
            if gap > PLACEMENT_TOLERANCE_M:
                raise m["lat"].fail(
                    f"lat/lon lie {gap:.0f} m from the device's spot on pipe {pipe_id} "
                    f"(more than {PLACEMENT_TOLERANCE_M:g} m): one of them is wrong"
                )
        return x, y, lat, lon

    def _check_units(self) -> None:
        seen: dict[tuple[str, int], str] = {}
        for device in self.devices.values():
            v = self.device_vals[device.name]
            key = (device.bus, device.unit_id)
            if key in seen:
                raise v.fail(
                    f"unit_id {device.unit_id} on bus {device.bus!r} is already used by "
                    f"{seen[key]!r}"
                )
            seen[key] = device.name

    def _check_stations(self) -> None:
        for device in self.devices.values():
            station = getattr(device.sim, "station", None)
            if station is None:
                continue
            target = self.devices.get(station)
            if target is None or target.kind != "pump_controller":
                v = self.device_vals[device.name]
                raise v.fail(f"sim.station {station!r} is not a pump_controller device")

    def _device_ref(self, v: _Val, kinds: tuple[str, ...] | None = None) -> str:
        name = v.str()
        if name not in self.devices:
            raise v.fail(f"unknown device {name!r}")
        kind = self.devices[name].kind
        if kinds is not None and kind not in kinds:
            raise v.fail(f"{name!r} is a {kind} device, expected {' or '.join(kinds)}")
        return name

    def _scenarios(self, v: _Val) -> Scenarios:
        m = v.mapping(("leaks", "storms", "gas", "dropouts", "faults", "covers", "blockages"))
        leaks = [self._leak(i) for i in m["leaks"].items()] if "leaks" in m else []
        ids = [leak.id for leak in leaks]
        if len(set(ids)) != len(ids):
            _unique_values(m["leaks"], ids, "id")
        return Scenarios(
            leaks=tuple(leaks),
            storms=tuple(self._storm(i) for i in _items(m, "storms")),
            gas=tuple(self._gas(i) for i in _items(m, "gas")),
            dropouts=tuple(self._dropout(i) for i in _items(m, "dropouts")),
            faults=tuple(self._fault(i) for i in _items(m, "faults")),
            covers=tuple(self._cover(i) for i in _items(m, "covers")),
            blockages=tuple(self._blockage(i) for i in _items(m, "blockages")),
        )

    def _leak(self, v: _Val) -> LeakScenario:
        m = v.mapping(
            ("id", "pipe", "offset_m", "level_db", "start_s", "duration_s"),
            ("id", "pipe", "offset_m", "level_db"),
        )
        pipe_id = m["pipe"].str()
        if pipe_id not in self.pipes:
            raise m["pipe"].fail(f"unknown pipe {pipe_id!r}")
        length = self.pipes[pipe_id].length_m
        return LeakScenario(
            id=m["id"].str(pattern=NAME_PATTERN),
            pipe=pipe_id,
            offset_m=m["offset_m"].number(0, round(length, 3)),
            level_db=m["level_db"].number(-60, 120),
            start_s=m["start_s"].number(0) if "start_s" in m else 0.0,
            duration_s=(
                None
                if "duration_s" not in m or m["duration_s"].is_null()
                else m["duration_s"].number(0.001)
            ),
        )

    def _storm(self, v: _Val) -> StormScenario:
        m = v.mapping(("start_s", "duration_s", "peak_mm_per_h"), ("start_s", "duration_s"))
        return StormScenario(
            start_s=m["start_s"].number(0),
            duration_s=m["duration_s"].number(1),
            peak_mm_per_h=m["peak_mm_per_h"].number(0.1, 300) if "peak_mm_per_h" in m else 30.0,
        )

    def _gas(self, v: _Val) -> GasScenario:
        m = v.mapping(("device", "start_s", "duration_s", "peak_lel"), ("device", "start_s"))
        return GasScenario(
            device=self._device_ref(m["device"], ("gas",)),
            start_s=m["start_s"].number(0),
            duration_s=m["duration_s"].number(1) if "duration_s" in m else 600.0,
            peak_lel=m["peak_lel"].number(0, 100) if "peak_lel" in m else 35.0,
        )

    def _dropout(self, v: _Val) -> DropoutScenario:
        m = v.mapping(("device", "start_s", "duration_s"), ("device", "start_s", "duration_s"))
        return DropoutScenario(
            device=self._device_ref(m["device"]),
            start_s=m["start_s"].number(0),
            duration_s=m["duration_s"].number(0.001),
        )

    def _fault(self, v: _Val) -> FaultScenario:
        m = v.mapping(
            ("device", "start_s", "duration_s", "bits"), ("device", "start_s", "duration_s", "bits")
        )
        return FaultScenario(
            device=self._device_ref(m["device"]),
            start_s=m["start_s"].number(0),
            duration_s=m["duration_s"].number(0.001),
            bits=m["bits"].integer(1, 0xFFFF),
        )

    def _cover(self, v: _Val) -> CoverScenario:
        m = v.mapping(("device", "start_s", "duration_s", "tilt"), ("device", "start_s"))
        return CoverScenario(
            device=self._device_ref(m["device"], ("cover",)),
            start_s=m["start_s"].number(0),
            duration_s=m["duration_s"].number(0.001) if "duration_s" in m else 300.0,
            tilt=m["tilt"].boolean() if "tilt" in m else False,
        )

    def _blockage(self, v: _Val) -> BlockageScenario:
        m = v.mapping(
            ("device", "start_s", "duration_s", "rise_mm_per_min"),
            ("device", "start_s", "duration_s"),
        )
        device = self._device_ref(m["device"], ("level",))
        if getattr(self.devices[device].sim, "station", None) is not None:
            raise m["device"].fail(f"{device!r} reads a wet well, not a sewer: no blockage there")
        return BlockageScenario(
            device=device,
            start_s=m["start_s"].number(0),
            duration_s=m["duration_s"].number(1),
            rise_mm_per_min=(
                m["rise_mm_per_min"].number(0.1, 1000) if "rise_mm_per_min" in m else 5.0
            ),
        )


def _items(m: dict[str, _Val], key: str) -> list[_Val]:
    return m[key].items() if key in m else []


def _unique_values(v: _Val, values: list[Any], what: str) -> None:
    seen: set[Any] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise v.items()[i].fail(f"duplicate {what} {value!r}")
        seen.add(value)


def _params(cls: type, v: _Val) -> Any:
    """Read a per-kind ``sim:`` block into its dataclass, each value within its field's range."""
    m = v.mapping([f.name for f in fields(cls)])
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in m:
            continue
        fv, typ = m[f.name], str(f.type)
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if "None" in typ and fv.is_null():
            kwargs[f.name] = None
        elif typ.startswith("int"):
            kwargs[f.name] = fv.integer(lo, hi)
        elif typ.startswith("str"):
            kwargs[f.name] = fv.str(pattern=NAME_PATTERN)
        else:
            kwargs[f.name] = fv.number(lo, hi)
    params = cls(**kwargs)
    problem = params.problem() if hasattr(params, "problem") else None
    if problem:
        raise v.fail(problem)
    return params
