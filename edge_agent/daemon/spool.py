"""Recordings on their way to the analysis worker: one file of int16 counts per recording.

The daemon writes a recording's counts (the bytes the logger sent, CRC-checked) to a file and
hands the worker its path (``SpooledRecording``); the worker maps the file (``open_spooled``)
and reads the samples from the page cache, with no copy through a pipe. The directory is
``<state_dir>/analysis-spool``; when the state directory refuses writes (read-only, full:
the daemon's degraded mode) the spool falls back to a private directory under the system's
temporary directory, so analysis goes on. Files are removed once their job is done or given
up, and whatever a previous life left is removed at start.

    spool = RecordingSpool(state_dir / "analysis-spool")
    refs = spool.write(job_id, recordings)      # on a worker thread: file I/O
    ...
    spool.remove(refs)
"""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from drivers.model import Recording
from edge_agent.daemon.analysis_jobs import SpooledRecording
from edge_agent.logs import get_logger

__all__ = ["SPOOL_DIR_NAME", "RecordingSpool", "open_spooled"]

SPOOL_DIR_NAME = "analysis-spool"
SUFFIX = ".i16"

log = get_logger("edge_agent.daemon.spool")


class RecordingSpool:
    """Writes and removes spooled recordings in ``directory`` (created on first use)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fallback: Path | None = None

    def clear(self) -> int:
        """Remove what a previous life left (its jobs were never answered); returns the count."""
        removed = 0
        for path in self.directory.glob(f"*{SUFFIX}") if self.directory.is_dir() else ():
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
        return removed

    def write(self, job_id: int, recordings: Iterable[Recording]) -> tuple[SpooledRecording, ...]:
        """Each recording's counts to a file of its own. Raises OSError when neither the
        spool directory nor the fallback takes the files."""
        out = []
        try:
            for rec in recordings:
                out.append(self._write_one(job_id, rec))
        except OSError:
            self.remove(out)
            raise
        return tuple(out)

    def _write_one(self, job_id: int, rec: Recording) -> SpooledRecording:
        name = f"{job_id}-{rec.device}{SUFFIX}"
        try:
            path = _write_file(self.directory, name, rec.counts)
        except OSError as exc:
            if self._fallback is None:
                self._fallback = Path(tempfile.mkdtemp(prefix="edge-agent-spool-"))
                log.warning(
                    "analysis spool not writable, using a temporary directory",
                    path=str(self.directory),
                    error=str(exc),
                    fallback=str(self._fallback),
                )
            path = _write_file(self._fallback, name, rec.counts)
        return SpooledRecording(
            rec.device, rec.fs, rec.scale, rec.started_at, str(path), rec.sample_count
        )

    @staticmethod
    def remove(refs: Iterable[SpooledRecording]) -> None:
        """Delete the files (missing ones are fine: a job given up after a restart)."""
        for ref in refs:
            try:
                os.unlink(ref.path)
            except OSError:
                pass


def _write_file(directory: Path, name: str, data: bytes | memoryview) -> Path:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / name
    with open(path, "wb") as f:
        f.write(data)
    return path


def open_spooled(ref: SpooledRecording) -> Recording:
    """(worker) The recording of ``ref``, its counts mapped from the file (no copy).

    Raises ValueError when the file is missing or shorter than the recording it stands for
    (the job is then failed for that logger, not the worker)."""
    try:
        with open(ref.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 2 * ref.sample_count or ref.sample_count <= 0:
                raise ValueError(
                    f"spooled recording {ref.path} holds {size} bytes, "
                    f"{2 * ref.sample_count} expected"
                )
            mapped = mmap.mmap(f.fileno(), 2 * ref.sample_count, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise ValueError(f"spooled recording unreadable: {exc}") from exc
    return Recording(ref.device, ref.fs, memoryview(mapped), ref.scale, ref.started_at)
