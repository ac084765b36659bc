"""The daemon: one asyncio loop wiring config -> bus runners -> pipeline (rules, telemetry) ->
outbox -> uplink, and noise loggers -> recordings -> leak pipeline -> the same outbox. What
``edge-agent run`` starts. This module holds the order of things; the parts it builds are
``loading`` (files), ``runtime`` (what one config builds), ``pipeline`` (the data path and
the one door into the outbox), the outbox and the uplink.

Lifecycle
- start: load the config (bad config: ``UsageError``, exit 2), lock the state directory (one
  daemon per state directory: another one holding it is exit 1, naming its pid; ``lock``),
  open the outbox in it, emit ``gateway.started``, start the uplink (if a broker URL is
  configured), the bus runners at once and the leak pipeline once every device has been
  polled once. ``READY=1`` goes to systemd once every device has been polled once (answered
  or not: an absent device is the field's problem, not ours); its ``STATUS=`` counts online
  only the devices that answered and names why the others did not. ``status.json`` says
  ready before systemd hears it. Nothing in this process loads numba: leak analysis runs in a
  worker process started when recordings need it (``worker``).
- run: a housekeeping task rewrites ``status.json``, sends ``STATUS=`` and, only while every
  watched loop makes progress (``ProgressTracker``), ``WATCHDOG=1``.
- SIGHUP: re-read the config; when it is valid, build the runtime (buses, rules, leak
  pipeline) it describes next to the running one, then swap them: the new one continues
  from what the old one knew of every device the reload left as it was (``reload``,
  ``runtime``); the outbox, its writer and sequence numbers and the uplink connection stay.
  When the files or the parts refuse it, keep the old one running, log why (every refusal,
  one line each) and show it (``status``). Identity and storage changes need a restart and
  are refused on reload, saying so.
- SIGUSR1: record every noise logger now (on demand; outside the night window it is scored
  and shown, not counted as a night).
- SIGTERM / SIGINT: stop polling, store what is on its way, let the uplink drain what it can
  for a few seconds, publish the retained ``offline`` state, close the outbox, exit 0.

Time comes from an injected ``Clock``: the wall clock in production, the simulator's clock
in the demo, so readings, events and scenarios share one time base.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.model import DeviceStatus
from drivers.profile import ProfileRegistry
from edge_agent import __version__
from edge_agent.clock import Clock, SyncClock
from edge_agent.config.model import GatewayConfig
from edge_agent.daemon.leak import LoggerStatus
from edge_agent.daemon.loading import check_reloadable, load_config, load_site_of, prepare_state_dir
from edge_agent.daemon.lock import StateDirLock
from edge_agent.daemon.pipeline import OutboxWriter
from edge_agent.daemon.reload import DeviceChanges
from edge_agent.daemon.runtime import Runtime, RuntimeDeps
from edge_agent.daemon.state import (
    StatusSnapshot,
    offline_reason,
    remove_status_fallback,
    write_status,
    write_status_fallback,
)
from edge_agent.daemon.systemd import Notifier, ProgressTracker, watchdog_interval_s
from edge_agent.errors import UsageError
from edge_agent.events import Event, EventDraft
from edge_agent.logs import flush_summaries, get_logger
from edge_agent.outbox import Outbox, OutboxSettings, OutboxStatus
from edge_agent.uplink import Uplink, UplinkSettings, UplinkStatus
from sitemodel import Site

if TYPE_CHECKING:
    from edge_agent.integrations.hub import Integrations
    from edge_agent.integrations.sparkplug.session import SparkplugEdge

__all__ = ["DEFAULT_STATUS_INTERVAL_S", "Daemon", "DaemonOptions", "WallClock"]

DEFAULT_STATUS_INTERVAL_S = 2.0
DEFAULT_STOP_DRAIN_S = 3.0  # SIGTERM: how long the uplink may drain before `offline`
STOP_RUNTIME_TIMEOUT_S = 5.0  # SIGTERM: polling and recordings get this long to stop
STOP_EMIT_TIMEOUT_S = 2.0  # SIGTERM: drafts still on their way to the outbox
UPLINK_DEADLINE_S = 120.0
DEGRADED_LOG_INTERVAL_S = 300.0  # "outbox degraded" is logged on change, then this often

log = get_logger("edge_agent.daemon")


class WallClock:
    """The production ``Clock``: epoch time, asyncio sleep."""

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass(frozen=True)
class DaemonOptions:
    """How to run: the config file and command-line overrides, plus test/demo injections.

    ``leak_clock``: the clock the recording schedule runs on (default: ``clock``); the demo
    passes one where a night lasts seconds. ``on_event``: called on the loop with each event
    the outbox accepted (the demo prints them). ``site``: a loaded site overriding the
    config's ``site_file`` (the demo's embedded site). ``config``: the config ``config_path``
    already gave (``run`` validates it before starting), with ``profiles``, the profile
    registry that validation parsed, so the start does not parse every file a second time.
    A reload always re-reads both.
    """

    config_path: Path
    config: GatewayConfig | None = None
    profiles: ProfileRegistry | None = None
    state_dir: Path | None = None
    mqtt_url: str | None = None
    clock: Clock = field(default_factory=WallClock)
    leak_clock: Clock | None = None
    status_interval_s: float = DEFAULT_STATUS_INTERVAL_S
    stop_drain_s: float = DEFAULT_STOP_DRAIN_S
    on_event: Callable[[Event], None] | None = None
    site: Site | None = None
    notifier: Notifier | None = None


class Daemon:
    """One gateway. ``await Daemon(options).run()`` returns the exit code."""

    def __init__(self, options: DaemonOptions) -> None:
        self.options = options
        self.clock = options.clock
        self.notifier = options.notifier or Notifier()
        self.progress = ProgressTracker(time.monotonic)
        self.config: GatewayConfig | None = None
        self.profiles: ProfileRegistry | None = None  # the registry the config check parsed
        self.site: Site | None = None
        self.state_dir: Path | None = None
        self.outbox: Outbox | None = None
        self.writer: OutboxWriter | None = None
        self.uplink: Uplink | None = None
        self.integrations: Integrations | None = None  # with the uplink (docs/mqtt.md)
        self.sparkplug: SparkplugEdge | None = None  # its own MQTT session, when on
        self.runtime: Runtime | None = None
        self.ready = False
        self.config_error: str | None = None
        self.started_at = time.time()
        self._stop = asyncio.Event()
        self._reload = False
        self._wake = asyncio.Event()  # the housekeeping loop looks at once: stop or reload
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._ready_task: asyncio.Task[None] | None = None
        # Refreshed on the outbox thread each housekeeping tick: SQLite stays off the loop.
        self._outbox_status = OutboxStatus(depth=0, oldest_age_s=None)
        self._withheld_for: tuple[str, ...] = ()
        # What status shows between two runtimes (a reload) and after the stop.
        self._last_devices: tuple[DeviceStatus, ...] = ()
        self._last_loggers: tuple[LoggerStatus, ...] = ()
        self._last_analysis: dict[str, object] | None = None
        self._degraded_logged: tuple[str | None, float] = (None, 0.0)  # (reason, monotonic)
        self._status_error: str | None = None  # the last status.json write error, logged once
        self._lock: StateDirLock | None = None
        self._refused: tuple[str | None, int] = (None, 0)  # (reason, refusals in a row)
        self.last_reload: DeviceChanges | None = None  # what the last applied reload changed

    # -- control ---------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        self._reload = True
        self._wake.set()

    def request_recordings(self) -> None:
        """SIGUSR1: record every noise logger now (on demand, on top of the schedule)."""
        if self.runtime is None or (leak := self.runtime.leak) is None:
            log.warning("recording requested, but this gateway has no noise loggers")
            return
        log.info("recordings requested", loggers=len(leak.status))
        leak.request_all()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        loop.add_signal_handler(signal.SIGUSR1, self.request_recordings)

    # -- run -------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT. Raises UsageError (bad config) or RuntimeFailure."""
        config, self.profiles = self.options.config, self.options.profiles
        if config is None or self.profiles is None:
            config, self.profiles = load_config(self.options.config_path)
        self.state_dir = prepare_state_dir(config, self.options.state_dir)
        self._lock = StateDirLock.acquire(self.state_dir)  # before anything in it is opened
        try:
            return await self._run_locked(config)
        finally:
            self._lock.release()

    async def _run_locked(self, config: GatewayConfig) -> int:
        assert self.state_dir is not None
        self.site = load_site_of(config, self.options.site)
        self.config = config
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        self.outbox = await loop.run_in_executor(
            self._io, self._open_outbox, config, self.state_dir
        )
        try:
            self.uplink = self._build_uplink(config, self.outbox)
            self.writer = OutboxWriter(
                self.outbox,
                self._io,
                kick=self.uplink.kick if self.uplink is not None else _nothing,
                on_event=self._on_event,
            )
            await self.writer.emit([_started_event(config, self.clock.time())])
            if self.uplink is not None:
                self.progress.register("uplink", UPLINK_DEADLINE_S)
                await self.uplink.start()
            if self.sparkplug is not None:
                await self.sparkplug.start()
            await self._start_runtime(config)
            await self._main_loop()
        finally:
            await self._shutdown()
        return 0

    def _open_outbox(self, config: GatewayConfig, state_dir: Path) -> Outbox:
        """(outbox thread) The outbox in the state directory; acceptance is stamped with the
        daemon's clock (sim time in the demo). Raises OutboxError (RuntimeFailure)."""
        storage = config.storage
        settings = OutboxSettings(
            state_dir,
            int(storage.outbox_max_mb * 1024 * 1024),
            float(storage.outbox_max_age_days) * 86400.0,
            storage.telemetry_sync,
        )
        sync = SyncClock(time_fn=self.clock.time)
        return Outbox(settings, config.gateway.id, clock=sync, wait_for_disk=True)

    def _build_uplink(self, config: GatewayConfig, outbox: Outbox) -> Uplink | None:
        """The uplink, or None when no broker is configured (outbox only). Raises UsageError
        for a bad URL or an unreadable password."""
        settings = UplinkSettings.from_config(config, mqtt_url=self.options.mqtt_url)
        if settings is None:
            return None
        from edge_agent.daemon.integration import build_integrations

        self.integrations = build_integrations(
            config,
            state_dir=self.state_dir,
            io=self._io,
            now=self.clock.time,
            runtime=lambda: self.runtime,
            started_at=self.started_at,
        )
        self.sparkplug = self._sparkplug_for(config, settings)
        return Uplink(settings, outbox, self.integrations, executor=self._io)

    def _sparkplug_for(
        self, config: GatewayConfig, settings: UplinkSettings
    ) -> SparkplugEdge | None:
        from edge_agent.daemon.integration import sparkplug_edge

        assert self.integrations is not None
        self.integrations.sparkplug = None
        return sparkplug_edge(
            self.integrations, settings, config, state_dir=self.state_dir, io=self._io,
            now=self.clock.time,
        )  # fmt: skip

    def _on_event(self, event: Event) -> None:
        """Each record the outbox accepted: the integrations' tap, then the demo's printer."""
        if self.integrations is not None:
            self.integrations.on_event(event)
        if self.options.on_event is not None:
            self.options.on_event(event)

    async def _start_runtime(self, config: GatewayConfig) -> None:
        assert self.profiles is not None
        runtime = self._build_runtime(config, self.site, self.profiles, restore_trackers=True)
        await self._activate(config, runtime)

    def _build_runtime(
        self,
        config: GatewayConfig,
        site: Site | None,
        profiles: ProfileRegistry,
        *,
        restore_trackers: bool,
    ) -> Runtime:
        """Build (start nothing: no port is opened). Raises UsageError for a config the
        parts refuse (rules against the profiles, a profile that cannot be planned)."""
        assert self.writer is not None
        leak_clock = self.options.leak_clock or self.clock
        observe = self.integrations.on_poll if self.integrations is not None else None
        deps = RuntimeDeps(
            self.clock, leak_clock, self._io, self.writer.emit, self.progress,
            self.state_dir, observe,
        )  # fmt: skip
        return Runtime(config, site, profiles, deps, restore_trackers=restore_trackers)

    async def _activate(self, config: GatewayConfig, runtime: Runtime) -> None:
        self.runtime = runtime
        await runtime.start(self._stop)
        if self.integrations is not None:
            self._plug_in(config, runtime)
        if not self.ready:
            if self._ready_task is not None:
                self._ready_task.cancel()
            self._ready_task = asyncio.ensure_future(self._ready_once_polled(runtime))

    async def _reload_sparkplug(
        self, old: GatewayConfig | None, new: GatewayConfig, settings: UplinkSettings
    ) -> None:
        """A reload that changes the broker or the Sparkplug block restarts the edge node."""
        same_broker = self.sparkplug is not None and self.sparkplug.settings == settings
        if same_broker and old is not None and old.uplink.sparkplug == new.uplink.sparkplug:
            return
        if self.sparkplug is None and not new.uplink.sparkplug.enabled:
            return
        if self.sparkplug is not None:
            await self.sparkplug.stop()
        self.sparkplug = self._sparkplug_for(new, settings)
        if self.sparkplug is not None:
            await self.sparkplug.start()

    def _plug_in(self, config: GatewayConfig, runtime: Runtime) -> None:
        """The integrations follow a new runtime: its settings, devices and held alarms."""
        from edge_agent.daemon.integration import catalog_of, held_of
        from edge_agent.integrations.hub import IntegrationSettings

        assert self.integrations is not None
        self.integrations.reconfigure(IntegrationSettings.from_config(config.uplink))
        self.integrations.set_catalog(catalog_of(config, runtime, self.site), held_of(runtime))
        if self.uplink is not None:
            self.uplink.refresh_subscriptions()

    async def _ready_once_polled(self, runtime: Runtime) -> None:
        await runtime.all_polled.wait()
        self.ready = True
        # Written before READY=1: `edge-agent status` must not lag what systemd was told.
        await self._write_status()
        self.notifier.ready(self.status_line())
        log.info("ready", status=self.status_line())

    async def _stop_runtime(self, *, keep_buses: frozenset[str] = frozenset()) -> None:
        runtime, self.runtime = self.runtime, None
        if runtime is None:
            return
        self._last_devices = tuple(runtime.device_status())
        self._last_loggers = tuple(runtime.logger_status())
        await runtime.stop(keep_buses=keep_buses)

    async def _main_loop(self) -> None:
        interval = self.options.status_interval_s
        watchdog_s = watchdog_interval_s()
        tick = min(interval, watchdog_s) if watchdog_s else interval
        last_watchdog = 0.0
        while not self._stop.is_set():
            if self._reload:
                self._reload = False
                await self._do_reload()
            if self.uplink is not None:
                self.uplink.beat_if_alive(lambda: self.progress.beat("uplink"))
            await self._refresh_outbox_status()
            await self._write_status()
            flush_summaries()
            stalled = self.progress.stalled()
            names = tuple(s.name for s in stalled)
            if names != self._withheld_for:  # log changes, not every tick
                self._withheld_for = names
                if stalled:
                    log.error(
                        "watchdog withheld: loops stalled",
                        stalled=[f"{s.name} silent {s.silent_s:.0f} s" for s in stalled],
                    )
                else:
                    log.info("all loops progressing again: watchdog resumed")
            due = watchdog_s and time.monotonic() - last_watchdog >= watchdog_s
            if due and self.ready and not stalled:
                self.notifier.watchdog()
                last_watchdog = time.monotonic()
            self.notifier.status(self.status_line())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=tick)
            self._wake.clear()

    async def _do_reload(self) -> None:
        self.notifier.reloading()
        log.info("reloading config", path=str(self.options.config_path))
        old = self.config

        def read_files() -> tuple[GatewayConfig, ProfileRegistry, Site | None]:
            new, profiles = load_config(self.options.config_path)
            check_reloadable(old, new)
            # Here, not in _start_runtime: a site file that no longer loads is a refused
            # reload, not a daemon that stops after tearing down the running config.
            return new, profiles, load_site_of(new, self.options.site)

        try:  # parsing the config, every profile and the site: on a thread, polling goes on
            new, profiles, site = await asyncio.get_running_loop().run_in_executor(
                self._io, read_files
            )
            # Built next to the running one: the parts may still refuse the config.
            runtime = self._build_runtime(new, site, profiles, restore_trackers=False)
        except UsageError as exc:
            self._refuse_reload(str(exc))
            return
        old_runtime = self.runtime
        changes = DeviceChanges.between(
            old_runtime.identities if old_runtime is not None else {}, runtime.identities
        )
        keep = runtime.buses_to_keep(old_runtime, changes) if old_runtime else frozenset()
        await self._stop_runtime(keep_buses=keep)
        if old_runtime is not None:
            runtime.take_over(old_runtime, changes, keep)
        self.config, self.profiles, self.site = new, profiles, site
        self.config_error, self._refused = None, (None, 0)
        await self._activate(new, runtime)
        if self.uplink is not None:
            settings = UplinkSettings.from_config(new, mqtt_url=self.options.mqtt_url)
            if settings is not None:
                self.uplink.reconfigure(settings)
                await self._reload_sparkplug(old, new, settings)
        self.last_reload = changes  # ``changes.removed``: the devices that left the config
        self.notifier.ready(self.status_line())
        log.info(
            "config reloaded",
            devices=len(new.devices),
            unchanged=len(changes.same),
            buses_kept=sorted(keep),
            **changes.summary(),
        )

    def _refuse_reload(self, reason: str) -> None:
        """Keep the running config; log why every time (each SIGHUP gets its answer, never
        swallowed by the rate limit), counting a reason repeated in a row."""
        reason = reason.replace("\n", "; ")
        last, count = self._refused
        count = count + 1 if reason == last else 1
        self._refused = (reason, count)
        self.config_error = reason
        extra = {"refused_in_a_row": count} if count > 1 else {}
        log.error(
            "reload refused, keeping the running config", reason=reason, rate_limit=False,
            **extra,
        )  # fmt: skip
        self.notifier.ready(self.status_line())

    async def _shutdown(self) -> None:
        self.notifier.stopping("stopping: flushing outbox, publishing offline")
        log.info("stopping")
        try:
            if self._ready_task is not None:
                self._ready_task.cancel()
            try:
                await asyncio.wait_for(self._stop_runtime(), STOP_RUNTIME_TIMEOUT_S)
            except TimeoutError:
                log.error("bus runners did not stop in time", timeout_s=STOP_RUNTIME_TIMEOUT_S)
            if self.writer is not None:  # drafts accepted by the rules but not yet on disk
                await self.writer.drain(STOP_EMIT_TIMEOUT_S)
            if self.sparkplug is not None:
                await self.sparkplug.stop()
            if self.uplink is not None:
                await self.uplink.stop(drain_s=self.options.stop_drain_s)
        finally:
            if self.outbox is not None:
                await self._write_status()
                await asyncio.get_running_loop().run_in_executor(self._io, self.outbox.close)
            self._io.shutdown(wait=False)
            self.notifier.close()
            log.info("stopped")

    # -- status ----------------------------------------------------------------------------

    def status_line(self) -> str:
        devices = self.runtime.device_status() if self.runtime is not None else self._last_devices
        online = sum(1 for d in devices if d.online)
        ob = self._outbox_status
        uplink = self.uplink.status().state if self.uplink is not None else "disabled"
        why = offline_reason(devices)
        text = f"{online}/{len(devices)} devices online" + (f" ({why})" if why else "")
        text += f", outbox {ob.depth}, uplink {uplink}"
        if ob.degraded:
            text += f", outbox degraded: {ob.reason} ({ob.held_in_memory} held in memory)"
        if self.config_error:
            text += ", last reload refused"
        return text

    def snapshot(self) -> StatusSnapshot:
        assert self.config is not None
        if self.runtime is not None:  # kept through a reload and after the stop
            self._last_devices = tuple(self.runtime.device_status())
            self._last_loggers = tuple(self.runtime.logger_status())
        return StatusSnapshot(
            site=self.config.gateway.site,
            gateway=self.config.gateway.id,
            pid=os.getpid(),
            started_at=self.started_at,
            updated_at=time.time(),
            interval_s=self.options.status_interval_s,
            ready=self.ready,
            devices=self._last_devices,
            loggers=self._last_loggers,
            outbox=self._outbox_status,
            uplink=self.uplink.status() if self.uplink is not None else UplinkStatus("disabled"),
            stalled=tuple(s.name for s in self.progress.stalled()),
            config_error=self.config_error,
            extra={
                "events_accepted": self.writer.events_accepted if self.writer else 0,
                "sim_time": self.clock.time(),
                "analysis": self._analysis_status(),
            },
        )

    def _analysis_status(self) -> dict[str, object] | None:
        """The analysis worker's counters (``status --json``, the benchmarks), kept through a
        reload like the loggers' status."""
        stats = self.runtime.analysis_status() if self.runtime is not None else None
        if stats is not None:
            self._last_analysis = dataclasses.asdict(stats)
        return self._last_analysis

    async def _refresh_outbox_status(self) -> None:
        if self.outbox is None:
            return
        loop = asyncio.get_running_loop()
        if self.outbox.degraded:  # space may have returned: write what is held, now
            await loop.run_in_executor(self._io, self.outbox.retry_held)
        status = await loop.run_in_executor(self._io, self.outbox.status)
        self._outbox_status = status
        self._log_degraded(status)
        if self.uplink is not None and not status.degraded and status.depth:
            self.uplink.kick()  # held events just written: forward them

    def _log_degraded(self, status: OutboxStatus) -> None:
        """One line when the outbox degrades or its reason changes, then one every
        ``DEGRADED_LOG_INTERVAL_S`` while it lasts, and one when it recovers."""
        reason, at = self._degraded_logged
        now = time.monotonic()
        if status.degraded:
            if status.reason != reason or now - at >= DEGRADED_LOG_INTERVAL_S:
                log.error(
                    f"outbox degraded: {status.reason}",
                    held_in_memory=status.held_in_memory,
                    dropped_total=status.dropped_total,
                    error=status.last_error,
                )
                self._degraded_logged = (status.reason, now)
        elif reason is not None:
            log.info("outbox recovered: held events written", depth=status.depth)
            self._degraded_logged = (None, now)

    async def _write_status(self) -> None:
        """The snapshot is taken on the loop; serialising and writing it (a JSON dump, a
        file create and a rename on an SD card) happen on the outbox thread."""
        if self.state_dir is None or self.config is None:
            return
        snapshot = self.snapshot()
        await asyncio.get_running_loop().run_in_executor(
            self._io, self._store_status, self.state_dir, snapshot
        )

    def _store_status(self, state_dir: Path, snapshot: StatusSnapshot) -> None:
        """Runs on the outbox thread (one worker: writes never overlap)."""
        try:
            write_status(state_dir, snapshot)
        except OSError as exc:
            # Read-only or full: `edge-agent status` reads the fallback (runtime directory).
            try:
                where = str(write_status_fallback(state_dir, snapshot))
            except OSError as fallback_exc:
                where = f"nowhere ({fallback_exc})"
            if str(exc) != self._status_error:  # once per cause, not every tick
                log.warning(
                    "cannot write status file", error=str(exc), path=str(state_dir),
                    written_to=where,
                )  # fmt: skip
            self._status_error = str(exc)
            return
        if self._status_error is not None:
            log.info("status file written again", path=str(state_dir))
            self._status_error = None
            remove_status_fallback(state_dir)


def _nothing() -> None:
    pass


def _started_event(config: GatewayConfig, ts: float) -> EventDraft:
    return EventDraft.of(
        config.gateway.id,
        "gateway.started",
        ts,
        version=__version__,
        devices=len(config.devices),
        buses=len(config.buses),
    )
