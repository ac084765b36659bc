"""The recording schedule's state on disk: ``<state_dir>/recording-schedule.json``.

What each logger recorded of the current night and when the last day recording was
(``edge_agent.daemon.schedule.ScheduleState``), so that a restart or a reload records only
what the night still owes (issue 15: every start used to record all loggers at once). Written
atomically after every change, on the outbox thread; read once when a runtime is built. A
file that is missing starts a fresh schedule; one that cannot be read or makes no sense is
logged (naming the file and what is wrong) and a fresh schedule starts: the worst that costs
is one night's recordings made twice.

    {"version": 1, "night": "2026-01-05", "done": {"nl-01": 1}, "last_day_at": 1767600000.0}
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import Executor
from pathlib import Path

from edge_agent.daemon.schedule import ScheduleState
from edge_agent.daemon.state import replace_file
from edge_agent.logs import get_logger

__all__ = ["SCHEDULE_FILE", "ScheduleSaver", "load_schedule_state", "save_schedule_state"]

SCHEDULE_FILE = "recording-schedule.json"
VERSION = 1

log = get_logger("edge_agent.daemon.schedule")


def load_schedule_state(state_dir: Path | None) -> ScheduleState:
    """The saved state, or a fresh one (missing file; a bad one is logged)."""
    if state_dir is None:
        return ScheduleState()
    path = state_dir / SCHEDULE_FILE
    try:
        data = json.loads(path.read_text())
        return _from_json(data)
    except FileNotFoundError:
        return ScheduleState()
    except (OSError, ValueError) as exc:
        log.warning(
            "recording schedule not restored, starting fresh", path=str(path), error=str(exc)
        )
        return ScheduleState()


def save_schedule_state(state_dir: Path, state: ScheduleState) -> None:
    """Atomically replace the file (logs, never raises, on OSError)."""
    path = state_dir / SCHEDULE_FILE
    data = {
        "version": VERSION,
        "night": state.night,
        "done": state.done,
        "last_day_at": state.last_day_at,
    }
    try:
        replace_file(path, json.dumps(data) + "\n")
    except OSError as exc:
        log.warning("cannot save the recording schedule", path=str(path), error=str(exc))


def _from_json(data: object) -> ScheduleState:
    """Raises ValueError naming what does not fit."""
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError(f"not a version {VERSION} recording schedule")
    night, done, last = data.get("night"), data.get("done", {}), data.get("last_day_at")
    if night is not None and not isinstance(night, str):
        raise ValueError(f"night: {night!r} is not a date")
    if not isinstance(done, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in done.items()
    ):
        raise ValueError("done: not a count of recordings per logger")
    if last is not None and not isinstance(last, int | float):
        raise ValueError(f"last_day_at: {last!r} is not a time")
    return ScheduleState(night, dict(done), None if last is None else float(last))


class ScheduleSaver:
    """``on_change`` for the scheduler: each new state saved on ``executor`` (one thread:
    in order); ``await flush()`` until the last is on disk (a reload reads it next)."""

    def __init__(self, state_dir: Path | None, executor: Executor) -> None:
        self.state_dir = state_dir
        self.executor = executor
        self._last: asyncio.Future[None] | None = None

    def __call__(self, state: ScheduleState) -> None:
        if self.state_dir is not None:
            loop = asyncio.get_running_loop()
            self._last = loop.run_in_executor(
                self.executor, save_schedule_state, self.state_dir, state
            )

    async def flush(self) -> None:
        if self._last is not None:
            await self._last
