"""One daemon per state directory: the flock, the refusal naming the holder's pid, and two
real ``edge-agent run`` processes on one state directory."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess

import pytest

from edge_agent.daemon.lock import StateDirBusy, StateDirLock, lock_holder
from tests.integration.sitegw import ENTRY, _env, wait_until


def test_a_second_lock_is_refused_naming_the_holder_and_freed_by_release(tmp_path):
    first = StateDirLock.acquire(tmp_path)
    with pytest.raises(StateDirBusy) as refused:
        StateDirLock.acquire(tmp_path)  # another open of the directory: flock conflicts
    assert refused.value.pid == os.getpid()
    message = str(refused.value)
    assert f"pid {os.getpid()}" in message and str(tmp_path) in message and "\n" not in message
    first.release()
    first.release()  # idempotent
    StateDirLock.acquire(tmp_path).release()


def test_lock_holder_reads_proc_locks(tmp_path):
    """The holder of the lock on this very directory, from a /proc/locks-format file; a
    waiter's line ("->") and a holder in another pid namespace (pid 0) are no answer."""
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        st = os.fstat(fd)
        where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        locks = tmp_path / "locks"
        locks.write_text(
            f"1: POSIX  ADVISORY  WRITE 11 {where} 0 EOF\n"
            f"1: -> FLOCK  ADVISORY  WRITE 22 {where} 0 EOF\n"
            f"2: FLOCK  ADVISORY  WRITE 4242 {where} 0 EOF\n"
        )
        assert lock_holder(fd, locks) == 4242
        locks.write_text(f"2: FLOCK  ADVISORY  WRITE 0 {where} 0 EOF\n")
        assert lock_holder(fd, locks) is None
        assert lock_holder(fd, tmp_path / "absent") is None
    finally:
        os.close(fd)


def test_a_read_only_state_directory_is_locked_too(tmp_path):
    """A state directory that refuses writes still takes the lock (degraded is not a
    reason to run twice). Needs a read-only bind mount (CAP_SYS_ADMIN)."""
    state = tmp_path / "state"
    state.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(state), str(state)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount: {mounted.stderr.decode().strip()}")
    try:
        remount = ["mount", "-o", "remount,ro,bind", str(state)]
        subprocess.run(remount, check=True, capture_output=True)
        assert not os.access(state, os.W_OK) or os.geteuid() == 0
        with pytest.raises(OSError):
            (state / "probe").write_text("x")
        first = StateDirLock.acquire(state)
        with pytest.raises(StateDirBusy):
            StateDirLock.acquire(state)
        first.release()
    finally:
        subprocess.run(["umount", str(state)], capture_output=True)


@pytest.mark.slow
def test_a_second_run_on_the_same_state_dir_exits_1_naming_the_first(tmp_path):
    """Two real daemons, one state directory: the second exits 1 at once with one line
    naming the first's pid and touches nothing; once the first stops, a new one starts."""
    config = tmp_path / "gateway.yaml"
    state = tmp_path / "state"
    config.write_text(
        "version: 1\ngateway: {site: s, id: g}\nbuses: []\nlogging: {level: info, format: json}\n"
    )
    args = [*ENTRY, "run", "--config", str(config), "--state-dir", str(state)]
    log = open(tmp_path / "first.log", "w")  # noqa: SIM115 - closed below
    first = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=_env())
    try:
        wait_until(lambda: (state / "status.json").exists(), 60, "the first daemon's status")
        outbox_before = sorted(p.name for p in state.iterdir())
        second = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=60)
        assert second.returncode == 1, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
        assert f"pid {first.pid}" in lines[0] and str(state) in lines[0]
        assert first.poll() is None
        assert sorted(p.name for p in state.iterdir()) == outbox_before
    finally:
        first.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            first.wait(30)
        log.close()
    assert first.returncode == 0
    third = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    try:

        def started() -> bool:
            if third.poll() is not None:
                return True
            with contextlib.suppress(OSError, ValueError):
                return json.loads((state / "status.json").read_text())["pid"] == third.pid
            return False

        wait_until(started, 60, "the next daemon")
        assert third.poll() is None, third.communicate()[1]
    finally:
        third.terminate()
        third.wait(30)
    assert third.returncode == 0
