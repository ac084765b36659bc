"""The daemon: one asyncio loop wiring config -> bus runners -> rules -> outbox -> uplink, and
noise loggers -> recordings -> leak pipeline -> events. What ``edge-agent run`` starts.

Lifecycle
- start: load the config (bad config: ``UsageError``, exit 2), open the outbox in the state
  directory, add ``gateway.started``, start the uplink (if a broker URL is configured), the bus
  runners and the leak pipeline. ``READY=1`` goes to systemd once the DSP kernels are loaded
  (compiled on the first start, before polling: compiling holds the GIL) and every device has
  been polled once (answered or not: an absent device is the field's problem, not ours).
- run: a housekeeping task rewrites ``status.json``, sends ``STATUS=`` and, only while every
  watched loop makes progress (``ProgressTracker``), ``WATCHDOG=1``.
- SIGHUP: re-read the config; when it is valid, swap buses, rules and leak pipeline for new ones
  (the outbox, its sequence numbers and the uplink connection stay); when it is not, keep the
  old one running and log and show (``status``) why. Identity and storage changes need a
  restart and are refused on reload, saying so.
- SIGUSR1: record every noise logger now (on demand; outside the night window it is scored
  and shown, not counted as a night).
- SIGTERM / SIGINT: stop polling, let the uplink drain what it can for a few seconds, publish
  the retained ``offline`` state, close the outbox, exit 0.

The parts come from ``edge_agent.daemon.parts`` (thin adapters over the other packages), so
this module holds only the order of things. Time comes from an injected clock (``time()``,
``monotonic()``, ``async sleep()``): the wall clock in production, the simulator's sim clock
in the demo, so readings, events and scenarios share one time base.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.daemon.state import (
    DeviceStatus,
    LoggerStatus,
    OutboxStatus,
    StatusSnapshot,
    UplinkStatus,
    remove_status_fallback,
    write_status,
    write_status_fallback,
)
from edge_agent.daemon.systemd import Notifier, ProgressTracker, watchdog_interval_s
from edge_agent.errors import UsageError
from edge_agent.events import Event, EventDraft, TelemetryDraft
from edge_agent.logs import flush_summaries, get_logger

__all__ = ["DEFAULT_STATUS_INTERVAL_S", "Daemon", "DaemonOptions", "WallClock"]

DEFAULT_STATUS_INTERVAL_S = 2.0
DEFAULT_STOP_DRAIN_S = 3.0  # SIGTERM: how long the uplink may drain before `offline`
STOP_RUNTIME_TIMEOUT_S = 5.0  # SIGTERM: polling and recordings get this long to stop
STOP_EMIT_TIMEOUT_S = 2.0  # SIGTERM: drafts still on their way to the outbox
DSP_WORKERS = 2  # numba kernels release the GIL: two cores, two workers
BUS_DEADLINE_MIN_S = 120.0  # a bus loop silent longer than this is stuck (recordings included)
LEAK_DEADLINE_S = 300.0  # idle turns come every minute; transfers beat per request
UPLINK_DEADLINE_S = 120.0
DEGRADED_LOG_INTERVAL_S = 300.0  # "outbox degraded" is logged on change, then this often

log = get_logger("edge_agent.daemon")


class WallClock:
    """The production clock: epoch time, monotonic time, asyncio sleep."""

    speed = 1.0

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass(frozen=True)
class DaemonOptions:
    """How to run: the config file and command-line overrides, plus test/demo injections.

    ``leak_clock``: the clock the recording schedule runs on (default: ``clock``); the demo
    passes one where a night lasts seconds. ``on_event``: called on the loop with each event
    the outbox accepted (the demo prints them). ``site``: a loaded ``drivers.site.Site``
    overriding the config's ``site_file`` (the demo's embedded site). ``config``: the config
    ``config_path`` already gave (``run`` validates it before starting), so the start does
    not parse it and every profile file a second time; ``profiles``: the profile registry
    that validation parsed (``parts.load``). A reload always re-reads both.
    """

    config_path: Path
    config: Any = None
    profiles: Any = None
    state_dir: Path | None = None
    mqtt_url: str | None = None
    clock: Any = field(default_factory=WallClock)
    leak_clock: Any = None
    status_interval_s: float = DEFAULT_STATUS_INTERVAL_S
    stop_drain_s: float = DEFAULT_STOP_DRAIN_S
    on_event: Callable[[Event], None] | None = None
    site: Any = None
    notifier: Notifier | None = None


class Daemon:
    """One gateway. ``await Daemon(options).run()`` returns the exit code."""

    def __init__(self, options: DaemonOptions) -> None:
        self.options = options
        self.clock = options.clock
        self.notifier = options.notifier or Notifier()
        self.progress = ProgressTracker(time.monotonic)
        self.config: Any = None
        self.profiles: Any = None  # the profile registry the config check parsed
        self.site: Any = None  # the config's site (drivers.site.Site) or None
        self.state_dir: Path | None = None
        self.outbox: Any = None
        self.uplink: Any = None
        self.runtime: Any = None  # parts.Runtime: buses, rules, leak pipeline of one config
        self.ready = False
        self.config_error: str | None = None
        self.started_at = time.time()
        self.events_accepted = 0
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._dsp = ThreadPoolExecutor(max_workers=DSP_WORKERS, thread_name_prefix="dsp")
        self._first_polls: set[str] = set()
        # Refreshed on the outbox thread each housekeeping tick: SQLite stays off the loop.
        self._outbox_status = OutboxStatus(depth=0, oldest_age_s=None)
        self._withheld_for: tuple[str, ...] = ()
        self._inflight: set[asyncio.Future[Any]] = set()
        self._last_devices: tuple[DeviceStatus, ...] = ()
        self._dsp_warm = False
        self._last_loggers: tuple[LoggerStatus, ...] = ()
        self._degraded_logged: tuple[str | None, float] = (None, 0.0)  # (reason, monotonic)
        self._status_error: str | None = None  # the last status.json write error, logged once

    # -- control ---------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    # -- the event path (called on the loop by the bus runners and the leak pipeline) -------

    async def emit(self, items: list[EventDraft | TelemetryDraft]) -> None:
        """Store drafts durably (outbox thread), then hand them to the uplink and observers."""
        if not items or self.outbox is None:
            return
        loop = asyncio.get_running_loop()
        accepted = await loop.run_in_executor(self._io, self.outbox.add_many, items)
        for event in accepted:
            if event is None:
                continue
            if event.stream == "event":
                self.events_accepted += 1
                log.info(
                    "event",
                    device=event.dev,
                    kind=event.kind,
                    seq=event.seq,
                    sev=int(event.sev),
                    data=event.data,
                )
            if self.options.on_event is not None:
                self.options.on_event(event)
        if self.uplink is not None:
            self.uplink.kick()

    def submit(self, items: list[EventDraft | TelemetryDraft]) -> None:
        """``emit`` from a synchronous callback on the loop: schedule it, keep order."""
        if items:
            task = asyncio.ensure_future(self._ordered_emit(list(items)))
            # The loop keeps only weak references to tasks: hold them until they are done.
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _ordered_emit(self, items: list[EventDraft | TelemetryDraft]) -> None:
        async with self._emit_lock:
            await self.emit(items)

    async def emit_locked(self, items: list[EventDraft | TelemetryDraft]) -> None:
        """``emit`` in order with the drafts submitted from the bus callbacks."""
        await self._ordered_emit(list(items))

    # bus runner callbacks ------------------------------------------------------------------

    def on_reading(self, reading: Any) -> None:
        if self.runtime is not None:
            self.submit(self.runtime.on_reading(reading))

    def on_poll_ok(self, device: str, ts: float) -> None:
        if self.runtime is not None:
            self.submit(self.runtime.on_poll_ok(device, ts))
            self._polled(device)

    def on_poll_failed(self, device: str, reason: str, ts: float) -> None:
        if self.runtime is not None:
            self.submit(self.runtime.on_poll_failed(device, reason, ts))
            self._polled(device)

    def _polled(self, device: str) -> None:
        """Any finished poll is progress of its bus; READY once every device was polled."""
        bus = self.runtime.device_buses.get(device)
        if bus is not None:
            self.progress.beat(f"bus:{bus}")
        if not self.ready:
            self._first_polls.add(device)
            if self._first_polls >= set(self.runtime.device_buses):
                self._set_ready()

    def _set_ready(self) -> None:
        self.ready = True
        self.notifier.ready(self.status_line())
        log.info("ready", status=self.status_line())

    # -- run -------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT. Raises UsageError (bad config) or RuntimeFailure."""
        from edge_agent.daemon import parts

        self._emit_lock = asyncio.Lock()
        config, self.profiles = self.options.config, self.options.profiles
        if config is None:
            config, self.profiles = parts.load(self.options.config_path, self.options)
        self.site = parts.site_for(config, self.options)
        self.config = config
        self.state_dir = parts.prepare_state_dir(config, self.options)
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        self.outbox = await loop.run_in_executor(
            self._io, parts.open_outbox, config, self.state_dir, self.clock
        )
        try:
            await self.emit([parts.started_event(config, self.clock.time())])
            self.uplink = parts.build_uplink(config, self.options, self.outbox, self._io, self.site)
            if self.uplink is not None:
                self.progress.register("uplink", UPLINK_DEADLINE_S)
                await self.uplink.start()
            await self._start_runtime(config)
            await self._main_loop()
        finally:
            await self._shutdown()
        return 0

    async def _start_runtime(self, config: Any) -> None:
        from edge_agent.daemon import parts

        runtime = parts.build_runtime(config, self.site, self, self.options)
        if runtime.leak is not None:  # a reload keeps what status shows per logger
            for old in self._last_loggers:
                status = runtime.leak.status.get(old.name)
                if status is not None:
                    status.score = old.score
                    status.recorded_at, status.recordings = old.recorded_at, old.recordings
        if runtime.leak is not None and not self._dsp_warm:
            await self._warm_up_dsp()  # before the loops' deadlines start counting
        for bus in runtime.bus_names:
            self.progress.register(f"bus:{bus}", max(BUS_DEADLINE_MIN_S, runtime.bus_deadline(bus)))
        if runtime.leak is not None:
            self.progress.register("leak", LEAK_DEADLINE_S)
        self.runtime = runtime
        await runtime.start(self._stop)
        if not runtime.device_buses and not self.ready:
            self._set_ready()

    async def _warm_up_dsp(self) -> None:
        from edge_agent.daemon.analysis import warm_up

        started = time.monotonic()
        self.notifier.status("loading DSP kernels (compiling on the first start)")
        await asyncio.get_running_loop().run_in_executor(self._dsp, warm_up)
        self._dsp_warm = True
        log.info("dsp kernels ready", seconds=round(time.monotonic() - started, 2))

    async def _stop_runtime(self) -> None:
        runtime, self.runtime = self.runtime, None
        if runtime is None:
            return
        await runtime.stop()
        for bus in runtime.bus_names:
            self.progress.unregister(f"bus:{bus}")
        self.progress.unregister("leak")

    async def _main_loop(self) -> None:
        interval = self.options.status_interval_s
        watchdog_s = watchdog_interval_s()
        tick = min(interval, watchdog_s) if watchdog_s else interval
        last_watchdog = 0.0
        while not self._stop.is_set():
            if self._reload.is_set():
                self._reload.clear()
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
                await asyncio.wait_for(self._wait_any(), timeout=tick)

    async def _wait_any(self) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        reload = asyncio.ensure_future(self._reload.wait())
        try:
            await asyncio.wait({stop, reload}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            reload.cancel()

    async def _do_reload(self) -> None:
        from edge_agent.daemon import parts

        self.notifier.reloading()
        log.info("reloading config", path=str(self.options.config_path))

        def read_files() -> tuple[Any, Any, Any]:
            new, profiles = parts.load(self.options.config_path, self.options)
            parts.check_reloadable(self.config, new)
            # Here, not in _start_runtime: a site file that no longer loads is a refused
            # reload, not a daemon that stops after tearing down the running config.
            return new, profiles, parts.site_for(new, self.options)

        try:  # parsing the config, every profile and the site: on a thread, polling goes on
            new, profiles, site = await asyncio.get_running_loop().run_in_executor(
                self._io, read_files
            )
        except UsageError as exc:
            self.config_error = str(exc).replace("\n", "; ")
            log.error("reload refused, keeping the running config", reason=self.config_error)
            self.notifier.ready(self.status_line())
            return
        await self._stop_runtime()
        self.config, self.profiles, self.site = new, profiles, site
        self.config_error = None
        await self._start_runtime(new)
        if self.uplink is not None:
            self.uplink.reconfigure(new, self.site)
        self.notifier.ready(self.status_line())
        log.info("config reloaded", devices=len(new.devices))

    async def _shutdown(self) -> None:
        self.notifier.stopping("stopping: flushing outbox, publishing offline")
        log.info("stopping")
        try:
            try:
                await asyncio.wait_for(self._stop_runtime(), STOP_RUNTIME_TIMEOUT_S)
            except TimeoutError:
                log.error("bus runners did not stop in time", timeout_s=STOP_RUNTIME_TIMEOUT_S)
            if self._inflight:  # drafts accepted by the rules but not yet on disk
                await asyncio.wait(set(self._inflight), timeout=STOP_EMIT_TIMEOUT_S)
            if self.uplink is not None:
                await self.uplink.stop(drain_s=self.options.stop_drain_s)
        finally:
            if self.outbox is not None:
                await self._write_status()
                await asyncio.get_running_loop().run_in_executor(self._io, self.outbox.close)
            self._io.shutdown(wait=False)
            self._dsp.shutdown(wait=False, cancel_futures=True)
            self.notifier.close()
            log.info("stopped")

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        loop.add_signal_handler(signal.SIGUSR1, self.request_recordings)

    def request_recordings(self) -> None:
        """SIGUSR1: record every noise logger now (on demand, on top of the schedule)."""
        leak = self.runtime.leak if self.runtime is not None else None
        if leak is None:
            log.warning("recording requested, but this gateway has no noise loggers")
            return
        log.info("recordings requested", loggers=len(leak.status))
        leak.request_all()

    @property
    def dsp_executor(self) -> ThreadPoolExecutor:
        return self._dsp

    @property
    def io_executor(self) -> ThreadPoolExecutor:
        """The outbox thread: file and SQLite work, one at a time, off the loop."""
        return self._io

    # -- status ----------------------------------------------------------------------------

    def status_line(self) -> str:
        devices = self.runtime.device_status() if self.runtime is not None else self._last_devices
        online = sum(1 for d in devices if d.online)
        depth = self._outbox_status.depth
        uplink = self.uplink.status().state if self.uplink is not None else "disabled"
        text = f"{online}/{len(devices)} devices online, outbox {depth}, uplink {uplink}"
        ob = self._outbox_status
        if ob.degraded:
            text += f", outbox degraded: {ob.reason} ({ob.held_in_memory} held in memory)"
        if self.config_error:
            text += ", last reload refused"
        return text

    def snapshot(self) -> StatusSnapshot:
        now = self.clock.time()
        if self.runtime is not None:  # kept through a reload and after the stop
            self._last_devices = tuple(self.runtime.device_status())
        outbox = self._outbox_status
        uplink = self.uplink.status() if self.uplink is not None else UplinkStatus("disabled")
        if self.runtime is not None and self.runtime.leak is not None:
            self._last_loggers = tuple(
                LoggerStatus(s.name, s.score, s.state, s.recorded_at, s.recordings, s.last_error)
                for s in self.runtime.leak.status.values()
            )
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
            outbox=outbox,
            uplink=uplink,
            stalled=tuple(s.name for s in self.progress.stalled()),
            config_error=self.config_error,
            extra={"events_accepted": self.events_accepted, "sim_time": now},
        )

    async def _refresh_outbox_status(self) -> None:
        if self.outbox is None:
            return
        loop = asyncio.get_running_loop()
        if self.outbox.degraded:  # space may have returned: write what is held, now
            await loop.run_in_executor(self._io, self.outbox.retry_held)
        stats = await loop.run_in_executor(self._io, self.outbox.stats)
        self._outbox_status = OutboxStatus(
            depth=stats.depth,
            oldest_age_s=stats.oldest_age_s,
            degraded=bool(stats.degraded),
            reason=stats.degraded_reason,
            held_in_memory=stats.held_in_memory,
            dropped_total=stats.dropped_total,
        )
        self._log_degraded(stats)
        if self.uplink is not None and not stats.degraded and stats.depth:
            self.uplink.kick()  # held events just written: forward them

    def _log_degraded(self, stats: Any) -> None:
        """One line when the outbox degrades or its reason changes, then one every
        ``DEGRADED_LOG_INTERVAL_S`` while it lasts, and one when it recovers."""
        reason, at = self._degraded_logged
        now = time.monotonic()
        if stats.degraded:
            if stats.degraded_reason != reason or now - at >= DEGRADED_LOG_INTERVAL_S:
                log.error(
                    f"outbox degraded: {stats.degraded_reason}",
                    held_in_memory=stats.held_in_memory,
                    dropped_total=stats.dropped_total,
                    error=stats.last_error,
                )
                self._degraded_logged = (stats.degraded_reason, now)
        elif reason is not None:
            log.info("outbox recovered: held events written", depth=stats.depth)
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
