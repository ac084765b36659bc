"""``Runtime``: what one config builds and a SIGHUP replaces: the bus runners (each handing
every ``PollResult`` to the runtime's one sink), the ``Pipeline`` of that config's rules, the
leak pipeline over its noise loggers. The outbox, its writer and the uplink outlive it.

Built from the config, its site and profiles and explicit services (``RuntimeDeps``). A bus
loop beats on every finished poll; ``all_polled`` is set once every device has been polled
once (answered or not): the daemon is ready then.

A reload builds the new runtime next to the running one (building touches no port and
starts nothing, so a config the parts refuse is refused with the old one still running),
then ``take_over`` hands it what the old one knew (``edge_agent.daemon.reload``): a bus whose
settings and devices are all as before keeps its runner, polling on without a pause (its
port is not reopened); otherwise each device polled as before keeps its coordinator; rules,
telemetry filter and leak pipeline continue from the old ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Collection
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from drivers.bus import BusRunner
from drivers.model import DeviceStatus, PollResult
from drivers.profile import Profile, ProfileRegistry
from edge_agent.bus_setup import build_bus_setup
from edge_agent.clock import Clock
from edge_agent.config.model import GatewayConfig
from edge_agent.daemon.analysis_jobs import DEFAULT_MATERIAL, TRACKER_STATE_VERSION, AnalysisSetup
from edge_agent.daemon.leak import LeakPipeline, LoggerStatus
from edge_agent.daemon.pipeline import Emit, Pipeline
from edge_agent.daemon.recorder import BusRecorder, LoggerPlace
from edge_agent.daemon.reload import DeviceChanges, device_identities
from edge_agent.daemon.schedule import NightWindow, RecordingScheduler
from edge_agent.daemon.schedule_state import ScheduleSaver, load_schedule_state
from edge_agent.daemon.spool import SPOOL_DIR_NAME, RecordingSpool
from edge_agent.daemon.systemd import ProgressTracker
from edge_agent.daemon.worker import AnalysisWorker, WorkerSettings, WorkerStats
from edge_agent.events import JsonValue
from edge_agent.logs import get_logger
from edge_agent.rules import DeviceInfo, RulesEngine, TelemetryFilter
from edge_agent.site_network import logger_pairs
from sitemodel import Site

__all__ = ["BUS_DEADLINE_MIN_S", "LEAK_DEADLINE_S", "Runtime", "RuntimeDeps"]

BUS_DEADLINE_MIN_S = 120.0  # a bus loop silent longer than this is stuck (recordings included)
LEAK_DEADLINE_S = 300.0  # idle turns come every minute; transfers beat per request
TRACKER_STATE_FILE = "leak-trackers.json"

log = get_logger("edge_agent.daemon")


@dataclass(frozen=True, slots=True)
class RuntimeDeps:
    """The daemon's services a runtime is built from."""

    clock: Clock  # stamps readings and events (sim time in the demo)
    leak_clock: Clock  # the recording schedule's time (the demo's nights last seconds)
    io: Executor  # the outbox thread: file and SQLite work, one at a time
    emit: Emit
    progress: ProgressTracker
    state_dir: Path | None
    observe: Callable[[PollResult], None] | None = None  # the integrations' tap (availability)


class Runtime:
    """Bus runners, pipeline and leak pipeline of one config. ``await start(stop)`` ...
    ``await stop()``; on a reload, ``take_over(previous, ...)`` between the two. Raises
    UsageError at construction for a config the parts refuse. ``restore_trackers``: read the
    leak trackers saved in the state directory (at start; a reload takes them from the
    running pipeline instead)."""

    def __init__(
        self,
        config: GatewayConfig,
        site: Site | None,
        registry: ProfileRegistry,
        deps: RuntimeDeps,
        *,
        restore_trackers: bool = True,
    ) -> None:
        self.deps = deps
        # Readings are stamped with the daemon's clock (sim time in the demo).
        setup = build_bus_setup(config, registry=registry, sink=self._on_poll, wall=deps.clock.time)
        # The leak pipeline's recorder holds this very dict: take_over swaps runners in it.
        self.runners: dict[str, BusRunner] = setup.runners
        self.profiles: dict[str, Profile] = setup.profiles  # each device's, overrides applied
        self.identities = device_identities(config, setup.profiles, site)
        kinds = {d.name: d.kind for d in site.devices} if site is not None else {}
        infos = [
            DeviceInfo(d.name, setup.profiles[d.name], kind=kinds.get(d.name), rules=d.rules)
            for d in config.devices
        ]
        # the site's sewer and gas networks, as far as this gateway polls them
        polled = {d.name for d in config.devices}
        network = site.network.only(polled) if site is not None else None
        self.pipeline = Pipeline(
            RulesEngine(config.rules, infos, network=network),
            TelemetryFilter(config.rules, infos),
            deps.emit,
        )
        self.schedule_saver = ScheduleSaver(deps.state_dir, deps.io)
        self.leak = _leak_pipeline(
            config, site, setup.profiles, self.runners, deps, self.schedule_saver,
            restore=restore_trackers,
        )  # fmt: skip
        intervals: dict[str, list[float]] = {}
        for d in config.devices:
            intervals.setdefault(d.bus, []).append(d.poll_interval_s)
        self.deadlines = {  # a bus loop beats at least once per poll of its slowest device
            bus: max(BUS_DEADLINE_MIN_S, 3.0 * max(intervals.get(bus, [0.0])))
            for bus in self.runners
        }
        self._unpolled = {d.name for d in config.devices}
        self.all_polled = asyncio.Event()
        if not self._unpolled:
            self.all_polled.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._kept: frozenset[str] = frozenset()  # runners taken over running (take_over)

    def _on_poll(self, result: PollResult) -> None:
        """The bus runners' one sink."""
        self.pipeline.on_poll(result)
        if self.deps.observe is not None:
            self.deps.observe(result)
        self.deps.progress.beat(f"bus:{result.bus}")
        if self._unpolled:
            self._unpolled.discard(result.device)
            if not self._unpolled:
                self.all_polled.set()

    async def start(self, stop: asyncio.Event) -> None:
        """Start polling now, and the leak pipeline once every device has been polled once
        (nothing to load first: the DSP kernels live in the analysis worker)."""
        progress = self.deps.progress
        for bus, deadline in self.deadlines.items():
            progress.register(f"bus:{bus}", deadline)
        for bus, runner in self.runners.items():
            task = runner.start()
            if bus not in self._kept:  # a kept runner's task has its callback already
                task.add_done_callback(_report_crash)
        if self.leak is not None:
            task = asyncio.ensure_future(self._run_leak(self.leak, stop))
            task.set_name("leak")
            task.add_done_callback(_report_crash)
            self._tasks.append(task)

    async def _run_leak(self, leak: LeakPipeline, stop: asyncio.Event) -> None:
        """The leak pipeline, once every device has been polled once: the recording job due
        at start (block transfers on the loggers' bus) must not hold back the first cycle,
        and READY with it."""
        await self.all_polled.wait()
        self.deps.progress.register("leak", LEAK_DEADLINE_S)  # its deadline counts from here
        await leak.run(stop)

    async def stop(self, *, keep_buses: Collection[str] = ()) -> None:
        """Stop the leak pipeline and the bus runners, except those of ``keep_buses`` (a
        reload hands them to the next runtime: they poll on)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.leak is not None and isinstance(self.leak.analyser, AnalysisWorker):
            await self.leak.analyser.close()
        for bus, runner in self.runners.items():
            if bus not in keep_buses:
                await runner.stop()
                self.deps.progress.unregister(f"bus:{bus}")
        await self.schedule_saver.flush()  # what a restart reads
        self.deps.progress.unregister("leak")

    def buses_to_keep(self, previous: Runtime, changes: DeviceChanges) -> frozenset[str]:
        """The buses whose runner this runtime can take over running: the same devices on
        it, every one of them the same (their identity includes the bus settings)."""
        return frozenset(
            bus
            for bus, runner in self.runners.items()
            if (old := previous.runners.get(bus)) is not None
            and old.coordinators.keys() == runner.coordinators.keys()
            and all(name in changes.same for name in runner.coordinators)
        )

    def take_over(
        self, previous: Runtime, changes: DeviceChanges, keep_buses: Collection[str]
    ) -> None:
        """Before ``start``, after ``previous.stop(keep_buses=...)``: continue from what
        ``previous`` knew (see the module docstring). Synchronous: no poll lands between."""
        old_coordinators = {
            name: c for old in previous.runners.values() for name, c in old.coordinators.items()
        }
        for bus, runner in list(self.runners.items()):
            if bus in keep_buses:
                runner.transport.close()  # never opened: the old runner's link polls on
                kept = previous.runners[bus]
                kept.sink = self._on_poll
                self.runners[bus] = kept
                continue
            for name, coordinator in list(runner.coordinators.items()):
                if (old := old_coordinators.get(name)) is None:
                    continue
                if name in changes.same:
                    runner.adopt(old)
                else:
                    coordinator.carry_availability(old)
        self.pipeline.rules.carry_over(previous.pipeline.rules, changes.same)
        self.pipeline.telemetry.carry_over(previous.pipeline.telemetry, changes.same)
        if self.leak is not None and previous.leak is not None:
            self.leak.carry_over(previous.leak, changes.same)
        self._kept = frozenset(keep_buses)
        # A device the old runtime polled counts as polled (READY, when a reload comes
        # before it, waits only for the others).
        self._unpolled = {
            n for r in self.runners.values() for n, c in r.coordinators.items() if not c.polled
        }
        if not self._unpolled:
            self.all_polled.set()

    def device_status(self) -> list[DeviceStatus]:
        return [s for runner in self.runners.values() for s in runner.status()]

    def logger_status(self) -> list[LoggerStatus]:
        return list(self.leak.status.values()) if self.leak is not None else []

    def analysis_status(self) -> WorkerStats | None:
        """The analysis worker's counters, or None without noise loggers."""
        if self.leak is None or not isinstance(self.leak.analyser, AnalysisWorker):
            return None
        return self.leak.analyser.stats()


def _report_crash(task: asyncio.Task[None]) -> None:
    """A loop task that ended with an exception is a bug: log it with its traceback. Its
    progress beats stop, so the watchdog is withheld and systemd restarts the daemon."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("loop crashed", task=task.get_name(), exc_info=exc)


def _leak_pipeline(
    config: GatewayConfig,
    site: Site | None,
    profiles: dict[str, Profile],
    runners: dict[str, BusRunner],
    deps: RuntimeDeps,
    schedule_saver: ScheduleSaver,
    *,
    restore: bool,
) -> LeakPipeline | None:
    """The leak pipeline over the config's noise loggers (profiles with a ``recording``
    block), or None when there are none. ``restore``: restore the trackers saved in the state
    directory. Nothing here loads numba: the analysis runs in a worker process
    (``daemon.worker``)."""
    loggers = [d for d in config.devices if profiles[d.name].recording is not None]
    if not loggers:
        return None
    leak_cfg = config.leak_detection
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
    setup = AnalysisSetup(
        leak_cfg,
        placement,
        noise_floor_db=site.noise_floor_db if site is not None else None,
        site=site,
        built_at=deps.leak_clock.time(),
    )
    state_file = deps.state_dir / TRACKER_STATE_FILE if deps.state_dir is not None else None
    trackers = _load_tracker_state(state_file) if restore and state_file is not None else {}

    async def persist(document: dict[str, JsonValue]) -> None:
        if state_file is not None:  # taken on the loop (it changes there), written off it
            await asyncio.get_running_loop().run_in_executor(
                deps.io, _save_tracker_state, state_file, document
            )

    def beat(bus: str) -> None:
        deps.progress.beat(f"bus:{bus}")
        deps.progress.beat("leak")

    start_min, end_min = leak_cfg.night_window_minutes()
    recorder = BusRecorder(
        runners,
        {
            d.name: LoggerPlace(d.bus, d.unit_id, recording)
            for d in loggers
            if (recording := profiles[d.name].recording) is not None
        },
        leak_cfg.duration_s,
        deps.clock,
        beat,
    )
    worker = leak_cfg.worker
    analyser = AnalysisWorker(
        setup,
        WorkerSettings(
            idle_exit_s=worker.idle_exit_s,
            memory_mb=worker.memory_mb,
            timeout_s=worker.timeout_s,
            log_level=config.logging.level,
            log_format=config.logging.format,
        ),
    )
    spool_dir = (
        deps.state_dir / SPOOL_DIR_NAME
        if deps.state_dir is not None
        else Path(tempfile.gettempdir()) / f"edge-agent-{os.getpid()}-{SPOOL_DIR_NAME}"
    )
    spool = RecordingSpool(spool_dir)
    spool.clear()  # a previous life's, never answered: its trackers were saved without them
    names = {d.name for d in loggers}
    return LeakPipeline(
        scheduler=RecordingScheduler(
            [d.name for d in loggers],
            window=NightWindow(start_min, end_min),
            interval_s=leak_cfg.recording_interval_s,
            state=load_schedule_state(deps.state_dir),
            started_at=deps.leak_clock.time(),
            on_change=schedule_saver,
        ),
        recorder=recorder,
        analyser=analyser,
        spool=spool,
        pairs=[p for p in logger_pairs(site) if set(p) <= names] if site is not None else [],
        emit=deps.emit,
        clock=deps.leak_clock,
        io=deps.io,
        trackers=trackers,
        beat=lambda: deps.progress.beat("leak"),
        persist=persist,
    )


def _load_tracker_state(state_file: Path) -> dict[str, JsonValue]:
    """The trackers saved by a previous life (name -> state), or none (logged) when the file
    is missing or not one of this version. Each state is checked where it is used (the
    worker starts a logger afresh whose state it cannot read)."""
    if not state_file.exists():
        return {}
    try:
        data = json.loads(state_file.read_text())
    except (OSError, ValueError) as exc:
        log.warning("leak tracker state not restored, starting fresh", error=str(exc))
        return {}
    trackers = data.get("trackers") if isinstance(data, dict) else None
    if data.get("version") != TRACKER_STATE_VERSION or not isinstance(trackers, dict):
        log.warning(
            "leak tracker state not restored, starting fresh",
            error="not a leak tracker state file of this version",
        )
        return {}
    log.info("leak trackers restored", loggers=len(trackers), path=str(state_file))
    return trackers


def _save_tracker_state(state_file: Path, data: object) -> None:
    """Atomically replace the leak tracker state file (logs, never raises, on OSError)."""
    tmp = state_file.with_name(state_file.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data))
        os.replace(tmp, state_file)
    except OSError as exc:
        log.warning("cannot save leak tracker state", error=str(exc), path=str(state_file))
