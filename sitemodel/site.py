"""The site file: what a city information model (CIM) platform knows about one district.

A site is a pipe network (nodes with local x/y metres east/north of an origin, pipes with
material and size), the devices placed on it (every one with an asset id and coordinates) and
the loopback buses the simulator serves them on; its ``sewer:`` and ``gas_sites:`` sections
say where devices sit on the drainage and gas networks (``sitemodel.network``, what the
network rules read). Its ``scenarios:`` section is the simulator's (``drivers.sim.scenarios``
reads it with the same reader).

The dataclasses below are the file format, read by ``yamlread`` (field types and ``meta()``);
rules across records are ``sitemodel.checks``. ``sitemodel.load.load_site(path) -> Site`` reads
and checks the file once and fills in what the file leaves to the network (a pipe's length, a
device's position); everything downstream (simulators, coverage, the daemon) reads those, never
raw dicts. A bad file raises ``SiteError`` listing every problem, one line each naming file, line,
column and field: ``site.yaml:23:5: devices[2].unit_id: 300 is not in 1..247``. The format is
documented in docs/architecture.md ("The site file") and docs/simulator.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

from dsp.pipes import MATERIALS, wave_speed
from sitemodel.geo import local_to_latlon
from sitemodel.network import GasSite, SewerNetwork, SewerSection
from sitemodel.params import PARAMS_BY_KIND, DeviceParams, NoiseLoggerParams
from yamlread import INTERNAL, ReadError, Section, meta

__all__ = [
    "DEVICE_KINDS",
    "NAME_HELP",
    "NAME_PATTERN",
    "DeviceKind",
    "Node",
    "Origin",
    "Pipe",
    "ProfileCatalog",
    "SimBus",
    "Site",
    "SiteDevice",
    "SiteError",
]

# Names become MQTT topic levels (site, device): no '/', '+', '#', no control characters.
NAME_PATTERN = r"[A-Za-z0-9_.-]+"
NAME_HELP = "use letters, digits, '_', '.' or '-' (it becomes an MQTT topic level)"
DEFAULT_NOISE_FLOOR_DB = 0.0
SIM_HOST = "127.0.0.1"
MAX_LOCAL_M = 50_000.0  # a district is a few km across

DeviceKind = Literal["noise_logger", "level", "gas", "rain", "pressure", "pump_controller", "cover"]
DEVICE_KINDS: tuple[str, ...] = get_args(DeviceKind)


class SiteError(ReadError):
    """The site file is invalid: one line per problem, each naming file, line, column and
    field (``problems`` holds them)."""


def _name(help: str) -> dict[str, Any]:
    return meta(help, pattern=NAME_PATTERN, pattern_help=NAME_HELP)


def _local(help: str) -> dict[str, Any]:
    return meta(help, min=-MAX_LOCAL_M, max=MAX_LOCAL_M, unit="m")


@dataclass(frozen=True, slots=True)
class Origin:
    """The point local x/y metres count from (east, north)."""

    lat: float = field(metadata=meta("latitude", min=-85, max=85, unit="deg"))
    lon: float = field(metadata=meta("longitude", min=-180, max=180, unit="deg"))


@dataclass(frozen=True, slots=True)
class Node:
    """A junction of the network at local x/y metres (east/north of the site origin)."""

    id: str = field(metadata=_name("node id"))
    x: float = field(metadata=_local("metres east of the origin"))
    y: float = field(metadata=_local("metres north of the origin"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Pipe:
    """A pipe segment from node ``from_node`` to ``to_node``; offsets count from ``from_node``.
    Left out of the file, the size is the material's and the length the straight line
    between the nodes (filled in by ``load_site``)."""

    id: str = field(metadata=_name("pipe id"))
    from_node: str = field(metadata=meta("node it starts at", key="from"))
    to_node: str = field(metadata=meta("node it ends at", key="to"))
    material: str = field(metadata=meta("pipe material (dsp.pipes)"))
    diameter_mm: float = field(
        default=math.nan, metadata=meta("inside diameter", min=10, max=3000, unit="mm")
    )
    wall_mm: float = field(default=math.nan, metadata=meta("wall", min=1, max=200, unit="mm"))
    length_m: float = field(
        default=math.nan, metadata=meta("length along it", min=0.1, max=100_000, unit="m")
    )

    @property
    def wave_speed_m_s(self) -> float:
        """Korteweg speed of leak noise in this pipe (dsp.pipes)."""
        return wave_speed(self.material, self.diameter_mm, self.wall_mm)

    def size(self) -> tuple[float, float] | None:
        """(diameter, wall) in mm, the material's where the file gives none."""
        material = MATERIALS.get(self.material)
        if material is None:
            return None
        diameter, wall = self.diameter_mm, self.wall_mm
        if math.isnan(diameter):
            diameter = material.default_diameter_mm
        if math.isnan(wall):
            wall = material.default_wall_mm
        return diameter, wall

    def config_checks(self) -> Iterator[tuple[str, str]]:
        if self.material not in MATERIALS:
            known = ", ".join(sorted(MATERIALS))
            yield "material", f"unknown material {self.material!r} (known: {known})"
        if self.from_node == self.to_node:
            yield "to", "a pipe must join two different nodes"
        size = self.size()
        if size is not None and size[1] * 2 >= size[0]:
            yield "wall_mm", f"wall {size[1]:g} mm too thick for DN{size[0]:g}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteDevice:
    """One device as the CIM platform knows it, and where the simulator serves it. Placed on a
    pipe (``pipe``, ``offset_m`` from its ``from`` node) its coordinates default to that spot;
    ``x``/``y`` (local metres) are filled in by ``load_site``."""

    name: str = field(metadata=_name("device name, unique in the site"))
    kind: DeviceKind = field(metadata=meta("what kind of device"))
    profile: str = field(metadata=_name("device profile name"))
    asset_id: str = field(
        metadata=meta("asset id in the city model", pattern=r"(?s).+", pattern_help="give one")
    )
    bus: str = field(metadata=meta("simulator bus (sim_buses)"))
    unit_id: int = field(metadata=meta("Modbus unit id, unique per bus", min=1, max=247))
    lat: float = field(default=math.nan, metadata=meta("latitude", min=-90, max=90, unit="deg"))
    lon: float = field(default=math.nan, metadata=meta("longitude", min=-180, max=180))
    pipe: str | None = field(default=None, metadata=meta("pipe it sits on"))
    offset_m: float | None = field(
        default=None, metadata=meta("along the pipe from its from node (0)", min=0, unit="m")
    )
    description: str = field(default="", metadata=meta("where to find it"))
    sim: DeviceParams = field(
        default_factory=NoiseLoggerParams,
        metadata=meta("simulator parameters of its kind", type_from=("kind", PARAMS_BY_KIND)),
    )
    x: float = field(default=math.nan, metadata=INTERNAL)
    y: float = field(default=math.nan, metadata=INTERNAL)

    def config_checks(self) -> Iterator[tuple[str, str]]:
        if self.pipe is None:
            if self.offset_m is not None:
                yield "offset_m", "offset_m needs a pipe"
            elif self.kind == "noise_logger":
                yield "", "a noise_logger needs a pipe placement (pipe, offset_m)"
                return
        if math.isnan(self.lat) != math.isnan(self.lon):
            yield "", "give both lat and lon, or neither"
        elif math.isnan(self.lat) and self.pipe is None:
            yield "", "missing coordinates: give lat and lon (or a pipe placement)"


@dataclass(frozen=True, slots=True)
class SimBus:
    """A simulator bus: one loopback TCP port (or one pty) serving several unit ids."""

    name: str = field(metadata=_name("bus name; devices refer to it"))
    port: int = field(metadata=meta("loopback TCP port the simulator serves", min=1, max=65535))
    host: str = field(default=SIM_HOST, metadata=INTERNAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class Site:
    """A validated site file. Lookups by id raise ``KeyError``."""

    site: str = field(metadata=_name("site name"))
    name: str = field(default="", metadata=meta("display name (the site name)"))
    origin: Origin = field(metadata=meta("where local x/y count from"))
    noise_floor_db: float = field(
        default=DEFAULT_NOISE_FLOOR_DB,
        metadata=meta("ambient in-band level at the loggers (dB re 1 unit)", min=-120, max=120),
    )
    nodes: tuple[Node, ...] = field(metadata=meta("junctions"))
    pipes: tuple[Pipe, ...] = field(metadata=meta("pipe segments"))
    devices: tuple[SiteDevice, ...] = field(metadata=meta("devices placed on the network"))
    sim_buses: tuple[SimBus, ...] = field(metadata=meta("buses the simulator serves"))
    scenarios: Section | None = field(
        default=None, metadata=meta("what the simulator plays (drivers.sim.scenarios)")
    )
    sewer: SewerSection | None = field(
        default=None, metadata=meta("the drainage network the rules reason on (sitemodel.network)")
    )
    gas_sites: tuple[GasSite, ...] = field(
        default=(), metadata=meta("gas sites: their kind and the devices watching them")
    )
    source: str = field(default="<site>", metadata=INTERNAL)

    @property
    def network(self) -> SewerNetwork:
        """Where the devices sit on the drainage and gas networks (what the rules read)."""
        sewer = self.sewer or SewerSection()
        return SewerNetwork(
            sewer.reaches, sewer.manholes, sewer.wet_wells, sewer.ponding, self.gas_sites
        )

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
        return spot_on(p, offset_m, self.node(p.from_node), self.node(p.to_node))

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        return local_to_latlon(self.origin.lat, self.origin.lon, x, y)


def spot_on(pipe: Pipe, offset_m: float, a: Node, b: Node) -> tuple[float, float]:
    """Local x/y of ``offset_m`` along ``pipe`` from node ``a`` to node ``b`` (straight)."""
    f = offset_m / pipe_length(pipe, a, b)
    return a.x + f * (b.x - a.x), a.y + f * (b.y - a.y)


def pipe_length(pipe: Pipe, a: Node, b: Node) -> float:
    """The pipe's length: the file's, else the straight line between its nodes."""
    return math.hypot(b.x - a.x, b.y - a.y) if math.isnan(pipe.length_m) else pipe.length_m


def _find(items: Iterable[Any], attr: str, key: str) -> Any:
    for item in items:
        if getattr(item, attr) == key:
            return item
    raise KeyError(key)


# --- loading -----------------------------------------------------------------------------------


class _HasKind(Protocol):
    @property
    def kind(self) -> str: ...


class ProfileCatalog(Protocol):
    """What the site reader asks of device profiles (``drivers.profile.ProfileRegistry``)."""

    def exists(self, name: str) -> bool: ...

    def names(self) -> list[str]: ...

    def get(self, name: str) -> _HasKind: ...
