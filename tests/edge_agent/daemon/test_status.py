"""The status file the daemon writes and ``edge-agent status`` reading it (real files, real CLI)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time

import pytest

from drivers.model import DeviceStatus
from edge_agent.cli import main
from edge_agent.commands.status import render
from edge_agent.daemon.leak import LoggerStatus
from edge_agent.daemon.state import (
    STATE_FILE_NAME,
    StatusSnapshot,
    offline_reason,
    read_status,
    write_status,
)
from edge_agent.errors import RuntimeFailure, UsageError
from edge_agent.outbox import OutboxStatus
from edge_agent.uplink import UplinkStatus


def _snapshot(*, pid: int | None = None, updated_at: float | None = None) -> StatusSnapshot:
    now = time.time()
    return StatusSnapshot(
        site="riverside",
        gateway="gw-01",
        pid=os.getpid() if pid is None else pid,
        started_at=now - 3600,
        updated_at=now if updated_at is None else updated_at,
        interval_s=2.0,
        ready=True,
        devices=(
            DeviceStatus("lv-01", "pumpstation", True, now - 1, 100, 2, 0, None),
            DeviceStatus("lv-02", "pumpstation", False, now - 300, 50, 40, 7, "timeout"),
        ),
        loggers=(LoggerStatus("nl-01", 0.83, "confirmed", now - 60, 4),),
        outbox=OutboxStatus(depth=3, oldest_age_s=42.0),
        uplink=UplinkStatus("connected", "mqtt://127.0.0.1:1883", None, 120),
    )


def test_round_trip(tmp_path):
    """What the daemon writes is what status reads back."""
    snap = _snapshot()
    write_status(tmp_path, snap)
    assert read_status(tmp_path) == snap
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


@pytest.mark.parametrize(
    ("setup", "error", "match"),
    [
        ("missing_dir", UsageError, "does not exist"),
        ("file_not_dir", UsageError, "not a directory"),
        ("no_status", RuntimeFailure, "no status file"),
        ("garbage", RuntimeFailure, "unreadable status file"),
        ("wrong_shape", RuntimeFailure, "unreadable status file"),
    ],
)
def test_read_errors_are_one_line(tmp_path, setup, error, match):
    """Each way of not finding a state gives one clear line."""
    target = tmp_path / "state"
    if setup == "file_not_dir":
        target.write_text("x")
    elif setup != "missing_dir":
        target.mkdir()
        if setup == "garbage":
            (target / STATE_FILE_NAME).write_text("{not json")
        elif setup == "wrong_shape":
            (target / STATE_FILE_NAME).write_text(json.dumps({"site": "x"}))
    with pytest.raises(error, match=match) as info:
        read_status(target)
    assert "\n" not in str(info.value)


def test_stale_after_three_intervals():
    snap = _snapshot()
    assert not snap.is_stale(snap.updated_at + 5)
    assert snap.is_stale(snap.updated_at + 7)


def test_render_shows_devices_leak_outbox_uplink():
    snap = _snapshot()
    text = render(snap, running=True, now=snap.updated_at)
    assert "riverside/gw-01: running" in text
    assert "devices: 1/2 online (lv-02: timeout)" in text
    assert "lv-02" in text and "OFFLINE" in text and "timeout" in text
    assert "nl-01" in text and "0.83" in text and "confirmed" in text
    assert "outbox: 3 waiting, oldest 42 s" in text
    assert "uplink: connected to mqtt://127.0.0.1:1883, 120 published" in text


REFUSED = "cannot open rtu /dev/ttyUSB0: permission denied (...)"


def _device(name: str, bus: str, online: bool | None, error: str | None = None):
    return DeviceStatus(name, bus, online, None, 0, 1, 1, error)


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        pytest.param([_device("a", "b1", True), _device("b", "b1", None)], None, id="none-offline"),
        pytest.param(
            [_device("a", "b1", False, REFUSED), _device("b", "b1", False, REFUSED)],
            f"bus b1: {REFUSED}",
            id="whole-bus-one-cause",
        ),
        pytest.param(
            [_device("a", "b1", True), _device("b", "b1", False, "no answer from unit 2")],
            "b: no answer from unit 2",
            id="one-device",
        ),
        pytest.param(
            [
                _device("a", "b1", False, REFUSED),
                _device("b", "b1", False, REFUSED),
                _device("c", "b2", False, "no answer from unit 7"),
                _device("d", "b2", True),
            ],
            f"bus b1: {REFUSED}; 1 more",
            id="bus-then-device-counted",
        ),
        pytest.param(
            [_device("a", "b1", False, "x"), _device("b", "b1", False, "y")],
            "a: x; 1 more",
            id="same-bus-different-causes",
        ),
        pytest.param(
            [_device("a", "b1", True), _device("b", "b1", None, "no answer from unit 2")],
            "b: no answer from unit 2",
            id="never-answered-not-offline-yet",
        ),
    ],
)
def test_offline_reason(devices, expected):
    """STATUS= and status say why devices are offline: one cause per bus that fails as one."""
    assert offline_reason(devices) == expected


def test_render_a_device_never_heard_is_no_answer_not_online():
    from dataclasses import replace

    snap = _snapshot()
    silent = DeviceStatus("lv-03", "pumpstation", None, None, 0, 1, 1, "no answer from unit 3")
    waiting = DeviceStatus("lv-04", "pumpstation", None)
    text = render(replace(snap, devices=(*snap.devices, silent, waiting)), running=True, now=0)
    assert "devices: 1/4 online (lv-02: timeout; 1 more)" in text
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("  lv-")}
    assert "NO ANSWER" in rows["lv-03"] and "waiting" in rows["lv-04"]


def test_render_not_running():
    snap = _snapshot()
    text = render(snap, running=False, now=snap.updated_at + 600)
    assert "NOT RUNNING" in text and "10 min ago" in text


def test_cli_json_for_a_live_daemon(tmp_path, capsys):
    """--json prints the snapshot plus running/age; exit 0 while the writer is alive."""
    write_status(tmp_path, _snapshot())
    assert main(["status", "--state-dir", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["running"] is True and doc["outbox"]["depth"] == 3
    assert doc["devices"][1]["consecutive_failures"] == 7


def test_cli_dead_daemon_exits_1_and_still_shows_the_last_state(tmp_path, capsys):
    """A pid that no longer exists: the last state is shown, the exit code says not running."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    write_status(tmp_path, _snapshot(pid=int(proc.stdout)))
    assert main(["status", "--state-dir", str(tmp_path)]) == 1
    assert "NOT RUNNING" in capsys.readouterr().out


def test_cli_missing_state_dir_is_a_usage_error(tmp_path, capsys):
    assert main(["status", "--state-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_cli_finds_the_state_dir_through_the_config(tmp_path, capsys):
    """--config FILE reads storage.state_dir from the gateway config."""
    state = tmp_path / "state"
    state.mkdir()
    write_status(state, _snapshot())
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"version: 1\ngateway: {{site: s, id: g}}\nbuses: []\nstorage: {{state_dir: {state}}}\n"
    )
    assert main(["status", "--config", str(config)]) == 0
    assert "riverside/gw-01: running" in capsys.readouterr().out


def test_to_json_is_what_asdict_gives():
    """``to_json`` skips ``asdict``'s deep copy (it runs every status interval) but must
    give the same document, nested ``extra`` included, sharing nothing mutable with it."""
    analysis = {"jobs": 3, "last": [1.5, None], "by_logger": {"nl-01": (0.2, "ok")}}
    snap = dataclasses.replace(
        _snapshot(), stalled=("bus sewer",), extra={"analysis": analysis, "sim_time": 1.0}
    )
    doc = snap.to_json()
    assert doc == dataclasses.asdict(snap)
    assert type(doc["devices"]) is tuple and type(doc["devices"][0]) is dict
    doc["extra"]["analysis"]["last"].append(2)
    assert analysis["last"] == [1.5, None]
