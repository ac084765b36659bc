"""One daemon per state directory: an exclusive ``flock`` on the directory itself, taken
before anything in it is opened (the outbox, ``status.json``, the leak trackers) and held
until the daemon stops.

Two daemons on one state directory would share the outbox (each sending, each deleting the
other's rows) and the MQTT client id (the broker hands the session from one to the other
every few seconds). A second ``edge-agent run`` therefore exits 1 with one line naming the
process that holds the lock.

Why the directory and not a lock file in it: ``flock`` on a directory opened read-only works
on every local file system, so the lock holds whether the directory takes writes or not (a
read-only or full state directory is a degraded outbox, not a reason to run twice). The
kernel drops the lock when the process ends, however it ends (``kill -9`` included): nothing
stale is left behind. The holder's pid comes from ``/proc/locks``.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from edge_agent.errors import RuntimeFailure

__all__ = ["PROC_LOCKS", "StateDirBusy", "StateDirLock", "lock_holder"]

PROC_LOCKS = Path("/proc/locks")


class StateDirBusy(RuntimeFailure):
    """Another process holds the state directory (exit 1); ``pid`` when it could be told."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


class StateDirLock:
    """``StateDirLock.acquire(path)`` ... ``release()`` (idempotent; also on process exit)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, state_dir: Path) -> StateDirLock:
        """Lock ``state_dir`` (which must exist). Raises StateDirBusy when another process
        holds it, RuntimeFailure when it cannot be opened."""
        try:
            fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise RuntimeFailure(
                f"state directory {state_dir}: cannot open to lock it: {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = lock_holder(fd)
            os.close(fd)
            who = f"pid {pid}" if pid is not None else "a process /proc/locks does not show"
            raise StateDirBusy(
                f"state directory {state_dir} is in use by another edge-agent ({who}): one "
                "daemon per state directory (two would share its outbox and MQTT client id); "
                "stop that one first, or give this one its own --state-dir",
                pid,
            ) from None
        except OSError as exc:
            os.close(fd)
            raise RuntimeFailure(
                f"state directory {state_dir}: cannot lock: {exc.strerror or exc}"
            ) from exc
        return cls(state_dir, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor drops the flock


def lock_holder(fd: int, proc_locks: Path = PROC_LOCKS) -> int | None:
    """The pid holding a ``flock`` on the file open at ``fd`` (per ``/proc/locks``), or None
    when it cannot be told (no /proc, a holder in another pid namespace shows as 0)."""
    st = os.fstat(fd)
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        text = proc_locks.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 30544 00:1a:4 0 EOF" ("->" marks a blocked waiter)
        fields = line.split()
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        if fields[5] == where and fields[4].isdigit() and int(fields[4]) > 0:
            return int(fields[4])
    return None
