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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from drivers.errors import DriverError
from dsp.pipes import wave_speed

if TYPE_CHECKING:
    from drivers.profile import ProfileRegistry

__all__ = [
    "DEVICE_KINDS",
    "PARAMS_BY_KIND",
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
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+\Z")  # \Z: "$" would let "nl-01\n" through
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


# device kind -> the dataclass of its `sim:` block
PARAMS_BY_KIND: dict[str, type] = {
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
    from .site_yaml import parse  # the reader builds this module's shapes: import it late

    return parse(text, source=source, profiles=profiles)
