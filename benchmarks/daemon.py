"""Daemon footprint: memory and CPU between analyses, the peak while a night is analysed,
time to READY, and what an analysed recording costs, on a realistic gateway.

Builds a site from the reference site with 20 polled devices (levels, gas, covers, pump
station, rain gauge; 1 s polling) and its 8 noise loggers, serves it with
``edge-agent simulate`` in its own process, and runs ``edge-agent run`` as a subprocess with a
notify socket, as systemd would. The night window is set away from now, so the loggers record
only what the benchmark asks for (SIGUSR1: every logger at once, as a night slot's broadcast
start): a first job before measuring, then the night slots. Figures:

- ``ready_s``: start to ``READY=1`` (no numba before READY: the kernels load in the worker);
  ``ready_cpu_s``: the CPU time the daemon spent until then (what a loaded machine stretches);
- ``rss_mb``: the daemon's peak RSS between analyses (no worker alive), over ``--seconds``
  after ``--warmup`` (floor 60); ``cpu_percent``: its CPU time over that wall time, of one
  core (floor 2);
- ``rss_peak_mb``: while a night is analysed (``--slots`` slots of all 8 loggers, each
  analysed by a worker started for it, as at 02:00 and 03:00 in the field): the daemon's
  peak RSS plus the worker's high-water mark (``VmHWM``: exact, not sampled; floor 200);
  ``rss_peak_sampled_mb`` is the largest sum actually sampled every 50 ms;
- ``analysis_s_per_recording``: the daemon's analysis time (job hand-over to result, worker
  start included) per recording; ``night_analysis_share``: a night's analysis time (8 loggers
  x the slots a 2-hour window holds at the default 1-hour interval) over the window;
- side by side, the baseline: an idle interpreter importing the daemon's resident modules
  (``baseline_rss_mb``): what the work adds to the imports.

    .venv/bin/python benchmarks/daemon.py [--seconds 60] [--warmup 15] [--slots 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_agent.commands.demo import gateway_yaml  # noqa: E402
from sitemodel import load_site  # noqa: E402
from tests.integration.sitegw import wait_until  # noqa: E402

POLLED_DEVICES = 20
NOISE_LOGGERS = 8
RSS_FLOOR_MB = 60.0
PEAK_FLOOR_MB = 200.0
CPU_FLOOR_PERCENT = 2.0
READY_FLOOR_S = 1.0
NIGHT_WINDOW_S = 7200.0  # the default 02:00-04:00
NIGHT_SLOTS = 2  # the default recording_interval_s (3600 s) in that window
WORKER_IDLE_EXIT_S = 5  # short, so every slot starts a worker as an hour apart would
SAMPLE_S = 0.05
ENTRY = [sys.executable, "-m", "edge_agent"]
BASELINE_IMPORTS = (
    "from edge_agent.daemon.footprint import refuse_test_only_imports; "
    "refuse_test_only_imports(); "
    "import edge_agent.daemon.app, edge_agent.daemon.runtime, edge_agent.commands.run, "
    "edge_agent.uplink, edge_agent.rules, drivers.bus, drivers.noise_logger, "
    "drivers.transports.tcp, pymodbus.client, time; "
    "print('ready', flush=True); time.sleep(3600)"
)


def bench_site(tmp: Path) -> Path:
    """The reference site with 8 loggers and 20 other devices (copies on new unit ids)."""
    doc = yaml.safe_load((REPO / "seeds" / "site.yaml").read_text())
    loggers = [d for d in doc["devices"] if d["kind"] == "noise_logger"][:NOISE_LOGGERS]
    others = [d for d in doc["devices"] if d["kind"] != "noise_logger"]
    polled = []
    i = 0
    while len(polled) < POLLED_DEVICES:
        d = dict(others[i % len(others)])
        copy = i // len(others)
        if copy:
            d["name"] = f"{d['name']}-{copy}"
            d["unit_id"] = d["unit_id"] + 100 * copy
            d["asset_id"] = f"{d['asset_id']}-{copy}"
        polled.append(d)
        i += 1
    doc["devices"] = loggers + polled
    names = {d["name"] for d in doc["devices"]}
    for kind, entries in (doc.get("scenarios") or {}).items():
        doc["scenarios"][kind] = [e for e in entries or () if e.get("device", "") in names | {""}]
    path = tmp / "bench-site.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba"))
    env["PYTHONPATH"] = str(REPO)
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM"):
        env.pop(key, None)
    env.update(extra or {})
    return env


def _night_around_now() -> str:
    lt = time.localtime()
    start = (lt.tm_hour - 1) % 24
    end = (lt.tm_hour + 2) % 24
    return f"'{start:02d}:00-{end:02d}:00'"


def _night_away_from_now() -> str:
    """A two-hour window starting twelve hours from now: no night slot during the run."""
    start = (time.localtime().tm_hour + 12) % 24
    return f"'{start:02d}:00-{(start + 2) % 24:02d}:00'"


def warm_numba_cache() -> None:
    """Warm the numba cache the daemon's worker will load (compiles on the very first run)."""
    subprocess.run(
        [*ENTRY[:1], "-m", "edge_agent.daemon.worker_process", "--warm-up"],
        check=True,
        env=_env(),
        cwd=REPO,
        timeout=600,
    )


def start_simulator(site_path: Path) -> tuple[subprocess.Popen, dict[str, argparse.Namespace]]:
    """``edge-agent simulate`` serving ``site_path`` on free loopback ports, and its endpoints
    (bus name -> host, port). The caller terminates the process."""
    sim = subprocess.Popen(
        [*ENTRY, "simulate", "--site", str(site_path), "--port-base", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    try:
        endpoints = {
            name: argparse.Namespace(host=ep["host"], port=ep["port"])
            for name, ep in json.loads(sim.stdout.readline())["endpoints"].items()
        }
    except BaseException:
        sim.terminate()
        sim.wait(10)
        raise
    return sim, endpoints


def measure(args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmpname:
        tmp = Path(tmpname)
        site_path = bench_site(tmp)
        site = load_site(site_path)
        warm_numba_cache()
        sim, endpoints = start_simulator(site_path)
        try:
            state = tmp / "state"
            config = tmp / "gateway.yaml"
            config.write_text(
                gateway_yaml(
                    site,
                    endpoints,
                    state,
                    site_path,
                    logging_section="{level: warning, format: json}",
                    leak_section=(
                        f"{{recording_interval_s: 3600, night_window: {_night_away_from_now()},"
                        f" duration_s: 8, worker: {{idle_exit_s: {WORKER_IDLE_EXIT_S}}}}}"
                    ),
                )
            )
            return _run_daemon(tmp, config, state, args)
        finally:
            sim.terminate()
            sim.wait(10)


def _status(state: Path) -> dict:
    return json.loads((state / "status.json").read_text())


def _analysis(state: Path) -> dict:
    try:
        return _status(state)["extra"].get("analysis") or {}
    except (OSError, ValueError, KeyError):
        return {}


class Sampler:
    """RSS of the daemon and of its children (the analysis worker), sampled on demand."""

    def __init__(self, pid: int) -> None:
        self.daemon = psutil.Process(pid)
        self.daemon_max = 0
        self.sum_max = 0
        self.worker_hwm = 0
        self.worker_pids: set[int] = set()

    def workers(self) -> list[psutil.Process]:
        try:
            return self.daemon.children()
        except psutil.Error:
            return []

    def sample(self) -> None:
        rss = self.daemon.memory_info().rss
        total = rss
        for child in self.workers():
            self.worker_pids.add(child.pid)
            try:
                total += child.memory_info().rss
                self.worker_hwm = max(self.worker_hwm, _vm_hwm(child.pid))
            except (psutil.Error, OSError):
                continue
        self.daemon_max = max(self.daemon_max, rss)
        self.sum_max = max(self.sum_max, total)


def _vm_hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _run_daemon(tmp: Path, config: Path, state: Path, args: argparse.Namespace) -> dict:
    notify_path = str(tmp / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(0.05)
    started = time.monotonic()
    proc = subprocess.Popen(
        [*ENTRY, "run", "--config", str(config), "--state-dir", str(state)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env({"NOTIFY_SOCKET": notify_path}),
    )
    try:
        ready_s = None
        while ready_s is None and time.monotonic() - started < 120:
            try:
                if b"READY=1" in notify.recv(4096):
                    ready_s = time.monotonic() - started
            except TimeoutError:
                continue
        if ready_s is None:
            raise RuntimeError("the daemon did not send READY=1 within 120 s")
        at_ready = psutil.Process(proc.pid).cpu_times()  # what READY cost, whatever the load
        ready_cpu_s = at_ready.user + at_ready.system
        sampler = Sampler(proc.pid)
        # A first job (a first start records nothing before tonight's slots, so it is
        # requested): recorded, analysed, the worker closed when idle, before measuring.
        proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: _analysis(state).get("jobs", 0) >= 1, 300, "the first job analysed")
        wait_until(lambda: not sampler.workers(), 120, "the idle worker closed")
        time.sleep(args.warmup)

        steady = Sampler(proc.pid)
        cpu0, t0 = steady.daemon.cpu_times(), time.monotonic()
        while time.monotonic() - t0 < args.seconds:
            steady.sample()
            time.sleep(0.5)
        cpu1, t1 = steady.daemon.cpu_times(), time.monotonic()
        busy = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)

        night = Sampler(proc.pid)
        before = _analysis(state)
        night_started = time.monotonic()
        slot_s = []
        for slot in range(args.slots):
            jobs = _analysis(state).get("jobs", 0)
            t_slot = time.monotonic()
            proc.send_signal(signal.SIGUSR1)  # every logger, one broadcast start
            wait_until(lambda j=jobs: night.sample() or _analysis(state).get("jobs", 0) > j,
                       300, f"slot {slot + 1}", SAMPLE_S)  # fmt: skip
            slot_s.append(time.monotonic() - t_slot)
            wait_until(lambda: night.sample() or not night.workers(), 120,
                       "the idle worker closed", SAMPLE_S)  # fmt: skip
        night_s = time.monotonic() - night_started
        after = _analysis(state)
        status = _status(state)
    finally:
        proc.terminate()
        proc.wait(30)
        notify.close()
    recordings = after["recordings"] - before["recordings"]
    per_recording = (after["busy_s"] - before["busy_s"]) / max(recordings, 1)
    night_analysis_s = per_recording * NOISE_LOGGERS * NIGHT_SLOTS
    polls = sum(d["polls_ok"] + d["polls_failed"] for d in status["devices"])
    mb = 2**20
    return {
        "ready_s": round(ready_s, 2),
        "ready_cpu_s": round(ready_cpu_s, 2),
        "rss_mb": round(steady.daemon_max / mb, 1),
        "cpu_percent": round(100.0 * busy / (t1 - t0), 2),
        "rss_peak_mb": round((night.daemon_max + night.worker_hwm) / mb, 1),
        "rss_peak_sampled_mb": round(night.sum_max / mb, 1),
        "daemon_rss_night_mb": round(night.daemon_max / mb, 1),
        "worker_hwm_mb": round(night.worker_hwm / mb, 1),
        "analysis_s_per_recording": round(per_recording, 3),
        "night_recordings": recordings,
        "night_workers_started": after["starts"] - before["starts"],
        "night_failures": after["failures"] - before["failures"],
        "slot_s_max": round(max(slot_s), 1),
        "night_phase_s": round(night_s, 1),
        "night_analysis_s": round(night_analysis_s, 1),
        "night_analysis_share": round(night_analysis_s / NIGHT_WINDOW_S, 4),
        "measured_s": round(t1 - t0, 1),
        "polls_total": polls,
        "devices": len(status["devices"]),
        "online": sum(1 for d in status["devices"] if d["online"]),
        "loggers": len(status["loggers"]),
    }


def baseline_rss_mb() -> float:
    """RSS of an idle interpreter with the resident daemon's imports."""
    proc = subprocess.Popen(
        [sys.executable, "-c", BASELINE_IMPORTS],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=REPO,
    )
    try:
        proc.stdout.readline()
        return round(psutil.Process(proc.pid).memory_info().rss / 2**20, 1)
    finally:
        proc.kill()
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="steady-state window")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before it")
    parser.add_argument("--slots", type=int, default=3, help="night slots analysed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = measure(args)
    result["baseline_rss_mb"] = baseline_rss_mb()
    result["rss_ratio_vs_baseline"] = round(result["rss_mb"] / result["baseline_rss_mb"], 2)
    result["rss_ratio_vs_floor"] = round(result["rss_mb"] / RSS_FLOOR_MB, 2)
    result["peak_ratio_vs_floor"] = round(result["rss_peak_mb"] / PEAK_FLOOR_MB, 2)
    result["cpu_ratio_vs_floor"] = round(result["cpu_percent"] / CPU_FLOOR_PERCENT, 2)
    result["ready_ratio_vs_floor"] = round(result["ready_s"] / READY_FLOOR_S, 2)
    result["cpu_count"] = os.cpu_count()
    print_result(result, args.json)
    return 0


def print_result(result: dict, as_json: bool) -> None:
    """One JSON object, or one ``key: value`` line each."""
    if as_json:
        print(json.dumps(result))
        return
    width = max(len(key) for key in result)
    for key, value in result.items():
        print(f"{key:>{width}}: {value}")


if __name__ == "__main__":
    sys.exit(main())
