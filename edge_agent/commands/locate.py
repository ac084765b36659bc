"""``edge-agent locate A.wav B.wav``: where between two loggers a leak is, from two recordings.

Reads two simultaneous mono WAV recordings (``edge_agent.wavfile``: PCM or float), finds their
time difference of arrival by generalized cross-correlation (``dsp.correlate.gcc_tdoa``)
searched within +-D/c, and turns it into the distance from logger A. The wave speed comes
from the pipe (material, diameter, wall: Korteweg), is given outright, or, with ``--site``
and ``--loggers``, follows the pipe path between two placed loggers segment by segment
(mixed materials: travel time per segment).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from edge_agent.errors import UsageError

DESCRIPTION = """\
Locate a leak between two loggers from two simultaneous recordings (WAV, mono, PCM or
float, same rate and length). The leak lies (D + c*tdoa)/2 from logger A, with
tdoa = t_A - t_B: a negative tdoa means the leak is nearer A. A 1 ms timing error moves the
result by c*1ms/2 (0.65 m on iron), so the recordings must start together (a broadcast start
does that).

examples:
  edge-agent locate nl-02.wav nl-03.wav --spacing-m 156 --material ductile_iron \\
      --diameter-mm 300 --wall-mm 7.2
      leak 63.0 m from A (nl-02.wav) towards B (nl-03.wav), of 156.0 m
      tdoa -25.13 ms, wave speed 1193.8 m/s, confidence 0.90 (PHAT, 200-1500 Hz)
  edge-agent locate a.wav b.wav --spacing-m 40 --wave-speed 280 --json
      {"distance_from_a_m": 17.3, "tdoa_s": -0.0193, "wave_speed_m_s": 280.0, ...}
  edge-agent locate nl-04.wav nl-07.wav --site seeds/site.yaml --loggers nl-04 nl-07
      spacing, materials and wave speeds from the pipe path between the two loggers

Confidence is 1 - 1/(peak-to-sidelobe ratio) of the correlation: below ~0.5 the peak barely
stands out (no common leak noise, or too much interference); repeat the recording at night.
Exit codes: 0 located, 2 bad input (arguments, unreadable or mismatched WAV files).
"""

WEIGHTING_CHOICES = ("phat", "scot", "none")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("wav_a", metavar="A.wav", help="recording of logger A")
    parser.add_argument("wav_b", metavar="B.wav", help="recording of logger B (same start)")
    parser.add_argument(
        "--spacing-m", type=float, metavar="D", help="pipe length between the loggers (m)"
    )
    pipe = parser.add_mutually_exclusive_group()
    pipe.add_argument("--material", metavar="M", help="pipe material (e.g. cast_iron, pe)")
    pipe.add_argument("--wave-speed", type=float, metavar="C", help="wave speed in m/s")
    parser.add_argument("--diameter-mm", type=float, metavar="N", help="inner diameter (mm)")
    parser.add_argument("--wall-mm", type=float, metavar="E", help="wall thickness (mm)")
    parser.add_argument("--site", metavar="FILE", help="site file: take the path from it")
    parser.add_argument(
        "--loggers", nargs=2, metavar=("A", "B"), help="with --site: the two loggers' names"
    )
    parser.add_argument(
        "--weighting",
        choices=WEIGHTING_CHOICES,
        default="phat",
        help="cross-spectrum weighting (default phat)",
    )
    parser.add_argument(
        "--band-hz",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        help="analysis band (default: the material's leak band)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _read(path: str) -> tuple[float, Any]:
    """(sample rate, float64 samples) of a mono WAV; ``WavError`` (exit 2) naming the file."""
    from edge_agent.wavfile import read_wav

    wav = read_wav(path)
    if wav.samples.size < 2:
        raise UsageError(f"{path}: {wav.samples.size} sample, too short to correlate")
    return wav.fs, wav.samples


def _pipe_model(args: argparse.Namespace) -> tuple[float, float, tuple[float, float] | None, Any]:
    """Spacing (m), total travel time (s), default band and the path legs (or None)."""
    from dsp.pipes import get_material, wave_speed

    if args.site is not None:
        if args.loggers is None:
            raise UsageError("--site needs --loggers A B (the two loggers' names in the site)")
        if args.spacing_m is not None or args.material or args.wave_speed is not None:
            raise UsageError(
                "--site takes spacing and pipe from the site: drop --spacing-m, "
                "--material and --wave-speed"
            )
        return _site_model(args)
    if args.loggers is not None:
        raise UsageError("--loggers needs --site FILE")
    if args.spacing_m is None:
        raise UsageError("give --spacing-m D (or --site FILE --loggers A B)")
    if not (args.spacing_m > 0 and math.isfinite(args.spacing_m)):
        raise UsageError(f"--spacing-m must be a positive number of metres, got {args.spacing_m}")
    if args.wave_speed is not None:
        if args.diameter_mm is not None or args.wall_mm is not None:
            raise UsageError("--diameter-mm/--wall-mm only apply with --material")
        if not (args.wave_speed > 0 and math.isfinite(args.wave_speed)):
            raise UsageError(f"--wave-speed must be a positive m/s, got {args.wave_speed}")
        return args.spacing_m, args.spacing_m / args.wave_speed, None, None
    if args.material is None:
        raise UsageError(
            "give the pipe: --material M [--diameter-mm N] [--wall-mm E], or --wave-speed C"
        )
    try:
        material = get_material(args.material)
        c = wave_speed(material, args.diameter_mm, args.wall_mm)
    except ValueError as exc:
        raise UsageError(f"--material/--diameter-mm/--wall-mm: {exc}") from exc
    return args.spacing_m, args.spacing_m / c, material.band_hz, None


def _site_model(args: argparse.Namespace):
    from dsp.network import NetworkError
    from dsp.pipes import common_band_hz
    from edge_agent.site_network import path_between_loggers
    from sitemodel import SiteError, load_site

    try:
        site = load_site(args.site)
    except SiteError as exc:
        raise UsageError(str(exc)) from exc
    a, b = args.loggers
    try:
        path = path_between_loggers(site, a, b)
    except KeyError as exc:
        raise UsageError(f"{args.site}: no device named {exc.args[0]!r}") from exc
    except NetworkError as exc:
        raise UsageError(f"{args.site}: {exc}") from exc
    if path.length_m <= 0:
        raise UsageError(f"{args.site}: loggers {a} and {b} sit at the same spot")
    # Mixed materials: the band the leak noise carries on all of them (plastic decides).
    return path.length_m, path.travel_time_s, common_band_hz(path.materials), path


def run(args: argparse.Namespace) -> int:
    from dsp.correlate import gcc_tdoa, locate_on_legs, locate_on_path

    spacing, travel_s, band, path = _pipe_model(args)
    fs_a, a = _read(args.wav_a)
    fs_b, b = _read(args.wav_b)
    if fs_a != fs_b:
        raise UsageError(
            f"{args.wav_b}: sample rate {fs_b:g} Hz differs from {args.wav_a}'s {fs_a:g} Hz"
        )
    if a.size != b.size:
        raise UsageError(
            f"{args.wav_b}: {b.size} samples, {args.wav_a} has {a.size}: simultaneous "
            "recordings must have the same length"
        )
    if args.band_hz is not None:
        band = (args.band_hz[0], args.band_hz[1])
    elif band is not None and band[1] > fs_a / 2:
        # The material's band reaches past Nyquist at a low sample rate: use what the
        # recording holds (the band used is reported in the output).
        band = (band[0], fs_a / 2) if band[0] < fs_a / 2 else None
    try:
        res = gcc_tdoa(a, b, fs_a, max_lag_s=travel_s, band_hz=band, weighting=args.weighting)
        if path is not None:
            distance = locate_on_legs(res.tdoa_s, path.speed_legs())
        else:
            distance = locate_on_path(res.tdoa_s, spacing, spacing / travel_s)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    result: dict[str, Any] = {
        "distance_from_a_m": round(distance, 3),
        "tdoa_s": round(res.tdoa_s, 7),
        "wave_speed_m_s": round(spacing / travel_s, 2),
        "confidence": round(res.confidence, 3),
        "spacing_m": round(spacing, 3),
        "peak_to_sidelobe": round(res.peak_to_sidelobe, 2)
        if math.isfinite(res.peak_to_sidelobe)
        else None,
        "weighting": res.weighting,
        "band_hz": list(res.band_hz) if res.band_hz else None,
        "sample_rate_hz": fs_a,
        "samples": int(a.size),
        "source_outside_loggers": res.outside_peak,
        "a": args.wav_a,
        "b": args.wav_b,
    }
    if path is not None:
        pos = path.position_at(distance)
        result["position"] = {"pipe": pos.segment, "offset_m": round(pos.offset_m, 2)}
        result["path"] = [
            {
                "pipe": leg.segment,
                "material": leg.material,
                "length_m": round(leg.length_m, 3),
                "wave_speed_m_s": round(leg.wave_speed_m_s, 2),
            }
            for leg in path.legs
            if leg.length_m > 0
        ]
    if args.json:
        print(json.dumps(result))
        return 0
    _print_human(result, args)
    return 0


def _print_human(r: dict[str, Any], args: argparse.Namespace) -> None:
    name_a, name_b = args.loggers or (Path(args.wav_a).name, Path(args.wav_b).name)
    print(
        f"leak {r['distance_from_a_m']:.1f} m from A ({name_a}) towards B ({name_b}), "
        f"of {r['spacing_m']:.1f} m"
    )
    band = f", {r['band_hz'][0]:g}-{r['band_hz'][1]:g} Hz" if r["band_hz"] else ""
    print(
        f"tdoa {r['tdoa_s'] * 1e3:.2f} ms, wave speed {r['wave_speed_m_s']:.1f} m/s, "
        f"confidence {r['confidence']:.2f} ({r['weighting'].upper()}{band})"
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
