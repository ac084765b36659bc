"""``edge-agent analyze`` on the largest recordings users bring: wall time and peak memory.

The issue's input range ends at 44.1 kHz x 60 s (2.6 M samples a channel). Each case runs
``edge-agent analyze --json`` in its own process, as a user does (import, numba cache load,
read, features, score), and reads the child's wall time and peak resident memory from
``os.wait4``; ``analysis_ms`` is the read and the features alone, warm, in this process. The
baseline, run side by side, is a typical logger file (4096 Hz x 8 s): the cost of starting
the command at all; ``wall_ratio`` = case / baseline, ``extra_rss_mib`` = case - baseline.

Cases: 44.1 kHz x 60 s as 16-bit PCM, 32-bit float and 24-bit stereo (one channel analysed,
both decoded), and 1 kHz x 2 s (the bottom of the range).

    .venv/bin/python benchmarks/analyze_input.py [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dsp import synth  # noqa: E402
from dsp.features import compute_features  # noqa: E402
from dsp.leak import model_for  # noqa: E402
from edge_agent.wavfile import read_wav, write_wav  # noqa: E402

EDGE_AGENT = Path(sys.executable).with_name("edge-agent")


def recording(fs: float, seconds: float, seed: int) -> np.ndarray:
    """A leak with traffic over ambient, peak at -6 dBFS."""
    scene = synth.Scene(leak_distance_m=20.0, leak_snr_db=6.0, traffic_db=10.0)
    x = synth.recording(fs, seconds, scene=scene, seed=seed)
    return x / np.max(np.abs(x)) * 0.5


def write_cases(d: Path) -> dict[str, Path]:
    big = recording(44100.0, 60.0, seed=1)
    cases = {
        "baseline 4096 Hz x 8 s pcm16": (recording(4096.0, 8.0, seed=2), 4096, 16, "pcm"),
        "44.1 kHz x 60 s pcm16": (big, 44100, 16, "pcm"),
        "44.1 kHz x 60 s float32": (big, 44100, 32, "float"),
        "44.1 kHz x 60 s pcm24 stereo": (np.stack([big, big[::-1]], 1), 44100, 24, "pcm"),
        "1 kHz x 2 s pcm16": (recording(1000.0, 2.0, seed=3), 1000, 16, "pcm"),
    }
    paths = {}
    for i, (name, (x, fs, bits, encoding)) in enumerate(cases.items()):
        paths[name] = d / f"case{i}.wav"
        write_wav(paths[name], x, fs, bits=bits, encoding=encoding)
    return paths


# Linux carries a process's peak RSS across fork and exec: a child forked from this process
# (which holds the synthesised recordings) would report this process's peak. So a small
# Python process starts the command and reports the command's own peak (kB) and wall time.
_MEASURE = """
import os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - t0, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_once(path: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one ``edge-agent analyze --json`` process."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(EDGE_AGENT), "analyze", "--json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    wall, rss_kb, code = out.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"analyze {path} failed ({code}): {out.stderr.strip()}")
    return float(wall), float(rss_kb) / 1024.0


def analysis_ms(path: Path, repeat: int) -> float:
    """Best of ``repeat``: reading the file and its features (ductile iron), in ms."""
    band = model_for("ductile_iron").band_hz
    best = float("inf")
    for _ in range(repeat + 1):  # the first run compiles or loads the cache
        t0 = time.perf_counter()
        rec = read_wav(path)
        compute_features(rec.samples, rec.fs, band_hz=band)
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (best is kept)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_cases(Path(tmp))
        run_once(next(iter(paths.values())))  # numba's cache warm before anything is timed
        rows = {}
        for name, path in paths.items():
            runs = [run_once(path) for _ in range(args.repeat)]
            rows[name] = {
                "wall_s": round(min(r[0] for r in runs), 3),
                "peak_rss_mib": round(max(r[1] for r in runs), 1),
                "file_mib": round(path.stat().st_size / 2**20, 2),
                "analysis_ms": round(analysis_ms(path, args.repeat), 1),
            }
    base = next(iter(rows.values()))
    for row in rows.values():
        row["wall_ratio"] = round(row["wall_s"] / base["wall_s"], 2)
        row["extra_rss_mib"] = round(row["peak_rss_mib"] - base["peak_rss_mib"], 1)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(
        f"{'case':32} {'file MiB':>9} {'wall s':>7} {'x base':>7} {'RSS MiB':>8} {'+MiB':>6} "
        f"{'analysis ms':>12}"
    )
    for name, r in rows.items():
        print(
            f"{name:32} {r['file_mib']:9.2f} {r['wall_s']:7.2f} {r['wall_ratio']:7.2f} "
            f"{r['peak_rss_mib']:8.1f} {r['extra_rss_mib']:6.1f} {r['analysis_ms']:12.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
