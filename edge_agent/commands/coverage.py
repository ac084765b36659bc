"""``edge-agent coverage --site FILE``: how much of a site's pipe network its loggers hear.

Loads the site file, builds the pipe graph (``edge_agent.site_network``) and asks
``dsp.network`` for each logger's reach along the pipes, the covered fraction of pipe length and
the stretches nobody hears; optionally the candidate stretch of a suspected leak from the
levels the loggers measured, and an SVG map (``edge_agent.coverage_map``).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from edge_agent.errors import RuntimeFailure, UsageError

DESCRIPTION = """\
Listening coverage of a site's pipe network: each noise logger's reach along the pipes (not
straight-line distance), the covered fraction of pipe length and the gaps nobody hears.
A nominal leak LEAK dB above the noise floor loses each pipe's attenuation per metre (metal
~0.1 dB/m, PE ~0.6 dB/m) and is heard where it still arrives MARGIN dB over the floor: about
150 m along DN150 iron, tens of metres along plastic. See docs/coverage-and-location.md.

examples:
  edge-agent coverage --site seeds/site.yaml
      riverside: 96.0 % of 1184 m of pipe heard by 8 loggers ...
  edge-agent coverage --site seeds/site.yaml --svg coverage.svg
      also writes the map: pipes by material, what each logger hears, the gaps
  edge-agent coverage --site seeds/site.yaml --heard nl-02=11 nl-03=7 --svg leak.svg
      suspected leak heard at 11 dB by nl-02 and 7 dB by nl-03 (the others hear nothing):
      prints and draws the candidate stretch
  edge-agent coverage --site seeds/site.yaml --leak-db 15 --json

Exit codes: 0 ok, 1 cannot write the map, 2 bad site file or arguments.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dsp.network import DEFAULT_DETECT_MARGIN_DB, DEFAULT_LEAK_LEVEL_DB

    parser.add_argument("--site", required=True, metavar="FILE", help="site file (YAML)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--svg", metavar="OUT", help="write the coverage map to OUT (SVG)")
    parser.add_argument(
        "--leak-db",
        type=float,
        default=DEFAULT_LEAK_LEVEL_DB,
        metavar="LEAK",
        help=f"nominal leak level above the site noise floor (default {DEFAULT_LEAK_LEVEL_DB:g})",
    )
    parser.add_argument(
        "--margin-db",
        type=float,
        default=DEFAULT_DETECT_MARGIN_DB,
        metavar="MARGIN",
        help=f"level over the floor a logger needs (default {DEFAULT_DETECT_MARGIN_DB:g})",
    )
    parser.add_argument(
        "--junction-loss-db",
        type=float,
        default=0.0,
        metavar="DB",
        help="extra loss per junction passed (default 0)",
    )
    parser.add_argument(
        "--heard",
        nargs="+",
        metavar="LOGGER=DB",
        help="suspected leak: in-band leak level at each logger that hears it (others: silent)",
    )


def _finite(name: str, value: float, *, positive: bool = False) -> float:
    if not math.isfinite(value) or (positive and value <= 0) or value < 0:
        kind = "a positive" if positive else "a non-negative"
        raise UsageError(f"{name} must be {kind} number of dB, got {value:g}")
    return value


def _parse_heard(items: list[str], names: set[str]) -> dict[str, float]:
    levels: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--heard {item!r}: expected LOGGER=DB, e.g. nl-02=11.5")
        if name not in names:
            known = ", ".join(sorted(names)) or "none"
            raise UsageError(f"--heard {item!r}: no noise logger {name!r} (loggers: {known})")
        try:
            level = float(value)
        except ValueError:
            raise UsageError(f"--heard {item!r}: {value!r} is not a number of dB") from None
        if not math.isfinite(level):
            raise UsageError(f"--heard {item!r}: level must be finite")
        if name in levels:
            raise UsageError(f"--heard: {name} given twice")
        levels[name] = level
    return levels


def _stretch(network, s) -> dict[str, Any]:
    seg = network.segments[s.segment]
    return {
        "pipe": s.segment,
        "material": seg.material,
        "diameter_mm": seg.diameter_mm,
        "from_m": round(s.start_m, 2),
        "to_m": round(s.end_m, 2),
        "length_m": round(s.length_m, 2),
    }


def run(args: argparse.Namespace) -> int:
    from dsp.network import NetworkError, ReachModel
    from edge_agent.site_network import site_network
    from sitemodel import SiteError, load_site

    _finite("--leak-db", args.leak_db, positive=True)
    _finite("--margin-db", args.margin_db)
    _finite("--junction-loss-db", args.junction_loss_db)
    try:
        site = load_site(args.site)
        network, listeners = site_network(site)
    except SiteError as exc:
        raise UsageError(str(exc)) from exc
    except NetworkError as exc:
        raise UsageError(f"{args.site}: {exc}") from exc
    model = ReachModel(
        leak_level_db=site.noise_floor_db + args.leak_db,
        detect_margin_db=args.margin_db,
        junction_loss_db=args.junction_loss_db,
    )
    coverage = network.coverage(listeners, model)
    candidate = None
    if args.heard:
        heard = _parse_heard(args.heard, {lst.name for lst in listeners})
        levels: dict[str, float | None] = {lst.name: heard.get(lst.name) for lst in listeners}
        try:
            candidate = network.candidate_stretch(listeners, levels, model)
        except NetworkError as exc:
            raise UsageError(f"--heard: {exc}") from exc
    result = _result(site, network, listeners, coverage, candidate)
    if args.svg:
        from edge_agent.coverage_map import render_coverage_svg

        svg = render_coverage_svg(
            network, listeners, coverage, title=f"{site.name} ({site.site})", candidate=candidate
        )
        try:
            Path(args.svg).write_text(svg, encoding="utf-8")
        except OSError as exc:
            raise RuntimeFailure(f"{args.svg}: cannot write map: {exc.strerror or exc}") from exc
        result["svg"] = args.svg
    if args.json:
        print(json.dumps(result))
    else:
        _print_human(result)
    return 0


def _result(site, network, listeners, coverage, candidate) -> dict[str, Any]:
    by_name = {lst.name: lst for lst in listeners}
    result: dict[str, Any] = {
        "site": site.site,
        "total_length_m": round(coverage.total_length_m, 2),
        "covered_length_m": round(coverage.covered_length_m, 2),
        "covered_fraction": round(coverage.covered_fraction, 4),
        "model": {
            "leak_level_db": coverage.model.leak_level_db,
            "detect_margin_db": coverage.model.detect_margin_db,
            "junction_loss_db": coverage.model.junction_loss_db,
        },
        "loggers": [
            {
                "name": r.listener,
                "pipe": by_name[r.listener].position.segment,
                "offset_m": by_name[r.listener].position.offset_m,
                "noise_floor_db": by_name[r.listener].noise_floor_db,
                "budget_db": round(r.budget_db, 2),
                "reach_along_own_pipe_m": round(r.own_pipe_reach_m, 1),
                "heard_length_m": round(r.heard_length_m, 1),
                "heard": [_stretch(network, s) for s in r.stretches],
            }
            for r in coverage.reaches
        ],
        "uncovered": [_stretch(network, s) for s in coverage.uncovered],
    }
    if candidate is not None:
        result["suspected_leak"] = {
            "heard_by": list(candidate.heard_by),
            "best": {"pipe": candidate.best.segment, "offset_m": round(candidate.best.offset_m, 1)},
            "best_misfit_db": round(candidate.best_misfit_db, 2),
            "source_level_db": round(candidate.source_level_db, 1),
            "candidates": [_stretch(network, s) for s in candidate.stretches],
        }
    return result


def _print_human(r: dict[str, Any]) -> None:
    m = r["model"]
    print(
        f"{r['site']}: {r['covered_fraction'] * 100:.1f} % of {r['total_length_m']:.0f} m of pipe "
        f"heard by {len(r['loggers'])} loggers (leak {m['leak_level_db']:g} dB, heard when "
        f"{m['detect_margin_db']:g} dB over the floor)"
    )
    print(f"{'logger':<10} {'placement':<16} {'floor':>7} {'each way':>9} {'heard':>8}")
    for lg in r["loggers"]:
        place = f"{lg['pipe']} @ {lg['offset_m']:g} m"
        print(
            f"{lg['name']:<10} {place:<16} {lg['noise_floor_db']:>4.1f} dB "
            f"{lg['reach_along_own_pipe_m']:>7.0f} m {lg['heard_length_m']:>6.0f} m"
        )
    if r["uncovered"]:
        print("not heard by any logger:")
        for s in r["uncovered"]:
            print(
                f"  {s['pipe']} ({s['material']} DN{s['diameter_mm']:g}) "
                f"{s['from_m']:.1f}-{s['to_m']:.1f} m ({s['length_m']:.1f} m)"
            )
    else:
        print("every pipe is heard by at least one logger")
    leak = r.get("suspected_leak")
    if leak:
        best = leak["best"]
        print(
            f"suspected leak heard by {', '.join(leak['heard_by'])}: best fit {best['pipe']} at "
            f"{best['offset_m']:.0f} m (misfit {leak['best_misfit_db']:.1f} dB, source "
            f"~{leak['source_level_db']:.0f} dB); candidate stretches:"
        )
        for s in leak["candidates"]:
            print(f"  {s['pipe']} {s['from_m']:.1f}-{s['to_m']:.1f} m ({s['length_m']:.1f} m)")
    if "svg" in r:
        print(f"map: {r['svg']}")
