"""A state directory on a real, tiny file system that is full or read-only, from the start or
while running: polling goes on, alarms are held in memory, STATUS= and the log say
"outbox degraded: <reason>", and when space returns the held events reach the disk with
gap-free seqs and then the broker.

The file system is a tmpfs mounted by the test (a few hundred KiB: filled with a plain file,
freed by deleting it; remounted read-only and back). Mounting needs CAP_SYS_ADMIN: without it
(not root, a locked-down CI container) these tests skip; tests/edge_agent/outbox/test_outbox.py
covers the same paths with SQLite's ``max_page_count`` as the stand-in for a full disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from edge_agent.clock import MIN_PLAUSIBLE_EPOCH_S, SyncClock
from edge_agent.events import EventDraft, Severity, TelemetryDraft
from edge_agent.outbox import DB_NAME, DROPPED_KIND, Outbox, OutboxError, OutboxSettings

T0 = MIN_PLAUSIBLE_EPOCH_S + 86400.0
FS_SIZE = "512k"


class SmallFs:
    """A tmpfs of ``size`` at ``path``: ``fill()`` takes every free byte, ``free()`` gives
    them back, ``readonly(True/False)`` remounts."""

    def __init__(self, path: Path, size: str = FS_SIZE) -> None:
        self.path = path
        self.size = size
        path.mkdir(parents=True, exist_ok=True)
        self.filler = path / "filler.bin"
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")

    def fill(self) -> None:
        with open(self.filler, "ab", buffering=0) as f:
            for size in (65536, 4096, 512, 1):  # big steps, then the last bytes
                try:
                    while True:
                        f.write(b"\0" * size)
                except OSError:
                    pass  # ENOSPC: full at this step size

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def readonly(self, on: bool) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.path)],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=30)


@pytest.fixture
def small_fs(tmp_path):
    fs = SmallFs(tmp_path / "fs")
    yield fs
    fs.unmount()


def _outbox(state: Path, **kw) -> Outbox:
    clock = SyncClock(lambda: T0, lambda: True)
    return Outbox(OutboxSettings(state_dir=state), "gw-01", clock=clock, **kw)


def alarm(i: int) -> EventDraft:
    return EventDraft.of("lv-01", "level.high", T0 + i, level_mm=1000 + i)


def tele(i: int) -> TelemetryDraft:
    return TelemetryDraft("lv-01", T0 + i, {"level_mm": 900 + i})


def _drain(box: Outbox) -> list:
    out = []
    while batch := box.begin(100):
        out.extend(batch.events)
        box.end(batch, [e.id for e in batch.events])
    return out


# -- the outbox on a real file system ------------------------------------------------------


@pytest.mark.parametrize("refusal", ["read-only", "full"])
def test_refused_from_the_start_opens_later_with_gap_free_seqs(small_fs, refusal):
    state = small_fs.path / "state"
    state.mkdir()
    if refusal == "read-only":
        small_fs.readonly(True)
    else:
        small_fs.fill()
    with pytest.raises(OutboxError):  # without wait_for_disk: the old, fatal behaviour
        _outbox(state).close()
    box = _outbox(state, wait_for_disk=True)
    try:
        assert box.degraded
        assert box.degraded_reason == ("read-only" if refusal == "read-only" else "disk full")
        assert box.add(alarm(0)) is None and box.add(tele(0)) is None
        assert box.add_many([alarm(1), tele(1), alarm(2)]) == [None, None, None]
        assert not box.begin(10)  # nothing stored: nothing to send yet
        st = box.status()
        assert (st.held_in_memory, st.depth, st.dropped_total) == (3, 0, 2)
        assert not box.retry_held()  # still refused

        small_fs.readonly(False) if refusal == "read-only" else small_fs.free()
        assert box.retry_held()
        assert not box.degraded and box.degraded_reason is None
        sent = _drain(box)
        events = [e for e in sent if e.stream == "event"]
        assert [e.seq for e in events] == [1, 2, 3, 4]
        assert [e.kind for e in events[:3]] == ["level.high"] * 3
        assert [e.data["level_mm"] for e in events[:3]] == [1000, 1001, 1002]
        dropped = events[3]
        assert dropped.kind == DROPPED_KIND
        assert dropped.data["telemetry"] == 2 and dropped.data["reasons"] == ["disk"]
        assert box.add(alarm(3)).seq == 5
    finally:
        box.close()
    assert (state / DB_NAME).exists()


def test_full_while_running_holds_alarms_then_writes_them(small_fs):
    state = small_fs.path / "state"
    box = _outbox(state, wait_for_disk=True)
    try:
        assert box.add(alarm(0)).seq == 1
        small_fs.fill()
        # The WAL may still have room for a few commits: write until the disk refuses.
        accepted = [box.add(alarm(i)) for i in range(1, 400)]
        first_held = next(i for i, e in enumerate(accepted) if e is None)
        assert all(e is None for e in accepted[first_held:])  # in order: none overtakes
        assert box.degraded and box.degraded_reason == "disk full"
        assert "full" in box.status().last_error
        assert box.add(tele(0)) is None  # telemetry is dropped first, and counted
        held = box.status().held_in_memory
        assert held == len(accepted) - first_held

        small_fs.free()
        assert box.retry_held()
        events = [e for e in _drain(box) if e.stream == "event"]
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(seqs) + 1))  # gap-free across the outage
        assert len([e for e in events if e.kind == "level.high"]) == 400
        assert events[-1].kind == DROPPED_KIND and events[-1].data["telemetry"] == 1
        assert box.integrity_check() == []
    finally:
        box.close()


def test_memory_bound_drops_oldest_non_alarm_first(small_fs, monkeypatch):
    """Past MAX_HELD the oldest non-alarm goes first; alarms only when nothing else is left."""
    import edge_agent.outbox.held as held_mod

    monkeypatch.setattr(held_mod, "MAX_HELD", 4)
    state = small_fs.path / "state"
    state.mkdir()
    small_fs.readonly(True)
    box = _outbox(state, wait_for_disk=True)
    try:
        notice = EventDraft("lv-01", "device.online", Severity.INFO, T0, {})
        for d in (notice, alarm(0), alarm(1), alarm(2), alarm(3), alarm(4)):
            box.add(d)
        assert box.status().held_in_memory == 4
        small_fs.readonly(False)
        assert box.retry_held()
        events = [e for e in _drain(box) if e.stream == "event"]
        assert [e.data.get("level_mm") for e in events[:4]] == [1001, 1002, 1003, 1004]
        report = events[4]
        assert report.kind == DROPPED_KIND
        assert (report.data["events"], report.data["alarms"]) == (1, 1)
        assert report.data["reasons"] == ["memory"]
    finally:
        box.close()


def test_ext4_remounted_read_only_by_an_error_while_running(tmp_path):
    """The field's "read-only while running": an SD card error makes ext4 (errors=remount-ro)
    go read-only under the open database. Made here with a loop-mounted ext4 image and the
    kernel's ``trigger_fs_error``. Writes fail as "disk I/O error": alarms are held, telemetry
    dropped, nothing raises. (Such a file system stays read-only until fsck and a remount:
    the held events wait in memory for that; a restart loses them.)"""
    import glob
    import shutil

    if shutil.which("mkfs.ext4") is None:
        pytest.skip("mkfs.ext4 not installed")
    image, mnt = tmp_path / "sd.img", tmp_path / "sd"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(8 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, timeout=60)
    mount = subprocess.run(
        ["mount", "-o", "loop,errors=remount-ro", str(image), str(mnt)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot loop-mount ext4 here: {mount.stderr.strip()}")
    try:
        source = next(
            line.split()[0]
            for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1] == str(mnt)
        )
        trigger = glob.glob(f"/sys/fs/ext4/{Path(source).name}/trigger_fs_error")
        if not trigger:
            pytest.skip("this kernel has no ext4 trigger_fs_error")
        box = _outbox(mnt / "state", wait_for_disk=True)
        try:
            assert box.add(alarm(0)).seq == 1
            Path(trigger[0]).write_text("edge-agent test\n")
            assert box.add(alarm(1)) is None and box.add(tele(0)) is None
            assert box.degraded and box.degraded_reason == "disk I/O error"
            st = box.status()
            assert (st.held_in_memory, st.dropped_total) == (1, 1)
            assert [e.seq for e in box.begin(10).events] == [1]  # reading still works
            assert not box.retry_held()
        finally:
            box.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=60)


# -- the daemon ------------------------------------------------------------------------------


@pytest.mark.slow
def test_daemon_with_a_read_only_state_dir_polls_holds_and_recovers(small_fs, tmp_path):
    """The real daemon against the seed site's simulators and a real mosquitto, its state
    directory read-only from the very start: it gets READY (every device polled), STATUS= and
    one log line say "outbox degraded: read-only"; made writable, the held events are written
    with seq 1.. and forwarded to the broker."""
    from tests.helpers.mosquitto import Consumer, Mosquitto
    from tests.integration.sitegw import (
        ENTRY,
        Daemon,
        NotifySocket,
        Simulator,
        _env,
        wait_until,
        write_config,
    )

    state = small_fs.path / "state"
    state.mkdir(mode=0o700)
    small_fs.readonly(True)
    sim = Simulator(tmp_path)
    broker = Mosquitto(tmp_path).start()
    consumer = Consumer(broker, topics="#", client_id=f"t-{uuid.uuid4().hex[:8]}").start()
    notify = NotifySocket(tmp_path)
    config = write_config(tmp_path / "gateway.yaml", sim, state, uplink_url=broker.url)
    daemon = Daemon(tmp_path, config, state, notify=notify)
    try:
        notify.wait_for(lambda m: any("READY=1" in x for x in m), 120)
        notify.wait_for(
            lambda m: any("outbox degraded: read-only" in x for x in m if "STATUS=" in x), 60
        )
        assert daemon.proc.poll() is None
        assert not (state / DB_NAME).exists()
        # The daemon maps neither numba's LLVM nor scipy (test-only: numba and rocket-fft
        # would load parts of it if importable, edge_agent.daemon.footprint): leak analysis
        # runs in a worker process (tests/integration/test_daemon_footprint.py).
        maps = Path(f"/proc/{daemon.proc.pid}/maps").read_text()
        assert "/scipy" not in maps and "llvmlite" not in maps
        degraded_lines = [
            r for r in daemon.log_lines() if str(r.get("event", "")).startswith("outbox degraded")
        ]
        assert len(degraded_lines) == 1  # rate-limited: once, not every housekeeping tick
        assert degraded_lines[0]["event"] == "outbox degraded: read-only"

        # `edge-agent status` reads the snapshot the daemon keeps in the runtime directory
        # while the state directory refuses it.
        proc = subprocess.run(
            [*ENTRY, "status", "--state-dir", str(state), "--json"],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        snap = json.loads(proc.stdout)
        assert snap["running"] and snap["outbox"]["degraded"]
        assert snap["outbox"]["reason"] == "read-only"
        assert snap["outbox"]["held_in_memory"] >= 1  # gateway.started at least

        def events_seen() -> list[dict]:
            out = []
            for m in consumer.snapshot():
                if "/event/" in m.topic:
                    out.append(json.loads(m.payload))
            return out

        assert events_seen() == []  # nothing numbered, nothing sent while refused

        small_fs.readonly(False)
        notify.wait_for(
            lambda m: any(
                x.startswith("STATUS=") and "degraded" not in x for x in m[-3:] if "STATUS=" in x
            ),
            60,
        )
        seen = wait_until(
            lambda: (
                (ev := events_seen()) and any(e["kind"] == "gateway.started" for e in ev) and ev
            ),
            60,
            "held events forwarded after recovery",
        )
        seqs = sorted(e["seq"] for e in seen)
        assert seqs == list(range(1, len(seqs) + 1))
        assert next(e for e in seen if e["kind"] == "gateway.started")["seq"] == 1
        assert (state / DB_NAME).exists()
        lines = [str(r.get("event", "")) for r in daemon.log_lines()]
        assert "outbox recovered: held events written" in lines
        assert "Traceback" not in daemon.log_path.read_text()
    finally:
        code = daemon.stop()
        notify.close()
        consumer.stop()
        broker.stop()
        sim.stop()
    assert code == 0
    assert os.access(state, os.W_OK)


@pytest.mark.slow
def test_daemon_disk_full_while_running_holds_then_forwards_gap_free(tmp_path):
    """The state directory's file system fills up under the running daemon: STATUS= says
    "outbox degraded: disk full", polling goes on; space returns: it recovers by itself and
    the broker gets every event seq with no gap."""
    from tests.helpers.mosquitto import Consumer, Mosquitto
    from tests.integration.sitegw import Daemon, NotifySocket, Simulator, wait_until, write_config

    fs = SmallFs(tmp_path / "fs", size="16m")  # room for the WAL (checkpoints at ~4 MB)
    state = fs.path / "state"
    sim = Simulator(tmp_path)
    broker = Mosquitto(tmp_path).start()
    consumer = Consumer(broker, topics="#", client_id=f"t-{uuid.uuid4().hex[:8]}").start()
    notify = NotifySocket(tmp_path)
    config = write_config(tmp_path / "gateway.yaml", sim, state, uplink_url=broker.url)
    daemon = Daemon(tmp_path, config, state, notify=notify)

    def status_lines() -> list[str]:
        return [x for x in notify.messages if x.startswith("STATUS=")]

    try:
        notify.wait_for(lambda m: any("READY=1" in x for x in m), 120)
        fs.fill()
        wait_until(
            lambda: any("outbox degraded: disk full" in x for x in status_lines()),
            90,
            "STATUS= saying the disk is full",
        )
        polls = [d["polls_ok"] for d in json.loads(_status_json(state))["devices"]]
        wait_until(
            lambda: (
                sum(d["polls_ok"] for d in json.loads(_status_json(state))["devices"]) > sum(polls)
            ),
            60,
            "polling going on while degraded",
        )
        fs.free()
        wait_until(lambda: "degraded" not in status_lines()[-1], 60, "recovery")

        def event_seqs() -> list[int]:
            return sorted(
                json.loads(m.payload)["seq"] for m in consumer.snapshot() if "/event/" in m.topic
            )

        wait_until(lambda: len(event_seqs()) >= 1, 60, "events at the broker")
        seqs = event_seqs()
        assert seqs == list(range(1, len(seqs) + 1)), seqs
        lines = [str(r.get("event", "")) for r in daemon.log_lines()]
        assert lines.count("outbox degraded: disk full") == 1
        assert "outbox recovered: held events written" in lines
        assert "Traceback" not in daemon.log_path.read_text()
    finally:
        code = daemon.stop()
        notify.close()
        consumer.stop()
        broker.stop()
        sim.stop()
        fs.unmount()
    assert code == 0


def _status_json(state: Path) -> str:
    """status.json, or the runtime-directory fallback the daemon keeps while the disk is full."""
    from edge_agent.daemon.state import read_status

    return json.dumps(read_status(state).to_json())


def test_status_reads_the_newer_of_state_dir_and_runtime_fallback(tmp_path, monkeypatch):
    from dataclasses import replace

    from edge_agent.daemon.state import (
        StatusSnapshot,
        read_status,
        remove_status_fallback,
        write_status,
        write_status_fallback,
    )
    from edge_agent.outbox import OutboxStatus
    from edge_agent.uplink import UplinkStatus

    runtime = tmp_path / "run"
    runtime.mkdir()
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(runtime))
    state = tmp_path / "state"
    state.mkdir()
    old = StatusSnapshot(
        "s", "g", 1, T0, T0, 2.0, True, (), (), OutboxStatus(3, None), UplinkStatus("disabled")
    )
    new = replace(old, updated_at=T0 + 10, outbox=OutboxStatus(3, None, True, "disk full", 2))
    write_status(state, old)
    assert write_status_fallback(state, new).parent == runtime
    assert read_status(state) == new  # the fallback is newer: the disk refused status.json
    write_status(state, replace(old, updated_at=T0 + 20))
    assert read_status(state).updated_at == T0 + 20
    remove_status_fallback(state)
    assert list(runtime.iterdir()) == []
