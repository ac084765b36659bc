"""Thin adapters between the daemon and the packages it wires: config, outbox, uplink, bus
runners, rules, the leak tracker and the noise-logger recorder.

``app.Daemon`` holds the order of things; this module knows each package's API. A
``Runtime`` is everything built from one config that a SIGHUP reload replaces: bus runners,
rules engine, leak pipeline. The outbox and the uplink outlive reloads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.daemon.state import DeviceStatus, UplinkStatus
from edge_agent.errors import RuntimeFailure, UsageError
from edge_agent.events import EventDraft
from edge_agent.logs import configure_logging, get_logger

__all__ = [
    "Runtime",
    "build_runtime",
    "build_uplink",
    "check_reloadable",
    "configure_logging_from",
    "load",
    "open_outbox",
    "prepare_state_dir",
    "started_event",
    "state_dir_for",
]

log = get_logger("edge_agent.daemon")


# -- config --------------------------------------------------------------------------------


def _profile_source(profiles_dir: str | None) -> dict[str, Any]:
    from drivers.profile import ProfileRegistry

    return {p.name: p for p in ProfileRegistry(profiles_dir).all()}


def load(path: Path, options: Any = None) -> Any:
    """The validated config. Raises ``ConfigError`` (a UsageError, one line per problem)."""
    from edge_agent.config import load_config

    return load_config(path, profiles=_profile_source)


def configure_logging_from(path: Path) -> None:
    """Logging from the config's ``logging`` section; defaults when the config is unreadable
    (the daemon reports that problem itself, through the logging configured here)."""
    try:
        cfg = load(path)
    except UsageError:
        configure_logging()
        return
    configure_logging(cfg.logging.level, cfg.logging.format)


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
    created or written (the usual cause: not running under systemd's StateDirectory=)."""
    path = state_dir_for(config, options)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeFailure(
            f"state directory {path}: cannot create: {exc.strerror or exc} (see --state-dir)"
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise RuntimeFailure(f"state directory {path}: not writable (see --state-dir)")
    return path


def open_outbox(config: Any, state_dir: Path, clock: Any = None) -> Any:
    """The outbox in ``state_dir``; ``clock`` (``.time()``) stamps acceptance (sim time in
    the demo). Raises OutboxError (RuntimeFailure)."""
    from edge_agent.clock import SyncClock
    from edge_agent.outbox import Outbox, OutboxSettings

    settings = OutboxSettings.from_config(config.storage, state_dir)
    sync = SyncClock(time_fn=clock.time) if clock is not None else None
    return Outbox(settings, config.gateway.id, clock=sync)


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
            runner.start()
        if self.leak is not None:
            self.tasks.append(asyncio.ensure_future(self.leak.run(stop_event)))

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
        out: list[Any] = list(self.rules.on_reading(reading)) if self.rules is not None else []
        if self.telemetry is not None:
            out.extend(self.telemetry.on_reading(reading))
        return out

    def on_poll_ok(self, device: str, ts: float) -> list[Any]:
        return list(self.rules.on_poll_ok(device, ts)) if self.rules is not None else []

    def on_poll_failed(self, device: str, reason: str, ts: float) -> list[Any]:
        return list(self.rules.on_poll_failed(device, reason, ts)) if self.rules is not None else []


def build_runtime(config: Any, daemon: Any, options: Any) -> Runtime:
    """Bus runners (with the daemon's callbacks), rules, telemetry filter and leak pipeline
    for ``config``. Raises UsageError for a config the parts refuse."""
    raise NotImplementedError("wired when bus_setup, rules and the tracker land")
