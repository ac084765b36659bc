"""Reading the file formats: what ``yamlread`` costs on top of parsing the YAML.

A gateway reads its config, every device profile and the site file at start and on every
SIGHUP; a district's site file holds thousands of devices. Side by side in this process, for a
generated site of ``--devices`` devices (a grid network, loggers on pipes, gauges by
coordinates, scenarios), the shipped profiles and the seed gateway config:
- ``read``: the whole reader (compose, convert, checks, filling in positions);
- ``compose``: PyYAML composing the same text into nodes (the baseline: the part any reader
  that reports line and column pays), and ``ratio`` = read / compose.

    .venv/bin/python benchmarks/formats.py [--devices N] [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from drivers.profile import SHIPPED_DIR, ProfileRegistry, parse_profile  # noqa: E402
from drivers.sim.scenarios import read_scenarios  # noqa: E402
from edge_agent.config.loader import parse_config  # noqa: E402
from sitemodel import parse_site  # noqa: E402


def site_text(devices: int) -> str:
    """A grid of 100 m pipes with ``devices`` devices: half loggers on pipes, half gauges."""
    side = max(2, int((devices / 2) ** 0.5) + 1)
    lines = ["site: bench", "origin: {lat: 31.2, lon: 121.4}", "nodes:"]
    lines += [
        f"  - {{id: N{i}-{j}, x: {i * 100}, y: {j * 100}}}"
        for i in range(side)
        for j in range(side)
    ]
    lines.append("pipes:")
    pipes = [f"P{i}-{j}" for i in range(side - 1) for j in range(side)]
    lines += [
        f"  - {{id: P{i}-{j}, from: N{i}-{j}, to: N{i + 1}-{j}, material: ductile_iron}}"
        for i in range(side - 1)
        for j in range(side)
    ]
    lines.append("devices:")
    for k in range(devices):
        bus, unit = f"b{k // 200}", k % 200 + 1
        if k % 2 == 0:
            lines.append(
                f"  - {{name: nl-{k}, kind: noise_logger, profile: noise-logger-nl200, "
                f"asset_id: A-{k}, pipe: {pipes[k // 2 % len(pipes)]}, offset_m: 40, "
                f"bus: {bus}, unit_id: {unit}}}"
            )
        else:
            lines.append(
                f"  - {{name: lv-{k}, kind: level, profile: level-radar-lr10, asset_id: A-{k}, "
                f"lat: 31.2001, lon: 121.4001, bus: {bus}, unit_id: {unit}, "
                f"sim: {{cover_depth_mm: 2500}}}}"
            )
    lines.append("sim_buses:")
    lines += [f"  - {{name: b{b}, port: {20000 + b}}}" for b in range(devices // 200 + 1)]
    lines += ["scenarios:", f"  leaks: [{{id: L1, pipe: {pipes[0]}, offset_m: 50, level_db: 20}}]"]
    lines.append("  storms: [{start_s: 600, duration_s: 1500, peak_mm_per_h: 45}]")
    return "\n".join(lines) + "\n"


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def compose(text: str) -> object:
    return yaml.compose(text, Loader=yaml.SafeLoader)


def measure(devices: int, repeat: int) -> dict[str, dict[str, float]]:
    registry = ProfileRegistry()
    site = site_text(devices)
    profiles = [p.read_text() for p in sorted(SHIPPED_DIR.glob("*.yaml"))]
    config = (REPO / "seeds" / "gateway.yaml").read_text()
    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        f"site ({devices} devices)": (
            lambda: read_scenarios(parse_site(site, profiles=registry)),
            lambda: compose(site),
        ),
        f"profiles ({len(profiles)} shipped)": (
            lambda: [parse_profile(text) for text in profiles],
            lambda: [compose(text) for text in profiles],
        ),
        "gateway config (seed)": (
            lambda: parse_config(config, base_dir=str(REPO / "seeds")),
            lambda: compose(config),
        ),
    }
    out = {}
    for name, (ours, baseline) in cases.items():
        read_s, compose_s = best(ours, repeat), best(baseline, repeat)
        out[name] = {
            "read_ms": read_s * 1e3,
            "compose_ms": compose_s * 1e3,
            "ratio": read_s / compose_s,
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000, help="devices in the site file")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    results = measure(args.devices, args.repeat)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for name, r in results.items():
        print(
            f"{name:<28} read {r['read_ms']:9.1f} ms   compose {r['compose_ms']:9.1f} ms   "
            f"ratio {r['ratio']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
