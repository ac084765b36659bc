"""Leak location on pairs it was not built from: position error and what confidence means.

The pairs are ``benchmarks/corpus.py``'s (written apart from ``dsp.synth``): metal 60-300 m
and plastic 20-120 m, in-band SNR -6..+20 dB at each logger, independent ambient of random
tilt at each, vehicles, a pump beyond one logger heard by both, hum, flow noise, clicks, a
random gain per channel. Each pair is located as ``edge-agent locate A.wav B.wav --spacing-m D
--material M --wave-speed C`` locates it (the wave speed is the corpus's truth, the material
gives the band prior): the coherence-guided correlation ``dsp.correlate.locate_tdoa`` (HT
weighting over the coherent span near the material's band, PHAT in the band and over the full
band, the most significant peak winning). The baseline is plain full-band GCC-PHAT on the
same pairs, side by side.

Figures: ``loc_p90_m``, ``loc_max_m``, ``loc_median_m`` (position error), per family and
SNR band; ``confident_within_1m`` (of results with confidence >= 0.5, the share within 1 m),
``far_off_confident`` (results > 5 m off with confidence >= 0.5), ``baseline_*`` the same for
full-band PHAT, ``worse_than_baseline`` (pairs where ours is more than 0.1 m worse).
Floors (issue 10): p90 <= 0.3 m at SNR >= -6 dB for metal and plastic alike; >= 95 % of
confident results within 1 m; no result > 5 m off with confidence >= 0.5.

Usage: ``NUMBA_CACHE_DIR=.cache/numba .venv/bin/python benchmarks/location.py [--json]
[--n N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.corpus import DEFAULT_SEED, location_cases
from dsp.correlate import gcc_tdoa, locate_on_path, locate_tdoa
from dsp.pipes import get_material

CONFIDENT = 0.5
NYQUIST_MARGIN = 0.98  # as the locate command: the band kept just below Nyquist


def _stats(errors: list[float], conf: list[float], prefix: str = "loc_") -> dict:
    e = np.asarray(errors)
    c = np.asarray(conf)
    confident = c >= CONFIDENT
    return {
        f"{prefix}n": int(e.size),
        f"{prefix}median_m": float(np.median(e)) if e.size else None,
        f"{prefix}p90_m": float(np.percentile(e, 90)) if e.size else None,
        f"{prefix}max_m": float(np.max(e)) if e.size else None,
        f"{prefix}confident": int(np.sum(confident)),
        f"{prefix}confident_within_1m": float(np.mean(e[confident] <= 1.0))
        if np.any(confident)
        else None,
        f"{prefix}far_off_confident": int(np.sum((e > 5.0) & confident)),
    }


def run(n: int, seed: int) -> tuple[dict, list[dict]]:
    rows = []
    t0 = time.perf_counter()
    for case in location_cases(n, seed):
        travel = case.spacing_m / case.wave_speed_m_s
        lo, hi = get_material(case.material).band_hz
        band = (lo, min(hi, NYQUIST_MARGIN * case.fs / 2))
        ours = locate_tdoa(case.a, case.b, case.fs, max_lag_s=travel, band_hz=band)
        base = gcc_tdoa(case.a, case.b, case.fs, max_lag_s=travel, weighting="phat")
        err = abs(
            locate_on_path(ours.tdoa_s, case.spacing_m, case.wave_speed_m_s) - case.distance_m
        )
        err_base = abs(
            locate_on_path(base.tdoa_s, case.spacing_m, case.wave_speed_m_s) - case.distance_m
        )
        rows.append(
            {
                "index": case.index,
                "family": case.family,
                "snr_db": case.snr_db,
                "fs": case.fs,
                "kinds": case.kinds,
                "error_m": err,
                "confidence": ours.confidence,
                "band_hz": ours.band_hz,
                "mean_coherence": ours.mean_coherence,
                "weighting": ours.weighting,
                "baseline_error_m": err_base,
                "baseline_confidence": base.confidence,
            }
        )
    seconds = time.perf_counter() - t0

    def pick(sel: list[dict]) -> dict:
        out = _stats([r["error_m"] for r in sel], [r["confidence"] for r in sel])
        out.update(
            _stats(
                [r["baseline_error_m"] for r in sel],
                [r["baseline_confidence"] for r in sel],
                "baseline_",
            )
        )
        out["worse_than_baseline"] = sum(
            1 for r in sel if r["error_m"] > r["baseline_error_m"] + 0.1
        )
        return out

    result = pick(rows)
    result["by"] = {}
    for name, test in (
        ("metal", lambda r: r["family"] == "metal"),
        ("plastic", lambda r: r["family"] == "plastic"),
        ("snr -6..0 dB", lambda r: r["snr_db"] < 0),
        ("snr 0..10 dB", lambda r: 0 <= r["snr_db"] < 10),
        ("snr 10..20 dB", lambda r: r["snr_db"] >= 10),
    ):
        result["by"][name] = pick([r for r in rows if test(r)])
    result["seconds"] = seconds
    return result, rows


def _fmt(x: float | int | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--n", type=int, default=80, help="pairs (default 80)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="corpus seed")
    parser.add_argument("--list", action="store_true", help="list pairs off by > 0.3 m")
    args = parser.parse_args()
    result, rows = run(args.n, args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.n} pairs (seed {args.seed}), {result['seconds']:.0f} s")
    print(
        f"{'':14s} {'n':>3s} {'median':>7s} {'p90':>7s} {'max':>7s} {'conf>=.5':>8s} "
        f"{'within 1m':>9s} {'>5m conf':>8s} | {'PHAT p90':>8s} {'max':>7s} {'worse':>5s}"
    )
    for name, s in [("all", result), *result["by"].items()]:
        print(
            f"{name:14s} {s['loc_n']:3d} {_fmt(s['loc_median_m']):>7s} {_fmt(s['loc_p90_m']):>7s} "
            f"{_fmt(s['loc_max_m'], 2):>7s} {s['loc_confident']:8d} "
            f"{_fmt(s['loc_confident_within_1m']):>9s} {s['loc_far_off_confident']:8d} | "
            f"{_fmt(s['baseline_p90_m']):>8s} {_fmt(s['baseline_max_m'], 2):>7s} "
            f"{s['worse_than_baseline']:5d}"
        )
    if args.list:
        for r in rows:
            if r["error_m"] > 0.3 or r["confidence"] < CONFIDENT:
                band = r["band_hz"] and f"{r['band_hz'][0]:.0f}-{r['band_hz'][1]:.0f}"
                print(
                    f"  #{r['index']} {r['family']} snr {r['snr_db']:+.1f} {r['fs']:g} Hz "
                    f"{','.join(r['kinds'])}: error {r['error_m']:.2f} m conf "
                    f"{r['confidence']:.2f} band {band} coh {r['mean_coherence']} "
                    f"({r['weighting']}) | PHAT {r['baseline_error_m']:.2f} m"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
