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

Without --material the pipe's material is unknown: each file is judged in every family's band
(metal, cement, plastic; those the rate can hold) and the most leak-like band is reported
("judged_as"), its score less the cost of looking several times (ln 3 logits for three bands)
so that a quiet file does not alarm more often for it. --material M judges M's band alone.

--group compares the files with each other (one night of one site's loggers, or files from
one instrument at one gain): a file whose steady in-band level stands 6 dB or more over the
median of the others is flagged, and that counts for a leak. It needs three or more files.

examples:
  edge-agent analyze nl-01.wav
      mode relative (gain-free; ...); material unknown: each file judged in every family's band ...
      nl-01.wav: leak     score 0.97  prominence +6.4 dB ...  [material unknown, judged as metal ...
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
tone_hz, band_hz (the material's, or the band judged in), judged_band_hz (its part below
Nyquist), band_levels (octave centre Hz -> dB), fs, duration_s, channel, channels,
clipped_share, material (null: unknown), judged_as (the family whose band was judged),
family_scores (material unknown: each family band's score before the cost; else null), group
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
        default=None,
        choices=sorted(MATERIALS),
        metavar="M",
        help=f"pipe material: {', '.join(sorted(MATERIALS))} (default: unknown, each file "
        "judged in every family's band and the most leak-like reported)",
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
    """The thresholds the flags ask for: the material's preset, or with the material unknown
    one per family (``{family: LeakThresholds}``), each changed alike."""
    from dsp.leak import FAMILY_THRESHOLDS, family_bands, model_for

    changes = _threshold_changes(args)
    if args.material is None:
        return {family: replace(FAMILY_THRESHOLDS[family], **changes) for family in family_bands()}
    return replace(model_for(args.material).thresholds, **changes)


def _threshold_changes(args: argparse.Namespace) -> dict[str, float]:
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
    return changes


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


def _result(
    path: str, rec: Any, material: str | None, feats: Any, score: Any, judged_as: Any = None
) -> dict[str, Any]:
    """One file's output object; ``judged_as`` is the ``UnknownMaterialJudgement`` when the
    material was unknown (None: the material's band)."""
    from dsp.features import judged_band_hz
    from dsp.pipes import get_material

    judged = judged_band_hz(feats.band_hz, rec.fs)
    if judged_as is not None:
        family, family_scores = judged_as.family, judged_as.family_scores
    else:
        family, family_scores = get_material(str(material)).family, None
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
        "judged_as": family,
        "family_scores": None
        if family_scores is None
        else {f: round(x, 4) for f, x in family_scores.items()},
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
    where = r["material"] or f"material unknown, judged as {r['judged_as']}"
    return (
        f"{r['file']}: {r['verdict']:<7} score {r['leak_score']:.2f}  "
        f"prominence {_signed(r['prominence_db'])} dB  "
        f"unsteadiness {_signed(r['unsteadiness_db'])} dB  "
        f"{level}  spread {r['spread_db']} dB  peak {r['peak_hz']} Hz  "
        f"tonality {r['tonality_db']} dB{group}  [{where} "
        f"{r['judged_band_hz'][0]:g}-{r['judged_band_hz'][1]:g} Hz, {r['fs']:g} Hz, "
        f"{r['duration_s']} s]" + "".join(f"  note: {n}" for n in r["notes"])
    )


def _mode_line(thresholds: Any, material: str | None) -> str:
    if isinstance(thresholds, dict):  # material unknown: one per family, the floor alike
        thresholds = next(iter(thresholds.values()))
    if thresholds.floor_db is None:
        line = "mode relative (gain-free; give --scale or --floor-db to add the absolute level)"
    else:
        floor = thresholds.floor_db
        line = f"mode absolute (gain-free evidence plus the level against the floor {floor:g} dB)"
    if material is None:
        from dsp.leak import family_bands

        bands = ", ".join(f"{f} {lo:g}-{hi:g} Hz" for f, (lo, hi) in family_bands().items())
        line += (
            f"; material unknown: each file judged in every family's band ({bands}), the most "
            "leak-like reported, less the cost of the looks (--material M judges one band)"
        )
    return line


def _analyze_one(path: str, args: argparse.Namespace) -> tuple[Any, Any]:
    """(recording, features) of one file, the features ``{family: Features}`` when the material
    is unknown; ``UsageError`` naming the file when unusable."""
    from dsp.features import compute_features
    from dsp.leak import features_by_family, model_for
    from dsp.spectra import default_nperseg
    from edge_agent.wavfile import channel_label, read_wav

    rec = read_wav(path, units_per_count=args.scale, channel=args.channel)
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
        if args.material is None:
            return rec, features_by_family(rec.samples, rec.fs, nperseg=nperseg)
        band = model_for(args.material).band_hz
        feats = compute_features(rec.samples, rec.fs, band_hz=band, nperseg=nperseg)
    except ValueError as exc:  # documented input errors: band above Nyquist
        raise UsageError(f"{where}: {args.material or 'every family'}: {exc}") from exc
    return rec, feats


def _report_error(path: str, exc: UsageError, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"file": path, "error": str(exc)}), flush=True)
    else:
        print(f"edge-agent analyze: {exc}", file=sys.stderr, flush=True)


def _judged(
    path: str, rec: Any, args: argparse.Namespace, thresholds: Any, feats: Any, groups: Any
) -> dict[str, Any]:
    """One analysed file's output object; ``groups`` is ``{family or None: compare_group}``
    with --group (each band's levels compared with the same band's of the peers), else None."""
    from dsp.leak import judge_unknown_material, score_recording

    def member(family: str | None) -> Any:
        return None if groups is None else groups.get(family, {}).get(path)

    if args.material is None:
        excess = {f: None if member(f) is None else member(f).excess_db for f in feats}
        judged = judge_unknown_material(feats, thresholds, group_excess_db=excess)
        result = _result(path, rec, None, judged.features, judged.score, judged)
        chosen = member(judged.family)
    else:
        chosen = member(None)
        excess_db = None if chosen is None else chosen.excess_db
        score = score_recording(feats, thresholds, group_excess_db=excess_db)
        result = _result(path, rec, args.material, feats, score)
    result["group"] = None if chosen is None else chosen.to_dict()
    return result


def run(args: argparse.Namespace) -> int:
    from dsp.group import compare_group

    thresholds = _thresholds(args)
    if args.channel is not None and args.channel < 1:
        raise UsageError(f"--channel counts from 1, got {args.channel}")
    if not args.json:
        print(_mode_line(thresholds, args.material), flush=True)
    bad = 0
    analysed: list[tuple[str, Any, Any]] = []
    for path in args.files:
        try:
            rec, feats = _analyze_one(path, args)
        except UsageError as exc:
            bad += 1
            _report_error(path, exc, args.json)
            continue
        if args.group:  # every file first: each is judged against all the others
            analysed.append((path, rec, feats))
            continue
        result = _judged(path, rec, args, thresholds, feats, None)
        print(json.dumps(result) if args.json else _text(result), flush=True)
    if args.group:
        if args.material is None:  # each band against the same band of the others
            levels: dict[str | None, dict[str, float]] = {}
            for path, _, by_family in analysed:
                for family, f in by_family.items():
                    levels.setdefault(family, {})[path] = f.quiet_level_db
        else:
            levels = {None: {path: feats.quiet_level_db for path, _, feats in analysed}}
        groups = {key: compare_group(group) for key, group in levels.items()}
        if not any(groups.values()):
            print(
                f"edge-agent analyze: --group needs 3 or more analysed files, got {len(analysed)}"
                ": compared with none",
                file=sys.stderr,
                flush=True,
            )
        for path, rec, feats in analysed:
            result = _judged(path, rec, args, thresholds, feats, groups)
            print(json.dumps(result) if args.json else _text(result), flush=True)
    return EXIT_USAGE if bad else EXIT_OK
