"""benchmarks/sewer.py stays true: its reference sewer is the seed site's (the same reaches,
gauges and station as seeds/site.yaml's ``sewer:`` section), its hydraulics carry Manning's
flow at normal depth and back a blockage up above it while starving the pipe below, and a
short run prints every figure the issue asks for (not a measurement: docs/benchmarks.md has
the year's figures)."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.sewerbench.hydraulics import simulate_chunk
from benchmarks.sewerbench.run import _Gauge, _model, _step
from benchmarks.sewerbench.scenario import Blockage, Scenario
from benchmarks.sewerbench.sites import pipe_capacity_l_s, reference_site, rules_network
from drivers.profile import ProfileRegistry
from tests.drivers.sim.site_support import seed_site

ROOT = Path(__file__).resolve().parents[1]


def test_the_reference_sewer_is_the_seed_sites():
    ours, _ = rules_network(reference_site())
    seeds = seed_site().network
    assert [(r.upstream, r.downstream, r.station) for r in ours.reaches] == [
        (r.upstream, r.downstream, r.station) for r in seeds.reaches
    ]
    (well,) = ours.wet_wells
    (seed_well,) = seeds.wet_wells
    assert (well.station, well.gauge, well.overflow_mm, well.assist_mm, well.area_m2) == (
        seed_well.station,
        seed_well.gauge,
        seed_well.overflow_mm,
        seed_well.assist_mm,
        seed_well.area_m2,
    )
    assert {m.gauge: m.rim_mm for m in ours.manholes} == {m.gauge: m.rim_mm for m in seeds.manholes}


def _run(site, blockages=(), minutes=240, dwf_l_s=None):
    scenario = Scenario(tuple(blockages), (), (), (), (), {})
    model = _model(site, scenario)
    n = len(site.nodes)
    flows = dwf_l_s if dwf_l_s is not None else [node.dwf_l_s for node in site.nodes]
    dwf = np.tile(np.array(flows) / 1000.0, (minutes, 1))
    zeros = np.zeros((minutes, n))
    chunk = simulate_chunk(model, minutes * 60.0, dwf, zeros, np.zeros((minutes, 0)), zeros[:, :0])
    return model, chunk


def test_steady_flow_is_mannings():
    """A steady inflow at the top only: every pipe carries it, at Manning's normal depth."""
    site = reference_site()
    _, chunk = _run(site, dwf_l_s=[4.0] + [0.0] * (len(site.nodes) - 1))
    depth = float(chunk.depth[-1, 1])  # MH-09, its DN300 at 0.004
    d, slope = site.links[1].diameter_m, 0.004
    theta = 2 * math.acos(1 - 2 * depth / d)
    area = d * d / 8 * (theta - math.sin(theta))
    radius = area / (d * theta / 2)
    manning = 1000 * area * radius ** (2 / 3) * math.sqrt(slope) / 0.013
    assert manning == pytest.approx(4.0, rel=0.05)
    assert pipe_capacity_l_s(d, slope) > 4.0


def test_a_blockage_backs_up_above_and_starves_below():
    site = reference_site()
    block = Blockage(2, ("lv-03->lv-02",), 3600.0, 60.0, 1.0, 10 * 3600.0)
    _, clear = _run(site)
    _, blocked = _run(site, [block])
    after = int(2 * 3600 / 10)  # an hour after the onset, in 10 s records
    assert blocked.depth[after, 2] > clear.depth[after, 2] + 0.2  # MH-12, just above: backed up
    assert blocked.depth[after, 3] < 0.8 * clear.depth[after, 3]  # MH-17, below: starved


def test_a_gauge_reads_in_whole_millimetres_as_its_register_map_gives():
    """A level reaches the rules as the gateway decodes LR10's register (resolution 1 mm), not
    as the hydraulics' float: on a flat night flow with 2 mm of scatter a live gauge repeats
    a reading now and then, which the rules' stuck-gauge test meets in the field."""
    step = _step(ProfileRegistry(), "level", "level")
    assert step == 1.0
    scenario = Scenario((), (), (), (), (), {}, spikes_per_day=0.0)
    gauge = _Gauge("lv-x", 60.0, 2.0, 3000.0, scenario, np.random.default_rng(3), 0.0, step)
    out: list = []
    for t in gauge.times(0.0, 6 * 3600.0):
        gauge.read(t, 350.3, out)
    values = [reading.value for *_, reading in out]
    assert all(v == round(v) for v in values)
    repeats = sum(a == b for a, b in itertools.pairwise(values))
    assert 0.05 < repeats / (len(values) - 1) < 0.4  # about one in five at 2 mm


@pytest.mark.slow
def test_a_short_run_prints_every_figure():
    env = dict(os.environ, NUMBA_CACHE_DIR=str(ROOT / ".cache" / "numba"))
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/sewer.py",
            "--json",
            "--days",
            "3",
            "--sites",
            "1",
            "--jobs",
            "1",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert set(out["sites"]) == {"riverside", "generated-1"}
    for key in (
        "blockage_delay_p50_min",
        "blockage_delay_p90_min",
        "blockage_missed",
        "overflow_lead_p10_min",
        "false_alarms_per_month",
        "wet_well_false_alarms",
        "kinds",
    ):
        assert key in out["total"]
    assert set(out["floors"]) == {
        "blockage_p90_within_15_min",
        "no_blockage_missed",
        "overflow_lead_p10_at_least_15_min",
        "false_alarms_per_month_per_site_at_most_1",
        "wet_well_false_alarms_zero",
    }
    assert out["total"]["readings"] > 10_000
