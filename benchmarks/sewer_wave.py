"""How fast a flow wave travels down each gauged reach of the sewer benchmark's sites.

For every reach that ends at a gauge (``benchmarks/sewerbench``'s hydraulics, no incident, no
rain, satellites off), the sewer is settled on its mean dry-weather flow for two hours, then
the inflow at the reach's top manhole steps up by half the flow its pipe carries. Each end's
``ln(depth + 10 mm)`` (the reach rule's currency) is followed every 10 s; the lag is the time
between the top and the bottom reaching 10, 50 and 90 % of their own rise, and the speed the
reach's length over the lag at 50 %. The reach rule waits ``length_m / reach_wave_m_per_s``
before it takes a rise at the top over a steady bottom for a blockage: this says what that
wait has to cover.

    .venv/bin/python benchmarks/sewer_wave.py [--seed 12] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba"))

import numpy as np  # noqa: E402

from benchmarks.sewerbench.hydraulics import RECORD_S, simulate_chunk  # noqa: E402
from benchmarks.sewerbench.run import _model  # noqa: E402
from benchmarks.sewerbench.scenario import Scenario  # noqa: E402
from benchmarks.sewerbench.sites import (  # noqa: E402
    BenchSite,
    generate_site,
    reference_site,
    rules_network,
)

SETTLE_MIN = 120
STEP_MIN = 60
STEP_SHARE = 0.5  # of the flow the top's pipe carries
FLOOR_MM = 10.0
LEVELS = (0.1, 0.5, 0.9)


def _quiet() -> Scenario:
    return Scenario((), (), (), (), (), {}, spikes_per_day=0.0)


def _crossing(depth_mm: np.ndarray, share: float) -> float:
    """Seconds until ``ln(depth + floor)`` has made ``share`` of its rise."""
    x = np.log(depth_mm + FLOOR_MM)
    return float(np.argmax(x - x[0] >= share * (x[-1] - x[0])) * RECORD_S)


def measure(site: BenchSite) -> list[dict]:
    """One row per reach ending at a gauge (see the module docstring)."""
    network, links_of = rules_network(site)
    n = len(site.nodes)
    dwf = np.array([node.dwf_l_s / 1000.0 for node in site.nodes])
    rows = []
    for reach in network.reaches:
        if reach.downstream is None:
            continue  # ends at the station: its bottom is the wet well's inflow
        path = links_of[reach.id]
        top, bottom = path[0], site.links[path[-1]].down
        model = _model(site, _quiet())

        def run(minutes: int, inflow: np.ndarray, model=model):
            return simulate_chunk(
                model,
                minutes * 60.0,
                np.tile(inflow, (minutes, 1)),
                np.zeros((minutes, n)),
                np.zeros((minutes, len(site.satellites))),
                np.zeros((minutes, len(site.ponding))),
            )

        run(SETTLE_MIN, dwf)
        stepped = dwf.copy()
        stepped[top] += STEP_SHARE * site.carried_dwf_l_s(top) / 1000.0
        depth = run(STEP_MIN, stepped).depth.astype(float) * 1000.0
        lags = {
            f"lag_{round(q * 100)}_s": _crossing(depth[:, bottom], q) - _crossing(depth[:, top], q)
            for q in LEVELS
        }
        rise = {
            end: round(math.expm1(math.log((d[-1] + FLOOR_MM) / (d[0] + FLOOR_MM))) * 100, 1)
            for end, d in (("top", depth[:, top]), ("bottom", depth[:, bottom]))
        }
        lag = lags["lag_50_s"]
        rows.append(
            {
                "site": site.name,
                "reach": reach.id,
                "length_m": reach.length_m,
                "top_rise_pct": rise["top"],
                "bottom_rise_pct": rise["bottom"],
                **lags,
                "speed_m_per_s": round(reach.length_m / lag, 2) if lag > 0 else None,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=12, help="seed of the generated sites")
    parser.add_argument("--sites", type=int, default=3, help="generated sites (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    sites = [reference_site()] + [
        generate_site(np.random.default_rng([args.seed, i]), f"generated-{i}")
        for i in range(1, args.sites + 1)
    ]
    rows = [row for site in sites for row in measure(site)]
    if args.json:
        print(json.dumps({"seed": args.seed, "reaches": rows}))
        return 0
    for r in rows:
        print(
            f"{r['site']:12s} {r['reach']:14s} {r['length_m']:7.1f} m  top +{r['top_rise_pct']}%"
            f" bottom +{r['bottom_rise_pct']}%  lag 10/50/90 % {r['lag_10_s']:.0f} /"
            f" {r['lag_50_s']:.0f} / {r['lag_90_s']:.0f} s  {r['speed_m_per_s']} m/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
