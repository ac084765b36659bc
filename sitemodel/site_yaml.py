"""The YAML reader of site files: composed nodes in, ``sitemodel.site`` dataclasses out.

Every value is read through ``_Val``, which knows its node's line and column and its field
path (``devices[2].unit_id``), so every problem becomes one ``SiteError`` line
``file:line:col: field: problem``. References (pipes to nodes, devices to pipes and buses,
scenarios to devices of the right kind, level gauges to pump stations) are checked as they
are read. The format is documented in docs/architecture.md and docs/simulator.md; use
``sitemodel.load_site`` / ``parse_site``, not this module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import yaml

from dsp.pipes import MATERIALS
from yamlread.scalar import scalar_value

from .site import (
    DEFAULT_NOISE_FLOOR_DB,
    DEVICE_KINDS,
    LENGTH_SLACK,
    NAME_PATTERN,
    PARAMS_BY_KIND,
    PLACEMENT_TOLERANCE_M,
    BlockageScenario,
    CoverScenario,
    DropoutScenario,
    FaultScenario,
    GasScenario,
    LeakScenario,
    Node,
    Pipe,
    Scenarios,
    SimBus,
    Site,
    SiteDevice,
    SiteError,
    StormScenario,
    latlon_to_local,
    local_to_latlon,
)

if TYPE_CHECKING:
    from drivers.profile import ProfileRegistry

__all__ = ["parse"]


def parse(text: str, *, source: str, profiles: ProfileRegistry | None) -> Site:
    """Validate site YAML text; raises ``SiteError``."""
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
        # A mangled key may hold a newline or other control characters: the message stays
        # one line (printable characters kept, the others escaped as Python would).
        name = "".join(c if c.isprintable() else repr(c)[1:-1] for c in self.path)
        name = name or "(top level)"
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
            value = float(self._value())
        except OverflowError:  # an integer of hundreds of digits
            value = math.inf
        if not math.isfinite(value):
            raise self.fail(f"{value} is not a finite number")
        _check_range(self, value, lo, hi)
        return value

    def integer(self, lo: int | None = None, hi: int | None = None) -> int:
        if not isinstance(self.node, yaml.ScalarNode) or not self.node.tag.endswith(":int"):
            raise self.fail(f"expected an integer, got {self.node.value!r}")
        value = self._value()
        _check_range(self, value, lo, hi)
        return value

    def boolean(self) -> bool:
        if not isinstance(self.node, yaml.ScalarNode) or not self.node.tag.endswith(":bool"):
            raise self.fail(f"expected true or false, got {self.node.value!r}")
        return self._value()

    def _value(self) -> Any:
        """The scalar's value, explicit tag included (``!!int abc`` is refused, not re-read)."""
        if not isinstance(self.node, yaml.ScalarNode):
            raise self.fail("expected a single value, got a mapping or a list")
        try:
            return scalar_value(self.node)
        except ValueError as exc:
            raise self.fail(f"cannot read this value: {exc}") from exc


def _check_range(v: _Val, value: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise v.fail(f"{_fmt(value)} is not in {_fmt(lo)}..{_fmt(hi)}")
    if lo is not None and value < lo:
        raise v.fail(f"{_fmt(value)} is below the minimum {_fmt(lo)}")
    if hi is not None and value > hi:
        raise v.fail(f"{_fmt(value)} is above the maximum {_fmt(hi)}")


def _fmt(x: float) -> str:
    if isinstance(x, int):  # exact, and an integer of hundreds of digits has no float
        return str(x)
    return str(int(x)) if x.is_integer() else f"{x:g}"


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
        params_cls = PARAMS_BY_KIND[kind]
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
