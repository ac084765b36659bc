"""Thin adapters between the daemon and the packages it wires: config, outbox, uplink, bus
runners, rules, the leak tracker and the noise-logger recorder.

``app.Daemon`` holds the order of things; this module knows each package's API. A
``Runtime`` is everything built from one config that a SIGHUP reload replaces: bus runners,
rules engine, leak pipeline. The outbox and the uplink outlive reloads.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.daemon.state import DeviceStatus, UplinkStatus
from edge_agent.errors import RuntimeFailure, UsageError
from edge_agent.events import EventDraft, TelemetryDraft
from edge_agent.logs import get_logger

__all__ = [
    "Runtime",
    "build_runtime",
    "build_uplink",
    "check_reloadable",
    "load",
    "open_outbox",
    "prepare_state_dir",
    "site_for",
    "started_event",
    "state_dir_for",
]

log = get_logger("edge_agent.daemon")

TRACKER_STATE_FILE = "leak-trackers.json"


# -- config --------------------------------------------------------------------------------


def load(path: Path, options: Any = None) -> tuple[Any, Any]:
    """The validated config and the profile registry its check parsed (for the bus setup).
    Raises ``ConfigError`` (a UsageError, one line per problem)."""
    from edge_agent.bus_setup import load_config_with_profiles

    return load_config_with_profiles(path)


def check_reloadable(old: Any, new: Any) -> None:
    """Raises UsageError when ``new`` changes what only a restart may change."""
    if old is None:
        return
    changed = [name for name in ("gateway", "storage") if getattr(old, name) != getattr(new, name)]
    if changed:
        raise UsageError(
            f"{new.source_path}: {', '.join(changed)} changed: needs a restart "
            "(systemctl restart edge-agent), not a reload"
        )


# -- state and outbox ----------------------------------------------------------------------


def state_dir_for(config: Any, options: Any) -> Path:
    override = getattr(options, "state_dir", None)
    return Path(override) if override is not None else Path(config.storage.state_dir)


def prepare_state_dir(config: Any, options: Any) -> Path:
    """Create the state directory (0700) if needed. Raises RuntimeFailure when it cannot be
    created (a wrong path: the usual cause is not running under systemd's StateDirectory=).

    A directory that exists but refuses writes (read-only file system, full disk) is not fatal:
    polling goes on and the outbox holds alarms in memory until it can write (degraded)."""
    path = state_dir_for(config, options)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeFailure(
            f"state directory {path}: cannot create: {exc.strerror or exc} (see --state-dir)"
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        log.error("state directory not writable: outbox degraded until it is", path=str(path))
    return path


def open_outbox(config: Any, state_dir: Path, clock: Any = None) -> Any:
    """The outbox in ``state_dir``; ``clock`` (``.time()``) stamps acceptance (sim time in
    the demo). Raises OutboxError (RuntimeFailure)."""
    from edge_agent.clock import SyncClock
    from edge_agent.outbox import Outbox, OutboxSettings

    settings = OutboxSettings.from_config(config.storage, state_dir)
    sync = SyncClock(time_fn=clock.time) if clock is not None else None
    return Outbox(settings, config.gateway.id, clock=sync, wait_for_disk=True)


def started_event(config: Any, ts: float) -> EventDraft:
    from edge_agent import __version__

    return EventDraft.of(
        config.gateway.id,
        "gateway.started",
        ts,
        version=__version__,
        devices=len(config.devices),
        buses=len(config.buses),
    )


# -- uplink --------------------------------------------------------------------------------


class UplinkAdapter:
    """The uplink as the daemon sees it: start/stop/kick, status, reload."""

    def __init__(self, uplink: Any, options: Any) -> None:
        self.uplink = uplink
        self.options = options

    async def start(self) -> None:
        await self.uplink.start()

    async def stop(self, drain_s: float) -> None:
        await self.uplink.stop(drain_s=drain_s)

    def kick(self) -> None:
        self.uplink.kick()

    def beat_if_alive(self, beat: Any) -> None:
        self.uplink.beat_if_alive(beat)

    def status(self) -> UplinkStatus:
        s = self.uplink.status()
        return UplinkStatus(
            state=s.state, url=s.url, last_error=s.last_error, published=s.published
        )

    def reconfigure(self, config: Any, site: Any = None) -> None:
        from edge_agent.uplink import UplinkSettings

        settings = UplinkSettings.from_config(config, mqtt_url=self.options.mqtt_url)
        if settings is not None:
            self.uplink.reconfigure(settings, device_meta(config, site))


def device_meta(config: Any, site: Any = None) -> list[Any]:
    """Retained ``devices/{device}`` metadata: config placement plus what the site knows."""
    from edge_agent.uplink import DeviceMeta

    kinds: dict[str, str] = {}
    if site is not None:
        kinds = {d.name: d.kind for d in site.devices}
    return [DeviceMeta.from_config(d, kind=kinds.get(d.name)) for d in config.devices]


def build_uplink(config: Any, options: Any, outbox: Any, io_executor: Any, site: Any = None):
    """The uplink, or None when no broker is configured (outbox only). Raises UsageError for
    a bad URL or an unreadable password."""
    from edge_agent.uplink import Uplink, UplinkSettings

    settings = UplinkSettings.from_config(config, mqtt_url=options.mqtt_url)
    if settings is None:
        return None
    uplink = Uplink(settings, outbox, device_meta(config, site), executor=io_executor)
    return UplinkAdapter(uplink, options)


# -- runtime: buses, rules, leak pipeline ----------------------------------------------------


@dataclass
class Runtime:
    """What one config builds and a reload replaces."""

    runners: dict[str, Any]  # bus name -> drivers.bus.BusRunner
    rules: Any
    telemetry: Any
    leak: Any  # edge_agent.daemon.leak.LeakPipeline | None
    device_buses: dict[str, str]
    poll_interval_s: dict[str, float]
    tasks: list[Any] = field(default_factory=list)
    _telemetry: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def bus_names(self) -> list[str]:
        return list(self.runners)

    def bus_deadline(self, bus: str) -> float:
        intervals = [self.poll_interval_s[d] for d, b in self.device_buses.items() if b == bus]
        return 3.0 * max(intervals, default=0.0)

    def device_status(self) -> list[DeviceStatus]:
        rows: list[DeviceStatus] = []
        for bus, runner in self.runners.items():
            for c in runner.coordinators.values():
                state = c.state
                rows.append(
                    DeviceStatus(
                        name=c.name,
                        bus=bus,
                        online=None if state == "unknown" else state == "online",
                        last_reading_ts=c.last_ok_ts,
                        polls_ok=c.polls_ok,
                        polls_failed=c.polls_failed,
                        consecutive_failures=c.failures,
                        last_error=c.last_error if c.failures else None,
                    )
                )
        return rows

    async def start(self, stop_event: Any) -> None:
        import asyncio

        for runner in self.runners.values():
            runner.start().add_done_callback(_report_crash)
        if self.leak is not None:
            task = asyncio.ensure_future(self.leak.run(stop_event))
            task.add_done_callback(_report_crash)
            self.tasks.append(task)

    async def stop(self) -> None:
        import asyncio
        import contextlib

        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
        for runner in self.runners.values():
            await runner.stop()

    # rules ------------------------------------------------------------------------------

    def on_reading(self, reading: Any) -> list[Any]:
        """Rules now; telemetry is collected and sent as one record per poll."""
        if self.telemetry is not None and self.telemetry.should_send(reading):
            self._telemetry.setdefault(reading.device, {})[reading.point] = _plain(reading.value)
        return list(self.rules.on_reading(reading)) if self.rules is not None else []

    def on_poll_ok(self, device: str, ts: float) -> list[Any]:
        out: list[Any] = list(self.rules.on_poll_ok(device, ts)) if self.rules is not None else []
        values = self._telemetry.pop(device, None)
        if values:
            out.append(TelemetryDraft(dev=device, ts=ts, values=values))
        return out

    def on_poll_failed(self, device: str, reason: str, ts: float) -> list[Any]:
        self._telemetry.pop(device, None)
        if self.rules is None:
            return []
        return list(self.rules.on_poll_failed(device, reason, ts))


def _report_crash(task: Any) -> None:
    """A loop task that ended with an exception is a bug: log it with its traceback. Its
    progress beats stop, so the watchdog is withheld and systemd restarts the daemon."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("loop crashed", task=task.get_name(), exc_info=exc)


def _plain(value: Any) -> Any:
    """A JSON-able telemetry value (NaN/inf become None: JSON has no spelling for them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def site_for(config: Any, options: Any) -> Any:
    """The site the config names (``options.site`` overrides it: the demo's), or None.
    Raises UsageError for a site file that cannot be read or is not valid."""
    if getattr(options, "site", None) is not None:
        return options.site
    if config.site_file is None:
        return None
    from drivers.errors import DriverError
    from drivers.site import load_site

    try:
        return load_site(config.site_file)
    except DriverError as exc:  # SiteError: file:line:col already in the message
        raise UsageError(str(exc)) from exc


def build_runtime(config: Any, site: Any, daemon: Any, options: Any) -> Runtime:
    """Bus runners (with the daemon's callbacks), rules, telemetry filter and leak pipeline
    for ``config`` and its ``site`` (``site_for``). Raises UsageError for a config the parts
    refuse."""
    import time

    from edge_agent.bus_setup import build_bus_setup
    from edge_agent.rules import DeviceInfo, RulesEngine, TelemetryFilter

    clock = daemon.clock
    # Readings are stamped with the daemon's wall clock (sim time in the demo).
    setup = build_bus_setup(
        config,
        registry=daemon.profiles,
        on_reading=daemon.on_reading,
        on_poll_ok=daemon.on_poll_ok,
        on_poll_failed=daemon.on_poll_failed,
        clock=time.monotonic,
        wall=clock.time,
    )
    profiles = setup.profiles
    runners: dict[str, Any] = dict(setup.runners)
    kinds = {d.name: d.kind for d in site.devices} if site is not None else {}
    infos = [
        DeviceInfo(
            d.name,
            profiles[d.name],
            kind=kinds.get(d.name),
            rules=d.rules,
            offline_after=config.bus(d.bus).offline_after,
        )
        for d in config.devices
    ]
    rules = RulesEngine(config.rules, infos, clock=clock.time)
    telemetry = TelemetryFilter(config.rules, infos)
    runtime = Runtime(
        runners=runners,
        rules=rules,
        telemetry=telemetry,
        leak=None,
        device_buses={d.name: d.bus for d in config.devices},
        poll_interval_s={d.name: d.poll_interval_s for d in config.devices},
    )
    runtime.leak = build_leak_pipeline(config, site, profiles, runners, daemon, options)
    return runtime


class _Progressing:
    """A transport that reports each completed request: a long block transfer (minutes on a
    9600-baud bus) is progress for the watchdog, request by request, not a silent stretch."""

    def __init__(self, inner: Any, on_progress: Any) -> None:
        self._inner = inner
        self._on_progress = on_progress

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def read(self, *args: Any, **kwargs: Any) -> Any:
        result = await self._inner.read(*args, **kwargs)
        self._on_progress()
        return result

    async def write_registers(self, *args: Any, **kwargs: Any) -> Any:
        result = await self._inner.write_registers(*args, **kwargs)
        self._on_progress()
        return result

    async def broadcast_registers(self, *args: Any, **kwargs: Any) -> Any:
        result = await self._inner.broadcast_registers(*args, **kwargs)
        self._on_progress()
        return result


class BusRecorder:
    """Gets recordings off the bus runners: one broadcast start per bus for a synchronised
    job (every logger on the bus starts at the same instant), unicast otherwise. Buses are
    recorded in parallel; transfers interleave with polling (``shared_transport``)."""

    def __init__(
        self,
        runners: dict[str, Any],
        loggers: dict[str, tuple[str, int, Any]],
        duration_s: int,
        clock: Any,
        beat: Any = None,
    ) -> None:
        self.runners = runners
        self.loggers = loggers  # name -> (bus, unit id, RecordingBlock)
        self.duration_s = duration_s
        self.clock = clock
        self.beat = beat or (lambda bus: None)

    async def record(self, devices: tuple[str, ...], *, synchronised: bool) -> dict[str, Any]:
        import asyncio

        by_bus: dict[str, list[str]] = {}
        for name in devices:
            by_bus.setdefault(self.loggers[name][0], []).append(name)
        results = await asyncio.gather(
            *(self._record_bus(bus, names, synchronised) for bus, names in by_bus.items())
        )
        out: dict[str, Any] = {}
        for part in results:
            out.update(part)
        return out

    async def _record_bus(self, bus: str, names: list[str], synchronised: bool) -> dict[str, Any]:
        from drivers.errors import DriverError
        from drivers.noise_logger import record, record_broadcast

        transport = _Progressing(self.runners[bus].shared_transport(), lambda: self.beat(bus))
        block = self.loggers[names[0]][2]
        timing = {"wall": self.clock.time, "sleep": self.clock.sleep}
        out: dict[str, Any] = {}
        if synchronised and len(names) > 1:
            units = {self.loggers[n][1]: n for n in names}
            errors: dict[int, DriverError] = {}
            try:
                got = await record_broadcast(
                    transport, units, block, self.duration_s, errors=errors, **timing
                )
            except DriverError as exc:
                return {n: str(exc) for n in names}
            finally:
                self.beat(bus)
            for unit, name in units.items():
                out[name] = got[unit] if unit in got else str(errors.get(unit, "no recording"))
            return out
        for name in names:
            _, unit, blk = self.loggers[name]
            try:
                out[name] = await record(
                    transport, unit, blk, self.duration_s, device=name, **timing
                )
            except DriverError as exc:
                out[name] = str(exc)
            self.beat(bus)
        return out


def _save_tracker_state(state_file: Path, data: dict[str, Any]) -> None:
    """Atomically replace the leak tracker state file (logs, never raises, on OSError)."""
    tmp = state_file.with_name(state_file.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data))
        os.replace(tmp, state_file)
    except OSError as exc:
        log.warning("cannot save leak tracker state", error=str(exc), path=str(state_file))


def build_leak_pipeline(
    config: Any,
    site: Any,
    profiles: dict[str, Any],
    runners: dict[str, Any],
    daemon: Any,
    options: Any,
) -> Any:
    """The leak pipeline over the config's noise loggers (profiles with a ``recording``
    block), or None when there are none."""
    from edge_agent.daemon.analysis import DEFAULT_MATERIAL, TrackerAnalysis
    from edge_agent.daemon.leak import LeakPipeline
    from edge_agent.daemon.schedule import NightWindow, RecordingScheduler

    loggers = [d for d in config.devices if profiles[d.name].recording is not None]
    if not loggers:
        return None
    leak_cfg = config.leak_detection
    leak_clock = options.leak_clock if options.leak_clock is not None else daemon.clock
    placement: dict[str, tuple[str, str | None]] = {}
    for d in loggers:
        pipe = d.pipe_segment
        if site is not None and pipe is None:
            with contextlib.suppress(KeyError):
                pipe = site.device(d.name).pipe
        material = DEFAULT_MATERIAL
        if site is not None and pipe is not None:
            with contextlib.suppress(KeyError):
                material = site.pipe(pipe).material
        placement[d.name] = (material, pipe)
    analysis = TrackerAnalysis(
        leak_cfg,
        placement,
        noise_floor_db=site.noise_floor_db if site is not None else 0.0,
        now=leak_clock.time(),
    )
    state_file = Path(daemon.state_dir) / TRACKER_STATE_FILE if daemon.state_dir else None
    if state_file is not None and state_file.exists():
        try:
            restored = analysis.restore(json.loads(state_file.read_text()))
            log.info("leak trackers restored", loggers=len(restored), path=str(state_file))
        except (OSError, ValueError) as exc:
            log.warning(
                "leak tracker state not restored, starting fresh",
                error=str(exc),
                path=str(state_file),
            )

    async def persist() -> None:
        if state_file is None:
            return
        import asyncio

        # The trackers are read on the loop (they change there); dumping and writing the
        # file run on the outbox thread.
        data = analysis.to_json()
        await asyncio.get_running_loop().run_in_executor(
            daemon.io_executor, _save_tracker_state, state_file, data
        )

    start_min, end_min = leak_cfg.night_window_minutes()
    scheduler = RecordingScheduler(
        [d.name for d in loggers],
        window=NightWindow(start_min, end_min),
        interval_s=leak_cfg.recording_interval_s,
    )
    recorder = BusRecorder(
        runners,
        {d.name: (d.bus, d.unit_id, profiles[d.name].recording) for d in loggers},
        leak_cfg.duration_s,
        daemon.clock,
        beat=lambda bus: (daemon.progress.beat(f"bus:{bus}"), daemon.progress.beat("leak")),
    )
    locator = None
    pairs: list[tuple[str, str]] = []
    if site is not None:
        from edge_agent.daemon.locate import SiteLocator
        from edge_agent.site_network import logger_pairs

        names = {d.name for d in loggers}
        pairs = [p for p in logger_pairs(site) if p[0] in names and p[1] in names]
        locator = SiteLocator(site)
    return LeakPipeline(
        scheduler=scheduler,
        recorder=recorder,
        analysis=analysis,
        locator=locator,
        pairs=pairs,
        emit=daemon.emit_locked,
        clock=leak_clock,
        executor=daemon.dsp_executor,
        beat=lambda: daemon.progress.beat("leak"),
        persist=persist,
    )
