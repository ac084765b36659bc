"""What the daemon leaves on disk is its own user's only: the state directory 0700 and every
file in it 0600 (outbox, its -wal/-shm, status.json; the numba cache when it lives there),
whatever umask it was started with. The installer makes the secrets file root-only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent.daemon.state import STATE_FILE_NAME, StatusSnapshot, write_status
from edge_agent.outbox import OutboxStatus
from edge_agent.uplink import UplinkStatus
from tests.helpers.mosquitto import free_port

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "systemd" / "install.sh"
ENTRY = [sys.executable, "-m", "edge_agent"]
WAIT_S = 90.0


def gateway_yaml(state_dir: Path, port: int) -> str:
    """One level gauge on a TCP bus nobody listens on: polls fail at once, READY follows."""
    return f"""\
version: 1
gateway: {{site: riverside, id: gw-01}}
buses:
  - {{name: pumpstation, type: tcp, host: 127.0.0.1, port: {port}, timeout_s: 0.2, retries: 0}}
devices:
  - {{name: lv-01, bus: pumpstation, unit_id: 2, profile: level-radar-lr10, poll_interval_s: 1}}
storage: {{state_dir: {state_dir}}}
logging: {{level: info, format: json}}
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
    env["PYTHONPATH"] = str(ROOT)
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
        env.pop(key, None)
    return env


def _loose(path: Path) -> list[str]:
    """Every entry under ``path`` (itself included) that group or others can use."""
    found = []
    for entry in [path, *path.rglob("*")]:
        mode = stat.S_IMODE(entry.lstat().st_mode)
        if mode & 0o077:
            found.append(f"{entry.relative_to(path.parent)} {mode:o}")
    return found


def _proc_umask(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        return None
    return None


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_daemon_creates_only_private_files(tmp_path, umask):
    state = tmp_path / "var" / "state"  # does not exist: the daemon creates it
    config = tmp_path / "gateway.yaml"
    config.write_text(gateway_yaml(state, free_port()))
    log = open(tmp_path / "daemon.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*ENTRY, "run", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_env(),
        umask=umask,
    )
    try:
        deadline = time.monotonic() + WAIT_S
        want = {"outbox.sqlite3", "outbox.sqlite3-wal", "outbox.sqlite3-shm", STATE_FILE_NAME}
        while not want <= {p.name for p in state.glob("*")} if state.is_dir() else True:
            assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
            assert time.monotonic() < deadline, f"state files not there: {list(state.glob('*'))}"
            time.sleep(0.2)
        assert _proc_umask(proc.pid) in (0o077, None)  # None: a kernel without Umask:
        assert _loose(state) == []
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
    finally:
        proc.terminate()
        rc = proc.wait(30)
        log.close()
    assert rc == 0, (tmp_path / "daemon.log").read_text()
    assert _loose(state) == []  # after the clean stop too (checkpointed WAL, last status)


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_status_file_is_0600_whatever_the_umask(tmp_path, umask):
    snapshot = _snapshot()
    leftover = tmp_path / f".{STATE_FILE_NAME}.{os.getpid()}.tmp"
    leftover.write_text("torn")
    leftover.chmod(0o644)  # a temp file a crash left behind, loose
    old = os.umask(umask)
    try:
        path = write_status(tmp_path, snapshot)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not leftover.exists()


def _snapshot() -> StatusSnapshot:
    return StatusSnapshot(
        site="riverside",
        gateway="gw-01",
        pid=1,
        started_at=0.0,
        updated_at=0.0,
        interval_s=5.0,
        ready=True,
        devices=(),
        loggers=(),
        outbox=OutboxStatus(depth=0, oldest_age_s=None),
        uplink=UplinkStatus(state="disabled"),
    )


def test_status_write_never_follows_a_symlink_at_its_temp_name(tmp_path):
    """The fallback status file may live in a shared /tmp: a symlink planted at the temp name
    must not make the daemon write (or truncate) the file it points at."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    planted = tmp_path / f".{STATE_FILE_NAME}.{os.getpid()}.tmp"
    planted.symlink_to(victim)
    path = write_status(tmp_path, _snapshot())
    assert victim.read_text() == "precious\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_installer_creates_the_secrets_file_root_only():
    """--dry-run lists the steps: the config dir and examples are world-readable (the
    service's dynamic user reads them; they hold no secret), the secrets file is 0600."""
    proc = subprocess.run(
        ["sh", str(INSTALL), "--dry-run"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    steps = proc.stdout.splitlines()
    assert "+ install -d -m 0755 /etc/edge-agent" in steps
    env_steps = [s for s in steps if s.endswith("/etc/edge-agent/edge-agent.env")]
    assert env_steps and all(" 0600 " in s for s in env_steps), env_steps
    for step in steps:  # every file or directory the script installs has an explicit mode
        if step.startswith("+ install ") and " -m " not in step:
            pytest.fail(f"no explicit mode: {step}")
