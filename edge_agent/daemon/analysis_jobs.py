"""What crosses between the daemon and its analysis worker process: the shapes and the wire.

The resident daemon never loads numba or LLVM (about 100 MB): leak analysis runs in a worker
process (``edge_agent.daemon.worker_process``) that the daemon starts when recordings need
analysing and that exits when idle (``edge_agent.daemon.worker``). Between the two:

- ``AnalysisSetup``: what one config gives the analysis (loggers with their pipe material and
  segment, the leak settings, the site for location). Sent to each new worker, and again
  after a reload changed it.
- ``AnalysisJob``: one recording job's recordings, all loggers of it together (a night's
  broadcast start records every logger at once: group comparison and multi-logger location
  need them side by side), each a ``SpooledRecording`` (a file of int16 counts the worker
  maps, never a copy through the pipe), with the saved tracker state of those loggers and
  the pairs (or the group) to locate. The worker keeps no state between jobs: the daemon
  owns the trackers' state (``leak-trackers.json``), so a job retried after a crash cannot
  count twice.
- ``JobResult``: small frozen values: per logger its score, state and error, the ``leak.*``
  drafts to emit (transitions and locations), and the trackers' new state.

Messages are length-prefixed pickles (``write_message`` / ``MessageReader``) over the
worker's stdin and stdout. Pickle is safe here: both ends are this program, the pipe is
private to a parent and the child it started, and nothing from outside travels on it.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from edge_agent.config.model import LeakDetectionConfig
from edge_agent.daemon.schedule import RecordingJob
from edge_agent.events import EventDraft, JsonValue
from sitemodel import Site

__all__ = [
    "DEFAULT_MATERIAL",
    "HEADER_SIZE",
    "MAX_MESSAGE_BYTES",
    "TRACKER_STATE_VERSION",
    "AnalysisJob",
    "AnalysisSetup",
    "JobResult",
    "LoggerResult",
    "Message",
    "SpooledRecording",
    "WorkerReady",
    "decode_body",
    "decode_header",
    "encode_message",
    "read_message",
    "write_message",
]

DEFAULT_MATERIAL = "ductile_iron"  # a logger the site file does not place on a pipe
TRACKER_STATE_VERSION = 1  # of leak-trackers.json: {"version": 1, "trackers": {name: state}}
# A job with a site of thousands of pipes pickles to a few MB; more than this is a broken pipe.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
_HEADER = struct.Struct(">I")
HEADER_SIZE = _HEADER.size

# Daemon -> worker: ("setup", AnalysisSetup), ("job", AnalysisJob). Closing stdin: exit.
# Worker -> daemon: ("ready", WorkerReady), ("progress", device), ("result", JobResult),
# ("failed", reason): the job raised (a bug, or out of memory); the worker exits after it.
# ("broken", why) is the daemon's reader's own note of a frame it could not read.
MessageKind = Literal["setup", "job", "ready", "progress", "result", "failed", "broken"]
Message = tuple[MessageKind, Any]


@dataclass(frozen=True, slots=True)
class AnalysisSetup:
    """What one config gives the analysis. ``loggers``: name -> (pipe material, pipe segment
    or None). ``built_at``: the leak clock's time when the config was applied (fixes the UTC
    offset the trackers count local nights with)."""

    leak: LeakDetectionConfig
    loggers: dict[str, tuple[str, str | None]]
    noise_floor_db: float | None  # the site's; None without a site (gain-free scores)
    site: Site | None
    built_at: float


@dataclass(frozen=True, slots=True)
class SpooledRecording:
    """A recording handed to the worker: its counts (big-endian int16) in the file ``path``,
    the rest of ``drivers.model.Recording`` here."""

    device: str
    fs: float
    scale: float
    started_at: float
    path: str
    sample_count: int


@dataclass(frozen=True, slots=True)
class AnalysisJob:
    """Analyse ``recordings`` (one recording job's, several loggers) for ``job``: the trackers
    count nights on ``job.due_at`` and ``job.night``. ``trackers``: the saved state of each
    logger's tracker, as ``TrackerAnalysis.to_json()["trackers"]`` holds it (missing: fresh).
    ``locate``: logger pairs to correlate once scored (a pair job's two loggers).
    ``locate_group``: a synchronised job of several loggers: when three or more of them
    suspect a leak once tracked, locate it with all of them together, unless that group is in
    ``skip_groups`` (located within the daemon's relocation spacing)."""

    id: int
    job: RecordingJob
    recordings: tuple[SpooledRecording, ...]
    trackers: dict[str, JsonValue] = field(default_factory=dict)
    locate: tuple[tuple[str, str], ...] = ()
    locate_group: bool = False
    skip_groups: tuple[tuple[str, ...], ...] = ()

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(r.device for r in self.recordings)


@dataclass(frozen=True, slots=True)
class LoggerResult:
    """One logger of a job: ``score`` None when its recording could not be scored (``error``
    says why: too short, not finite); ``state`` its tracker's state after the job."""

    device: str
    score: float | None
    state: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class JobResult:
    """What a job found: per logger, the drafts to emit in order (tracker transitions, then
    locations) and the new saved state of each tracker the job touched. ``groups_tried``:
    the groups of loggers (sorted names) a multi-logger location was attempted for, found or
    not (the daemon spaces the next attempt)."""

    id: int
    loggers: tuple[LoggerResult, ...]
    drafts: tuple[EventDraft, ...]
    trackers: dict[str, JsonValue]
    analysis_s: float  # in the worker, from the job's arrival to its result
    groups_tried: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class WorkerReady:
    """The worker's first message, once its kernels are loaded (compiled on a cold cache)."""

    pid: int
    load_s: float  # start of the process to ready: imports and kernels
    cache_dir: str | None  # NUMBA_CACHE_DIR, where the compiled kernels persist
    cache_misses: int  # kernels compiled in this start (0 on a warm cache)


def encode_message(kind: MessageKind, body: Any) -> bytes:
    """One message as it goes on the wire: its length, then the pickle."""
    data = pickle.dumps((kind, body), protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


def write_message(stream: IO[bytes], kind: MessageKind, body: Any) -> None:
    """One message, flushed. Raises OSError (BrokenPipeError) when the other end is gone."""
    stream.write(encode_message(kind, body))
    stream.flush()


def read_message(stream: IO[bytes]) -> Message | None:
    """The next message from a blocking stream (buffered or raw), or None at end of stream
    (the other end closed). Raises ValueError for a broken frame."""
    header = _read_exactly(stream, _HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        raise ValueError("truncated message header")
    size = decode_header(header)
    data = _read_exactly(stream, size)
    if len(data) < size:
        raise ValueError("truncated message")
    return decode_body(data)


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    """``size`` bytes, fewer only at end of stream (a raw stream returns what has arrived)."""
    chunks = []
    while size > 0:
        chunk = stream.read(size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def decode_header(header: bytes) -> int:
    """The body length a header announces. Raises ValueError."""
    (size,) = _HEADER.unpack(header)
    if size > MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {size} bytes announced: not a worker message")
    return size


def decode_body(data: bytes) -> Message:
    """A message body. Raises ValueError when it is not a ``(kind, body)`` pair."""
    try:
        message = pickle.loads(data)
    except Exception as exc:
        raise ValueError(f"unreadable message: {exc}") from exc
    if not (isinstance(message, tuple) and len(message) == 2 and isinstance(message[0], str)):
        raise ValueError("not a (kind, body) message")
    return message
