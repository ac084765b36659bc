"""What the outbox, the uplink and the leak pipeline report of themselves: each component's
own frozen status type (the bus's is ``drivers.model.DeviceStatus``), produced by it and
stored as is in ``status.json``. Here, in a module importing nothing, so that ``edge-agent
status`` reads them without loading the components (paho, asyncio, SQLite)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LoggerStatus", "OutboxStatus", "UplinkStatus"]


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """``Outbox.status()``."""

    depth: int  # rows stored (events + telemetry), not counting held ones
    oldest_age_s: float | None
    degraded: bool = False
    reason: str | None = None  # why degraded: "disk full", "read-only", ...
    held_in_memory: int = 0  # events waiting in memory for the disk
    dropped_total: int = 0  # entries dropped since start (evicted, refused, memory bound)
    depth_events: int = 0
    depth_telemetry: int = 0
    stored_bytes: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class UplinkStatus:
    """``Uplink.status()`` (also sd_notify's STATUS). ``url`` never holds credentials."""

    state: str  # disabled (no broker configured) / connecting / connected / disconnected / stopped
    url: str | None = None
    last_error: str | None = None
    published: int = 0  # rows acknowledged by the broker (and deleted) since start
    failed: int = 0  # publishes the broker refused (v5 reason code) since start
    inflight: int = 0
    reconnects: int = 0

    @property
    def connected(self) -> bool:
        return self.state == "connected"


@dataclass(frozen=True, slots=True)
class LoggerStatus:
    """One noise logger in ``LeakPipeline.status``."""

    name: str
    score: float | None = None
    state: str = "normal"  # the LeakTracker state: normal / suspected / confirmed
    recorded_at: float | None = None
    recordings: int = 0
    last_error: str | None = None
