"""Gateway config + device profiles -> one ``drivers.bus.BusRunner`` per bus.

Used by ``probe`` and the daemon. The config is already validated (``edge_agent.config``);
what can still go wrong here is a profile that the config names but cannot be loaded or
planned (raised as ``UsageError`` naming the config line) or a bus whose transport options
are impossible.

    setup = build_bus_setup(cfg, sink=pipeline.on_poll)  # every PollResult, one sink
    for runner in setup.runners.values():
        runner.start()
    setup.profiles["nl-01"].recording        # the recording block of a noise logger

Mapping from config to driver settings: a device's ``timeout_s`` / ``retries`` override the
bus's; ``offline_after`` and ``backoff`` come from the bus; ``inter_frame_gap_ms`` and
``turnaround_ms`` (RTU and RTU over TCP) and the line settings become the transport's wire
model (``drivers.wire``); ``overrides.points`` are applied to the profile before planning; a
device whose profile kind is in ``ALARM_KINDS`` is an alarm point, polled on its deadline
before anything else on its bus (``drivers.bus_schedule``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from drivers.bus import BusRunner, DeviceSpec, PollPolicy, ProfilePollPlan
from drivers.errors import DriverError, ProfileError
from drivers.model import PollResult
from drivers.profile import Profile, ProfileRegistry
from drivers.transport import Transport, make_transport
from edge_agent.config.model import Bus, Device, GatewayConfig, RtuBus, RtuOverTcpBus
from edge_agent.errors import UsageError

__all__ = [
    "ALARM_KINDS",
    "BusSetup",
    "build_bus_setup",
    "load_config_with_profiles",
    "load_profiles",
    "poll_policy",
    "profile_for",
    "transport_for",
]

# Profile kinds whose points raise alarms (gas, water level, pressure, open covers, pump
# station faults and wet well): their polls keep their deadlines while recordings transfer.
ALARM_KINDS = frozenset({"gas", "level", "pressure", "cover", "pump_controller"})
# A serial line's devices poll at random phases within this of their grid (``poll_policy``).
SERIAL_JITTER_S = 1.0


@dataclass(frozen=True)
class BusSetup:
    """The runners of a gateway, and each configured device's effective profile and bus."""

    runners: dict[str, BusRunner]
    profiles: dict[str, Profile] = field(default_factory=dict)  # device name -> profile
    bus_of: dict[str, str] = field(default_factory=dict)  # device name -> bus name
    devices: dict[str, Device] = field(default_factory=dict)  # device name -> config


def _where(cfg: GatewayConfig, path: str) -> str:
    line, col = cfg.marks.get(path, (None, None))
    source = cfg.source_path or "<config>"
    return f"{source}:{line}:{col}" if line is not None else source


def load_config_with_profiles(path: str | Path) -> tuple[GatewayConfig, ProfileRegistry]:
    """Load and validate the config at ``path``, and keep the profile registry its check
    parsed (shipped profiles plus ``profiles_dir``): handed to ``build_bus_setup`` it saves
    parsing every profile file a second time. Raises ``ConfigError`` (a ``UsageError``)."""
    from edge_agent.config.loader import load_config

    registries: list[ProfileRegistry] = []

    def profiles(user_dir: str | None) -> dict[str, Profile]:
        registries.append(ProfileRegistry(user_dir=user_dir))
        return {p.name: p for p in registries[-1].all()}

    cfg = load_config(path, profiles=profiles)
    return cfg, registries[-1] if registries else load_profiles(cfg)


def load_profiles(cfg: GatewayConfig) -> ProfileRegistry:
    """Shipped profiles plus the config's ``profiles_dir``. Raises ``UsageError``."""
    try:
        return ProfileRegistry(user_dir=cfg.profiles_dir)
    except ProfileError as exc:
        raise UsageError(f"{_where(cfg, 'profiles_dir')}: profiles_dir: {exc}") from exc


def profile_for(
    cfg: GatewayConfig, index: int, device: Device, registry: ProfileRegistry
) -> Profile:
    """The device's profile with its config overrides applied. Raises ``UsageError``."""
    path = f"devices[{index}]"
    try:
        profile = registry.get(device.profile)
    except ProfileError as exc:
        raise UsageError(f"{_where(cfg, path + '.profile')}: {path}.profile: {exc}") from exc
    if device.overrides.points:
        try:
            profile = profile.with_overrides(device.overrides.points)
        except ProfileError as exc:
            where = _where(cfg, path + ".overrides")
            raise UsageError(f"{where}: {path}.overrides: {exc}") from exc
    return profile


def transport_for(bus: Bus) -> Transport:
    """The (unconnected) transport of a configured bus. Raises ``UsageError``."""
    try:
        if isinstance(bus, RtuBus):
            from drivers.transports.rtu import Rs485Settings

            return make_transport(
                "rtu",
                port=bus.port,
                **_line(bus),
                rs485=Rs485Settings(
                    enabled=bus.rs485.enabled,
                    rts_level_for_tx=bus.rs485.rts_level_for_tx,
                    rts_level_for_rx=bus.rs485.rts_level_for_rx,
                ),
            )
        if isinstance(bus, RtuOverTcpBus):
            return make_transport(bus.type, host=bus.host, port=bus.port, **_line(bus))
        return make_transport(bus.type, host=bus.host, port=bus.port, timeout_s=bus.timeout_s)
    except (DriverError, ValueError) as exc:
        raise UsageError(f"bus {bus.name}: {exc}") from exc


def _line(bus: RtuBus | RtuOverTcpBus) -> dict[str, object]:
    """A serial bus's line settings and timings as the RTU transports take them."""
    line: dict[str, object] = {
        "baudrate": bus.baudrate,
        "parity": bus.parity,
        "stopbits": bus.stopbits,
        "bytesize": bus.bytesize,
        "timeout_s": bus.timeout_s,
    }
    if bus.inter_frame_gap_ms is not None:
        line["inter_frame_gap_s"] = bus.inter_frame_gap_ms / 1000.0
    if bus.turnaround_ms is not None:
        line["turnaround_s"] = bus.turnaround_ms / 1000.0
    return line


def poll_policy(bus: Bus, device: Device) -> PollPolicy:
    """Timeouts, retries, offline threshold and backoff of ``device`` on ``bus``; its phase.

    On a serial line (``rtu``, ``rtu_over_tcp``) each device polls at a random phase within
    ``SERIAL_JITTER_S`` of its interval's grid: every request waits for the line anyway, and
    devices due at once make a long alarm chain that starts early and pushes transfers aside
    (``benchmarks/bus_time.py``: alarm lateness p99 0.82 -> 1.30 s at 38400 baud with one
    phase). On Modbus TCP the devices of one interval share one phase: the buses' answers
    share the daemon's wake-ups (``drivers.bus``; docs/benchmarks.md, daemon footprint).
    """
    serial = isinstance(bus, RtuBus | RtuOverTcpBus)
    return PollPolicy(
        timeout_s=device.timeout_s if device.timeout_s is not None else bus.timeout_s,
        retries=device.retries if device.retries is not None else bus.retries,
        offline_after=bus.offline_after,
        backoff_initial_s=bus.backoff.initial_s,
        backoff_max_s=bus.backoff.max_s,
        jitter_s=SERIAL_JITTER_S if serial else 0.0,
    )


def build_bus_setup(
    cfg: GatewayConfig,
    *,
    registry: ProfileRegistry | None = None,
    only_devices: Collection[str] | None = None,
    sink: Callable[[PollResult], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> BusSetup:
    """One runner per bus that has devices (``only_devices``: just those, e.g. for probe).

    ``sink`` gets every poll's ``PollResult``; ``clock`` (monotonic, scheduling) and ``wall``
    (epoch seconds, reading timestamps) go to every runner: the demo stamps readings with
    simulated time.

    Raises ``UsageError`` naming the config line for a profile that cannot be loaded,
    overridden or planned, or a bus whose transport cannot be built.
    """
    registry = registry or load_profiles(cfg)
    buses = {bus.name: bus for bus in cfg.buses}
    specs: dict[str, list[DeviceSpec]] = {}
    setup = BusSetup(runners={})
    for index, device in enumerate(cfg.devices):
        if only_devices is not None and device.name not in only_devices:
            continue
        bus = buses[device.bus]  # the loader has checked the reference
        profile = profile_for(cfg, index, device, registry)
        try:
            plan = ProfilePollPlan.for_profile(profile)
        except DriverError as exc:
            where = _where(cfg, f"devices[{index}].profile")
            raise UsageError(f"{where}: devices[{index}]: {profile.name}: {exc}") from exc
        spec = DeviceSpec(
            name=device.name,
            unit=device.unit_id,
            plan=plan,
            interval_s=device.poll_interval_s,
            policy=poll_policy(bus, device),
            alarm=profile.kind in ALARM_KINDS,
        )
        specs.setdefault(bus.name, []).append(spec)
        setup.profiles[device.name] = profile
        setup.bus_of[device.name] = bus.name
        setup.devices[device.name] = device
    for bus_name, devices in specs.items():
        transport = transport_for(buses[bus_name])
        transport.label(bus_name, {spec.unit: spec.name for spec in devices})
        setup.runners[bus_name] = BusRunner(
            bus_name,
            transport,
            devices,
            sink=sink,
            clock=clock,
            wall=wall,
        )
    return setup
