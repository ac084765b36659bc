"""Where the daemon plugs the integrations in (``edge_agent.integrations``): the hub built with
the uplink, the catalog and the held alarm slots of each runtime (start and every reload),
the commands' target (record, rebirth, ping: nothing else) and the hub's small state file.

Used only when a broker is configured; the modules it loads for Sparkplug (protobuf) only
when Sparkplug is on (``sparkplug_edge``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent import __version__
from edge_agent.config.model import GatewayConfig
from edge_agent.daemon.runtime import Runtime
from edge_agent.events import JsonValue
from edge_agent.integrations.catalog import Catalog, build_catalog, listening_radii
from edge_agent.integrations.commands import CommandRefused
from edge_agent.integrations.hub import STATE_FILE, Integrations, IntegrationSettings
from edge_agent.integrations.state import Held, held_by
from edge_agent.logs import get_logger
from edge_agent.uplink.settings import UplinkSettings
from edge_agent.uplink.topics import Topics
from sitemodel import Site

if TYPE_CHECKING:
    from edge_agent.integrations.sparkplug.session import SparkplugEdge

__all__ = [
    "RuntimeCommands",
    "build_integrations",
    "catalog_of",
    "held_of",
    "load_saved",
    "sparkplug_edge",
]

log = get_logger("edge_agent.daemon")
AGENT = f"edge-agent {__version__}"


def catalog_of(config: GatewayConfig, runtime: Runtime, site: Site | None) -> Catalog:
    """The devices of ``runtime``'s config as integrators see them."""
    engine = runtime.pipeline.rules
    return build_catalog(
        config,
        runtime.profiles,
        site,
        agent=AGENT,
        conditions=engine.conditions,
        radii=listening_radii(site, (d.name for d in config.devices)),
    )


def held_of(runtime: Runtime) -> Held:
    """The alarm slots ``runtime`` holds raised (its rules, leak trackers, availability)."""
    return held_by(
        runtime.pipeline.rules.active,
        [(s.name, s.state) for s in runtime.logger_status()],
        [(d.name, d.online) for d in runtime.device_status()],
    )


class RuntimeCommands:
    """The commands' target: the running runtime's leak pipeline, the hub's rebirth, a ping.
    ``runtime`` is read at each call (a reload swaps it)."""

    def __init__(
        self,
        runtime: Callable[[], Runtime | None],
        rebirth: Callable[[], None],
        started_at: float,
    ) -> None:
        self._runtime = runtime
        self._rebirth = rebirth
        self._started_at = started_at

    def record(self, device: str | None) -> list[str]:
        runtime = self._runtime()
        leak = runtime.leak if runtime is not None else None
        if leak is None:
            raise CommandRefused("unavailable", "this gateway has no noise loggers")
        loggers = sorted(leak.status)
        if device is None:
            leak.request_all()
            log.info("recordings requested by command", loggers=len(loggers))
            return loggers
        if device not in loggers:
            known = {d.name for d in runtime.device_status()} if runtime is not None else set()
            if device in known:
                raise CommandRefused("not_a_logger", f"{device} is not a noise logger")
            raise CommandRefused("unknown_device", f"no device {device!r} on this gateway")
        leak.request(device)
        log.info("recording requested by command", device=device)
        return [device]

    def rebirth(self) -> None:
        log.info("rebirth requested by command")
        self._rebirth()

    def ping(self) -> dict[str, JsonValue]:
        runtime = self._runtime()
        devices = runtime.device_status() if runtime is not None else []
        return {
            "agent": AGENT,
            "uptime_s": round(time.time() - self._started_at, 1),
            "devices": len(devices),
            "online": sum(1 for d in devices if d.online),
        }


def load_saved(state_dir: Path | None) -> dict[str, JsonValue] | None:
    """What the hub kept at the last run (None: nothing, or unreadable: logged)."""
    if state_dir is None:
        return None
    path = state_dir / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("integration state not restored", path=str(path), error=str(exc))
        return None
    return data if isinstance(data, dict) else None


def _save(path: Path, data: dict[str, JsonValue]) -> None:
    """(outbox thread) Atomically replace the hub's state file; a failure is logged."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot save integration state", path=str(path), error=str(exc))


def sparkplug_edge(
    hub: Integrations,
    settings: UplinkSettings,
    config: GatewayConfig,
    *,
    state_dir: Path | None,
    io: Executor,
    now: Callable[[], float],
) -> SparkplugEdge | None:
    """The Sparkplug edge node of ``config`` attached to ``hub`` (not started), or None when
    Sparkplug is off. Imports protobuf, only here."""
    spb = config.uplink.sparkplug
    if not spb.enabled:
        return None
    from edge_agent.integrations.sparkplug.node import SparkplugNode
    from edge_agent.integrations.sparkplug.session import SparkplugEdge

    node = SparkplugNode(
        spb.group_id or config.gateway.site,
        spb.edge_node_id or config.gateway.id,
        site=config.gateway.site,
        agent=AGENT,
        now_ms=lambda: round(now() * 1000),
    )
    edge = SparkplugEdge(settings, spb, node, lambda: hub.state, state_dir=state_dir, io=io)
    hub.sparkplug = edge
    return edge


def build_integrations(
    config: GatewayConfig,
    *,
    state_dir: Path | None,
    io: Executor,
    now: Callable[[], float],
    runtime: Callable[[], Runtime | None],
    started_at: float,
) -> Integrations:
    """The hub of ``config`` (no catalog yet: the first runtime gives it, ``set_catalog``)."""
    topics = Topics(config.uplink.topic_root, config.gateway.site, config.gateway.id)
    path = state_dir / STATE_FILE if state_dir is not None else None
    last: list[dict[str, JsonValue]] = []

    def persist(data: dict[str, JsonValue]) -> None:
        if path is None or (last and last[0] == data):
            return
        last[:] = [data]
        io.submit(_save, path, data)

    hub: Integrations
    target = RuntimeCommands(runtime, lambda: hub.rebirth(), started_at)
    hub = Integrations(
        IntegrationSettings.from_config(config.uplink),
        topics,
        Catalog(config.gateway.site, config.gateway.id, AGENT),
        now=now,
        wall=time.time,
        target=target,
        persist=persist,
        saved=load_saved(state_dir),
    )
    return hub
