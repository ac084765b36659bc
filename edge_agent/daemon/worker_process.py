"""The analysis worker process: where numba, LLVM and the leak kernels live.

Started by the daemon (``edge_agent.daemon.worker.AnalysisWorker``) as
``python -m edge_agent.daemon.worker_process`` when recordings need analysing; it loads the
kernels (from the numba cache in ``NUMBA_CACHE_DIR``, which the daemon points at its cache or
state directory, so a cold cache is compiled once per install, not once per worker), says
``ready``, runs the jobs it is sent (``analysis_runner.JobRunner``), and exits when the daemon
closes its stdin, or by itself after ``--idle-exit-s`` without a message (a safety net: the
daemon normally closes first).

Its stdout is the message channel (``analysis_jobs``): file descriptor 1 is pointed at stderr
before anything is imported, so a library that prints cannot corrupt it. Logs go to stderr,
which it shares with the daemon (the journal, under systemd).

Containment: ``--memory-mb`` caps its data segment (``RLIMIT_DATA``): an allocation beyond it
raises MemoryError, reported as a failed job ("out of memory"), and the worker exits; its
``oom_score_adj`` is raised so that under the unit's ``MemoryMax`` the kernel's OOM killer
takes the worker, not the daemon. After loading the kernels it hands LLVM's pages back
(``footprint.page_out_library``).

``--warm-up``: load (or compile) the kernels into the cache and exit: what the demo and the
benchmarks run before they start a daemon.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import time
from typing import IO, Any

__all__ = ["OOM_SCORE_ADJ", "main"]

OOM_SCORE_ADJ = 500  # of -1000..1000: far ahead of the daemon (0) for the OOM killer
EXIT_OUT_OF_MEMORY = 3
EXIT_JOB_FAILED = 1
KERNEL_MODULES = ("dsp.spectra", "dsp.features", "dsp.correlate")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m edge_agent.daemon.worker_process")
    parser.add_argument("--idle-exit-s", type=float, default=0.0, help="0: never by itself")
    parser.add_argument("--memory-mb", type=float, default=0.0, help="0: no limit")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-format", default="auto", choices=("auto", "json", "console"))
    parser.add_argument("--warm-up", action="store_true", help="load the kernels and exit")
    return parser.parse_args(argv)


def _take_stdout() -> IO[bytes]:
    """The message channel (the real stdout); fd 1 then writes to stderr."""
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def _contain(memory_mb: float) -> str | None:
    """Apply the memory limit and the OOM priority; returns why the limit could not be set
    (a seccomp filter without setrlimit: the unit's MemoryMax still holds), else None."""
    problem = None
    if memory_mb > 0:
        import resource

        limit = int(memory_mb * 1024 * 1024)
        try:
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        except (OSError, ValueError) as exc:
            problem = str(exc)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(OOM_SCORE_ADJ))
    except OSError:
        pass  # not Linux, or /proc read-only: the limits above still hold
    return problem


def _load_kernels(started: float) -> Any:
    """Import the analysis (numba) and load every kernel; LLVM's pages handed back after each
    step (the peak is what the steps touch, not the library). Returns ``WorkerReady``."""
    import llvmlite.binding  # type: ignore[import-untyped]  # noqa: F401 - loads LLVM

    from edge_agent.daemon.analysis_jobs import WorkerReady
    from edge_agent.daemon.footprint import page_out_library

    page_out_library("libllvmlite")
    from edge_agent.daemon.analysis import warm_up

    page_out_library("libllvmlite")
    warm_up()
    page_out_library("libllvmlite")
    return WorkerReady(
        pid=os.getpid(),
        load_s=time.monotonic() - started,
        cache_dir=os.environ.get("NUMBA_CACHE_DIR"),
        cache_misses=_cache_misses(),
    )


def _cache_misses() -> int:
    """Kernels compiled (not loaded from the cache) by this process so far."""
    total = 0
    for name in KERNEL_MODULES:
        module = sys.modules.get(name)
        for obj in vars(module).values() if module is not None else ():
            stats = getattr(obj, "stats", None)
            misses = getattr(stats, "cache_misses", None)
            if misses is not None:
                total += sum(misses.values())
    return total


def _runner_for(setup: Any) -> Any:
    """The daemon's analysis for one config (``AnalysisSetup``): a fresh ``TrackerAnalysis``
    per job, and the site's correlator when there is a site."""
    from edge_agent.daemon.analysis import TrackerAnalysis
    from edge_agent.daemon.analysis_runner import JobRunner
    from edge_agent.daemon.locate import SiteLocator

    def make() -> TrackerAnalysis:
        return TrackerAnalysis(
            setup.leak, setup.loggers, noise_floor_db=setup.noise_floor_db, now=setup.built_at
        )

    return JobRunner(make, SiteLocator(setup.site) if setup.site is not None else None)


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    args = _parse(argv)
    from edge_agent.daemon.footprint import refuse_test_only_imports

    refuse_test_only_imports()  # before numba: see that module
    channel = _take_stdout()
    unlimited = _contain(args.memory_mb)
    from edge_agent.logs import configure_logging, get_logger

    configure_logging(args.log_level, args.log_format, stream=sys.stderr)
    log = get_logger("edge_agent.daemon.worker")
    if unlimited is not None:
        log.warning("analysis worker memory limit not applied", error=unlimited)
    try:
        ready = _load_kernels(started)
    except MemoryError:
        log.error("analysis worker out of memory loading the kernels", limit_mb=args.memory_mb)
        return EXIT_OUT_OF_MEMORY
    if args.warm_up:
        log.info("kernels ready", seconds=round(ready.load_s, 2), compiled=ready.cache_misses)
        return 0
    try:
        return _serve(channel, args, ready, log)
    except BrokenPipeError:  # the daemon is gone: nothing to report to
        return 0


def _serve(channel: IO[bytes], args: argparse.Namespace, ready: Any, log: Any) -> int:
    """Answer the daemon's messages until it closes the channel or the worker is idle."""
    from edge_agent.daemon.analysis_jobs import read_message, write_message

    write_message(channel, "ready", ready)
    stdin = os.fdopen(0, "rb", buffering=0)  # raw: select() sees every byte not yet read
    runner = None
    while True:
        if args.idle_exit_s > 0:
            readable, _, _ = select.select([stdin], [], [], args.idle_exit_s)
            if not readable:
                log.info("analysis worker idle, exiting", idle_s=args.idle_exit_s)
                return 0
        message = read_message(stdin)
        if message is None:  # the daemon closed the channel: idle, reload or stop
            return 0
        kind, body = message
        if kind == "setup":
            runner = _runner_for(body)
            continue
        if kind != "job" or runner is None:
            write_message(channel, "failed", f"unexpected {kind!r} message (setup first)")
            return EXIT_JOB_FAILED
        try:
            result = runner.run(body, lambda device: write_message(channel, "progress", device))
        except MemoryError:
            write_message(channel, "failed", f"out of memory (limit {args.memory_mb:g} MB)")
            return EXIT_OUT_OF_MEMORY
        except Exception as exc:
            log.error("analysis job failed", job=body.id, exc_info=exc)
            write_message(channel, "failed", f"{type(exc).__name__}: {exc}")
            return EXIT_JOB_FAILED
        write_message(channel, "result", result)


if __name__ == "__main__":
    sys.exit(main())
