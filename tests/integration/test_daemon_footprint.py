"""The resident daemon never holds numba, LLVM or numpy: ``edge-agent run`` against the
seed site's simulators, READY, polling, a recording job analysed by a worker process that
then exits; the daemon's own memory map shows none of those libraries at any point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from edge_agent.commands.demo import gateway_yaml
from tests.integration.sitegw import ENTRY, Daemon, NotifySocket, Simulator, _env, wait_until

pytestmark = pytest.mark.slow

# What numba brings: its LLVM, its own extension modules, and numpy (the daemon needs none).
NUMERIC_LIBRARIES = ("libllvmlite", "/numba/", "/llvmlite/", "_multiarray_umath", "/numpy/")
LEAK_SECTION = (
    "{recording_interval_s: 3600, night_window: '02:00-04:00', duration_s: 2,"
    " worker: {idle_exit_s: 2}}"
)


def _mapped_numerics(pid: int) -> list[str]:
    with open(f"/proc/{pid}/maps") as maps:
        paths = {line.split()[-1] for line in maps if len(line.split()) >= 6}
    return sorted(p for p in paths if any(name in p for name in NUMERIC_LIBRARIES))


def _children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(c) for c in f.read().split()]
    return out


def _analysis(state: Path) -> dict | None:
    proc = subprocess.run(
        [*ENTRY, "status", "--state-dir", str(state), "--json"],
        capture_output=True, text=True, env=_env(), timeout=60,
    )  # fmt: skip
    try:
        return json.loads(proc.stdout)["extra"]["analysis"]
    except (ValueError, KeyError, TypeError):
        return None


def test_the_resident_daemon_never_maps_numba_llvm_or_numpy(tmp_path):
    sim = Simulator(tmp_path)
    notify = NotifySocket(tmp_path)
    state = tmp_path / "state"
    config = tmp_path / "gateway.yaml"
    logs = "{level: info, format: json}"
    text = gateway_yaml(sim.site, sim.endpoints, state, sim.site_path, logging_section=logs,
                        leak_section=LEAK_SECTION)  # fmt: skip
    config.write_text(text)
    daemon = Daemon(tmp_path, config, state, notify=notify)
    pid = daemon.proc.pid
    seen_worker: set[int] = set()
    try:
        notify.wait_for(lambda m: any("READY=1" in x for x in m), 90)
        assert _mapped_numerics(pid) == []

        def analysed() -> dict | None:
            seen_worker.update(_children(pid))
            assert _mapped_numerics(pid) == [], "the daemon mapped a numeric library"
            got = _analysis(state)
            return got if got and got["jobs"] >= 1 else None

        # A requested job (a first start records nothing before tonight's slots): every
        # logger recorded and analysed by a worker.
        daemon.signal(signal.SIGUSR1)
        stats = wait_until(analysed, 180, "the requested recording job analysed")
        assert stats["starts"] >= 1 and stats["recordings"] >= 1 and stats["failures"] == 0
        assert seen_worker, "the analysis ran in a child process"
        # idle_exit_s after the job the worker is gone; the daemon polls on without it.
        wait_until(lambda: not _children(pid), 60, "the idle worker exited")
        assert _mapped_numerics(pid) == []
        snap = json.loads((state / "status.json").read_text())
        assert any(lg["recordings"] >= 1 and lg["score"] is not None for lg in snap["loggers"])
        assert daemon.proc.poll() is None
    finally:
        code = daemon.stop()
        sim.stop()
        notify.close()
    assert code == 0
    lines = daemon.log_lines()
    assert any(x.get("event") == "analysis worker ready" for x in lines)
    assert [x for x in lines if x.get("level") in ("error", "critical")] == []
