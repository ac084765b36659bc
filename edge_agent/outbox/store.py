"""The outbox's SQLite store (Telegraf's buffer): numbered rows on disk, handed out oldest
first, deleted once the broker took them.

``add`` numbers rows and inserts them in one transaction (``seq`` comes from the ``meta``
table in it: a crash stores both or neither); ``begin`` hands out the oldest rows not yet
handed out; ``end`` deletes the accepted ones and rewinds to the first that was not. Disk
trouble surfaces as ``sqlite3.OperationalError`` (``DiskRefused`` at open): what it means is
the ``Outbox``'s call, which also serialises every call.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Literal, TypeAlias

from edge_agent.errors import RuntimeFailure
from edge_agent.events import Event, Severity, Stream

__all__ = ["DB_NAME", "Batch", "DiskRefused", "EvictionClass", "OutboxError", "Row"]
__all__ += ["SqliteStore", "StoredRow", "SyncLevel"]

DB_NAME = "outbox.sqlite3"
ROW_OVERHEAD_BYTES = 64  # index + row header per stored row: what the size cap counts on top
DIR_MODE, FILE_MODE = 0o700, 0o600

SyncLevel: TypeAlias = Literal["off", "normal", "full"]
_STREAMS: tuple[Stream, Stream] = ("event", "telemetry")  # the ``stream`` column: 0, 1
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


class DiskRefused(Exception):
    """The disk refused to open the database (read-only, full, I/O error, no permission)."""


@dataclass(frozen=True, slots=True)
class Row:
    """An accepted item, encoded and checked, not yet numbered (degraded mode holds it so)."""

    stream: Stream
    dev: str
    kind: str
    sev: Severity
    ts: float
    synced: bool
    data_json: str
    accepted_at: float  # wall clock: the age bound counts from it

    @property
    def size(self) -> int:
        """What the size cap counts for this row."""
        return len(self.data_json) + len(self.dev) + len(self.kind) + ROW_OVERHEAD_BYTES


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A stored row as eviction sees it."""

    rowid: int
    stream: Stream
    seq: int
    sev: Severity
    size: int
    kind: str
    data_json: str


class EvictionClass(Enum):
    """The size bound's eviction order, each with its WHERE clause."""

    TELEMETRY = ("stream = 1", ())
    EVENTS = ("stream = 0 AND sev < ?", (int(Severity.WARNING),))
    ALARMS = ("stream = 0 AND sev >= ?", (int(Severity.WARNING),))


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows handed to the uplink, oldest first. ``end()`` it with the ids the broker accepted."""

    events: tuple[Event, ...]
    rowids: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.events)


class SqliteStore:
    """The WAL database of one gateway's outbox. Raises ``DiskRefused`` (the disk's fault)
    or ``OutboxError`` (not a usable database) when it cannot be opened; ``hard_limit_bytes``
    caps the file (SQLite ``max_page_count``): past it writes fail like a full disk."""

    def __init__(self, state_dir: Path, gateway: str, hard_limit_bytes: int | None) -> None:
        self.gateway = gateway
        self.path = Path(state_dir) / DB_NAME
        self._conn = self._open(Path(state_dir), hard_limit_bytes)
        self._cursor = 0  # highest rowid handed out by begin()
        self.stored_bytes = self._one("SELECT COALESCE(SUM(size), 0) FROM outbox")
        self.rows = self._one("SELECT COUNT(*) FROM outbox")  # the depth, without a query

    def _open(self, state_dir: Path, hard_limit_bytes: int | None) -> sqlite3.Connection:
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
            raise DiskRefused(f"outbox {self.path}: cannot open: {exc}") from exc
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
            raise DiskRefused(f"outbox {self.path}: cannot open: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise OutboxError(f"outbox {self.path}: not a usable database: {exc}") from exc
        return conn

    def close(self) -> None:
        self._conn.close()

    def _one(self, sql: str, args: Sequence[object] = ()) -> int:
        value: int = self._conn.execute(sql, args).fetchone()[0]
        return value

    def _write(self, sync: str, *statements: tuple[str, Iterable[Sequence[object]]]) -> int:
        """Each ``(sql, params)`` run once per params, all in one transaction at ``PRAGMA
        synchronous=sync`` (rolled back on any error). Returns the rows the first changed."""
        conn = self._conn
        conn.execute(f"PRAGMA synchronous={sync}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            changed = [conn.executemany(sql, params).rowcount for sql, params in statements]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return changed[0]

    def add(self, rows: Sequence[Row], telemetry_sync: SyncLevel) -> list[Event]:
        """Number and insert ``rows`` in one transaction: fsynced when it holds an event, at
        ``telemetry_sync`` when only telemetry. Returns them as accepted Events."""
        seqs = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        out = []
        for r in rows:
            key = f"next_{r.stream}_seq"
            out.append(Event(self.gateway, seqs[key], r.dev, r.kind, r.sev, r.ts, r.data_json,
                             r.synced, r.stream))  # fmt: skip
            seqs[key] += 1
        sync = telemetry_sync if all(r.stream == "telemetry" for r in rows) else "full"
        insert = (
            "INSERT INTO outbox (stream, seq, dev, kind, sev, ts, synced, data, accepted_at,"
            " size) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(_STREAMS.index(r.stream), e.seq, r.dev, r.kind, int(r.sev), r.ts, r.synced,
              r.data_json, r.accepted_at, r.size) for r, e in zip(rows, out, strict=True)],
        )  # fmt: skip
        counters = ("UPDATE meta SET value = ? WHERE key = ?", [(v, k) for k, v in seqs.items()])
        self._write(sync.upper(), insert, counters)
        self.stored_bytes += sum(r.size for r in rows)
        self.rows += len(out)
        return out

    def probe_write(self) -> None:
        """An empty write: raises ``sqlite3.OperationalError`` while the disk refuses writes."""
        self._write("FULL", ("UPDATE meta SET value = value WHERE key = 'next_event_seq'", [()]))

    def begin(self, max_n: int) -> Batch:
        """Up to ``max_n`` rows not yet handed out, in acceptance order (so per device too)."""
        rows = self._conn.execute(
            "SELECT rowid, stream, seq, dev, kind, sev, ts, synced, data FROM outbox"
            " WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (self._cursor, max_n),
        ).fetchall()
        if rows:
            self._cursor = rows[-1][0]
        events = tuple(
            Event(self.gateway, seq, dev, kind, Severity(sev), ts, data, bool(synced),
                  _STREAMS[stream])
            for _rowid, stream, seq, dev, kind, sev, ts, synced, data in rows
        )  # fmt: skip
        return Batch(events, tuple(r[0] for r in rows))

    def end(self, batch: Batch, accepted_ids: Iterable[str]) -> int:
        """Delete the rows of ``batch`` whose ids were accepted; rewind ``begin`` to the first
        that was not. Returns how many rows were deleted. Raises ``OperationalError`` when
        the disk refuses even that (the rows are sent again: a duplicate, never a loss)."""
        accepted = set(accepted_ids)
        pairs = list(zip(batch.events, batch.rowids, strict=True))
        done = [rid for ev, rid in pairs if ev.id in accepted]
        rejected = [rid for ev, rid in pairs if ev.id not in accepted]
        if rejected:
            self._cursor = min(self._cursor, min(rejected) - 1)
        if not done:
            return 0
        # Rows evicted meanwhile are gone already: count only what is still stored.
        marks = ",".join("?" * len(done))
        size = self._one(
            f"SELECT COALESCE(SUM(size), 0) FROM outbox WHERE rowid IN ({marks})", done
        )
        # Losing a delete on power loss costs one duplicate: no fsync.
        deleted = self._write(
            "NORMAL", ("DELETE FROM outbox WHERE rowid = ?", [(r,) for r in done])
        )
        self.stored_bytes -= size
        self.rows -= deleted
        return deleted

    def rewind(self) -> None:
        """The next ``begin`` starts at the oldest stored row."""
        self._cursor = 0

    def expired(self, accepted_before: float, accepted_after: float) -> list[StoredRow]:
        """Rows accepted in the interval while the clock was synchronised, oldest first."""
        return self._stored(
            "accepted_at < ? AND accepted_at >= ? AND synced = 1", (accepted_before, accepted_after)
        )

    def oldest(self, of: EvictionClass, limit: int) -> list[StoredRow]:
        where, args = of.value
        return self._stored(f"{where} ORDER BY rowid LIMIT ?", (*args, limit))

    def _stored(self, where: str, args: Sequence[object]) -> list[StoredRow]:
        sql = f"SELECT rowid, stream, seq, sev, size, kind, data FROM outbox WHERE {where}"
        return [
            StoredRow(rowid, _STREAMS[stream], seq, Severity(sev), size, kind, data)
            for rowid, stream, seq, sev, size, kind, data in self._conn.execute(sql, args)
        ]

    def delete(self, rows: Sequence[StoredRow]) -> None:
        """Delete evicted rows (no fsync: an eviction lost on power loss is redone)."""
        self._write("NORMAL", ("DELETE FROM outbox WHERE rowid = ?", [(r.rowid,) for r in rows]))
        self.stored_bytes -= sum(r.size for r in rows)
        self.rows -= len(rows)

    def oldest_accepted_at(self) -> float | None:
        value: float | None = self._conn.execute("SELECT MIN(accepted_at) FROM outbox").fetchone()[
            0
        ]
        return value

    def next_seq(self) -> int:
        """The seq the next accepted event will get."""
        return self._one("SELECT value FROM meta WHERE key = 'next_event_seq'")

    def depth_by_stream(self) -> dict[Stream, int]:
        rows = self._conn.execute("SELECT stream, COUNT(*) FROM outbox GROUP BY stream")
        return {_STREAMS[stream]: count for stream, count in rows}

    def integrity_check(self) -> list[str]:
        """SQLite's ``PRAGMA integrity_check``: an empty list when the database is sound."""
        rows = [r[0] for r in self._conn.execute("PRAGMA integrity_check").fetchall()]
        return [] if rows == ["ok"] else rows
