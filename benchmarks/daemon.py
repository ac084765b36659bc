"""Daemon footprint: memory, CPU at steady state and time to READY on a realistic gateway.

Builds a site from the reference site with 20 polled devices (levels, gas, covers, pump
station, rain gauge; 1 s polling) and 6 noise loggers that record every minute (the night
window is set around the current time so recordings happen during the run), serves it with
``edge-agent simulate`` in its own process, and runs ``edge-agent run`` as a subprocess with a
notify socket, as systemd would. Measured on the daemon process only:

- ``ready_s``: start to ``READY=1`` with a warm numba cache (warmed before the run);
- ``rss_mb``: peak resident memory (ceiling 200); ``uss_mb``: the part unique to the process
  (RSS also counts the shared pages of libraries such as LLVM's, about 100 MB);
- ``cpu_percent``: CPU time over wall time of one core after a warm-up (ceiling 5);
- side by side, the baseline: an idle interpreter importing the same modules
  (``baseline_rss_mb``), so the ratio shows what the work adds.

    .venv/bin/python benchmarks/daemon.py [--seconds 60] [--warmup 15] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
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

POLLED_DEVICES = 20
NOISE_LOGGERS = 6
RSS_CEILING_MB = 200.0
CPU_CEILING_PERCENT = 5.0
ENTRY = [sys.executable, "-m", "edge_agent"]
BASELINE_IMPORTS = (
    "from edge_agent.daemon.footprint import refuse_test_only_imports; "
    "refuse_test_only_imports(); "
    "import edge_agent.daemon.app, edge_agent.daemon.runtime, edge_agent.daemon.analysis, "
    "edge_agent.daemon.locate, edge_agent.uplink, edge_agent.rules, drivers.bus, "
    "drivers.noise_logger, drivers.transports.tcp, pymodbus.client, numpy, time; "
    "from edge_agent.commands.demo import warm_up_dsp; warm_up_dsp(); "
    "print('ready', flush=True); time.sleep(3600)"
)


def bench_site(tmp: Path) -> Path:
    """The reference site with 6 loggers and 20 other devices (copies on new unit ids)."""
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


def warm_numba_cache() -> None:
    """Warm the numba cache the daemon will load (compiles on the very first run only)."""
    subprocess.run(
        [sys.executable, "-c", "from edge_agent.commands.demo import warm_up_dsp; warm_up_dsp()"],
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


def measure(seconds: float, warmup: float) -> dict[str, float]:
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
                        f"{{recording_interval_s: 60, night_window: {_night_around_now()},"
                        " duration_s: 8}"
                    ),
                )
            )
            return _run_daemon(tmp, config, state, seconds, warmup)
        finally:
            sim.terminate()
            sim.wait(10)


def _run_daemon(tmp: Path, config: Path, state: Path, seconds: float, warmup: float) -> dict:
    notify_path = str(tmp / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(0.5)
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
        ps = psutil.Process(proc.pid)
        peak = ps.memory_info().rss
        peak_uss = ps.memory_full_info().uss
        time.sleep(warmup)
        cpu0, t0 = ps.cpu_times(), time.monotonic()
        while time.monotonic() - t0 < seconds:
            peak = max(peak, ps.memory_info().rss)
            peak_uss = max(peak_uss, ps.memory_full_info().uss)
            time.sleep(1.0)
        cpu1, t1 = ps.cpu_times(), time.monotonic()
        busy = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        status = json.loads((state / "status.json").read_text())
    finally:
        proc.terminate()
        proc.wait(30)
        notify.close()
    polls = sum(d["polls_ok"] + d["polls_failed"] for d in status["devices"])
    recordings = sum(lg["recordings"] for lg in status["loggers"])
    return {
        "ready_s": round(ready_s, 2),
        "rss_mb": round(peak / 2**20, 1),
        "uss_mb": round(peak_uss / 2**20, 1),
        "cpu_percent": round(100.0 * busy / (t1 - t0), 2),
        "measured_s": round(t1 - t0, 1),
        "polls_total": polls,
        "recordings_total": recordings,
        "devices": len(status["devices"]),
        "online": sum(1 for d in status["devices"] if d["online"]),
    }


def baseline_rss_mb() -> float:
    """RSS of an idle interpreter with the daemon's imports and DSP kernels loaded."""
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
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds after READY first")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = measure(args.seconds, args.warmup)
    result["baseline_rss_mb"] = baseline_rss_mb()
    result["rss_ratio_vs_baseline"] = round(result["rss_mb"] / result["baseline_rss_mb"], 2)
    result["rss_ratio_vs_ceiling"] = round(result["rss_mb"] / RSS_CEILING_MB, 2)
    result["cpu_ratio_vs_ceiling"] = round(result["cpu_percent"] / CPU_CEILING_PERCENT, 2)
    result["cpu_count"] = os.cpu_count()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
