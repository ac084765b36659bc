"""Which stored rows go when the outbox is over its bounds, and the account of what went.

``EvictionPolicy.enforce``: rows older than ``max_age_s`` go whatever they are (not rows
accepted while the clock was unsynchronised: only the size cap bounds those); over
``max_bytes`` rows go down to ``LOW_WATER`` of the cap, telemetry first, then non-alarm
events, then alarms, oldest first within each class.

``Dropped`` counts what went, evicted here or refused while the disk failed, until one
``gateway.outbox_dropped`` event reports it: counts per class, the reasons, and the event seq
ranges that will never arrive (an evicted report's own counts are carried into the next).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge_agent.clock import MIN_PLAUSIBLE_EPOCH_S
from edge_agent.events import JsonValue
from edge_agent.outbox.store import EvictionClass, SqliteStore, StoredRow

__all__ = ["DROPPED_KIND", "LOW_WATER", "MAX_DROPPED_RANGES", "Dropped", "EvictionPolicy"]

DROPPED_KIND = "gateway.outbox_dropped"
LOW_WATER = 0.9  # evict down to this fraction of the cap, so eviction does not run every add
MAX_DROPPED_RANGES = 50  # seq ranges listed in one gateway.outbox_dropped event
EVICT_CHUNK_ROWS = 500


@dataclass
class Dropped:
    """Evicted or refused entries not yet reported by a ``gateway.outbox_dropped`` event;
    ``total`` counts every one since start (for ``status``)."""

    telemetry: int = 0
    events: int = 0
    alarms: int = 0
    seq_ranges: list[tuple[int, int]] = field(default_factory=list)
    reasons: set[str] = field(default_factory=set)
    total: int = 0

    def __bool__(self) -> bool:
        return bool(self.telemetry or self.events or self.alarms or self.seq_ranges)

    def count(self, reason: str, *, telemetry: int = 0, events: int = 0, alarms: int = 0) -> None:
        self.telemetry += telemetry
        self.events += events
        self.alarms += alarms
        self.reasons.add(reason)
        self.total += telemetry + events + alarms

    def evicted(self, rows: Sequence[StoredRow], reason: str) -> None:
        for row in rows:
            if row.stream == "telemetry":
                self.count(reason, telemetry=1)
                continue
            self.seq_ranges.append((row.seq, row.seq))
            if row.kind == DROPPED_KIND:  # an evicted report: carry its counts into the next
                old = json.loads(row.data_json)
                self.telemetry += old.get("telemetry", 0)
                self.events += old.get("events", 0)
                self.alarms += old.get("alarms", 0)
                self.reasons.update(old.get("reasons", ()))
                self.seq_ranges.extend((a, b) for a, b in old.get("seq_ranges", ()))
                continue
            alarm = row.sev.is_alarm
            self.count(reason, alarms=int(alarm), events=int(not alarm))

    def take_report(self) -> dict[str, JsonValue]:
        """The ``data`` of the report of everything counted since the last one; starts over."""
        ranges = _merged(self.seq_ranges)
        data: dict[str, JsonValue] = {
            "telemetry": self.telemetry,
            "events": self.events,
            "alarms": self.alarms,
            "reasons": sorted(self.reasons),
            "seq_ranges": ranges[:MAX_DROPPED_RANGES],
        }
        if len(ranges) > MAX_DROPPED_RANGES:
            data["seq_ranges_truncated"] = len(ranges) - MAX_DROPPED_RANGES
        self.telemetry = self.events = self.alarms = 0
        self.seq_ranges, self.reasons = [], set()
        return data


def _merged(ranges: list[tuple[int, int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


@dataclass(frozen=True, slots=True)
class EvictionPolicy:
    """The outbox's bounds: ``max_bytes`` of stored rows, ``max_age_s`` since acceptance."""

    max_bytes: int
    max_age_s: float

    def enforce(self, store: SqliteStore, now: float, dropped: Dropped) -> None:
        """Evict what is over the bounds, counting it in ``dropped``. Raises
        ``sqlite3.OperationalError`` when the disk refuses the deletes."""
        # Rows accepted while the clock was unsynchronised (1970 on a Pi without RTC, or
        # fake-hwclock's last-shutdown time, weeks behind) are not "old": the age bound would
        # evict them all when NTP steps the clock forward. The size bound covers them.
        expired = store.expired(now - self.max_age_s, MIN_PLAUSIBLE_EPOCH_S)
        if expired:
            store.delete(expired)
            dropped.evicted(expired, "age")
        if store.stored_bytes <= self.max_bytes:
            return
        target = int(self.max_bytes * LOW_WATER)
        for of in EvictionClass:
            while store.stored_bytes > target:
                rows = store.oldest(of, EVICT_CHUNK_ROWS)
                if not rows:
                    break
                need, freed, take = store.stored_bytes - target, 0, []
                for row in rows:
                    take.append(row)
                    freed += row.size
                    if freed >= need:
                        break
                store.delete(take)
                dropped.evicted(take, "size")
