"""The analysis worker as the daemon sees it: a process started when recordings need
analysing, supervised while it works, closed when idle.

``AnalysisWorker.analyse(job, beat)`` starts ``python -m edge_agent.daemon.worker_process``
if none is running (waiting for its ``ready``: kernels loaded), sends the setup and the job,
and returns the ``JobResult``. While it waits it calls ``beat()`` every ``beat_interval_s``
and on every message: the leak pipeline's part in the watchdog means "the supervision goes
on", and the supervision bounds every wait, so a worker cannot stall the daemon:

- crash (any exit while a job is in flight: a bug, ``kill -9``, the OOM killer),
- hang (no message for ``timeout_s`` during a job, or no ``ready`` within
  ``start_timeout_s`` of the start: compiling on a cold cache takes a minute on a Pi),
- out of memory (beyond ``memory_mb`` the worker reports it and exits),

are each a logged failure of that attempt: the worker is killed, and the job is tried again
by a fresh worker after ``retry_delays_s``, ``retries`` times; then it is given up
(``AnalysisFailed``), logged as an error, and the next job starts afresh. The daemon never
fails with it. ``idle_exit_s`` after a job the worker's stdin is closed and it exits: between
night slots the daemon holds no numba, no LLVM, no kernels.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from edge_agent.config.model import (
    DEFAULT_WORKER_IDLE_EXIT_S,
    DEFAULT_WORKER_MEMORY_MB,
    DEFAULT_WORKER_TIMEOUT_S,
)
from edge_agent.daemon.analysis_jobs import (
    HEADER_SIZE,
    AnalysisJob,
    AnalysisSetup,
    JobResult,
    Message,
    MessageKind,
    WorkerReady,
    decode_body,
    decode_header,
    encode_message,
)
from edge_agent.logs import get_logger

__all__ = [
    "AnalysisFailed",
    "AnalysisWorker",
    "WorkerSettings",
    "WorkerStats",
    "warm_up_kernels",
    "worker_command",
]

EXIT_OUT_OF_MEMORY = 3  # worker_process's exit code after a MemoryError
IDLE_EXIT_MARGIN_S = 30.0  # the worker's own idle exit comes this long after the daemon's
CLOSE_TIMEOUT_S = 5.0  # a closed worker gets this long to exit before it is killed

log = get_logger("edge_agent.daemon.worker")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How the worker is run and supervised (``leak_detection.worker`` in the config)."""

    idle_exit_s: float = DEFAULT_WORKER_IDLE_EXIT_S
    memory_mb: float = DEFAULT_WORKER_MEMORY_MB
    timeout_s: float = DEFAULT_WORKER_TIMEOUT_S
    start_timeout_s: float = 600.0
    retries: int = 2
    retry_delays_s: tuple[float, ...] = (5.0, 30.0)
    beat_interval_s: float = 5.0
    log_level: str = "info"
    log_format: str = "auto"

    def retry_delay_s(self, attempt: int) -> float:
        """Delay before attempt ``attempt`` (1 = the first retry)."""
        if not self.retry_delays_s:
            return 0.0
        return self.retry_delays_s[min(attempt, len(self.retry_delays_s)) - 1]


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """What ``status`` shows of the analysis: totals since the daemon (re)built its runtime."""

    running: bool
    pid: int | None
    starts: int
    jobs: int
    recordings: int
    failures: int
    given_up: int
    busy_s: float  # job hand-over to result, worker starts included
    last_error: str | None


class AnalysisFailed(Exception):
    """A job given up after its retries; the message says what the last attempt met."""


class _WorkerFailure(Exception):
    """One attempt failed: crash, hang, out of memory, a job that raised in the worker."""


def worker_command(settings: WorkerSettings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "edge_agent.daemon.worker_process",
        "--idle-exit-s",
        f"{settings.idle_exit_s + IDLE_EXIT_MARGIN_S:g}",
        "--memory-mb",
        f"{settings.memory_mb:g}",
        "--log-level",
        settings.log_level,
        "--log-format",
        settings.log_format,
    ]


class AnalysisWorker:
    """Runs analysis jobs in a worker process; one job at a time (the leak pipeline's order).

    ``command``: the worker's argv (default ``worker_command(settings)``); ``env``: its
    environment (default: the daemon's, with ``NUMBA_CACHE_DIR`` as ``run`` set it);
    ``sleep``: waits between attempts; ``on_start(pid)``: called once a worker is ready.
    """

    def __init__(
        self,
        setup: AnalysisSetup,
        settings: WorkerSettings | None = None,
        *,
        command: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        on_start: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings or WorkerSettings()
        self._setup = setup
        self._setup_sent = False
        self._command = list(command) if command is not None else worker_command(self.settings)
        self._env = env
        self._sleep = sleep
        self._on_start = on_start
        self._proc: asyncio.subprocess.Process | None = None
        self._messages: asyncio.Queue[Message | None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._idle: asyncio.Task[None] | None = None
        self.ready: WorkerReady | None = None
        self._starts = self._jobs = self._recordings = self._failures = self._given_up = 0
        self._busy_s = 0.0
        self._last_error: str | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    def stats(self) -> WorkerStats:
        return WorkerStats(
            self.pid is not None, self.pid, self._starts, self._jobs, self._recordings,
            self._failures, self._given_up, round(self._busy_s, 3), self._last_error,
        )  # fmt: skip

    async def analyse(self, job: AnalysisJob, beat: Callable[[], None]) -> JobResult:
        """The job's result, by a worker started if needed. Raises ``AnalysisFailed`` once
        every attempt failed (each failure logged)."""
        self._cancel_idle()
        started = time.monotonic()
        attempts = self.settings.retries + 1
        try:
            for attempt in range(attempts):
                if attempt:
                    await self._sleep(self.settings.retry_delay_s(attempt))
                try:
                    result = await self._attempt(job, beat)
                except _WorkerFailure as exc:
                    self._failures += 1
                    self._last_error = str(exc)
                    await self._kill()
                    final = attempt + 1 == attempts
                    (log.error if final else log.warning)(
                        "analysis given up" if final else "analysis worker failed, retrying",
                        job=job.id, attempt=attempt + 1, of=attempts, error=str(exc),
                        devices=",".join(job.devices),
                    )  # fmt: skip
                    continue
                self._jobs += 1
                self._recordings += len(job.recordings)
                return result
            self._given_up += 1
            raise AnalysisFailed(self._last_error or "analysis failed")
        except asyncio.CancelledError:
            await self._kill()  # the daemon is stopping: no job outlives it
            raise
        finally:
            self._busy_s += time.monotonic() - started
            self._schedule_idle_exit()

    async def close(self) -> None:
        """Close the worker's channel and let it exit (killed after ``CLOSE_TIMEOUT_S``)."""
        self._cancel_idle()
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("analysis worker did not exit when closed, killing it", pid=proc.pid)
        await self._kill()

    # -- one attempt -------------------------------------------------------------------------

    async def _attempt(self, job: AnalysisJob, beat: Callable[[], None]) -> JobResult:
        await self._ensure_started(beat)
        if not self._setup_sent:
            await self._send("setup", self._setup)
            self._setup_sent = True
        await self._send("job", job)
        while True:
            kind, body = await self._next(self.settings.timeout_s, beat, "a job")
            if kind == "progress":
                continue
            if kind == "result" and isinstance(body, JobResult) and body.id == job.id:
                return body
            if kind == "failed":
                raise _WorkerFailure(f"the job failed in the worker: {body}")
            raise _WorkerFailure(f"unexpected {kind!r} message from the worker")

    async def _ensure_started(self, beat: Callable[[], None]) -> None:
        if self._proc is not None and self._proc.returncode is None:
            return
        await self._kill()  # reap one that exited by itself (idle)
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=self._env,
            )
        except OSError as exc:
            raise _WorkerFailure(f"cannot start the analysis worker: {exc}") from exc
        self._proc, self._setup_sent, self._starts = proc, False, self._starts + 1
        self._messages = asyncio.Queue()
        assert proc.stdout is not None
        self._reader = asyncio.ensure_future(_read_messages(proc.stdout, self._messages))
        kind, body = await self._next(self.settings.start_timeout_s, beat, "ready")
        if kind != "ready" or not isinstance(body, WorkerReady):
            raise _WorkerFailure(f"unexpected {kind!r} message from a starting worker")
        self.ready = body
        log.info(
            "analysis worker ready", pid=body.pid, load_s=round(body.load_s, 2),
            compiled=body.cache_misses, numba_cache=body.cache_dir,
        )  # fmt: skip
        if self._on_start is not None:
            self._on_start(body.pid)

    async def _send(self, kind: MessageKind, body: object) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            proc.stdin.write(encode_message(kind, body))
            await proc.stdin.drain()
        except (ConnectionError, OSError) as exc:
            raise _WorkerFailure(f"the worker is gone ({await self._exit_reason()})") from exc

    async def _next(self, timeout_s: float, beat: Callable[[], None], what: str) -> Message:
        """The worker's next message; ``beat()`` every ``beat_interval_s`` while it is within
        ``timeout_s``. Raises ``_WorkerFailure`` on exit, silence or a broken message."""
        assert self._messages is not None
        deadline = time.monotonic() + timeout_s
        while True:
            beat()
            left = deadline - time.monotonic()
            if left <= 0:
                raise _WorkerFailure(f"hung: no answer for {timeout_s:g} s waiting for {what}")
            try:
                message = await asyncio.wait_for(
                    self._messages.get(), min(left, self.settings.beat_interval_s)
                )
            except TimeoutError:
                continue
            if message is None:
                raise _WorkerFailure(await self._exit_reason())
            if message[0] == "broken":
                raise _WorkerFailure(f"broken message from the worker: {message[1]}")
            beat()
            return message

    async def _exit_reason(self) -> str:
        proc = self._proc
        if proc is None:
            return "no worker"
        try:
            code = await asyncio.wait_for(proc.wait(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            return "closed its channel but did not exit"
        if code == EXIT_OUT_OF_MEMORY:
            return f"out of memory (limit {self.settings.memory_mb:g} MB)"
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            why = " (out of memory: the kernel's OOM killer, or an operator)" if code == -9 else ""
            return f"crashed: killed by {name}{why}"
        return f"crashed: exited with code {code}"

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), CLOSE_TIMEOUT_S)
        if proc.stdin is not None:
            proc.stdin.close()

    # -- idle exit ---------------------------------------------------------------------------

    def _schedule_idle_exit(self) -> None:
        self._cancel_idle()
        if self._proc is not None:
            self._idle = asyncio.ensure_future(self._close_when_idle())

    def _cancel_idle(self) -> None:
        if self._idle is not None and not self._idle.done():
            self._idle.cancel()
        self._idle = None

    async def _close_when_idle(self) -> None:
        await asyncio.sleep(self.settings.idle_exit_s)
        proc = self._proc
        if proc is None:
            return
        log.info("analysis worker idle, closing it", pid=proc.pid, idle_s=self.settings.idle_exit_s)
        self._idle = None  # close() must not cancel this task while it runs
        await self.close()


async def _read_messages(stream: asyncio.StreamReader, out: asyncio.Queue[Message | None]) -> None:
    """Frames off the worker's stdout into ``out``; None at end of stream; a broken frame is
    ``("broken", why)`` followed by None (nothing after it can be trusted)."""
    try:
        while True:
            header = await stream.readexactly(HEADER_SIZE)
            body = await stream.readexactly(decode_header(header))
            out.put_nowait(decode_body(body))
    except asyncio.IncompleteReadError:
        pass
    except ValueError as exc:
        out.put_nowait(("broken", str(exc)))  # type: ignore[arg-type]
    out.put_nowait(None)


def warm_up_kernels(timeout_s: float = 600.0) -> bool:
    """Load (or compile, on a cold cache) the kernels into the numba cache in a worker
    process of its own, so this process stays free of numba. True when it succeeded."""
    import subprocess

    command = [sys.executable, "-m", "edge_agent.daemon.worker_process", "--warm-up"]
    try:
        done = subprocess.run([*command, "--log-level", "warning"], timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("kernel warm-up failed", error=str(exc))
        return False
    return done.returncode == 0
