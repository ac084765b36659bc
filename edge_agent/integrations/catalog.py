"""What the gateway says about each field device: the retained ``devices/{device}`` metadata,
and what Home Assistant discovery and Sparkplug births are built from.

A ``FieldDevice`` holds the device's placement (asset id, coordinates, pipe segment, listening
radius), its model (profile, vendor, model, kind), every point it reports (name, unit, type,
range, role, resolution) and its alarm slots (``edge_agent.rules.conditions``). A ``Catalog``
is the gateway's devices for one config; the daemon builds a new one on every (re)load with
``build_catalog`` and hands it to the integrations, which republish what changed and clear
what went away.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from drivers.profile import Point, Profile
from edge_agent.config.model import Device, GatewayConfig
from edge_agent.events import PAYLOAD_VERSION, JsonValue
from edge_agent.logs import get_logger
from edge_agent.rules.conditions import LEAK, OFFLINE, Condition
from sitemodel import Site

__all__ = ["Catalog", "FieldDevice", "PointInfo", "build_catalog", "listening_radii"]

log = get_logger("edge_agent.integrations")

# The points a consumer can read: not the recording protocol's registers of a noise logger.
_RECORDING_ROLES = frozenset({"rec_status"})


@dataclass(frozen=True, slots=True)
class PointInfo:
    """One reported point: what ``devices/{device}`` lists and entities are built from."""

    name: str
    type: str  # the profile type: u16 ... f64, bool, bitfield, bitfield32, string
    unit: str = ""
    range: tuple[float, float] | None = None
    role: str | None = None
    resolution: float | None = None  # the step values are rounded to (None: as read)
    writable: bool = False
    description: str = ""

    @classmethod
    def of(cls, point: Point) -> PointInfo:
        return cls(
            name=point.name,
            type=point.type,
            unit=point.unit,
            range=point.valid_range,
            role=point.role,
            resolution=point.step,
            writable=point.writable,
            description=point.description,
        )

    @property
    def numeric(self) -> bool:
        return self.type not in ("bool", "string", "bitfield", "bitfield32")

    @property
    def decimals(self) -> int | None:
        """Decimals of the resolution (Home Assistant's display precision), if known."""
        if self.resolution is None:
            return None
        text = repr(float(self.resolution))
        return 0 if "e" in text else len(text.split(".")[1].rstrip("0"))

    def payload(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {"name": self.name, "type": self.type}
        if self.unit:
            out["unit"] = self.unit
        if self.range is not None:
            out["range"] = list(self.range)
        if self.role is not None:
            out["role"] = self.role
        if self.resolution is not None:
            out["resolution"] = self.resolution
        if self.writable:
            out["writable"] = True
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True, slots=True)
class FieldDevice:
    """One device as integrators see it (equality = "nothing to republish")."""

    name: str
    profile: str
    vendor: str = ""
    model: str = ""
    kind: str | None = None
    bus: str | None = None
    asset_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    location: str | None = None
    pipe_segment: str | None = None
    listening_radius_m: float | None = None
    points: tuple[PointInfo, ...] = ()
    conditions: tuple[Condition, ...] = (OFFLINE,)

    def point(self, name: str) -> PointInfo | None:
        return next((p for p in self.points if p.name == name), None)

    def condition(self, kind: str, point: object = None) -> Condition | None:
        """The slot an event of ``kind`` (on ``point``) raises or clears, if any."""
        return next((c for c in self.conditions if c.takes(kind, point)), None)

    def payload(self) -> dict[str, JsonValue]:
        """The retained ``devices/{device}`` payload (schemas/device.schema.json)."""
        return {
            "v": PAYLOAD_VERSION,
            "dev": self.name,
            "profile": self.profile,
            "vendor": self.vendor,
            "model": self.model,
            "kind": self.kind,
            "bus": self.bus,
            "asset_id": self.asset_id,
            "location": {"lat": self.lat, "lon": self.lon, "description": self.location},
            "pipe_segment": self.pipe_segment,
            "listening_radius_m": self.listening_radius_m,
            "points": [p.payload() for p in self.points],
            "alarms": [
                {
                    "id": c.id,
                    "point": c.point,
                    "raises": list(c.raises),
                    "clears": list(c.clears),
                }
                for c in self.conditions
            ],
        }


@dataclass(frozen=True, slots=True)
class Catalog:
    """The gateway's identity and its devices (in config order)."""

    site: str
    gateway: str
    agent: str
    devices: tuple[FieldDevice, ...] = ()

    def device(self, name: str) -> FieldDevice | None:
        return next((d for d in self.devices if d.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.devices)


def reported_points(profile: Profile, device: Device) -> tuple[PointInfo, ...]:
    """The points telemetry reports for ``device``: enabled in the profile and not switched
    off by its rules, less the recording protocol's handshake registers."""
    return tuple(
        PointInfo.of(p)
        for p in profile.points
        if p.enabled and device.rules.point(p.name).enabled and p.role not in _RECORDING_ROLES
    )


def build_catalog(
    config: GatewayConfig,
    profiles: Mapping[str, Profile],
    site: Site | None,
    *,
    agent: str,
    conditions: Callable[[str], Iterable[Condition]] = lambda _name: (),
    radii: Mapping[str, float] | None = None,
) -> Catalog:
    """The catalog of one config. ``profiles``: each device's profile with its overrides
    applied (``BusSetup.profiles``); ``conditions``: a device's rule slots
    (``RulesEngine.conditions``); ``radii``: listening radius per noise logger."""
    kinds = {d.name: d.kind for d in site.devices} if site is not None else {}
    radii = radii or {}
    devices = []
    for d in config.devices:
        profile = profiles[d.name]
        slots = [OFFLINE, *conditions(d.name)]
        if profile.recording is not None:
            slots.append(LEAK)
        loc = d.location
        pipe = d.pipe_segment
        if pipe is None and site is not None:
            with contextlib.suppress(KeyError):
                pipe = site.device(d.name).pipe
        devices.append(
            FieldDevice(
                name=d.name,
                profile=d.profile,
                vendor=profile.vendor,
                model=profile.model,
                kind=kinds.get(d.name) or profile.kind,
                bus=d.bus,
                asset_id=d.asset_id,
                lat=loc.lat if loc else None,
                lon=loc.lon if loc else None,
                location=loc.description if loc else None,
                pipe_segment=pipe,
                listening_radius_m=radii.get(d.name),
                points=reported_points(profile, d),
                conditions=tuple(slots),
            )
        )
    return Catalog(config.gateway.site, config.gateway.id, agent, tuple(devices))


def listening_radii(site: Site | None, names: Iterable[str]) -> dict[str, float]:
    """Each placed noise logger's listening radius along its own pipe (m, to 0.1 m), from the
    coverage model (``dsp.network``: a nominal leak heard over the logger's noise floor).

    Empty without a site or loggers; a site whose network the model refuses is logged once
    and gives no radii (the metadata then says ``null``, as before)."""
    if site is None:
        return {}
    wanted = set(names)
    loggers = [
        d.name
        for d in site.devices_of("noise_logger")
        if d.name in wanted and d.pipe is not None and d.offset_m is not None
    ]
    if not loggers:
        return {}
    # Only here: the pipe graph needs numpy, which a gateway without loggers never loads.
    from dsp.network import NetworkError
    from edge_agent.site_network import listener_for, site_network

    try:
        network, _ = site_network(site)
        return {
            name: round(network.reach(listener_for(site, name)).own_pipe_reach_m, 1)
            for name in loggers
        }
    except (NetworkError, KeyError) as exc:
        log.warning("listening radius not computed", error=str(exc))
        return {}
