"""The SQLite outbox: gap-free numbering that survives restarts, batches in order, deletion only
of accepted rows, bounded size/age with the stated eviction order, tight permissions, and the
degraded mode when the disk refuses writes."""

import math
import os
import sqlite3
import stat

import pytest

from edge_agent import payload
from edge_agent.clock import MIN_PLAUSIBLE_EPOCH_S, SyncClock
from edge_agent.events import EventDraft, Severity, TelemetryDraft
from edge_agent.outbox import DB_NAME, Outbox, OutboxError, OutboxSettings

T0 = MIN_PLAUSIBLE_EPOCH_S + 86400.0


class Wall:
    """An injected wall clock."""

    def __init__(self, t=T0):
        self.t = t

    def __call__(self):
        return self.t


def open_outbox(tmp_path, wall=None, synced=True, **kw):
    hard = kw.pop("hard_limit_bytes", None)
    settings = OutboxSettings(state_dir=tmp_path / "state", **kw)
    clock = SyncClock(wall or Wall(), lambda: synced)
    return Outbox(settings, "gw-01", clock=clock, hard_limit_bytes=hard)


def alarm(dev="lv-01", i=0):
    return EventDraft.of(dev, "level.high", T0, level_mm=1000 + i)


def notice(dev="lv-01", i=0):
    return EventDraft.of(dev, "level.rising", T0, rate=i)


def tele(dev="lv-01", i=0):
    return TelemetryDraft(dev, T0, {"level": float(i)})


def payloads(events):
    """Every event this test produced, validated against the schema."""
    out = []
    for ev in events:
        p = payload.to_payload(ev)
        payload.validate(p)
        out.append(p)
    return out


def drain(box, n=1000):
    batch = box.begin(n)
    box.end(batch, [e.id for e in batch.events])
    return list(batch.events)


def test_state_dir_is_created_0700(tmp_path):
    with open_outbox(tmp_path):
        assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


def test_seq_is_gap_free_and_survives_restart(tmp_path):
    with open_outbox(tmp_path) as box:
        evs = [box.add(alarm(i=i)) for i in range(5)]
        t = box.add(tele())
        assert [e.seq for e in evs] == [1, 2, 3, 4, 5]
        assert t.id == "gw-01:t1"
        drain(box)
    with open_outbox(tmp_path) as box:
        assert box.add(notice()).seq == 6
        assert box.next_seq() == 7
    payloads([*evs, t])


def test_unsynced_clock_is_stored_and_flagged(tmp_path):
    with open_outbox(tmp_path, synced=False) as box:
        box.add(alarm())
        (ev,) = box.begin(10).events
        assert payload.to_payload(ev)["tsq"] == "unsynced"


def test_batches_keep_order_and_only_accepted_rows_leave(tmp_path):
    with open_outbox(tmp_path) as box:
        for i in range(6):
            box.add(alarm(dev=f"d{i % 2}", i=i))
        b1 = box.begin(3)
        b2 = box.begin(10)
        assert [e.seq for e in b1.events] == [1, 2, 3]
        assert [e.seq for e in b2.events] == [4, 5, 6]
        assert box.begin(10).events == ()
        # seq 2 was refused (e.g. a failing PUBACK): 1 and 3 go, 2 comes back first.
        assert box.end(b1, ["gw-01:1", "gw-01:3"]) == 2
        box.end(b2, [e.id for e in b2.events])
        again = box.begin(10)
        assert [e.seq for e in again.events] == [2]
        box.end(again, ["gw-01:2"])
        assert box.depth() == 0
        assert box.oldest_age_s() is None


def test_rewind_resends_everything_unacknowledged(tmp_path):
    with open_outbox(tmp_path) as box:
        for i in range(4):
            box.add(alarm(i=i))
        box.begin(4)
        box.rewind()
        assert [e.seq for e in box.begin(10).events] == [1, 2, 3, 4]


def test_eviction_order_telemetry_then_events_then_alarms(tmp_path):
    """Over the size cap: all telemetry goes first, then plain events, alarms last; a
    gateway.outbox_dropped event says how many of each and which seqs."""
    with open_outbox(tmp_path, max_bytes=2500) as box:
        accepted = []
        for i in range(10):
            accepted += [box.add(alarm(i=i)), box.add(notice(i=i)), box.add(tele(i=i))]
        for i in range(10, 30):
            accepted.append(box.add(alarm(i=i)))
        count = sqlite3.connect(tmp_path / "state" / DB_NAME).execute("SELECT COUNT(*) FROM outbox")
        assert box.depth() == count.fetchone()[0]
        left = drain(box)
        assert box.depth() == 0
        payloads(left)
        kinds = [e.kind for e in left]
        assert "telemetry" not in kinds
        assert "level.rising" not in kinds
        dropped = [e for e in left if e.kind == "gateway.outbox_dropped"]
        assert dropped
        assert sum(d.data["telemetry"] for d in dropped) == 10
        assert sum(d.data["events"] for d in dropped) == 10
        lost_alarms = sum(d.data["alarms"] for d in dropped)
        kept_alarms = [e for e in left if e.kind == "level.high"]
        assert lost_alarms > 0
        assert lost_alarms + len(kept_alarms) == 30
        # Every event seq is either delivered or announced as dropped: none silently missing.
        announced = set()
        for d in dropped:
            for a, b in d.data["seq_ranges"]:
                announced.update(range(a, b + 1))
        delivered = {e.seq for e in left}
        assert delivered | announced == set(range(1, max(delivered) + 1))
        assert not delivered & announced
        # Alarms went oldest first.
        assert min(e.data["level_mm"] for e in kept_alarms) > 1000 + lost_alarms - 1


def test_age_bound_evicts_and_reports(tmp_path):
    wall = Wall()
    with open_outbox(tmp_path, wall=wall, max_age_s=3600.0) as box:
        box.add(alarm(i=1))
        box.add(tele())
        wall.t += 3601
        box.add(alarm(i=2))
        left = drain(box)
        kinds = [e.kind for e in left]
        assert kinds == ["level.high", "gateway.outbox_dropped"]
        d = left[1].data
        assert (d["alarms"], d["telemetry"], d["reasons"]) == (1, 1, ["age"])
        assert d["seq_ranges"] == [[1, 1]]
        payloads(left)


def test_clock_set_by_ntp_does_not_age_out_events_accepted_before(tmp_path):
    """A Pi boots at 1970 (no RTC), accepts events, then NTP sets the clock: those events are
    not 56 years old and stay."""
    wall = Wall(86400.0)
    with open_outbox(tmp_path, wall=wall, synced=False, max_age_s=3600.0) as box:
        early = box.add(alarm(i=1))
        wall.t = T0
        box.add(alarm(i=2))
        left = drain(box)
        assert [e.seq for e in left] == [early.seq, early.seq + 1]
        assert not left[0].ts_synced


def test_permissions_are_tight(tmp_path):
    (tmp_path / "state").mkdir(mode=0o700)
    (tmp_path / "state" / DB_NAME).touch(mode=0o644)  # left loose by an older install
    with open_outbox(tmp_path) as box:
        box.add(alarm())
        state = tmp_path / "state"
        for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
            assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name


def test_full_disk_holds_events_in_memory_and_recovers(tmp_path):
    """A database that cannot grow (SQLite max_page_count: the same SQLITE_FULL a full disk
    gives) holds events in memory, drops telemetry, reports degraded, and writes everything
    out, with a dropped report, once space returns."""
    big = "x" * 2000
    with open_outbox(tmp_path, hard_limit_bytes=64 * 1024) as box:
        stored = []
        for i in range(200):
            ev = box.add(EventDraft.of("lv-01", "level.high", T0, i=i, pad=big))
            if ev is None:
                break
            stored.append(ev)
        assert box.degraded
        assert box.add(tele()) is None
        assert box.add(alarm(i=777)) is None
        st = box.status()
        assert st.held_in_memory == 2 and st.degraded and "full" in st.last_error
        # The uplink delivers what is stored: pages free up, the held events go to disk.
        drain(box)
        assert box.retry_held()
        assert not box.degraded
        rest = drain(box)
        assert [e.kind for e in rest] == ["level.high", "level.high", "gateway.outbox_dropped"]
        assert rest[1].data["level_mm"] == 1777
        assert rest[2].data["telemetry"] == 1
        seqs = [e.seq for e in stored + rest]
        assert seqs == list(range(1, len(seqs) + 1))
        payloads(rest)


def test_bad_records_are_refused_not_stored(tmp_path):
    with open_outbox(tmp_path) as box:
        with pytest.raises(payload.PayloadError):
            box.add(EventDraft("lv-01", "level.high", Severity.WARNING, T0, {"x": float("nan")}))
        with pytest.raises(payload.PayloadError):
            box.add(EventDraft("lv/01", "level.high", Severity.WARNING, T0, {}))
        assert box.depth() == 0
        assert box.add(alarm()).seq == 1  # no seq was burnt


def test_not_a_database_is_one_line_error(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OutboxError) as err:
        open_outbox(tmp_path)
    assert str(err.value).startswith(f"outbox {state / DB_NAME}")
    assert "\n" not in str(err.value)


def test_integrity_check_and_stats(tmp_path):
    with open_outbox(tmp_path) as box:
        box.add_many([alarm(i=i) for i in range(3)] + [tele(i=i) for i in range(2)])
        assert box.integrity_check() == []
        st = box.status()
        assert (st.depth, st.depth_events, st.depth_telemetry) == (5, 3, 2)
        assert not st.degraded
    con = sqlite3.connect(tmp_path / "state" / DB_NAME)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    assert os.path.exists(tmp_path / "state" / DB_NAME)


@pytest.mark.parametrize("ts", [math.nan, math.inf])
def test_non_finite_ts_is_refused_with_payload_error(tmp_path, ts):
    with Outbox(OutboxSettings(tmp_path), "gw-01") as ob:
        with pytest.raises(payload.PayloadError, match="not a finite epoch time"):
            ob.add(EventDraft.of("lv-01", "level.high", ts))
        assert ob.depth() == 0 and ob.next_seq() == 1
