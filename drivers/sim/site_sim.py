"""Serve every device of a site as a Modbus unit, with dynamics, on a shared sim clock.

``SiteSimulator(site, speed=60)`` builds one ``DeviceModel`` per site device (its profile's
register map, ``drivers.sim.devices`` / ``noise_logger``) and one ``SimServer`` per sim bus
(``drivers.sim.server``): loopback TCP on the site's ports (or ``port_base + i``, or free
ports with ``port_base=0``), RTU over TCP, or RTU on a serial pty pair made by socat
(``transport="pty"``: the gateway opens the ``endpoints[bus].path`` end). A tick task
advances the models every ``tick_s`` wall seconds and re-encodes their registers; scenario
dropouts (and ``set_offline``) remove a unit from its bus, so it goes silent like an unplugged
device, and put it back afterwards.

    sim = SiteSimulator(load_site("seeds/site.yaml"), speed=60)
    await sim.start()
    sim.endpoints["water"]            # Endpoint(bus="water", kind="tcp", host=..., port=15020)
    sim.clock.time()                  # epoch seconds in sim time: share it with the daemon
    sim.set_fault("gd-01", 0b1)       # OR bits into the device's status word
    sim.set_offline("lv-02", True)
    await sim.stop()

Tests drive it without the tick task: ``SiteSimulator(site, clock=ManualClock())``,
``clock.advance(60)``, ``sim.step()``.
"""

from __future__ import annotations

import asyncio
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from drivers.codec import CodecError
from drivers.errors import ProfileError
from drivers.profile import ProfileRegistry
from sitemodel import Site, SiteDevice

from .clock import SimClock
from .devices import (
    CoverModel,
    DeviceModel,
    GasModel,
    LevelModel,
    PressureModel,
    PumpStationModel,
    RainGaugeModel,
    World,
    settle,
)
from .noise_logger import NoiseLoggerModel
from .ptys import PtyPair
from .scenarios import Scenarios, read_scenarios
from .server import SimServer

__all__ = ["Endpoint", "SimTransport", "SiteSimulator"]

SimTransport = Literal["tcp", "rtu_over_tcp", "pty"]
TICK_WALL_S = 0.1  # dynamics move at most speed * 0.1 s per step; cheap at this rate
PTY_BAUDRATE = 19200

MODEL_BY_KIND: dict[str, type[DeviceModel]] = {
    "noise_logger": NoiseLoggerModel,
    "level": LevelModel,
    "rain": RainGaugeModel,
    "gas": GasModel,
    "pressure": PressureModel,
    "pump_controller": PumpStationModel,
    "cover": CoverModel,
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a gateway reaches one simulated bus: ``host``/``port`` (tcp, rtu_over_tcp)
    or ``path`` (pty: the client end of the socat pair; RTU at ``baudrate``)."""

    bus: str
    kind: Literal["tcp", "rtu_over_tcp", "rtu"]
    host: str | None = None
    port: int | None = None
    path: str | None = None
    baudrate: int | None = None

    def __str__(self) -> str:
        if self.path is not None:
            return f"rtu {self.path} @ {self.baudrate} baud"
        return f"{self.kind} {self.host}:{self.port}"


class SiteSimulator:
    """Every device of ``site`` served on its sim bus (see the module docstring).

    ``speed`` compresses time (ignored when ``clock`` is given); ``seed`` makes the dynamics'
    noise and the recordings reproducible; ``profiles`` defaults to the shipped ones;
    ``scenarios`` default to the site file's (``read_scenarios``).
    Raises ``drivers.errors.ProfileError`` from the constructor when a device names an unknown
    profile or one of another kind (``load_site(path, profiles=...)`` reports both with a
    line and column), ``sitemodel.SiteError`` for bad scenarios.
    """

    def __init__(
        self,
        site: Site,
        *,
        speed: float = 1.0,
        transport: SimTransport = "tcp",
        seed: int = 0,
        clock: SimClock | None = None,
        port_base: int | None = None,
        host: str = "127.0.0.1",
        pty_dir: str | Path | None = None,
        profiles: ProfileRegistry | None = None,
        scenarios: Scenarios | None = None,
        tick_s: float = TICK_WALL_S,
        executor_workers: int = 2,
    ) -> None:
        if transport not in ("tcp", "rtu_over_tcp", "pty"):
            raise ValueError(f"unknown transport {transport!r} (tcp, rtu_over_tcp, pty)")
        self.site = site
        self.scenarios = scenarios if scenarios is not None else read_scenarios(site)
        self.clock = clock if clock is not None else SimClock(speed)
        self.transport: SimTransport = transport
        self.seed = seed
        self.host = host
        self.port_base = port_base
        self.pty_dir = Path(pty_dir) if pty_dir is not None else None
        self.tick_s = tick_s
        self.world = World(site, self.scenarios, epoch_start=self.clock.epoch_start)
        self._workers = executor_workers
        self._executor: ThreadPoolExecutor | None = self._new_executor()
        self._instant_cache: float | None = None
        registry = profiles if profiles is not None else ProfileRegistry()
        self.models: dict[str, DeviceModel] = {}
        for index, device in enumerate(site.devices):
            self.models[device.name] = self._build(device, registry, index)
        self.servers: dict[str, SimServer] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self._ptys: dict[str, PtyPair] = {}
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._offline_manual: set[str] = set()
        self._offline_now: set[str] = set()
        self._last_t = 0.0
        self._task: asyncio.Task | None = None
        self.step()

    def _build(self, device: SiteDevice, registry: ProfileRegistry, index: int) -> DeviceModel:
        profile = registry.get(device.profile)
        if profile.kind != device.kind:
            raise ProfileError(
                f"{device.name}: profile {profile.name!r} is a {profile.kind} profile, "
                f"not {device.kind}"
            )
        cls = MODEL_BY_KIND[device.kind]
        rng = np.random.default_rng([self.seed, index])
        if cls is NoiseLoggerModel:
            return NoiseLoggerModel(
                device,
                profile,
                self.world,
                rng,
                seed=self.seed,
                instant=self._instant,
                executor=self._executor,
            )
        return cls(device, profile, self.world, rng)

    def _new_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self._workers, thread_name_prefix="sim-render")

    # -- time -------------------------------------------------------------------------------
    def _instant(self) -> float:
        """The sim time of the request being handled; one value for a whole broadcast.

        pymodbus applies a broadcast to every unit within one event-loop step; caching the
        clock until the next step gives every logger on the bus the same start instant, as a
        broadcast frame reaching them all at once does (at speed 60 even 20 us would be 1 ms).
        """
        if self._instant_cache is None:
            self._instant_cache = self.clock.elapsed()
            try:
                asyncio.get_running_loop().call_soon(self._clear_instant)
            except RuntimeError:  # no loop (tests driving the models directly)
                self._instant_cache = None
                return self.clock.elapsed()
        return self._instant_cache

    def _clear_instant(self) -> None:
        self._instant_cache = None

    def step(self) -> None:
        """Advance every model to the clock's time, re-encode registers, apply dropouts."""
        t = self.clock.elapsed()
        dt = max(0.0, t - self._last_t)
        self._last_t = t
        settle(self.models, t, dt)
        for model in self.models.values():
            model.refresh()
        self._apply_offline(t)

    # -- what the demo and tests change ----------------------------------------------------
    def set_fault(self, device: str, bits: int) -> None:
        """Set the on-demand fault bits of ``device``'s status word (0 clears them).

        Raises ``KeyError`` for an unknown device, ``ValueError`` for bits the word cannot
        hold or a device whose profile has no status word.
        """
        model = self._model(device)
        status = [
            p for p in model.profile.points if p.role == "status" and p.type.startswith("bit")
        ]
        if not status:
            raise ValueError(f"{device}: profile {model.profile.name} has no status word")
        width = 16 * status[0].register_count
        if not 0 <= int(bits) < 1 << width:
            raise ValueError(f"{device}: fault bits {bits} do not fit a {width}-bit status word")
        model.fault_bits = int(bits)
        model.refresh()

    def set_offline(self, device: str, offline: bool) -> None:
        """Take ``device`` off its bus (silent) or put it back. Raises ``KeyError``."""
        self._model(device)
        if offline:
            self._offline_manual.add(device)
        else:
            self._offline_manual.discard(device)
        self._apply_offline(self.clock.elapsed())

    def force(self, device: str, point: str, value: object | None) -> None:
        """Lay ``value`` over a point's dynamics (None releases it); e.g. ``pump2_fault``.

        Raises ``KeyError`` (device), ``ProfileError`` (point) or ``CodecError`` (a value
        the point cannot hold; nothing is changed then).
        """
        model = self._model(device)
        model.profile.point(point)  # raises ProfileError naming the known points
        previous = model.forced.get(point)
        if value is None:
            model.forced.pop(point, None)
        else:
            model.forced[point] = value  # type: ignore[assignment]
        try:
            model.refresh()
        except CodecError:
            if previous is None:
                model.forced.pop(point, None)
            else:
                model.forced[point] = previous
            model.refresh()
            raise

    def _model(self, device: str) -> DeviceModel:
        try:
            return self.models[device]
        except KeyError:
            raise KeyError(f"no device {device!r} on site {self.site.site!r}") from None

    def offline(self) -> frozenset[str]:
        return frozenset(self._offline_now)

    def _apply_offline(self, t: float) -> None:
        want = set(self._offline_manual)
        want |= {name for name in self.models if self.world.dropped(name, t)}
        for name in want ^ self._offline_now:
            model = self.models[name]
            server = self.servers.get(model.device.bus)
            if server is None:
                continue
            if name in want:
                server.remove_unit(model.device.unit_id)
            else:
                server.add_unit(model.device.unit_id, model.store)
        self._offline_now = want  # without servers yet: applied when each bus starts

    # -- lifecycle --------------------------------------------------------------------------
    def _port_for(self, index: int, default: int) -> int:
        if self.port_base is None:
            return default
        return 0 if self.port_base == 0 else self.port_base + index

    async def start(self) -> None:
        """Open every bus's endpoint and start ticking. Raises ``OSError`` when a port is in
        use or a pty cannot be made (everything opened so far is closed again)."""
        if self._task is not None:
            return
        if self._executor is None:  # started again after a stop
            self._executor = self._new_executor()
            for model in self.models.values():
                if isinstance(model, NoiseLoggerModel):
                    model.executor = self._executor
        try:
            for index, bus in enumerate(self.site.sim_buses):
                await self._start_bus(index, bus.name, bus.port)
        except BaseException:
            await self.stop()
            raise
        self.step()
        self._task = asyncio.create_task(self._tick(), name="site-sim-tick")

    async def _start_bus(self, index: int, name: str, port: int) -> None:
        if self.transport == "pty":
            if self.pty_dir is None:
                self._tmp = self._tmp or tempfile.TemporaryDirectory(prefix="edge-agent-sim-")
                directory = Path(self._tmp.name)
            else:
                directory = self.pty_dir
            pair = PtyPair(directory, server_name=f"{name}-sim", client_name=name)
            await asyncio.to_thread(pair.start)
            self._ptys[name] = pair
            server = SimServer("rtu", serial_port=pair.server_path, baudrate=PTY_BAUDRATE)
        else:
            server = SimServer(self.transport, host=self.host, port=self._port_for(index, port))
        for model in self.models.values():
            if model.device.bus == name and model.device.name not in self._offline_now:
                server.add_unit(model.device.unit_id, model.store)
        by_unit = {m.device.unit_id: m for m in self.models.values() if m.device.bus == name}
        server.on_write = self._write_hook(by_unit)
        server.on_read = self._read_hook(by_unit)
        await server.start()
        self.servers[name] = server
        if self.transport == "pty":
            path = self._ptys[name].client_path
            self.endpoints[name] = Endpoint(name, "rtu", path=path, baudrate=PTY_BAUDRATE)
        else:
            self.endpoints[name] = Endpoint(name, self.transport, host=self.host, port=server.port)

    def _write_hook(self, by_unit: dict[int, DeviceModel]):
        def on_write(unit_id: int, function: int, address: int, values) -> int | None:
            model = by_unit.get(unit_id)
            if model is None:
                return None
            model.t = self.clock.elapsed()
            return model.write(function, address, values)

        return on_write

    def _read_hook(self, by_unit: dict[int, DeviceModel]):
        def on_read(unit_id: int, function: int, address: int, count: int) -> int | None:
            model = by_unit.get(unit_id)
            if model is not None:
                model.on_read(function, address, count)
            return None

        return on_read

    async def _tick(self) -> None:
        while True:
            self.step()
            await asyncio.sleep(self.tick_s)

    @property
    def error(self) -> BaseException | None:
        """Why the tick task ended, if it ended by itself (a bug in a model): the devices stop
        moving then, so ``simulate`` checks this and exits 1 naming it."""
        task = self._task
        if task is None or not task.done() or task.cancelled():
            return None
        return task.exception()

    async def stop(self) -> None:
        """Stop ticking, close every endpoint and pty, end the render threads (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # a tick that failed was already reported through ``error``; stop must still close
            await asyncio.gather(task, return_exceptions=True)
        servers, self.servers = self.servers, {}
        for server in servers.values():
            await server.stop()
        for pair in self._ptys.values():
            await asyncio.to_thread(pair.stop)
        self._ptys.clear()
        self.endpoints.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
            for model in self.models.values():  # stepped after a stop: render inline
                if isinstance(model, NoiseLoggerModel):
                    model.executor = None

    async def __aenter__(self) -> SiteSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what the simulate command prints ----------------------------------------------------
    def status_line(self) -> str:
        """One line: sim time, rain, wet wells, gas, active leaks, offline devices, requests."""
        t = self.clock.elapsed()
        hh, rem = divmod(int(t), 3600)
        parts = [f"t={hh:02d}:{rem // 60:02d}:{rem % 60:02d} (x{self.clock.speed:g})"]
        parts.append(f"rain {self.world.rain_mm_per_h(t):.1f} mm/h")
        for name, station in self.world.stations.items():
            parts.append(f"{name} well {station.level_mm:.0f} mm, {sum(station.running)} pumps")
        for name, model in self.models.items():
            if isinstance(model, LevelModel) and model.params.station is None:
                parts.append(f"{name} {model.level_mm:.0f} mm")
            elif isinstance(model, GasModel):
                lel = model.device.sim.background_lel + self.world.gas_lel(name, t)  # type: ignore[union-attr]
                parts.append(f"{name} {lel:.1f} %LEL")
        leaks = [lk.id for lk in self.scenarios.leaks if lk.active(t)]
        parts.append(f"leaks {','.join(leaks) or '-'}")
        parts.append(f"offline {','.join(sorted(self._offline_now)) or '-'}")
        parts.append(f"requests {sum(s.requests for s in self.servers.values())}")
        return " | ".join(parts)
