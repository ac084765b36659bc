"""The sewer and flood stories, measured: a simulated year of the reference site and of
generated sites, fed to the real rules, scored against what truly happened.

For each site (``sewerbench.sites``: Riverside's sewer, then ``--sites`` generated ones that
vary topology, pipe sizes, pump capacities, gauge placement and noise) it draws a year of
weather and incidents (``weather``, ``scenario``), runs hydraulics written apart from
``drivers/sim`` (``hydraulics``), turns them into the readings and poll outcomes a gateway
would see and feeds them in time order to ``edge_agent.rules.RulesEngine`` with the site's
``SewerNetwork`` and an injected clock (``run``), then judges every raised event
(``scoring``: its docstring defines onset, observability, dry weather, lead and what counts
as true). Nothing here is tuned against: the rules' settings are their defaults.

Prints, per site and in total: ``blockage_delay_p50_min`` / ``_p90_min`` (dry weather, onset
to the event; a miss counts as infinite), ``blockage_missed``, ``overflow_lead_p10_min``
(warning before the rim; none = 0), ``false_alarms_per_month`` per event kind (with the true
ones beside them) and over all alarm kinds (sev >= 2), the wet well's false alarms, and the
floors of issue 11 with a verdict. Beside them, the named baseline: the same readings through
the same rules without the site's network (one gauge at a time, as before issue 11).

    .venv/bin/python benchmarks/sewer.py [--json] [--days 365] [--sites 3] [--seed 11] [--jobs 2]
                                          [--no-baseline] [--dump DIR] [--only-site NAME ...]

``--only-site NAME`` (repeatable: ``riverside``, ``generated-1``, ...) runs only the sites
named, each drawn exactly as in the full run: for developing a rule on the sites that matter.

``--dump DIR`` writes, per site, every false raise and every overflow with the true level and
the rain around it (``sewerbench.dump``): what to read before changing a rule.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba"))

import numpy as np  # noqa: E402

from benchmarks.sewerbench.dump import write_dump  # noqa: E402
from benchmarks.sewerbench.run import run_site  # noqa: E402
from benchmarks.sewerbench.scoring import SiteScore, is_alarm, percentile, score_site  # noqa: E402
from benchmarks.sewerbench.sites import generate_site, reference_site  # noqa: E402

FLOOR_BLOCKAGE_P90_MIN = 15.0
FLOOR_OVERFLOW_LEAD_P10_MIN = 15.0
FLOOR_FALSE_ALARMS_PER_MONTH = 1.0


def _one(
    job: tuple[int, int, int, bool, str | None],
) -> tuple[SiteScore, SiteScore | None, float]:
    index, days, seed, baseline, dump = job
    started = time.perf_counter()
    if index == 0:
        site = reference_site()
    else:
        site = generate_site(np.random.default_rng([seed, index]), f"generated-{index}")
    run = run_site(site, days, seed=seed * 1000 + index, baseline=baseline)
    base = score_site(run, baseline=True) if baseline else None
    score = score_site(run)
    if dump is not None:
        write_dump(run, score, Path(dump))
    return score, base, time.perf_counter() - started


def _minutes(value: float | None) -> float | None:
    if value is None:
        return None
    return None if math.isinf(value) else round(value, 1)


def summarise(scores: list[SiteScore]) -> dict:
    """Figures over ``scores`` (one site, or all of them)."""
    months = sum(s.months for s in scores)
    dry = [d for s in scores for d in s.blockages_dry]
    wet = [d for s in scores for d in s.blockages_wet]
    leads = [lead for s in scores for lead in s.overflow_leads]
    kinds: dict[str, dict] = {}
    for s in scores:
        for kind, k in s.kinds.items():
            entry = kinds.setdefault(kind, {"raised": 0, "true": 0, "false": 0, "near_miss": 0})
            for key in entry:
                entry[key] += getattr(k, key)
    for entry in kinds.values():
        entry["true_per_month"] = round(entry["true"] / months, 2)
        entry["false_per_month"] = round(entry["false"] / months, 2)
    alarm_false = sum(e["false"] for kind, e in kinds.items() if is_alarm(kind))
    notice_false = sum(e["false"] for kind, e in kinds.items() if not is_alarm(kind))
    devices: dict[str, int] = {}
    for s in scores:
        for kind, count in s.device_events.items():
            devices[kind] = devices.get(kind, 0) + count
    return {
        "months": round(months, 1),
        "blockages_dry": len(dry),
        "blockage_delay_p50_min": _minutes(percentile(dry, 50)),
        "blockage_delay_p90_min": _minutes(percentile(dry, 90)),
        "blockage_delay_max_min": _minutes(max(dry, default=None)),
        "blockage_missed": sum(1 for d in dry if math.isinf(d)),
        "blockages_wet": len(wet),
        "blockages_wet_detected": sum(1 for d in wet if not math.isinf(d)),
        "blockages_unobservable": sum(s.blockages_unobservable for s in scores),
        "overflows": len(leads),
        "overflow_lead_p10_min": _minutes(percentile(leads, 10, conservative="low")),
        "overflow_lead_p50_min": _minutes(percentile(leads, 50)),
        "overflows_unwarned": sum(1 for lead in leads if lead <= 0),
        "overflows_at_ungauged_manholes": sum(s.overflows_ungauged for s in scores),
        "false_alarms_per_month": round(alarm_false / months, 2),
        "false_notices_per_month": round(notice_false / months, 2),
        "wet_well_false_alarms": sum(s.wet_well_false for s in scores),
        "wet_well_storm_false_alarms": sum(s.wet_well_storm_false for s in scores),
        "kinds": dict(sorted(kinds.items())),
        "device_events": dict(sorted(devices.items())),
        "readings": sum(s.readings for s in scores),
    }


def floors(per_site: dict[str, dict], total: dict) -> dict[str, dict]:
    p90, p10 = total["blockage_delay_p90_min"], total["overflow_lead_p10_min"]
    worst_fa = max(s["false_alarms_per_month"] for s in per_site.values())
    return {
        "blockage_p90_within_15_min": {
            "value": p90,
            "pass": p90 is not None and p90 <= FLOOR_BLOCKAGE_P90_MIN,
        },
        "no_blockage_missed": {
            "value": total["blockage_missed"],
            "pass": total["blockage_missed"] == 0,
        },
        "overflow_lead_p10_at_least_15_min": {
            "value": p10,
            "pass": p10 is not None and p10 >= FLOOR_OVERFLOW_LEAD_P10_MIN,
        },
        "false_alarms_per_month_per_site_at_most_1": {
            "value": worst_fa,
            "pass": worst_fa <= FLOOR_FALSE_ALARMS_PER_MONTH,
        },
        "wet_well_false_alarms_zero": {
            "value": total["wet_well_false_alarms"],
            "pass": total["wet_well_false_alarms"] == 0,
        },
    }


def _print(
    per_site: dict[str, dict], total: dict, verdict: dict, seconds: float, baseline: dict | None
) -> None:
    rows = [
        "months",
        "blockages_dry",
        "blockage_delay_p50_min",
        "blockage_delay_p90_min",
        "blockage_delay_max_min",
        "blockage_missed",
        "blockages_wet",
        "blockages_wet_detected",
        "blockages_unobservable",
        "overflows",
        "overflow_lead_p10_min",
        "overflow_lead_p50_min",
        "overflows_unwarned",
        "overflows_at_ungauged_manholes",
        "false_alarms_per_month",
        "false_notices_per_month",
        "wet_well_false_alarms",
        "wet_well_storm_false_alarms",
    ]
    names = [*per_site, "total"]
    columns = [*per_site.values(), total]
    if baseline is not None:  # the same readings, the rules without the site's network
        names.append("no network")
        columns.append(baseline)
    print(f"{'':34}" + "".join(f"{n:>14}" for n in names))
    for row in rows:
        cells = "".join(f"{'-' if c[row] is None else c[row]!s:>14}" for c in columns)
        print(f"{row:34}{cells}")
    print("\nper event kind (all sites): raised / true / false / near miss; per month true, false")
    for kind, e in total["kinds"].items():
        print(
            f"  {kind:28}{e['raised']:>6}{e['true']:>6}{e['false']:>6}{e['near_miss']:>6}"
            f"   {e['true_per_month']:>6} {e['false_per_month']:>6}"
        )
    if baseline is not None:
        print("the same readings, the rules without the site's network (one gauge at a time):")
        for kind, e in baseline["kinds"].items():
            print(
                f"  {kind:28}{e['raised']:>6}{e['true']:>6}{e['false']:>6}{e['near_miss']:>6}"
                f"   {e['true_per_month']:>6} {e['false_per_month']:>6}"
            )
    print(
        f"device events (follow injected faults, dropouts, blind spots): {total['device_events']}"
    )
    print(f"\nfloors (issue 11), {total['readings']} readings in {seconds:.0f} s:")
    for name, check in verdict.items():
        print(f"  [{'x' if check['pass'] else ' '}] {name}: {check['value']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--days", type=int, default=365, help="days per site (default 365)")
    parser.add_argument("--sites", type=int, default=3, help="generated sites (default 3)")
    parser.add_argument("--seed", type=int, default=11, help="seed of everything (default 11)")
    parser.add_argument("--jobs", type=int, default=2, help="sites run in parallel (default 2)")
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the baseline (the same readings through the rules without the network)",
    )
    parser.add_argument(
        "--dump",
        metavar="DIR",
        help="write each site's false raises and overflows with their traces to DIR",
    )
    parser.add_argument(
        "--only-site",
        metavar="NAME",
        action="append",
        help="run only this site (riverside, generated-1, ...; repeatable), drawn as in a full run",
    )
    args = parser.parse_args(argv)
    if args.days < 2 or args.sites < 0 or args.jobs < 1:
        parser.error("--days must be at least 2, --sites at least 0, --jobs at least 1")
    names = ["riverside", *(f"generated-{i}" for i in range(1, args.sites + 1))]
    unknown = sorted(set(args.only_site or ()) - set(names))
    if unknown:
        parser.error(f"--only-site: no site {unknown[0]!r} (sites: {', '.join(names)})")
    indices = [i for i, name in enumerate(names) if not args.only_site or name in args.only_site]
    started = time.perf_counter()
    jobs = [(i, args.days, args.seed, not args.no_baseline, args.dump) for i in indices]
    if args.jobs == 1:
        results = [_one(job) for job in jobs]
    else:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(_one, jobs))
    scores = [score for score, _, _ in results]
    per_site = {s.name: summarise([s]) for s in scores}
    total = summarise(scores)
    verdict = floors(per_site, total)
    bases = [base for _, base, _ in results if base is not None]
    baseline = summarise(bases) if bases else None
    seconds = time.perf_counter() - started
    if args.json:
        per_site_out = {
            name: {k: v for k, v in figures.items() if k != "kinds"} | {"kinds": figures["kinds"]}
            for name, figures in per_site.items()
        }
        print(
            json.dumps(
                {
                    "days": args.days,
                    "seed": args.seed,
                    "sites": per_site_out,
                    "total": total,
                    "floors": verdict,
                    "baseline_without_network": baseline,
                    "seconds": round(seconds, 1),
                    "site_seconds": [round(s, 1) for _, _, s in results],
                },
                indent=1,
            )
        )
    else:
        _print(per_site, total, verdict, seconds, baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
