"""``edge-agent analyze FILE.wav ...``: leak analysis of noise recordings, one line per file.

Thin: reading is ``edge_agent.wavfile``, features and the score are ``dsp.leak``. Every file is
analysed in one process (numba compiles, or loads its cache, once); a bad file gets one line
(an error object with ``--json``), the rest of the batch is still analysed, and the exit code is
2 when any file was bad.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from typing import Any

from edge_agent.errors import EXIT_OK, EXIT_USAGE, UsageError

DESCRIPTION = """\
Leak analysis of noise-logger recordings (mono WAV, PCM 8/16/24/32-bit or float, any rate).

For each file: leak_score 0..1 and a verdict (leak / no_leak), judged on the quiet, tone-free
level in the material's leak band (metal 200-1500 Hz, plastic 20-300 Hz, cement 100-800 Hz):
leak noise is continuous and broadband, traffic and draw-off are intermittent (left out with
the loud frames), pumps are tonal (left out with the steady bins). The level is compared with
the floor, the ambient in-band level expected at the logger (--floor-db, default 0 dB re 1
unit): give --scale so that samples are in the logger's units, or set --floor-db.

examples:
  edge-agent analyze nl-01.wav
      nl-01.wav: leak  score 0.97  quiet 6.4 dB (+6.4 over floor 0.0)  level 6.9 dB ...
  edge-agent analyze --material pe --scale 0.001 --json night/*.wav
      {"file": "night/nl-01.wav", "leak_score": 0.02, "verdict": "no_leak", ...}
  edge-agent analyze --floor-db -42 --threshold 0.6 rec.wav

--json prints one object per file per line: file, leak_score, verdict, level_db, quiet_level_db,
l10_db, l90_db, spread_db, peak_hz, flatness, tonality_db, tone_hz, band_hz, band_levels
(octave centre Hz -> dB), fs, duration_s, material, reasons; a bad file gives
{"file": ..., "error": ...}.
Exit codes: 0 all files analysed, 2 a bad argument or at least one bad file.
"""

# Nominal octave centres for one decade of octaves; the series repeats x1000 every ten octaves
# (2**10 ~ 1000), so a 96 kHz recording's eleventh band is "31500".
_OCTAVE_NAMES = ("31.5", "63", "125", "250", "500", "1000", "2000", "4000", "8000", "16000")


def _octave_name(index: int) -> str:
    """The nominal centre (Hz) of ``dsp.features.octave_bands``' band ``index``."""
    return f"{float(_OCTAVE_NAMES[index % 10]) * 1000 ** (index // 10):g}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dsp.pipes import MATERIALS

    parser.add_argument("files", nargs="+", metavar="FILE.wav", help="recordings to analyse")
    parser.add_argument(
        "--material",
        default="ductile_iron",
        choices=sorted(MATERIALS),
        metavar="M",
        help=f"pipe material: {', '.join(sorted(MATERIALS))} (default ductile_iron)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        metavar="UNITS_PER_COUNT",
        help="physical units per integer count (default: full scale = 1.0)",
    )
    parser.add_argument(
        "--floor-db",
        type=float,
        metavar="DB",
        help="ambient in-band level at the logger, dB re 1 unit (default 0)",
    )
    parser.add_argument(
        "--threshold", type=float, metavar="T", help="score for a leak verdict (default 0.5)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per file per line")


def _thresholds(args: argparse.Namespace) -> Any:
    from dsp.leak import model_for

    base = model_for(args.material).thresholds
    changes: dict[str, float] = {}
    if args.floor_db is not None:
        if not math.isfinite(args.floor_db):
            raise UsageError(f"--floor-db must be a finite number, got {args.floor_db}")
        changes["floor_db"] = args.floor_db
    if args.threshold is not None:
        if not 0.0 < args.threshold < 1.0:
            raise UsageError(f"--threshold must be between 0 and 1, got {args.threshold}")
        changes["threshold"] = args.threshold
    if args.scale is not None and not (args.scale > 0 and math.isfinite(args.scale)):
        raise UsageError(f"--scale must be a positive number, got {args.scale}")
    return replace(base, **changes)


def _round(x: float, digits: int = 2) -> float | None:
    return round(x, digits) if math.isfinite(x) else None


def _result(path: str, rec: Any, material: str, feats: Any, score: Any) -> dict[str, Any]:
    return {
        "file": path,
        "leak_score": round(score.score, 4),
        "verdict": score.verdict,
        "level_db": _round(feats.level_db),
        "quiet_level_db": _round(feats.quiet_level_db),
        "floor_db": _round(score.floor_db),
        "l10_db": _round(feats.l10_db),
        "l90_db": _round(feats.l90_db),
        "spread_db": _round(feats.spread_db),
        "peak_hz": _round(feats.peak_hz, 1),
        "flatness": _round(feats.flatness, 4),
        "tonality_db": _round(feats.tonality_db),
        "tone_hz": _round(feats.tone_hz, 1),
        "band_hz": list(feats.band_hz),
        "band_levels": {
            _octave_name(i): _round(db) for i, (_lo, _hi, db) in enumerate(feats.band_levels)
        },
        "fs": rec.fs,
        "duration_s": round(rec.duration_s, 3),
        "material": material,
        "reasons": list(score.reasons),
    }


def _text(r: dict[str, Any]) -> str:
    over = r["quiet_level_db"] - r["floor_db"] if r["quiet_level_db"] is not None else math.nan
    return (
        f"{r['file']}: {r['verdict']:<7} score {r['leak_score']:.2f}  "
        f"quiet {r['quiet_level_db']} dB ({over:+.1f} over floor {r['floor_db']})  "
        f"level {r['level_db']} dB  spread {r['spread_db']} dB  peak {r['peak_hz']} Hz  "
        f"tonality {r['tonality_db']} dB  [{r['material']} "
        f"{r['band_hz'][0]:g}-{r['band_hz'][1]:g} Hz, {r['fs']:g} Hz, {r['duration_s']} s]"
    )


def _analyze_one(path: str, args: argparse.Namespace, thresholds: Any) -> dict[str, Any]:
    """The result object for one file; ``UsageError`` naming the file when it is unusable."""
    from dsp.leak import analyze_samples
    from edge_agent.wavfile import read_wav

    rec = read_wav(path, units_per_count=args.scale)
    try:
        feats, score = analyze_samples(
            rec.samples, rec.fs, material=args.material, thresholds=thresholds
        )
    except ValueError as exc:  # documented input errors: too short, band above Nyquist
        raise UsageError(f"{path}: {exc}") from exc
    return _result(path, rec, args.material, feats, score)


def run(args: argparse.Namespace) -> int:
    thresholds = _thresholds(args)
    bad = 0
    for path in args.files:
        try:
            result = _analyze_one(path, args, thresholds)
        except UsageError as exc:
            bad += 1
            if args.json:
                print(json.dumps({"file": path, "error": str(exc)}), flush=True)
            else:
                print(f"edge-agent analyze: {exc}", file=sys.stderr, flush=True)
            continue
        print(json.dumps(result) if args.json else _text(result), flush=True)
    return EXIT_USAGE if bad else EXIT_OK
