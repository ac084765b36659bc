"""``edge-agent locate A.wav B.wav [C.wav ...]``: where a leak is, from simultaneous recordings.

Two recordings: their time difference of arrival (``dsp.correlate.locate_tdoa``: coherence-
guided GCC searched within +-D/c) becomes the distance from logger A. Three or more: every
pair's delay is measured and one position on the pipes explains them all best
(``dsp.multilocate``: least squares on the pipe graph, triplet consistency, the pair or logger
that disagrees named). The pipe comes from the material (Korteweg wave speed and the leak band
the coherence is looked for in), a wave speed measured on site (which may come with the
material: the material gives the band, the speed is the user's), or, with ``--site`` and
``--loggers``, the pipe paths between placed loggers segment by segment.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.errors import UsageError

DESCRIPTION = """\
Locate a leak from simultaneous recordings of two or more loggers (WAV, PCM or float; those
at a higher rate are resampled to the lowest, and recordings that start together but end apart
are cut to the shortest). Each channel of a
stereo or multi-channel file (a multi-sensor recorder) counts as one logger, in order. Two
loggers: the leak lies (D + c*tdoa)/2 from logger A, with
tdoa = t_A - t_B (negative: nearer A). Three or more: every pair's delay is measured, one
position on the pipes explains them best (least squares), and the delays are checked against
each other (t_AB + t_BC = t_AC for one source): a pair or logger that disagrees is named.

The correlation listens where both loggers hear the same thing: the magnitude-squared
coherence of the two recordings picks the band inside the material's (or --band-hz), weighted
by coherence (Hannan-Thomson); plain PHAT in the band and over the full band are tried on the
same data and the clearest peak wins (--weighting picks one instead). A 1 ms timing error
moves the result by c*1ms/2 (0.65 m on iron): the recordings must start together.

examples:
  edge-agent locate nl-02.wav nl-03.wav --spacing-m 156 --material ductile_iron \\
      --diameter-mm 300 --wall-mm 7.2
      leak 63.0 m from A (nl-02.wav) towards B (nl-03.wav), of 156.0 m
      tdoa -25.13 ms, wave speed 1193.8 m/s, confidence 0.99 (HT, 212-1480 Hz, coherence 0.41)
  edge-agent locate a.wav b.wav --spacing-m 40 --material pe --wave-speed 280 --json
      {"distance_from_a_m": 17.3, "tdoa_s": -0.0193, "wave_speed_m_s": 280.0, ...}
  edge-agent locate nl-04.wav nl-07.wav --site seeds/site.yaml --loggers nl-04 nl-07
  edge-agent locate nl-02.wav nl-03.wav nl-05.wav --site seeds/site.yaml \\
      --loggers nl-02 nl-03 nl-05
      leak on P-02 at 75.0 m: 3 loggers, 3 pairs, residual 0.03 ms, the delays agree
  edge-agent locate a.wav b.wav c.wav --spacings-m 120 95 --material cast_iron
  edge-agent locate field.wav --spacings-m 60 60 --material ductile_iron
      (one 3-channel recording of a multi-sensor recorder: field.wav#1, #2, #3)

Confidence (0..1) is the chance the correlation peak is the source's and not noise's (0.5:
noise alone would give such a peak 1 % of the time); a result below 0.5 is a guess: record
again at night, or longer. Pairs below 0.5 take no part in a three-logger solution.
Exit codes: 0 located, 2 bad input (arguments, unreadable or unusable WAV files).
"""

WEIGHTING_CHOICES = ("auto", "ht", "phat", "scot", "none")
NYQUIST_MARGIN = 0.98  # a band's top kept just below Nyquist


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "recordings",
        nargs="+",
        metavar="A.wav B.wav [C.wav ...]",
        help="simultaneous recordings, one per logger (two or more)",
    )
    parser.add_argument(
        "--spacing-m", type=float, metavar="D", help="pipe length between two loggers (m)"
    )
    parser.add_argument(
        "--spacings-m",
        type=float,
        nargs="+",
        metavar="D",
        help="loggers along one pipe in the order given: the N-1 spacings between them (m)",
    )
    parser.add_argument("--material", metavar="M", help="pipe material (e.g. cast_iron, pe)")
    parser.add_argument(
        "--wave-speed", type=float, metavar="C", help="wave speed in m/s (measured on site)"
    )
    parser.add_argument("--diameter-mm", type=float, metavar="N", help="inner diameter (mm)")
    parser.add_argument("--wall-mm", type=float, metavar="E", help="wall thickness (mm)")
    parser.add_argument("--site", metavar="FILE", help="site file: take the paths from it")
    parser.add_argument(
        "--loggers", nargs="+", metavar="NAME", help="with --site: the loggers, one per recording"
    )
    parser.add_argument(
        "--weighting",
        choices=WEIGHTING_CHOICES,
        default="auto",
        help="auto (coherence-guided, default), ht, phat, scot or none",
    )
    parser.add_argument(
        "--band-hz",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        help="analysis band (default: the material's leak band, searched by coherence)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


@dataclass(frozen=True)
class _Pair:
    """How to correlate two loggers: spacing, travel time, band, and the path (or None)."""

    spacing_m: float
    travel_s: float
    band_hz: tuple[float, float] | None
    path: Any = None


@dataclass(frozen=True)
class _Recordings:
    """The loggers' recordings: one per file, or one per channel of a multi-channel file."""

    fs: float
    samples: list[Any]
    names: list[str]  # the file name, with "#channel" for a multi-channel file
    sources: list[str]  # the path as given, with "#channel" for a multi-channel file
    clipped: dict[str, float]  # source -> share of samples at full scale, where worth saying
    trimmed_from: int | None  # the longest length before cutting to the shortest, or None
    resampled_from_hz: dict[str, float]  # source -> its own rate, for those resampled to ``fs``


def _read_all(paths: list[str]) -> _Recordings:
    """Every channel of every file; ``UsageError`` (exit 2) naming the file for a bad one or a
    silent channel. Recordings at a higher rate than the lowest are resampled down to it (said
    in ``resampled_from_hz``), and recordings that end apart are cut to the shortest."""
    from dsp.resample import resample
    from edge_agent.wavfile import CLIPPED_SHARE_NOTED, channel_label, read_wav_channels

    clipped: dict[str, float] = {}
    samples: list[Any] = []
    rates: list[float] = []
    names: list[str] = []
    sources: list[str] = []
    for path in paths:
        for wav in read_wav_channels(path):
            # named as `analyze` names it ("FILE: left (channel 1 of 2): ..."), so one script
            # reading both commands' errors splits on "FILE: " alike
            where = path if wav.channels == 1 else f"{path}: {channel_label(wav)}"
            if wav.samples.size < 2:
                raise UsageError(f"{where}: {wav.samples.size} sample, too short to correlate")
            unusable = wav.unusable_error(where, "correlate")
            if unusable is not None:
                raise unusable
            samples.append(wav.samples)
            rates.append(wav.fs)
            suffix = "" if wav.channels == 1 else f"#{wav.channel}"
            names.append(Path(path).name + suffix)
            sources.append(path + suffix)
            if wav.clipped_share > CLIPPED_SHARE_NOTED:
                clipped[path + suffix] = round(wav.clipped_share, 6)
    # Loggers of two makes may record at two rates: one time base is needed to compare their
    # delays, and the lowest rate is the band both hold. Band-limited (FFT) resampling keeps a
    # delay's seconds exactly; what lay above the lower Nyquist frequency is dropped.
    fs = min(rates)
    resampled: dict[str, float] = {}
    for k, rate in enumerate(rates):
        if rate != fs:
            # (checked before resampling: a few samples at a high rate are none at the low one)
            if round(samples[k].size * fs / rate) < 2:
                raise UsageError(
                    f"{sources[k]}: too short to correlate once resampled to {fs:g} Hz"
                )
            samples[k] = resample(samples[k], rate, fs)
            resampled[sources[k]] = rate
    shortest = min(x.size for x in samples)
    longest = max(x.size for x in samples)
    if shortest < longest:  # they start together (required): the tail of the longer goes
        samples = [x[:shortest] for x in samples]
    trimmed = longest if shortest < longest else None
    return _Recordings(fs, samples, names, sources, clipped, trimmed, resampled)


def _speed_and_band(args: argparse.Namespace) -> tuple[float, tuple[float, float] | None]:
    """The wave speed (given, else the material's Korteweg speed) and the material's band."""
    from dsp.pipes import get_material, wave_speed

    if args.wave_speed is not None and not (args.wave_speed > 0 and math.isfinite(args.wave_speed)):
        raise UsageError(f"--wave-speed must be a positive m/s, got {args.wave_speed}")
    if args.material is None:
        if args.wave_speed is None:
            raise UsageError(
                "give the pipe: --material M [--diameter-mm N] [--wall-mm E], or --wave-speed C"
            )
        if args.diameter_mm is not None or args.wall_mm is not None:
            raise UsageError("--diameter-mm/--wall-mm only apply with --material")
        return args.wave_speed, None
    try:
        material = get_material(args.material)
        c = wave_speed(material, args.diameter_mm, args.wall_mm)
    except ValueError as exc:
        raise UsageError(f"--material/--diameter-mm/--wall-mm: {exc}") from exc
    return (args.wave_speed if args.wave_speed is not None else c), material.band_hz


def _line_positions(args: argparse.Namespace, count: int) -> list[float]:
    """Positions along one pipe (m) of ``count`` loggers from --spacing-m / --spacings-m."""
    if args.spacing_m is not None and args.spacings_m is not None:
        raise UsageError("give --spacing-m (two loggers) or --spacings-m, not both")
    spacings = args.spacings_m if args.spacings_m is not None else None
    if spacings is None and args.spacing_m is not None:
        if count != 2:
            raise UsageError(f"--spacing-m is for two recordings; for {count} give --spacings-m")
        spacings = [args.spacing_m]
    if spacings is None:
        raise UsageError("give --spacing-m D (or --spacings-m ..., or --site FILE --loggers ...)")
    if len(spacings) != count - 1:
        raise UsageError(
            f"--spacings-m needs {count - 1} value(s) for {count} recordings, got {len(spacings)}"
        )
    for d in spacings:
        if not (d > 0 and math.isfinite(d)):
            flag = "--spacing-m" if args.spacing_m is not None else "--spacings-m"
            raise UsageError(f"{flag} must be a positive number of metres, got {d:g}")
    return [0.0, *itertools.accumulate(spacings)]


def _load_site(args: argparse.Namespace, count: int) -> Any:
    from sitemodel import SiteError, load_site

    if args.loggers is None:
        raise UsageError("--site needs --loggers A B ... (the loggers' names in the site)")
    if args.spacing_m is not None or args.spacings_m is not None or args.wave_speed is not None:
        raise UsageError(
            "--site takes spacing and pipe from the site: drop --spacing-m, --spacings-m "
            "and --wave-speed"
        )
    if args.material is not None:
        raise UsageError("--site takes the materials from the site: drop --material")
    if len(args.loggers) != count:
        raise UsageError(f"--loggers names {len(args.loggers)} loggers for {count} recordings")
    if len(set(args.loggers)) != count:
        raise UsageError("--loggers names a logger twice")
    try:
        return load_site(args.site)
    except SiteError as exc:
        raise UsageError(str(exc)) from exc


def _site_pair(args: argparse.Namespace, site: Any, a: str, b: str, fs: float) -> _Pair:
    from dsp.network import NetworkError
    from dsp.pipes import common_band_hz
    from edge_agent.site_network import path_between_loggers

    try:
        path = path_between_loggers(site, a, b)
    except KeyError as exc:
        raise UsageError(f"{args.site}: no device named {exc.args[0]!r}") from exc
    except NetworkError as exc:
        raise UsageError(f"{args.site}: {exc}") from exc
    if path.length_m <= 0:
        raise UsageError(f"{args.site}: loggers {a} and {b} sit at the same spot")
    # Mixed materials: the band the leak noise carries on all of them (plastic decides).
    band = _fit_band(common_band_hz(path.materials), fs)
    return _Pair(path.length_m, path.travel_time_s, band, path)


def _fit_band(band: tuple[float, float] | None, fs: float) -> tuple[float, float] | None:
    """The band kept below Nyquist (None when it starts above it)."""
    if band is None:
        return None
    hi = min(band[1], NYQUIST_MARGIN * fs / 2)
    return (band[0], hi) if band[0] < hi else None


def _tdoa(args: argparse.Namespace, a: Any, b: Any, fs: float, pair: _Pair) -> Any:
    from dsp.correlate import gcc_tdoa, locate_tdoa

    band = pair.band_hz
    search = None
    if args.band_hz is not None:
        band = search = (args.band_hz[0], args.band_hz[1])
    try:
        if args.weighting == "auto":
            return locate_tdoa(a, b, fs, max_lag_s=pair.travel_s, band_hz=band, search_hz=search)
        return gcc_tdoa(
            a,
            b,
            fs,
            max_lag_s=pair.travel_s,
            band_hz=band,
            weighting=args.weighting,
            search_hz=search,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _round_or_none(x: float | None, digits: int) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, digits)


def _pair_fields(res: Any) -> dict[str, Any]:
    return {
        "confidence": round(res.confidence, 3),
        "significance": _round_or_none(res.significance, 2),
        "peak_to_sidelobe": _round_or_none(res.peak_to_sidelobe, 2),
        "weighting": res.weighting,
        "band_hz": [round(v, 1) for v in res.band_hz] if res.band_hz else None,
        "mean_coherence": _round_or_none(res.mean_coherence, 3),
    }


def run(args: argparse.Namespace) -> int:
    paths = list(args.recordings)
    if args.loggers is not None and args.site is None:
        raise UsageError("--loggers needs --site FILE")
    if args.band_hz is not None and not (0 <= args.band_hz[0] < args.band_hz[1]):
        raise UsageError(f"--band-hz {args.band_hz[0]:g} {args.band_hz[1]:g}: need 0 <= LO < HI")
    recs = _read_all(paths)
    fs, recordings, count = recs.fs, recs.samples, len(recs.samples)
    if count < 2:
        raise UsageError(f"{paths[0]}: one channel: give two or more recordings (one per logger)")
    site = _load_site(args, count) if args.site is not None else None
    c: float | None = None
    positions: list[float] | None = None
    if site is None:
        c, material_band = _speed_and_band(args)
        positions = _line_positions(args, count)
    combos = list(itertools.combinations(range(count), 2))
    if site is None:
        assert c is not None and positions is not None  # set above: no site, one line
        band = _fit_band(material_band, fs)
        names = recs.names
        pairs = {
            (i, j): _Pair(positions[j] - positions[i], (positions[j] - positions[i]) / c, band)
            for i, j in combos
        }
    else:
        names = list(args.loggers)
        pairs = {(i, j): _site_pair(args, site, names[i], names[j], fs) for i, j in combos}
    if recs.resampled_from_hz and not args.json:
        rates = ", ".join(f"{k} {v:g} Hz" for k, v in recs.resampled_from_hz.items())
        print(f"note: resampled to {fs:g} Hz, the lowest rate given ({rates})")
    if recs.trimmed_from is not None and not args.json:
        print(
            f"note: the recordings differ in length: all cut to the shortest, "
            f"{recordings[0].size} samples ({recordings[0].size / fs:.3g} s) of up to "
            f"{recs.trimmed_from}"
        )
    if recs.clipped and not args.json:
        shares = ", ".join(f"{k} {100 * v:.2g} %" for k, v in recs.clipped.items())
        print(f"note: clipped (samples at full scale: {shares}): the delays may still hold")
    if count == 2:
        return _run_pair(args, names, recordings, fs, pairs[(0, 1)], recs)
    return _run_multi(args, names, recordings, fs, pairs, site, positions, c, recs)


def _inputs(recs: _Recordings) -> dict[str, Any]:
    """What was read, for the JSON result: the loggers' names and any cut to one length."""
    return {
        "inputs": recs.sources,
        "trimmed_from_samples": recs.trimmed_from,
        "resampled_from_hz": recs.resampled_from_hz,
        "clipped": recs.clipped,
    }


def _run_pair(
    args: argparse.Namespace,
    names: list[str],
    recordings: list[Any],
    fs: float,
    pair: _Pair,
    recs: _Recordings,
) -> int:
    from dsp.correlate import locate_on_legs, locate_on_path

    res = _tdoa(args, recordings[0], recordings[1], fs, pair)
    try:
        if pair.path is not None:
            distance = locate_on_legs(res.tdoa_s, pair.path.speed_legs())
        else:
            distance = locate_on_path(res.tdoa_s, pair.spacing_m, pair.spacing_m / pair.travel_s)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    result: dict[str, Any] = {
        "distance_from_a_m": round(distance, 3),
        "tdoa_s": round(res.tdoa_s, 7),
        "wave_speed_m_s": round(pair.spacing_m / pair.travel_s, 2),
        "spacing_m": round(pair.spacing_m, 3),
        **_pair_fields(res),
        "sample_rate_hz": fs,
        "samples": int(recordings[0].size),
        "source_outside_loggers": res.outside_peak,
        "a": recs.sources[0],
        "b": recs.sources[1],
        **_inputs(recs),
    }
    if pair.path is not None:
        pos = pair.path.position_at(distance)
        result["position"] = {"pipe": pos.segment, "offset_m": round(pos.offset_m, 2)}
        result["path"] = [
            {
                "pipe": leg.segment,
                "material": leg.material,
                "length_m": round(leg.length_m, 3),
                "wave_speed_m_s": round(leg.wave_speed_m_s, 2),
            }
            for leg in pair.path.legs
            if leg.length_m > 0
        ]
    if args.json:
        print(json.dumps(result))
        return 0
    _print_pair(result, names)
    return 0


def _band_text(r: dict[str, Any]) -> str:
    text = r["weighting"].upper()
    if r["band_hz"]:
        text += f", {r['band_hz'][0]:g}-{r['band_hz'][1]:g} Hz"
    if r["mean_coherence"] is not None:
        text += f", coherence {r['mean_coherence']:.2f}"
    return text


def _print_pair(r: dict[str, Any], names: list[str]) -> None:
    print(
        f"leak {r['distance_from_a_m']:.1f} m from A ({names[0]}) towards B ({names[1]}), "
        f"of {r['spacing_m']:.1f} m"
    )
    print(
        f"tdoa {r['tdoa_s'] * 1e3:.2f} ms, wave speed {r['wave_speed_m_s']:.1f} m/s, "
        f"confidence {r['confidence']:.2f} ({_band_text(r)})"
    )
    if "position" in r:
        print(f"on pipe {r['position']['pipe']} at {r['position']['offset_m']:.1f} m")
    if r["source_outside_loggers"]:
        print(
            "note: the correlation is stronger just outside the loggers: the noise source "
            "is probably not between them"
        )
    elif r["confidence"] < 0.5:
        print("note: low confidence: the peak barely stands out; record again at night")


def _run_multi(
    args: argparse.Namespace,
    names: list[str],
    recordings: list[Any],
    fs: float,
    pairs: dict[tuple[int, int], _Pair],
    site: Any,
    positions: list[float] | None,
    wave_speed_m_s: float | None,
    recs: _Recordings,
) -> int:
    from dsp.multilocate import PairDelay, line_candidates, locate_delays
    from edge_agent.site_network import logger_candidates

    measured = {}
    delays = []
    for (i, j), pair in pairs.items():
        res = _tdoa(args, recordings[i], recordings[j], fs, pair)
        measured[(i, j)] = res
        delays.append(PairDelay(names[i], names[j], res.tdoa_s, res.confidence))
    if site is not None:
        cands = logger_candidates(site, names)
    else:
        assert positions is not None and wave_speed_m_s is not None  # no site: one line
        cands = line_candidates(dict(zip(names, positions, strict=True)), wave_speed_m_s)
    try:
        where = locate_delays(cands, delays)
    except ValueError as exc:
        raise UsageError(f"cannot locate from these recordings: {exc}") from exc
    residuals = where.pair_residuals_ms
    result: dict[str, Any] = {
        "loggers": names,
        "residual_ms": round(where.residual_ms, 3),
        "consistent": where.consistent,
        "disagreeing": where.disagreeing,
        "pairs": [
            {
                "a": names[i],
                "b": names[j],
                "tdoa_ms": round(res.tdoa_s * 1e3, 4),
                **_pair_fields(res),
                "residual_ms": _round_or_none(residuals.get(f"{names[i]}/{names[j]}"), 3),
            }
            for (i, j), res in measured.items()
        ],
        "closures_ms": {k: round(v, 3) for k, v in where.closures_ms.items()},
        "ignored_pairs": list(where.ignored),
        "sample_rate_hz": fs,
        **_inputs(recs),
    }
    if site is not None:
        result["position"] = {
            "pipe": where.position.segment,
            "offset_m": round(where.position.offset_m, 2),
        }
    else:
        result["distance_from_first_m"] = round(where.position.offset_m, 3)
        assert wave_speed_m_s is not None  # no site: one line
        result["wave_speed_m_s"] = round(wave_speed_m_s, 2)
        result["at_end_of_line"] = where.at_edge
    if args.json:
        print(json.dumps(result))
        return 0
    _print_multi(result)
    return 0


def _print_multi(r: dict[str, Any]) -> None:
    if "position" in r:
        where = f"on {r['position']['pipe']} at {r['position']['offset_m']:.1f} m"
    else:
        where = f"{r['distance_from_first_m']:.1f} m from {r['loggers'][0]} along the pipe"
    used = len(r["pairs"]) - len(r["ignored_pairs"])
    verdict = "the delays agree" if r["consistent"] else "the delays disagree"
    print(
        f"leak {where}: {len(r['loggers'])} loggers, {used} pairs, "
        f"residual {r['residual_ms']:.2f} ms, {verdict}"
    )
    for p in r["pairs"]:
        res = "" if p["residual_ms"] is None else f", residual {p['residual_ms']:+.2f} ms"
        print(
            f"  {p['a']}/{p['b']}: tdoa {p['tdoa_ms']:.2f} ms, confidence "
            f"{p['confidence']:.2f} ({_band_text(p)}){res}"
        )
    if r["disagreeing"]:
        print(
            f"disagrees with the others: {r['disagreeing']} (a second source, a wrong "
            "spacing or a clock error?)"
        )
    elif not r["consistent"]:
        print("the delays do not agree and no single pair or logger explains it")
    if r.get("at_end_of_line"):
        print("note: the best point is at an end of the line: the leak may lie beyond it")
