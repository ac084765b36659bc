"""The status snapshot the daemon publishes to its state directory for ``edge-agent status``.

The daemon rewrites ``<state_dir>/status.json`` every few seconds, atomically (write a temp file,
fsync-free rename: a torn file is impossible, a lost update is harmless). A file rather than a
socket: it needs no listener in the daemon, survives a crash (the last state stays readable,
marked stale) and is readable by root under ``DynamicUser=`` with no extra permissions.

When the state directory refuses the file (read-only, full: the outbox is degraded then), the
daemon writes the snapshot to a fallback in the runtime directory instead
(``$RUNTIME_DIRECTORY``, i.e. ``/run/edge-agent`` under the unit's ``RuntimeDirectory=``, a
tmpfs), named after the state directory; ``read_status`` reads whichever of the two is newer,
so ``edge-agent status`` keeps telling the truth while the disk does not take writes.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from drivers.model import DeviceStatus
from edge_agent.component_status import LoggerStatus, OutboxStatus, UplinkStatus
from edge_agent.errors import RuntimeFailure, UsageError

__all__ = [
    "STATE_FILE_NAME",
    "STATE_VERSION",
    "StatusSnapshot",
    "offline_reason",
    "read_status",
    "replace_file",
    "write_status",
]

STATE_FILE_NAME = "status.json"
RUNTIME_DIR = Path("/run/edge-agent")  # the unit's RuntimeDirectory=edge-agent
STATE_VERSION = 1
# status.json older than this many write intervals means the daemon stopped writing it.
STALE_AFTER_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """What ``edge-agent status`` shows; ``updated_at`` and ``started_at`` are epoch seconds.
    Each part is its component's own status type, as the component gives it: the bus's
    ``DeviceStatus``, the leak pipeline's ``LoggerStatus``, the outbox's and the uplink's
    (``edge_agent.component_status``)."""

    site: str
    gateway: str
    pid: int
    started_at: float
    updated_at: float
    interval_s: float
    ready: bool
    devices: tuple[DeviceStatus, ...]
    loggers: tuple[LoggerStatus, ...]
    outbox: OutboxStatus
    uplink: UplinkStatus
    stalled: tuple[str, ...] = ()
    config_error: str | None = None  # the last SIGHUP reload that was refused
    version: int = STATE_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The snapshot as JSON-ready values: what ``dataclasses.asdict`` gives (the tests
        hold it to that), without its deep copy of every scalar: written every
        ``interval_s``, ``asdict`` was a twentieth of the daemon's CPU on 28 devices."""
        return _plain(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StatusSnapshot:
        """Raises KeyError/TypeError on a malformed document (``read_status`` wraps them)."""
        return cls(
            site=data["site"],
            gateway=data["gateway"],
            pid=int(data["pid"]),
            started_at=float(data["started_at"]),
            updated_at=float(data["updated_at"]),
            interval_s=float(data["interval_s"]),
            ready=bool(data["ready"]),
            devices=tuple(DeviceStatus(**d) for d in data["devices"]),
            loggers=tuple(LoggerStatus(**d) for d in data["loggers"]),
            outbox=OutboxStatus(**data["outbox"]),
            uplink=UplinkStatus(**data["uplink"]),
            stalled=tuple(data.get("stalled", ())),
            config_error=data.get("config_error"),
            version=int(data.get("version", STATE_VERSION)),
            extra=dict(data.get("extra", {})),
        )

    def is_stale(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return now - self.updated_at > STALE_AFTER_INTERVALS * max(self.interval_s, 1.0)


_SCALARS = (str, int, float, bool, type(None))
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """``value`` with every dataclass in it turned into a dict of its fields, dicts, lists and
    tuples rebuilt around their converted items (so the result shares nothing mutable with
    the snapshot), scalars as they are."""
    if isinstance(value, _SCALARS):
        return value
    kind = type(value)
    if kind in (tuple, list):
        return kind(_plain(v) for v in value)
    if kind is dict:
        return {_plain(k): _plain(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES.get(kind)
        if names is None:
            names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(value))
        return {name: _plain(getattr(value, name)) for name in names}
    return copy.deepcopy(value)  # anything else, as asdict does


def offline_reason(devices: Sequence[DeviceStatus]) -> str | None:
    """Why devices are not online, in a few words (``STATUS=``, ``status``); None if every
    one is online or still waiting for its first poll.

    A device is named when it is offline, or when it has never answered and its last poll
    failed (not offline yet: ``offline_after`` polls have not failed, but it is not online
    either). A bus whose every device fails with the same error (a port that cannot be
    opened, a refused connection) is one cause, named by the bus; otherwise each device is.
    The first cause is spelled out, the others counted: ``bus rs485-1: cannot open rtu
    /dev/ttyUSB0: permission denied (...); 2 more``.
    """
    on_bus: dict[str, list[DeviceStatus]] = {}
    for d in devices:
        on_bus.setdefault(d.bus, []).append(d)
    causes: list[str] = []
    for bus, members in on_bus.items():
        offline = [d for d in members if d.online is False or (d.online is None and d.last_error)]
        errors = {d.last_error for d in offline}
        if len(offline) == len(members) > 1 and len(errors) == 1 and None not in errors:
            causes.append(f"bus {bus}: {errors.pop()}")
        else:
            causes.extend(f"{d.name}: {d.last_error or 'offline'}" for d in offline)
    if not causes:
        return None
    more = f"; {len(causes) - 1} more" if len(causes) > 1 else ""
    return causes[0] + more


def fallback_paths(state_dir: Path) -> list[Path]:
    """Where the snapshot goes when ``state_dir`` refuses it, most preferred first: the
    runtime directory (systemd's, else /run/edge-agent), else the temp directory."""
    key = hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:12]
    name = f"status-{key}.json"
    dirs: list[Path] = []
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        dirs.append(Path(runtime.split(":")[0]))
    dirs += [RUNTIME_DIR, Path(tempfile.gettempdir())]
    return [d / name for d in dict.fromkeys(dirs)]


def write_status_fallback(state_dir: Path, snapshot: StatusSnapshot) -> Path:
    """``write_status`` into the first fallback directory that takes it. Raises OSError
    (the last one's) when none does."""
    error: OSError | None = None
    for path in fallback_paths(state_dir):
        if not path.parent.is_dir():
            continue
        try:
            return write_status(path.parent, snapshot, name=path.name)
        except OSError as exc:
            error = exc
    raise error or FileNotFoundError(f"no runtime directory for {state_dir}")


def remove_status_fallback(state_dir: Path) -> None:
    """The state directory takes the file again: drop the fallbacks (best effort)."""
    for path in fallback_paths(state_dir):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def write_status(state_dir: Path, snapshot: StatusSnapshot, *, name: str = STATE_FILE_NAME) -> Path:
    """Atomically replace ``state_dir/status.json``. Raises OSError (the caller logs it)."""
    path = state_dir / name
    replace_file(path, json.dumps(snapshot.to_json(), separators=(",", ":")) + "\n")
    return path


def replace_file(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text`` (a temp file renamed over it: a reader sees
    the old file or the new one, never a torn one). Raises OSError."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # A fresh file, 0600 whatever the umask. O_EXCL never follows a symlink planted at the
    # temp name (the fallback may live in a shared /tmp); a temp file a crash left is removed.
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_status(state_dir: Path) -> StatusSnapshot:
    """Read the snapshot. Raises RuntimeFailure when there is none or it cannot be read,
    UsageError when ``state_dir`` is not a directory."""
    if not state_dir.exists():
        raise UsageError(f"{state_dir}: state directory does not exist (see --state-dir)")
    if not state_dir.is_dir():
        raise UsageError(f"{state_dir}: not a directory (see --state-dir)")
    path = state_dir / STATE_FILE_NAME
    try:
        snapshot = _read_one(path)
    except FileNotFoundError:
        snapshot = None
    # A daemon whose state directory refuses writes keeps a newer snapshot in a fallback.
    for fallback in fallback_paths(state_dir):
        try:
            other = _read_one(fallback)
        except (FileNotFoundError, RuntimeFailure):
            continue
        if snapshot is None or other.updated_at > snapshot.updated_at:
            snapshot = other
    if snapshot is None:
        raise RuntimeFailure(
            f"{path}: no status file: the daemon has not run with this state directory"
        )
    return snapshot


def _read_one(path: Path) -> StatusSnapshot:
    """Raises FileNotFoundError (absent) or RuntimeFailure (unreadable)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise RuntimeFailure(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        return StatusSnapshot.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeFailure(f"{path}: unreadable status file ({exc})") from exc


def pid_alive(pid: int) -> bool:
    """True if a process with ``pid`` exists (EPERM: it exists, owned by another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
