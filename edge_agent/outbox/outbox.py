"""The durable outbox: every event and telemetry record is on disk (SQLite, WAL) before it
counts as accepted, and leaves only after the broker acknowledged it.

``Outbox`` accepts drafts, encoding and checking each once (``_accept``); the ``store``
numbers and keeps them (gap-free ``seq`` per gateway, surviving restarts; telemetry on its
own counter, ids ``<gateway>:t<seq>``; events fsynced, telemetry at the configured level);
the ``eviction`` policy bounds them; while the disk refuses writes (full, read-only) the
``held`` buffer keeps events in memory, telemetry is dropped and counted and ``degraded`` is
True, until an ``add``/``begin``/``retry_held`` writes them out. With ``wait_for_disk`` (the
daemon) a database refused from the start is the same degraded mode, reopened at most every
``REOPEN_INTERVAL_S``. Thread-safe (one lock); every method blocks on SQLite: the daemon calls
them on its outbox thread. ``status()`` is what ``edge-agent status`` shows, as is.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_agent import payload
from edge_agent.clock import SyncClock
from edge_agent.component_status import OutboxStatus
from edge_agent.events import (
    TELEMETRY_KIND,
    Draft,
    Event,
    EventDraft,
    JsonValue,
    Severity,
    Stream,
    TelemetryDraft,
)
from edge_agent.outbox.eviction import DROPPED_KIND, Dropped, EvictionPolicy
from edge_agent.outbox.held import HeldEvents, short_reason
from edge_agent.outbox.store import (
    DB_NAME,
    Batch,
    DiskRefused,
    OutboxError,
    Row,
    SqliteStore,
    SyncLevel,
)

__all__ = [
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_MAX_BYTES",
    "Outbox",
    "OutboxSettings",
    "OutboxStatus",
]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_AGE_S = 30 * 86400.0
REOPEN_INTERVAL_S = 5.0  # wait_for_disk: how often add/begin retry opening a refused database
HELD_FLUSH_CHUNK = 100  # held events written per transaction when the disk is back


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """Where and how much (the config's ``storage`` section)."""

    state_dir: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    max_age_s: float = DEFAULT_MAX_AGE_S
    telemetry_sync: SyncLevel = "normal"


class Outbox:
    """The outbox of one gateway. Open with ``Outbox(settings, gateway)``; ``close()`` is
    idempotent; usable as a context manager.

    Raises OutboxError when the state directory or database cannot be opened (with
    ``wait_for_disk``: only a database that is not one), PayloadError for a gateway id no
    payload id may carry.
    """

    def __init__(
        self,
        settings: OutboxSettings,
        gateway: str,
        *,
        clock: SyncClock | None = None,
        hard_limit_bytes: int | None = None,
        wait_for_disk: bool = False,
    ) -> None:
        """``hard_limit_bytes`` caps the database file itself (SQLite ``max_page_count``):
        a backstop beyond ``max_bytes``; past it writes fail exactly like a full disk.
        ``wait_for_disk``: a directory or database the disk refuses (read-only, full) is not
        an error but degraded mode until it can be opened; a corrupt database still raises."""
        payload.check_fields({"id": f"{gateway}:1"})  # every id this outbox will give
        self.settings = settings
        self.gateway = gateway
        self.clock = clock or SyncClock()
        self.path = Path(settings.state_dir) / DB_NAME
        self._policy = EvictionPolicy(settings.max_bytes, settings.max_age_s)
        self._lock = threading.RLock()
        self._held = HeldEvents()
        self._dropped = Dropped()
        self._last_error: str | None = None
        self._degraded = False
        self._reason: str | None = None
        self._hard_limit_bytes = hard_limit_bytes
        self._next_open_at = 0.0  # monotonic: wait_for_disk retries
        self._store: SqliteStore | None = None
        self._closed = False
        self._open_store(force=True, wait=wait_for_disk)

    def _open_store(self, *, force: bool = False, wait: bool = True) -> SqliteStore | None:
        """The store, opening it now if wait_for_disk left it closed (at most every
        ``REOPEN_INTERVAL_S`` unless ``force``). Without ``wait`` a refusal raises."""
        if self._store is not None or self._closed:
            return self._store
        if not force and time.monotonic() < self._next_open_at:
            return None
        self._next_open_at = time.monotonic() + REOPEN_INTERVAL_S
        try:
            self._store = SqliteStore(self.settings.state_dir, self.gateway, self._hard_limit_bytes)
        except DiskRefused as exc:
            if not wait:
                raise OutboxError(str(exc)) from exc.__cause__
            self._enter_degraded(exc)
        return self._store

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._store is not None:
                self._store.close()
                self._store = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- accept
    def add(self, item: Draft) -> Event | None:
        """Number and store one item; returns the accepted Event once it is on disk.

        Returns None when the disk refused the write: an event is then held in memory
        (``degraded``), telemetry is dropped and counted. Raises PayloadError for data that
        cannot be encoded or a record that breaks the schema (a bug in the caller).
        """
        return self.add_many([item])[0]

    def add_many(self, items: Sequence[Draft]) -> list[Event | None]:
        """``add`` for many items in one transaction (one fsync). Same returns and raises:
        one bad item refuses them all, before anything is stored or numbered."""
        now = self.clock.now()
        rows = [self._accept(item, now) for item in items]
        with self._lock:
            self._flush_held()
            store = self._store
            if self._held or store is None:  # still failing: keep order, queue behind
                return self._hold(rows)
            try:
                out: list[Event | None] = list(store.add(rows, self.settings.telemetry_sync))
            except sqlite3.OperationalError as exc:
                self._enter_degraded(exc)
                return self._hold(rows)
            self._enforce_bounds(store, now)
            return out

    def _accept(self, item: Draft, now: float) -> Row:
        """Encode ``data`` and check every field the item decides, once. Raises PayloadError."""
        data: Mapping[str, JsonValue]
        stream: Stream
        if isinstance(item, TelemetryDraft):
            kind, sev, data, stream = TELEMETRY_KIND, Severity.INFO, item.values, "telemetry"
        elif isinstance(item, EventDraft):
            kind, sev, data, stream = item.kind, item.sev, item.data, "event"
        else:
            raise TypeError(f"outbox accepts EventDraft or TelemetryDraft, not {type(item)!r}")
        what = f"event {kind} of {item.dev}"
        data_json = payload.dumps_data(data)
        ts_ms = payload.ts_ms(item.ts, what)
        try:
            payload.check_fields(
                {"ts": ts_ms, "dev": item.dev, "kind": kind, "sev": sev, "data": data}
            )
        except payload.PayloadError as exc:
            raise payload.PayloadError(f"{what}: {exc}") from None
        synced = self.clock.is_synchronised(now)
        return Row(stream, item.dev, kind, Severity(sev), item.ts, synced, data_json, now)

    # ---------------------------------------------------------------- degraded mode
    def _enter_degraded(self, exc: Exception) -> None:
        if isinstance(exc, DiskRefused):
            self._last_error = str(exc)
            cause: BaseException = exc.__cause__ or exc
        else:
            self._last_error = f"outbox {self.path}: write failed: {exc}"
            cause = exc
        self._reason = short_reason(cause)
        self._degraded = True

    def _leave_degraded(self) -> None:
        self._degraded, self._last_error, self._reason = False, None, None

    def _hold(self, rows: Sequence[Row]) -> list[Event | None]:
        """The disk refuses writes: hold the events (not accepted yet: None each), count the
        telemetry dropped."""
        for row in rows:
            if row.stream == "telemetry":
                self._dropped.count("disk", telemetry=1)
                continue
            victim = self._held.hold(row)
            if victim is not None:
                alarm = victim.sev.is_alarm
                self._dropped.count("memory", alarms=int(alarm), events=int(not alarm))
        return [None] * len(rows)

    def _flush_held(self, *, force_open: bool = False) -> None:
        """Write held events (and a pending dropped report) to disk if the disk lets us."""
        store = self._open_store(force=force_open)
        if store is None:
            return
        if not self._held and not (self._dropped and self._degraded):
            if self._degraded:  # e.g. an eviction or a delete failed: does it write again?
                try:
                    store.probe_write()
                except sqlite3.OperationalError as exc:
                    self._enter_degraded(exc)
                    return
                self._leave_degraded()
            return
        try:
            while self._held:
                chunk = self._held.oldest(HELD_FLUSH_CHUNK)
                store.add(chunk, self.settings.telemetry_sync)
                self._held.release(len(chunk))
            self._report_dropped(store, self.clock.now())
        except sqlite3.OperationalError as exc:
            self._enter_degraded(exc)
            return
        self._leave_degraded()

    def retry_held(self) -> bool:
        """Try to open the database (wait_for_disk) and write held events now; returns True
        when nothing is held any more and the disk takes writes."""
        with self._lock:
            self._flush_held(force_open=True)
            return not self._held and not self._degraded

    # ---------------------------------------------------------------- bounds
    def _enforce_bounds(self, store: SqliteStore, now: float) -> None:
        try:
            self._policy.enforce(store, now, self._dropped)
            self._report_dropped(store, now)
        except sqlite3.OperationalError as exc:  # eviction frees space; failing it is not fatal
            self._enter_degraded(exc)

    def _report_dropped(self, store: SqliteStore, now: float) -> None:
        """Store one gateway.outbox_dropped event for everything dropped since the last one."""
        if not self._dropped:
            return
        data = self._dropped.take_report()
        synced = self.clock.is_synchronised(now)  # flagged like any event taken now
        sev = EventDraft.of(self.gateway, DROPPED_KIND, now).sev
        row = Row(
            "event", self.gateway, DROPPED_KIND, sev, now, synced, payload.dumps_data(data), now
        )
        store.add([row], self.settings.telemetry_sync)

    # ---------------------------------------------------------------- deliver
    def begin(self, max_n: int) -> Batch:
        """Up to ``max_n`` rows not yet handed out, in acceptance order (so per device too)."""
        with self._lock:
            self._flush_held()
            if self._store is None:  # wait_for_disk: not open yet, nothing stored to send
                return Batch((), ())
            return self._store.begin(max_n)

    def end(self, batch: Batch, accepted_ids: Iterable[str]) -> int:
        """Delete the rows of ``batch`` whose ids were accepted (PUBACK success); the first
        row not accepted rewinds ``begin`` to it, so it is sent again, in order.

        Returns how many rows were deleted. A full disk refuses even a delete (WAL frames):
        the rows stay and are sent again after the next rewind (a duplicate, never a loss).
        """
        with self._lock:
            if self._store is None:
                return 0
            try:
                return self._store.end(batch, accepted_ids)
            except sqlite3.OperationalError as exc:
                self._enter_degraded(exc)
                return 0

    def rewind(self) -> None:
        """Forget what was handed out: the next ``begin`` starts at the oldest stored row
        (after a reconnect, everything unacknowledged is sent again)."""
        with self._lock:
            if self._store is not None:
                self._store.rewind()

    # ---------------------------------------------------------------- inspect
    def depth(self) -> int:
        """Rows stored (events + telemetry), not counting held-in-memory events. Kept in
        memory: cheap enough to call from the event loop."""
        store = self._store
        return store.rows if store is not None else 0

    def oldest_age_s(self, now: float | None = None) -> float | None:
        """Age of the oldest stored row by acceptance time, None when empty."""
        with self._lock:
            oldest = self._store.oldest_accepted_at() if self._store is not None else None
        if oldest is None:
            return None
        return max(0.0, (self.clock.now() if now is None else now) - oldest)

    def next_seq(self) -> int | None:
        """The seq the next accepted event will get (None while wait_for_disk waits)."""
        with self._lock:
            return self._store.next_seq() if self._store is not None else None

    @property
    def degraded(self) -> bool:
        """True while the disk refuses writes (events are held in memory)."""
        return self._degraded

    @property
    def degraded_reason(self) -> str | None:
        """A few words on why while degraded ("disk full", "read-only", ...), else None."""
        return self._reason if self._degraded else None

    def status(self) -> OutboxStatus:
        with self._lock:
            store = self._store
            counts = store.depth_by_stream() if store is not None else {}
            return OutboxStatus(
                depth=sum(counts.values()),
                oldest_age_s=self.oldest_age_s(),
                degraded=self._degraded,
                reason=self.degraded_reason,
                held_in_memory=len(self._held),
                dropped_total=self._dropped.total,
                depth_events=counts.get("event", 0),
                depth_telemetry=counts.get("telemetry", 0),
                stored_bytes=store.stored_bytes if store is not None else 0,
                last_error=self._last_error,
            )

    def integrity_check(self) -> list[str]:
        """SQLite's ``PRAGMA integrity_check``: an empty list when the database is sound."""
        with self._lock:
            if self._store is None:
                return [f"not open: {self._last_error}"]
            return self._store.integrity_check()
