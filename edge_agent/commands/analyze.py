"""``edge-agent analyze FILE.wav ...``: leak analysis of noise recordings, one line per file.

Thin: reading is ``edge_agent.wavfile``, features and the score are ``dsp.leak``, the group
comparison ``dsp.group``. Every file is analysed in one process (numba compiles, or loads its
cache, once); a bad file gets one line (an error object with ``--json``), the rest of the batch
is still analysed, and the exit code is 2 when any file was bad.

Mode: with neither ``--scale`` nor ``--floor-db`` the samples' units are unknown and the score
is relative (gain-free: the same for the file at any gain); with either, the absolute level
against the floor is added as evidence. The first line printed (text mode) says which.

Limits are said, never silent: a multi-channel file is read one channel (which one is named),
a band reaching above Nyquist is judged on its part below it, a clipped or short recording is
noted (``notes``; text mode appends them to the file's line). Digital silence is an error.
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
Leak analysis of noise-logger recordings (WAV, PCM 8/16/24/32-bit or float, any rate; of a
stereo or multi-channel file one channel is read, the first unless --channel says).

For each file: leak_score 0..1 and a verdict (leak / no_leak). Leak noise is continuous and
broadband in the material's leak band (metal 200-1500 Hz, plastic 20-300 Hz, cement
100-800 Hz); traffic and draw-off are intermittent (left out with the loud frames), pumps and
hum are tonal (left out with the steady lines). The score needs no calibration:
  - prominence: the band's quiet, tone-free spectrum over the smooth background around it
    (a hump that any gain leaves as it is: about 3 dB for a leak at 0 dB in-band SNR);
  - steadiness: how little the quiet half of the frame levels spreads.
With --scale (units per count) or --floor-db (the ambient in-band level at the logger, dB re
1 unit) the absolute level against the floor is added as bounded extra evidence (mode
"absolute"); without them the mode is "relative" and the file scores the same at any gain.

--group compares the files with each other (one night of one site's loggers, or files from
one instrument at one gain): a file whose steady in-band level stands 6 dB or more over the
median of the others is flagged, and that counts for a leak. It needs three or more files.

examples:
  edge-agent analyze nl-01.wav
      mode relative (gain-free; give --scale or --floor-db to add the absolute level)
      nl-01.wav: leak     score 0.97  prominence +6.4 dB  unsteadiness +0.2 dB ...
  edge-agent analyze --material pe --scale 0.001 --json night/*.wav
      {"file": "night/nl-01.wav", "leak_score": 0.02, "verdict": "no_leak", "mode": ...}
  edge-agent analyze --group --material cast_iron night/nl-0*.wav

--json prints one object per file per line: file, leak_score, verdict, mode, relative_score,
evidence_weight (the share of its evidence a file with few quiet frames can support),
prominence_db, unsteadiness_db, quiet_share, envelope_slope (how much the band swings with the
spectrum's common swing outside it; null when nothing swings), hump_fit (how much better a
background plus a hump fits the quiet spectrum than the background alone; null without the
context to fit),
slope_db_per_octave, level_db, quiet_level_db,
floor_db (null when relative), l10_db, l90_db, spread_db, peak_hz, flatness, tonality_db,
tone_hz, band_hz (the material's), judged_band_hz (its part below Nyquist), band_levels
(octave centre Hz -> dB), fs, duration_s, channel, channels, clipped_share, material, group
(with --group: excess_db, peer_median_db, peers, flagged; else null), reasons, notes (the
limits of this verdict: channel read, band cut by Nyquist, clipping, few frames); a bad file
gives {"file": ..., "error": ...} (digital silence is one: nothing to judge).
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
    parser.add_argument(
        "--group",
        action="store_true",
        help="also compare the files with each other (same instrument and gain; 3 or more)",
    )
    parser.add_argument(
        "--channel",
        type=int,
        metavar="N",
        help="of a stereo or multi-channel file, the channel to read (1 = first, the default)",
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
    if args.scale is not None and args.floor_db is None:
        # units known: judge the level against the default floor (the site default, 0 dB)
        from dsp.leak import DEFAULT_FLOOR_DB

        changes["floor_db"] = DEFAULT_FLOOR_DB
    return replace(base, **changes)


# A recording shorter than this has few frames: its verdict is stated as limited.
SHORT_RECORDING_S = 2.0


def _notes(rec: Any, feats: Any, judged: tuple[float, float]) -> list[str]:
    """The limits of this file's verdict, each a short sentence (none: no limit)."""
    from dsp.leak import SILENCE_DB
    from edge_agent.wavfile import CLIPPED_SHARE_NOTED, channel_label

    notes = []
    if rec.channels > 1:
        notes.append(f"read {channel_label(rec)}; --channel N reads another")
    if judged[1] < feats.band_hz[1]:
        notes.append(
            f"band {feats.band_hz[0]:g}-{feats.band_hz[1]:g} Hz reaches above Nyquist "
            f"({rec.fs / 2:g} Hz): judged on {judged[0]:g}-{judged[1]:g} Hz only, a leak heard "
            "above that is missed"
        )
    if rec.clipped_share > CLIPPED_SHARE_NOTED:
        notes.append(
            f"clipped: {100 * rec.clipped_share:.2g} % of samples at full scale, the spectrum "
            "carries the distortion (record at a lower gain)"
        )
    if feats.quiet_level_db < SILENCE_DB:
        notes.append("the band is digital silence in the quiet frames (a sensor or cable fault?)")
    if rec.duration_s < SHORT_RECORDING_S:
        notes.append(
            f"short: {rec.duration_s:.2g} s, {feats.n_frames} frames: a weak verdict "
            "(record 10 s or more)"
        )
    return notes


def _round(x: float, digits: int = 2) -> float | None:
    return round(x, digits) if math.isfinite(x) else None


def _result(path: str, rec: Any, material: str, feats: Any, score: Any) -> dict[str, Any]:
    from dsp.features import judged_band_hz

    judged = judged_band_hz(feats.band_hz, rec.fs)
    return {
        "file": path,
        "leak_score": round(score.score, 4),
        "verdict": score.verdict,
        "mode": score.mode,
        "relative_score": round(score.relative_score, 4),
        "evidence_weight": round(score.evidence_weight, 3),
        "prominence_db": _round(feats.prominence_db),
        "unsteadiness_db": _round(feats.unsteadiness_db),
        "quiet_share": round(feats.quiet_share, 3),
        "envelope_slope": _round(feats.envelope_slope, 3),
        "hump_fit": _round(feats.hump_fit, 1),
        "slope_db_per_octave": _round(feats.slope_db_per_octave),
        "level_db": _round(feats.level_db),
        "quiet_level_db": _round(feats.quiet_level_db),
        "floor_db": None if score.floor_db is None else _round(score.floor_db),
        "l10_db": _round(feats.l10_db),
        "l90_db": _round(feats.l90_db),
        "spread_db": _round(feats.spread_db),
        "peak_hz": _round(feats.peak_hz, 1),
        "flatness": _round(feats.flatness, 4),
        "tonality_db": _round(feats.tonality_db),
        "tone_hz": _round(feats.tone_hz, 1),
        "band_hz": list(feats.band_hz),
        "judged_band_hz": list(judged),
        "band_levels": {
            _octave_name(i): _round(db) for i, (_lo, _hi, db) in enumerate(feats.band_levels)
        },
        "fs": rec.fs,
        "duration_s": round(rec.duration_s, 3),
        "channel": rec.channel,
        "channels": rec.channels,
        "clipped_share": round(rec.clipped_share, 6),
        "material": material,
        "group": None,
        "reasons": list(score.reasons),
        "notes": _notes(rec, feats, judged),
    }


def _signed(x: float | None) -> str:
    """``+1.2`` for a number, ``n/a`` for a value that was not finite (JSON null)."""
    return "n/a" if x is None else f"{x:+.1f}"


def _text(r: dict[str, Any]) -> str:
    level = f"quiet {r['quiet_level_db']} dB"
    if r["floor_db"] is not None and r["quiet_level_db"] is not None:
        level += f" ({r['quiet_level_db'] - r['floor_db']:+.1f} over floor {r['floor_db']})"
    group = ""
    if r["group"] is not None:
        flag = ", flagged" if r["group"]["flagged"] else ""
        group = f"  group {r['group']['excess_db']:+.1f} dB over {r['group']['peers']} peers{flag}"
    return (
        f"{r['file']}: {r['verdict']:<7} score {r['leak_score']:.2f}  "
        f"prominence {_signed(r['prominence_db'])} dB  "
        f"unsteadiness {_signed(r['unsteadiness_db'])} dB  "
        f"{level}  spread {r['spread_db']} dB  peak {r['peak_hz']} Hz  "
        f"tonality {r['tonality_db']} dB{group}  [{r['material']} "
        f"{r['judged_band_hz'][0]:g}-{r['judged_band_hz'][1]:g} Hz, {r['fs']:g} Hz, "
        f"{r['duration_s']} s]" + "".join(f"  note: {n}" for n in r["notes"])
    )


def _mode_line(thresholds: Any) -> str:
    if thresholds.floor_db is None:
        return "mode relative (gain-free; give --scale or --floor-db to add the absolute level)"
    floor = thresholds.floor_db
    return f"mode absolute (gain-free evidence plus the level against the floor {floor:g} dB)"


def _analyze_one(path: str, args: argparse.Namespace, thresholds: Any) -> tuple[Any, Any]:
    """(recording, features) of one file; ``UsageError`` naming the file when unusable."""
    from dsp.features import compute_features
    from dsp.leak import model_for
    from dsp.spectra import default_nperseg
    from edge_agent.wavfile import channel_label, read_wav

    rec = read_wav(path, units_per_count=args.scale, channel=args.channel)
    model = model_for(args.material, thresholds)
    # "FILE: " first, always: scripts split an error on it (tests/edge_agent/test_wav_fuzz.py)
    where = path if rec.channels == 1 else f"{path}: {channel_label(rec)}"
    unusable = rec.unusable_error(where, "judge")
    if unusable is not None:
        raise unusable
    nperseg = default_nperseg(rec.fs)
    if rec.samples.size < nperseg:
        raise UsageError(
            f"{where}: {rec.duration_s:.3g} s is too short: at {rec.fs:g} Hz one frame is "
            f"{nperseg / rec.fs:.3g} s (record 10 s or more)"
        )
    try:
        feats = compute_features(rec.samples, rec.fs, band_hz=model.band_hz, nperseg=nperseg)
    except ValueError as exc:  # documented input errors: band above Nyquist
        raise UsageError(f"{where}: {args.material}: {exc}") from exc
    return rec, feats


def _report_error(path: str, exc: UsageError, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"file": path, "error": str(exc)}), flush=True)
    else:
        print(f"edge-agent analyze: {exc}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from dsp.group import compare_group
    from dsp.leak import score_recording

    thresholds = _thresholds(args)
    if args.channel is not None and args.channel < 1:
        raise UsageError(f"--channel counts from 1, got {args.channel}")
    if not args.json:
        print(_mode_line(thresholds), flush=True)
    bad = 0
    analysed: list[tuple[str, Any, Any]] = []
    for path in args.files:
        try:
            rec, feats = _analyze_one(path, args, thresholds)
        except UsageError as exc:
            bad += 1
            _report_error(path, exc, args.json)
            continue
        if args.group:  # every file first: each is judged against all the others
            analysed.append((path, rec, feats))
            continue
        result = _result(path, rec, args.material, feats, score_recording(feats, thresholds))
        print(json.dumps(result) if args.json else _text(result), flush=True)
    if args.group:
        groups = compare_group({path: feats.quiet_level_db for path, _, feats in analysed})
        if not groups:
            print(
                f"edge-agent analyze: --group needs 3 or more analysed files, got {len(analysed)}"
                ": compared with none",
                file=sys.stderr,
                flush=True,
            )
        for path, rec, feats in analysed:
            member = groups.get(path)
            score = score_recording(
                feats, thresholds, group_excess_db=None if member is None else member.excess_db
            )
            result = _result(path, rec, args.material, feats, score)
            result["group"] = None if member is None else member.to_dict()
            print(json.dumps(result) if args.json else _text(result), flush=True)
    return EXIT_USAGE if bad else EXIT_OK
