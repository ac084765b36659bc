"""The durable outbox: every event and telemetry record is on disk (SQLite, WAL) before it
counts as accepted, and leaves only after the broker acknowledged it.

Shape (Telegraf's buffer): ``add(item) -> Event`` numbers and stores; ``begin(max_n) -> Batch``
hands out the oldest unsent rows; ``end(batch, accepted_ids)`` deletes what the broker took and
rewinds to the first row it did not, so a retry keeps per-device order (at-least-once: a
consumer may see a duplicate, never a gap that is not announced).

Guarantees
- ``seq`` is gap-free per gateway over events and survives restarts: it is taken from the
  ``meta`` table in the same transaction as the insert, so a crash either stores both or neither.
  Telemetry has its own counter (ids ``<gateway>:t<seq>``).
- Events are committed with ``synchronous=FULL`` (fsync); telemetry with the configured level
  (``off|normal|full``). In WAL mode even ``off``/``normal`` survive a ``kill -9`` (the pages
  are in the OS); they only risk the last commits on power loss.
- Bounds: when the stored rows exceed ``max_bytes`` (payload bytes + ``ROW_OVERHEAD_BYTES``
  each) rows are evicted down to ``LOW_WATER`` of the cap in this order: telemetry (oldest
  first), then non-alarm events (oldest first), then alarms (oldest first). Rows older than
  ``max_age_s`` are evicted whatever they are (not rows accepted while the clock was
  unsynchronised, before NTP: only the size cap bounds those). Every eviction adds one
  ``gateway.outbox_dropped`` event (counts per class and the event seq ranges that went).
- Disk full / read-only: events are held in memory (``MAX_HELD`` at most; the oldest non-alarm
  goes first when full), telemetry is dropped and counted, ``degraded`` is True; every later
  ``add``/``begin``/``retry_held`` tries to write them out and clears ``degraded`` on success.
  A held event is numbered only when it reaches the disk, so a crash cannot reuse a seq.
  With ``wait_for_disk=True`` (the daemon) a state directory that refuses the database from
  the start (read-only, full) is the same degraded mode: the outbox opens it later, at most
  every ``REOPEN_INTERVAL_S`` from ``add``/``begin`` and on every ``retry_held``.
  ``degraded_reason`` says why in a few words ("disk full", "read-only", ...).

Thread-safe: one connection, one lock. Every method blocks on SQLite, so the daemon calls them
through ``asyncio.to_thread`` (never on the event loop).
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge_agent import codec
from edge_agent.clock import MIN_PLAUSIBLE_EPOCH_S, SyncClock
from edge_agent.errors import RuntimeFailure
from edge_agent.events import (
    TELEMETRY_KIND,
    Event,
    EventDraft,
    Severity,
    TelemetryDraft,
)

__all__ = [
    "DB_NAME",
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_MAX_BYTES",
    "MAX_HELD",
    "Batch",
    "Outbox",
    "OutboxError",
    "OutboxSettings",
    "OutboxStats",
]

DB_NAME = "outbox.sqlite3"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_AGE_S = 30 * 86400.0
ROW_OVERHEAD_BYTES = 64  # index + row header per stored row: what the size cap counts on top
LOW_WATER = 0.9  # evict down to this fraction of the cap, so eviction does not run every add
MAX_HELD = 1000  # events held in memory while the disk refuses writes
REOPEN_INTERVAL_S = 5.0  # wait_for_disk: how often add/begin retry opening a refused database
DROPPED_KIND = "gateway.outbox_dropped"
MAX_DROPPED_RANGES = 50  # seq ranges listed in one gateway.outbox_dropped event
DIR_MODE = 0o700
FILE_MODE = 0o600

SyncLevel = Literal["off", "normal", "full"]
_SYNC_PRAGMA = {"off": "OFF", "normal": "NORMAL", "full": "FULL"}
_EVENT, _TELEMETRY = 0, 1  # the ``stream`` column

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,  -- acceptance order: the send order
    stream INTEGER NOT NULL,                  -- 0 event, 1 telemetry
    seq INTEGER NOT NULL,
    dev TEXT NOT NULL,
    kind TEXT NOT NULL,
    sev INTEGER NOT NULL,
    ts REAL NOT NULL,                         -- observation time, epoch s
    synced INTEGER NOT NULL,
    data TEXT NOT NULL,                       -- compact JSON
    accepted_at REAL NOT NULL,                -- wall clock at acceptance (age bound)
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_accepted ON outbox (accepted_at);
INSERT OR IGNORE INTO meta VALUES ('next_event_seq', 1), ('next_telemetry_seq', 1);
"""


class OutboxError(RuntimeFailure):
    """The outbox cannot be opened or is corrupt (one line naming the file)."""


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """Where and how much. ``from_config`` adapts ``StorageConfig`` (``--state-dir`` wins)."""

    state_dir: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    max_age_s: float = DEFAULT_MAX_AGE_S
    telemetry_sync: SyncLevel = "normal"

    @classmethod
    def from_config(
        cls, storage: Any, state_dir: str | os.PathLike[str] | None = None
    ) -> OutboxSettings:
        """From ``edge_agent.config.model.StorageConfig``; ``state_dir`` is ``--state-dir``."""
        return cls(
            state_dir=Path(state_dir if state_dir is not None else storage.state_dir),
            max_bytes=int(storage.outbox_max_mb * 1024 * 1024),
            max_age_s=float(storage.outbox_max_age_days) * 86400.0,
            telemetry_sync=storage.telemetry_sync,
        )


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows handed to the uplink, oldest first. ``end()`` it with the ids the broker accepted."""

    events: tuple[Event, ...]
    rowids: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.events)

    def __bool__(self) -> bool:
        return bool(self.events)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """What ``status`` shows."""

    depth: int
    depth_events: int
    depth_telemetry: int
    stored_bytes: int
    oldest_age_s: float | None
    held_in_memory: int
    degraded: bool
    last_error: str | None
    dropped_total: int
    degraded_reason: str | None = None  # "disk full", "read-only", ... while degraded


@dataclass
class _Dropped:
    """Evicted or refused entries not yet reported by a gateway.outbox_dropped event."""

    telemetry: int = 0
    events: int = 0
    alarms: int = 0
    seq_ranges: list[tuple[int, int]] = field(default_factory=list)
    reasons: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.telemetry or self.events or self.alarms or self.seq_ranges)

    def merged_ranges(self) -> list[list[int]]:
        out: list[list[int]] = []
        for a, b in sorted(self.seq_ranges):
            if out and a <= out[-1][1] + 1:
                out[-1][1] = max(out[-1][1], b)
            else:
                out.append([a, b])
        return out


class Outbox:
    """The SQLite outbox of one gateway. Open with ``Outbox(settings, gateway)``; ``close()``
    is idempotent; usable as a context manager.

    Raises OutboxError when the state directory or database cannot be opened.
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
        self.settings = settings
        self.gateway = gateway
        self.clock = clock or SyncClock()
        self.path = Path(settings.state_dir) / DB_NAME
        self._lock = threading.RLock()
        self._cursor = 0  # highest rowid handed out by begin()
        self._held: deque[tuple[EventDraft, float, bool]] = deque()
        self._dropped = _Dropped()
        self._dropped_total = 0
        self._last_error: str | None = None
        self._degraded = False
        self._reason: str | None = None
        self._hard_limit_bytes = hard_limit_bytes
        self._next_open_at = 0.0  # monotonic: wait_for_disk retries
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._stored_bytes = 0
        self._rows = 0
        try:
            self._connect()
        except _DiskRefused as exc:
            if not wait_for_disk:
                raise OutboxError(str(exc)) from exc.__cause__
            self._enter_degraded(exc)

    def _connect(self) -> None:
        """Open and count what is stored. Raises _DiskRefused or OutboxError."""
        self._conn = self._open(self._hard_limit_bytes)
        self._stored_bytes = self._query_one("SELECT COALESCE(SUM(size), 0) FROM outbox")
        self._rows = self._query_one("SELECT COUNT(*) FROM outbox")  # depth() without a query

    def _reopen(self, *, force: bool = False) -> bool:
        """wait_for_disk: try to open the database now; True when it is open."""
        if self._conn is not None:
            return True
        if self._closed or (not force and time.monotonic() < self._next_open_at):
            return False
        self._next_open_at = time.monotonic() + REOPEN_INTERVAL_S
        try:
            self._connect()
        except _DiskRefused as exc:
            self._enter_degraded(exc)
            return False
        return True

    # ---------------------------------------------------------------- open / close
    def _open(self, hard_limit_bytes: int | None) -> sqlite3.Connection:
        state_dir = Path(self.settings.state_dir)
        try:
            if not state_dir.exists():
                state_dir.mkdir(mode=DIR_MODE, parents=True)
                state_dir.chmod(DIR_MODE)  # mkdir's mode is filtered by the umask
            # Create the file 0600 before SQLite does; SQLite gives -wal/-shm the same mode.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
            try:
                os.fchmod(fd, FILE_MODE)  # also tighten a file an older install left loose
            finally:
                os.close(fd)
            conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30.0
            )
        except (OSError, sqlite3.Error) as exc:
            raise _DiskRefused(f"outbox {self.path}: cannot open: {exc}") from exc
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise OutboxError(f"outbox {self.path}: cannot switch to WAL (got {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            if hard_limit_bytes is not None:
                page = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count={max(1, hard_limit_bytes // page)}")
            conn.executescript(_SCHEMA)
        except sqlite3.OperationalError as exc:  # read-only, full, I/O error: the disk's fault
            conn.close()
            raise _DiskRefused(f"outbox {self.path}: cannot open: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise OutboxError(f"outbox {self.path}: not a usable database: {exc}") from exc
        return conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- accept
    def add(self, item: EventDraft | TelemetryDraft) -> Event | None:
        """Number and store one item; returns the accepted Event once it is on disk.

        Returns None when the disk refused the write: an event is then held in memory
        (``degraded``), telemetry is dropped and counted. Raises PayloadError for data that
        cannot be encoded or a record that breaks the schema (a bug in the caller).
        """
        return self.add_many([item])[0]

    def add_many(self, items: Sequence[EventDraft | TelemetryDraft]) -> list[Event | None]:
        """``add`` for many items in one transaction (one fsync). Same returns and raises."""
        now = self.clock.now()
        prepared = [self._prepare(item, now) for item in items]
        with self._lock:
            self._flush_held()
            if self._held or self._conn is None:  # still failing: keep order, queue behind
                return [self._hold(p) for p in prepared]
            try:
                out = self._insert_many(prepared, now)
            except sqlite3.OperationalError as exc:
                self._enter_degraded(exc)
                return [self._hold(p) for p in prepared]
            self._enforce_bounds(now)
            return out

    def _prepare(self, item: EventDraft | TelemetryDraft, now: float) -> tuple[Any, ...]:
        if isinstance(item, TelemetryDraft):
            draft = EventDraft(item.dev, TELEMETRY_KIND, Severity.INFO, item.ts, dict(item.values))
            stream = _TELEMETRY
        elif isinstance(item, EventDraft):
            draft, stream = item, _EVENT
        else:
            raise TypeError(f"outbox accepts EventDraft or TelemetryDraft, not {type(item)!r}")
        if draft.sev not in iter(Severity):
            raise codec.PayloadError(f"event {draft.kind} of {draft.dev}: bad sev {draft.sev!r}")
        data_json = codec.dumps_data(draft.data)
        synced = self.clock.is_synchronised(now)
        # Validate the payload it will become now, so nothing unpublishable is ever accepted.
        codec.check_payload(codec.to_payload(self._event(stream, 1, draft, synced)))
        return (stream, draft, data_json, synced)

    def _event(self, stream: int, seq: int, d: EventDraft, synced: bool) -> Event:
        return Event(
            gateway=self.gateway,
            seq=seq,
            dev=d.dev,
            kind=d.kind,
            sev=Severity(d.sev),
            ts=d.ts,
            data=d.data,
            ts_synced=synced,
            stream="telemetry" if stream == _TELEMETRY else "event",
        )

    def _insert_many(self, prepared: Iterable[tuple[Any, ...]], now: float) -> list[Event]:
        prepared = list(prepared)
        all_telemetry = all(p[0] == _TELEMETRY for p in prepared)
        level = _SYNC_PRAGMA[self.settings.telemetry_sync] if all_telemetry else "FULL"
        conn = self._conn
        conn.execute(f"PRAGMA synchronous={level}")
        out: list[Event] = []
        added = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            next_seq = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            for stream, draft, data_json, synced in prepared:
                key = "next_telemetry_seq" if stream == _TELEMETRY else "next_event_seq"
                seq = next_seq[key]
                next_seq[key] = seq + 1
                size = len(data_json) + len(draft.dev) + len(draft.kind) + ROW_OVERHEAD_BYTES
                conn.execute(
                    "INSERT INTO outbox (stream, seq, dev, kind, sev, ts, synced, data,"
                    " accepted_at, size) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (stream, seq, draft.dev, draft.kind, int(draft.sev), draft.ts, synced,
                     data_json, now, size),
                )  # fmt: skip
                added += size
                out.append(self._event(stream, seq, draft, synced))
            conn.executemany(
                "UPDATE meta SET value = ? WHERE key = ?", [(v, k) for k, v in next_seq.items()]
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._stored_bytes += added
        self._rows += len(out)
        return out

    # ---------------------------------------------------------------- degraded mode
    def _enter_degraded(self, exc: Exception) -> None:
        if isinstance(exc, _DiskRefused):
            self._last_error = str(exc)
            exc = exc.__cause__ or exc
        else:
            self._last_error = f"outbox {self.path}: write failed: {exc}"
        self._reason = _short_reason(exc)
        self._degraded = True

    def _hold(self, prepared: tuple[Any, ...]) -> None:
        stream, draft, _data_json, synced = prepared
        if stream == _TELEMETRY:
            self._count_dropped("disk", telemetry=1)
            return None
        if len(self._held) >= MAX_HELD:
            victim_i = next(
                (i for i, (d, _, _) in enumerate(self._held) if not Severity(d.sev).is_alarm), 0
            )
            victim = self._held[victim_i][0]
            del self._held[victim_i]
            alarm = Severity(victim.sev).is_alarm
            self._count_dropped("memory", alarms=int(alarm), events=int(not alarm))
        self._held.append((draft, self.clock.now(), synced))
        return None

    def _flush_held(self, *, force_open: bool = False) -> None:
        """Write held events (and a pending dropped report) to disk if the disk lets us."""
        if not self._reopen(force=force_open):
            return
        if not self._held and not (self._dropped and self._degraded):
            if self._degraded and self._probe_write():
                self._degraded, self._last_error, self._reason = False, None, None
            return
        try:
            while self._held:
                chunk = [self._held[i] for i in range(min(100, len(self._held)))]
                prepared = [(_EVENT, d, codec.dumps_data(d.data), synced) for d, _, synced in chunk]
                self._insert_many(prepared, chunk[0][1])
                for _ in chunk:
                    self._held.popleft()
            self._report_dropped(self.clock.now())
        except sqlite3.OperationalError as exc:
            self._enter_degraded(exc)
            return
        self._degraded = False
        self._last_error = None
        self._reason = None

    def _probe_write(self) -> bool:
        """Degraded with nothing held (e.g. an eviction or a delete failed): one empty write
        transaction says whether the disk takes writes again."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("UPDATE meta SET value = value WHERE key = 'next_event_seq'")
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self._enter_degraded(exc)
            return False
        return True

    def retry_held(self) -> bool:
        """Try to open the database (wait_for_disk) and write held events now; returns True
        when nothing is held any more and the disk takes writes."""
        with self._lock:
            self._flush_held(force_open=True)
            return not self._held and not self._degraded

    # ---------------------------------------------------------------- bounds
    def _count_dropped(
        self, reason: str, *, telemetry: int = 0, events: int = 0, alarms: int = 0
    ) -> None:
        self._dropped.telemetry += telemetry
        self._dropped.events += events
        self._dropped.alarms += alarms
        self._dropped.reasons.add(reason)
        self._dropped_total += telemetry + events + alarms

    def _enforce_bounds(self, now: float) -> None:
        s = self.settings
        conn = self._conn
        try:
            # Rows accepted while the clock was unsynchronised (1970 on a Pi without RTC, or
            # fake-hwclock's last-shutdown time, weeks behind) are not "old": the age bound
            # would evict them all when NTP steps the clock forward. Size bounds them.
            expired = conn.execute(
                "SELECT rowid, stream, seq, sev, size, kind, data FROM outbox"
                " WHERE accepted_at < ? AND accepted_at >= ? AND synced = 1 ORDER BY rowid",
                (now - s.max_age_s, MIN_PLAUSIBLE_EPOCH_S),
            ).fetchall()
            if expired:
                self._evict(expired, "age")
            if self._stored_bytes > s.max_bytes:
                self._evict_for_size(int(s.max_bytes * LOW_WATER))
            self._report_dropped(now)
        except sqlite3.OperationalError as exc:  # eviction frees space; failing it is not fatal
            self._enter_degraded(exc)

    def _evict_for_size(self, target: int) -> None:
        # Telemetry, then non-alarm events, then alarms; oldest first within each class.
        classes = (
            ("stream = 1", ()),
            ("stream = 0 AND sev < ?", (int(Severity.WARNING),)),
            ("stream = 0 AND sev >= ?", (int(Severity.WARNING),)),
        )
        for where, args in classes:
            while self._stored_bytes > target:
                rows = self._conn.execute(
                    f"SELECT rowid, stream, seq, sev, size, kind, data FROM outbox WHERE {where}"
                    " ORDER BY rowid LIMIT 500",
                    args,
                ).fetchall()
                if not rows:
                    break
                need = self._stored_bytes - target
                take, freed = [], 0
                for row in rows:
                    take.append(row)
                    freed += row[4]
                    if freed >= need:
                        break
                self._evict(take, "size")

    def _evict(self, rows: list[tuple[Any, ...]], reason: str) -> None:
        conn = self._conn
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("DELETE FROM outbox WHERE rowid = ?", [(r[0],) for r in rows])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        d = self._dropped
        for _rowid, stream, seq, sev, size, kind, data in rows:
            self._stored_bytes -= size
            self._rows -= 1
            if stream == _TELEMETRY:
                self._count_dropped(reason, telemetry=1)
                continue
            d.seq_ranges.append((seq, seq))
            if kind == DROPPED_KIND:
                # An evicted report: carry its counts into the next one, so none is lost.
                old = json.loads(data)
                d.telemetry += old.get("telemetry", 0)
                d.events += old.get("events", 0)
                d.alarms += old.get("alarms", 0)
                d.reasons.update(old.get("reasons", ()))
                d.seq_ranges.extend((a, b) for a, b in old.get("seq_ranges", ()))
                continue
            alarm = Severity(sev).is_alarm
            self._count_dropped(reason, alarms=int(alarm), events=int(not alarm))

    def _report_dropped(self, now: float) -> None:
        """Store one gateway.outbox_dropped event for everything evicted since the last one."""
        if not self._dropped:
            return
        d = self._dropped
        ranges = d.merged_ranges()
        data: dict[str, Any] = {
            "telemetry": d.telemetry,
            "events": d.events,
            "alarms": d.alarms,
            "reasons": sorted(d.reasons),
            "seq_ranges": ranges[:MAX_DROPPED_RANGES],
        }
        if len(ranges) > MAX_DROPPED_RANGES:
            data["seq_ranges_truncated"] = len(ranges) - MAX_DROPPED_RANGES
        draft = EventDraft.of(self.gateway, DROPPED_KIND, now, **data)
        synced = self.clock.is_synchronised(now)  # flagged like any event taken now
        self._insert_many([(_EVENT, draft, codec.dumps_data(data), synced)], now)
        self._dropped = _Dropped()

    # ---------------------------------------------------------------- deliver
    def begin(self, max_n: int) -> Batch:
        """Up to ``max_n`` rows not yet handed out, in acceptance order (so per device too)."""
        with self._lock:
            self._flush_held()
            if self._conn is None:  # wait_for_disk: not open yet, nothing stored to send
                return Batch((), ())
            rows = self._conn.execute(
                "SELECT rowid, stream, seq, dev, kind, sev, ts, synced, data FROM outbox"
                " WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (self._cursor, max_n),
            ).fetchall()
            if rows:
                self._cursor = rows[-1][0]
        events = tuple(
            Event(
                gateway=self.gateway,
                seq=seq,
                dev=dev,
                kind=kind,
                sev=Severity(sev),
                ts=ts,
                data=json.loads(data),
                ts_synced=bool(synced),
                stream="telemetry" if stream == _TELEMETRY else "event",
            )
            for _rowid, stream, seq, dev, kind, sev, ts, synced, data in rows
        )
        return Batch(events, tuple(r[0] for r in rows))

    def end(self, batch: Batch, accepted_ids: Iterable[str]) -> int:
        """Delete the rows of ``batch`` whose ids were accepted (PUBACK success); the first
        row not accepted rewinds ``begin`` to it, so it is sent again, in order.

        Returns how many rows were deleted.
        """
        accepted = set(accepted_ids)
        done = [
            (rid,) for ev, rid in zip(batch.events, batch.rowids, strict=True) if ev.id in accepted
        ]
        rejected = [
            rid for ev, rid in zip(batch.events, batch.rowids, strict=True) if ev.id not in accepted
        ]
        deleted = 0
        with self._lock:
            if done and self._conn is not None:
                conn = self._conn
                try:
                    conn.execute("PRAGMA synchronous=NORMAL")  # losing a delete = one duplicate
                    conn.execute("BEGIN IMMEDIATE")
                    sizes = conn.execute(
                        f"SELECT COALESCE(SUM(size), 0) FROM outbox WHERE rowid IN "
                        f"({','.join('?' * len(done))})",
                        [d[0] for d in done],
                    ).fetchone()[0]
                    deleted = conn.executemany("DELETE FROM outbox WHERE rowid = ?", done).rowcount
                    conn.execute("COMMIT")
                except sqlite3.OperationalError as exc:
                    # A full disk refuses even a delete (WAL frames): the rows stay and are
                    # sent again after the next rewind (a duplicate, never a loss).
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    self._enter_degraded(exc)
                    deleted = 0
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                else:
                    self._stored_bytes -= sizes
                    self._rows -= deleted
            if rejected:
                self._cursor = min(self._cursor, min(rejected) - 1)
        return deleted

    def rewind(self) -> None:
        """Forget what was handed out: the next ``begin`` starts at the oldest stored row
        (after a reconnect, everything unacknowledged is sent again)."""
        with self._lock:
            self._cursor = 0

    # ---------------------------------------------------------------- inspect
    def _query_one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        with self._lock:
            if self._conn is None:  # wait_for_disk: not open yet
                return None
            return self._conn.execute(sql, args).fetchone()[0]

    def depth(self) -> int:
        """Rows stored (events + telemetry), not counting held-in-memory events. Kept in
        memory: cheap enough to call from the event loop."""
        return self._rows

    def oldest_age_s(self, now: float | None = None) -> float | None:
        """Age of the oldest stored row by acceptance time, None when empty."""
        oldest = self._query_one("SELECT MIN(accepted_at) FROM outbox")
        if oldest is None:
            return None
        return max(0.0, (self.clock.now() if now is None else now) - oldest)

    def next_seq(self) -> int:
        """The seq the next accepted event will get."""
        return self._query_one("SELECT value FROM meta WHERE key = 'next_event_seq'")

    @property
    def degraded(self) -> bool:
        """True while the disk refuses writes (events are held in memory)."""
        return self._degraded

    @property
    def degraded_reason(self) -> str | None:
        """A few words on why while degraded ("disk full", "read-only", ...), else None."""
        return self._reason if self._degraded else None

    def stats(self) -> OutboxStats:
        with self._lock:
            counts: dict[int, int] = {}
            if self._conn is not None:
                counts = dict(
                    self._conn.execute("SELECT stream, COUNT(*) FROM outbox GROUP BY stream")
                )
            return OutboxStats(
                depth=sum(counts.values()),
                depth_events=counts.get(_EVENT, 0),
                depth_telemetry=counts.get(_TELEMETRY, 0),
                stored_bytes=self._stored_bytes,
                oldest_age_s=self.oldest_age_s(),
                held_in_memory=len(self._held),
                degraded=self._degraded,
                last_error=self._last_error,
                dropped_total=self._dropped_total,
                degraded_reason=self.degraded_reason,
            )

    def integrity_check(self) -> list[str]:
        """SQLite's ``PRAGMA integrity_check``: an empty list when the database is sound."""
        with self._lock:
            if self._conn is None:
                return [f"not open: {self._last_error}"]
            rows = [r[0] for r in self._conn.execute("PRAGMA integrity_check").fetchall()]
        return [] if rows == ["ok"] else rows


class _DiskRefused(Exception):
    """The disk refused to open the database (read-only, full, I/O error, no permission)."""


def _short_reason(exc: BaseException) -> str:
    """A few words for STATUS= and the log: what the operator has to fix."""
    text = str(exc).lower()
    errno_ = getattr(exc, "errno", None)
    if errno_ in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in text or "no space" in text:
        return "disk full"
    if errno_ == errno.EROFS or "readonly" in text or "read-only" in text:
        return "read-only"
    if errno_ in (errno.EACCES, errno.EPERM) or "permission denied" in text:
        return "no write permission"
    if "unable to open" in text:
        return "cannot open the database"
    if "disk i/o error" in text or errno_ == errno.EIO:
        return "disk I/O error"
    return str(exc).split("\n")[0][:80]
