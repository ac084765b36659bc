"""Soak: the real daemon at 20x the field poll rate; memory, fds and threads must not grow.

A benchmark, not a test. The site is ``benchmarks/daemon.py``'s: 6 noise loggers and 20 polled
devices (levels, gas, covers, pump, rain, pressure copied onto new unit ids) served by
``edge-agent simulate`` on free loopback ports, plus a real mosquitto on a free port as the
uplink. Each device polls at 20x its field rate: the interval ``seeds/gateway.yaml`` gives its
profile, divided by ``SPEEDUP`` (pump and gas 5 s -> 0.25 s, levels and pressure 10 s -> 0.5 s,
covers 15 s -> 0.75 s, rain 30 s -> 1.5 s, noise-logger summaries 300 s -> 15 s); recordings run
every 180 s (3600 s / 20) inside a night window around now, so the DSP path and the uplink are
exercised all through.

Every ``--sample-s`` seconds from READY on it reads, for the daemon process only, RSS
(``/proc/PID/status`` VmRSS), open file descriptors (``/proc/PID/fd``) and threads
(``/proc/PID/task``). After the
warm-up it fits a least-squares line to each series and reports start / end / max and the slope
per hour. Verdict ``pass`` when RSS grows by less than ``RSS_SLOPE_LIMIT_MB_PER_H`` and the fd
and thread counts end where they were after the warm-up (a leak of one per minute would show).

The warm-up must outlast the longest rule window (the blockage rule's 900 s): at 20x the poll
rate each rate-of-change window holds 20x the field's samples (1800 for a 0.5 s level gauge)
and fills for those 15 minutes, a bounded growth that is not a leak. ``--series FILE`` writes
every sample (seconds, RSS MiB, fds, threads) as CSV.

    .venv/bin/python benchmarks/soak.py [--minutes 45] [--warmup-minutes 20] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_agent.commands.demo import gateway_yaml  # noqa: E402
from sitemodel import load_site  # noqa: E402
from tests.helpers.mosquitto import Mosquitto  # noqa: E402

SPEEDUP = 20.0
FIELD_RECORDING_INTERVAL_S = 3600.0
RSS_SLOPE_LIMIT_MB_PER_H = 2.0  # below the noise of a 30-minute fit; a leak shows far above
ENTRY = [sys.executable, "-m", "edge_agent"]
READY_TIMEOUT_S = 180.0


def _daemon_bench():
    spec = importlib.util.spec_from_file_location("daemon_bench", REPO / "benchmarks/daemon.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def field_intervals() -> dict[str, float]:
    """profile name -> the field poll interval the shipped seeds/gateway.yaml gives it."""
    doc = yaml.safe_load((REPO / "seeds" / "gateway.yaml").read_text())
    out: dict[str, float] = {}
    for d in doc["devices"]:
        out.setdefault(d["profile"], float(d["poll_interval_s"]))
    return out


def soak_config(base_yaml: str, fast: dict[str, float]) -> str:
    """The demo gateway config with every device at 20x its field poll rate."""
    doc = yaml.safe_load(base_yaml)
    for d in doc["devices"]:
        d["poll_interval_s"] = fast[d["profile"]] / SPEEDUP
    return yaml.safe_dump(doc, sort_keys=False)


def sample(pid: int) -> tuple[float, int, int]:
    """(RSS MiB, open fds, threads) of ``pid`` from /proc."""
    rss_kb = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
                break
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = len(os.listdir(f"/proc/{pid}/task"))
    return rss_kb / 1024.0, fds, threads


def slope_per_hour(ts: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` over ``ts`` (seconds), per hour; 0 with < 2 points."""
    n = len(ts)
    if n < 2:
        return 0.0
    mt, my = sum(ts) / n, sum(ys) / n
    var = sum((t - mt) ** 2 for t in ts)
    if var == 0:
        return 0.0
    return 3600.0 * sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / var


def summarise(rows: list[tuple[float, float, int, int]], warmup_s: float) -> dict:
    after = [r for r in rows if r[0] >= warmup_s] or rows
    ts = [r[0] for r in after]
    out: dict = {"samples": len(rows), "samples_after_warmup": len(after)}
    for i, name in ((1, "rss_mb"), (2, "fds"), (3, "threads")):
        ys = [float(r[i]) for r in after]
        out[name] = {
            "start": round(rows[0][i], 1),
            "after_warmup": round(ys[0], 1),
            "end": round(ys[-1], 1),
            "max": round(max(float(r[i]) for r in rows), 1),
            "slope_per_h": round(slope_per_hour(ts, ys), 3),
        }
    return out


def verdict(summary: dict) -> tuple[str, list[str]]:
    problems = []
    if summary["rss_mb"]["slope_per_h"] > RSS_SLOPE_LIMIT_MB_PER_H:
        problems.append(f"RSS grows {summary['rss_mb']['slope_per_h']} MB/h")
    for name in ("fds", "threads"):
        s = summary[name]
        if s["end"] > s["after_warmup"] and s["slope_per_h"] > 1.0:
            problems.append(f"{name} grow {s['after_warmup']} -> {s['end']}")
    return ("pass" if not problems else "FAIL"), problems


def _wait_ready(proc: subprocess.Popen, status_path: Path, log_path: Path) -> None:
    """Until status.json says ready (every device polled once); bounded."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if json.loads(status_path.read_text()).get("ready"):
                return
        except (OSError, ValueError):
            pass
        time.sleep(1.0)
    raise RuntimeError(f"daemon not ready within {READY_TIMEOUT_S:g} s")


def run(
    minutes: float, warmup_minutes: float, sample_s: float, progress: bool, series: Path | None
) -> dict:
    bench = _daemon_bench()
    fast = field_intervals()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmpname:
        tmp = Path(tmpname)
        site_path = bench.bench_site(tmp)
        site = load_site(site_path)
        bench.warm_numba_cache()
        sim, endpoints = bench.start_simulator(site_path)
        broker = Mosquitto(tmp).start()
        proc = None
        try:
            state = tmp / "state"
            leak = (
                f"{{recording_interval_s: {FIELD_RECORDING_INTERVAL_S / SPEEDUP:g},"
                f" night_window: {bench._night_around_now()}, duration_s: 8}}"
            )
            base = gateway_yaml(
                site,
                endpoints,
                state,
                site_path,
                logging_section="{level: warning, format: json}",
                uplink_url=broker.url,
                leak_section=leak,
            )
            config = tmp / "gateway.yaml"
            config.write_text(soak_config(base, fast))
            log_path = tmp / "daemon.log"
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    [*ENTRY, "run", "--config", str(config), "--state-dir", str(state)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=bench._env(),
                )
            _wait_ready(proc, state / "status.json", log_path)
            rows: list[tuple[float, float, int, int]] = []
            t0 = time.monotonic()
            end = t0 + minutes * 60.0
            while time.monotonic() < end:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"daemon exited {proc.returncode}: {log_path.read_text()[-2000:]}"
                    )
                rss, fds, threads = sample(proc.pid)
                rows.append((time.monotonic() - t0, rss, fds, threads))
                if progress:
                    print(
                        f"{rows[-1][0]:7.0f} s  rss {rss:6.1f} MB  fds {fds:3d}  "
                        f"threads {threads:3d}",
                        file=sys.stderr,
                        flush=True,
                    )
                time.sleep(sample_s)
            status = json.loads((state / "status.json").read_text())
        finally:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(30)
            broker.stop()
            sim.terminate()
            sim.wait(10)
    if series is not None:
        series.write_text(
            "t_s,rss_mb,fds,threads\n"
            + "".join(f"{t:.1f},{r:.2f},{f},{n}\n" for t, r, f, n in rows)
        )
    result = summarise(rows, warmup_minutes * 60.0)
    result["verdict"], result["problems"] = verdict(result)
    result.update(
        minutes=minutes,
        warmup_minutes=warmup_minutes,
        speedup=SPEEDUP,
        poll_intervals_s={p: v / SPEEDUP for p, v in sorted(fast.items())},
        devices=len(status["devices"]),
        online=sum(1 for d in status["devices"] if d["online"]),
        polls_total=sum(d["polls_ok"] + d["polls_failed"] for d in status["devices"]),
        recordings_total=sum(lg["recordings"] for lg in status["loggers"]),
        events_accepted=status["extra"].get("events_accepted"),
        published=status["uplink"]["published"],
        uplink=status["uplink"]["state"],
        outbox_depth=status["outbox"]["depth"],
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=45.0, help="soak length (default 45)")
    parser.add_argument(
        "--warmup-minutes",
        type=float,
        default=20.0,
        help="left out of the fit (default 20: longer than the longest rule window)",
    )
    parser.add_argument("--sample-s", type=float, default=5.0, help="sampling period")
    parser.add_argument("--series", type=Path, metavar="CSV", help="write every sample here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.minutes <= args.warmup_minutes:
        parser.error("--minutes must be longer than --warmup-minutes")
    result = run(
        args.minutes, args.warmup_minutes, args.sample_s, progress=not args.json, series=args.series
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    return 0 if result["verdict"] == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
