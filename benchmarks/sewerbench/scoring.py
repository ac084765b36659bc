"""Judging a site's year: every raised event true or false, blockage delays, overflow leads.

**Blockages.** A blockage's onset is when it first costs ``ONSET_HEAD_M`` of head at the
pipe's mean dry-weather flow (a sudden one: at once; one growing over minutes: part-way
through). It counts only if a gauge can see it: against the same year run without it
(``SiteRun.depth_cf_min``), the upstream end of its reach must rise ``SEEN_RISE_MM`` or the
downstream end lose ``SEEN_DROP_SHARE`` of its depth (and ``SEEN_DROP_MM``), for
``SEEN_FOR_MIN`` minutes, within ``SEEN_WITHIN_MIN`` of onset; the others are counted as
unobservable. It is in dry weather when no rain fell on the site (site mean over
``DRY_RAIN_MM_H``) from ``DRY_BEFORE_MIN`` before onset to ``DRY_AFTER_MIN`` after. Delay:
onset to the first ``sewer.blockage_suspected`` naming one of its reaches, while it lasts;
none is a miss (an infinite delay in the percentiles).

**Overflows.** An overflow starts when a gauged manhole's water reaches its rim or the wet
well its overflow level (and is over once it has been below for ``OVERFLOW_GAP_MIN``). Its
lead is the time from the first warning, ``overflow.risk`` on that gauge (the station's
controller for the wet well) or ``sewer.blockage_suspected`` on a reach that gauge tops,
within ``LEAD_LOOKBACK_MIN`` before, to the rim; none is a lead of 0.

**True or false**, per raised event (clears are not counted):
- ``sewer.blockage_suspected``: a blockage of that reach active (onset to cleared, plus
  ``AFTER_CLEARED_MIN`` while the sewer drains); on another reach it is false.
- ``overflow.risk``: the level reached the rim (overflow level) within ``RISK_HORIZON_MIN``,
  or a pump was truly tripped (a fault reason), or the sewer below the gauge was blocked
  (a crew clearing it is why it did not overflow); a near miss (``NEAR_MISS_SHARE`` of the
  depth reached) is counted apart, neither true nor false.
- ``wet_well.fault``: a pump incident at the station, from its start to ``AFTER_CLEARED_MIN``
  after its end.
- ``flood.ponding``: the true water depth on the road reached ``PONDING_TRUE_SHARE`` of the
  rule's threshold within ``NEAR_MIN``.
- ``level.high`` / ``level.high_high``: the true level within ``LEVEL_TOLERANCE_MM`` of the
  threshold within ``NEAR_MIN``; ``level.rising``: the true level rose at half the
  threshold rate over its window within ``NEAR_MIN``.
- ``device.*`` follow from injected faults, dropouts and blind spots: reported, not judged.

**The wet well's false alarms** (its floor is zero "from a wet well cycling"): the false
raises on the station's gauge or controller, but an ``overflow.risk`` or ``level.*`` raised
with rain on the site in the ``DRY_BEFORE_MIN`` before it (a storm warning that did not come
true: counted with its kind's false alarms, and apart as ``wet_well_storm_false``). Until
issue 11's second round those were counted here too.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from edge_agent.events import DEFAULT_SEVERITY
from edge_agent.rules.config import FloodConfig, LevelConfig

from .run import HIGH_FRACTION, HIGH_HIGH_FRACTION, SiteRun
from .scenario import WARMUP_S, Blockage

__all__ = ["SiteScore", "percentile", "score_site"]

ONSET_HEAD_M = 0.05
SEEN_RISE_MM = 30.0
SEEN_DROP_SHARE = 0.2
SEEN_DROP_MM = 5.0
SEEN_FOR_MIN = 10
SEEN_WITHIN_MIN = 120
DRY_RAIN_MM_H = 0.1
DRY_BEFORE_MIN = 120
DRY_AFTER_MIN = 30
AFTER_CLEARED_MIN = 60
OVERFLOW_GAP_MIN = 30
LEAD_LOOKBACK_MIN = 360
RISK_HORIZON_MIN = 120
NEAR_MISS_SHARE = 0.9
PONDING_TRUE_SHARE = 0.8
LEVEL_TOLERANCE_MM = 50.0
NEAR_MIN = 15
G = 9.81
CD = 0.6

RAISES = (
    "sewer.blockage_suspected",
    "overflow.risk",
    "wet_well.fault",
    "flood.ponding",
    "level.high",
    "level.high_high",
    "level.rising",
)


@dataclass
class KindScore:
    raised: int = 0
    true: int = 0
    false: int = 0
    near_miss: int = 0
    false_at: list[tuple[float, str]] = field(default_factory=list)
    false_data: list[dict] = field(default_factory=list)  # each false raise's event data


@dataclass
class SiteScore:
    name: str
    months: float
    kinds: dict[str, KindScore]
    blockages_dry: list[float]  # delay in minutes, inf = missed
    blockages_wet: list[float]
    blockages_unobservable: int
    overflow_leads: list[float]  # minutes (0 when not warned)
    overflow_warnings: list[tuple[str, float, float | None]]  # (device, at, first warning)
    overflows_ungauged: int
    wet_well_false: int  # while it only cycled (no rain), and any false wet_well.fault
    wet_well_storm_false: int  # the station's storm warnings that did not come true
    device_events: dict[str, int]
    readings: int


def percentile(values: list[float], q: float, conservative: str = "high") -> float | None:
    """The q-th percentile, never interpolated: rounded towards the worse side (``high`` for
    delays, ``low`` for lead times)."""
    if not values:
        return None
    method = "higher" if conservative == "high" else "lower"
    return float(np.percentile(np.array(values, dtype=float), q, method=method))


def blockage_onset(run: SiteRun, b: Blockage) -> float:
    """When the blockage first costs ``ONSET_HEAD_M`` at the pipe's mean dry-weather flow."""
    if b.ramp_s <= 0:
        return b.t0
    d = run.site.links[b.link].diameter_m
    full = math.pi * d * d / 4
    q = run.site.carried_dwf_l_s(b.link) / 1000.0
    open_area = q / (CD * math.sqrt(2 * G * ONSET_HEAD_M))
    needed = 1.0 - open_area / full
    share = min(max(needed / b.fraction, 0.0), 1.0)
    return b.t0 + share * b.ramp_s


def _seen(run: SiteRun, b: Blockage, onset: float) -> bool:
    """Did the blockage move a gauge of one of its reaches (against the year without it)?"""
    return seen_at(run, b, onset) is not None


def seen_at(run: SiteRun, b: Blockage, onset: float) -> float | None:
    """When a gauge of one of its reaches first began to show the blockage (the start of the
    first ``SEEN_FOR_MIN`` minutes it is seen, as ``_seen`` counts it), seconds; ``None``:
    unobservable. No rule can tell of a blockage before its gauges do."""
    m0 = int(onset // 60)
    m1 = min(m0 + SEEN_WITHIN_MIN, run.depth_min.shape[0])
    gauges = {g.name: g.node for g in run.site.gauges}
    network_reaches = {r.id: r for r in run.network.reaches}
    first: list[int] = []
    for reach_id in b.reaches:
        reach = network_reaches[reach_id]
        up = gauges[reach.upstream]
        rise = (run.depth_min[m0:m1, up] - run.depth_cf_min[m0:m1, up]) * 1000.0
        first.append(_first_run(rise >= SEEN_RISE_MM))
        if reach.downstream is not None:
            down = gauges[reach.downstream]
            before = run.depth_cf_min[m0:m1, down] * 1000.0
            drop = before - run.depth_min[m0:m1, down] * 1000.0
            first.append(_first_run((drop >= SEEN_DROP_MM) & (drop >= SEEN_DROP_SHARE * before)))
    seen = [m for m in first if m >= 0]
    return (m0 + min(seen)) * 60.0 if seen else None


def _first_run(mask: np.ndarray) -> int:
    """Where the first run of ``SEEN_FOR_MIN`` true values starts (-1: none)."""
    run = 0
    for i, value in enumerate(mask):
        run = run + 1 if value else 0
        if run >= SEEN_FOR_MIN:
            return i - run + 1
    return -1


def _dry(run: SiteRun, onset: float) -> bool:
    m = int(onset // 60)
    window = run.weather.rain_mm_h[max(m - DRY_BEFORE_MIN, 0) : m + DRY_AFTER_MIN]
    return bool(window.size == 0 or window.max() <= DRY_RAIN_MM_H)


def _rained_before(run: SiteRun, t: float) -> bool:
    """Rain on the site (its mean over ``DRY_RAIN_MM_H``) within ``DRY_BEFORE_MIN`` before
    ``t``."""
    m = int(t // 60)
    window = run.weather.rain_mm_h[max(m - DRY_BEFORE_MIN, 0) : m + 1]
    return bool(window.size and window.max() > DRY_RAIN_MM_H)


def _overflow_episodes(series: np.ndarray, rim: float) -> list[int]:
    """Start minutes of the episodes where ``series`` reaches ``rim``."""
    starts, last_over = [], -(10**9)
    for m in np.flatnonzero(series >= rim):
        if m - last_over > OVERFLOW_GAP_MIN:
            starts.append(int(m))
        last_over = m
    return starts


def score_site(run: SiteRun, baseline: bool = False) -> SiteScore:
    """Judge the rules' events (``baseline``: those of the engine without the network)."""
    site = run.site
    events = run.baseline_events if baseline else run.events
    scored = [e for e in events if e[0] >= WARMUP_S]
    months = (run.days - WARMUP_S / 86400) / 30.44
    kinds: dict[str, KindScore] = defaultdict(KindScore)
    device_events: dict[str, int] = defaultdict(int)
    gauge_node = {g.name: g.node for g in site.gauges}
    depth_of = {g.name: site.nodes[g.node].depth_m for g in site.gauges}
    st = site.station
    pond_index = {p.name: i for i, p in enumerate(site.ponding)}
    minutes = run.depth_min.shape[0]

    def series(dev: str) -> tuple[np.ndarray, float] | None:
        """The device's true level (m) per minute and its rim (m)."""
        if dev in gauge_node:
            return run.depth_min[:, gauge_node[dev]], depth_of[dev]
        if dev in (st.gauge, st.controller):
            return run.ww_min, st.overflow_mm / 1000.0
        return None

    # -- blockages
    onsets = {id(b): blockage_onset(run, b) for b in run.scenario.blockages}
    dry_delays, wet_delays, unobservable = [], [], 0
    for b in run.scenario.blockages:
        onset = onsets[id(b)]
        if not _seen(run, b, onset):
            unobservable += 1
            continue
        first = next(
            (
                t
                for t, _, kind, _, data in scored
                if kind == "sewer.blockage_suspected"
                and data.get("reach") in b.reaches
                and b.t0 - 60 <= t <= b.t1 + AFTER_CLEARED_MIN * 60
            ),
            None,
        )
        delay = math.inf if first is None else max(first - onset, 0.0) / 60.0
        (dry_delays if _dry(run, onset) else wet_delays).append(delay)

    # -- overflows at gauged manholes and the wet well
    leads, ungauged = [], 0
    overflow_warnings: list[tuple[str, float, float | None]] = []
    points = [(g.name, run.depth_min[:, g.node], depth_of[g.name]) for g in site.gauges]
    points.append((st.controller, run.ww_min, st.overflow_mm / 1000.0 - 0.005))
    tops = {r.upstream: r.id for r in run.network.reaches}
    for dev, level, rim in points:
        for m in _overflow_episodes(level, rim):
            t = m * 60.0
            if t < WARMUP_S:
                continue
            warnings = [
                e[0]
                for e in scored
                if t - LEAD_LOOKBACK_MIN * 60 <= e[0] <= t
                and (
                    (e[2] == "overflow.risk" and e[1] == dev)
                    or (e[2] == "sewer.blockage_suspected" and e[4].get("reach") == tops.get(dev))
                )
            ]
            leads.append((t - min(warnings)) / 60.0 if warnings else 0.0)
            overflow_warnings.append((dev, t, min(warnings) if warnings else None))
    gauged = set(gauge_node.values())
    for i, node in enumerate(site.nodes):
        if i not in gauged:
            ungauged += len(_overflow_episodes(run.depth_min[:, i], node.depth_m))

    # -- every raised event, true or false
    active_blockages = [
        (b.t0 - 60, b.t1 + AFTER_CLEARED_MIN * 60, set(b.reaches)) for b in run.scenario.blockages
    ]
    pump_incidents = [
        (p.t0, p.t1 + AFTER_CLEARED_MIN * 60, p.kind) for p in run.scenario.pump_incidents
    ]
    level_cfg, flood_cfg = LevelConfig(), FloodConfig()
    for t, dev, kind, _sev, data in scored:
        if kind.startswith("device."):
            device_events[kind] += 1
            continue
        if kind not in RAISES:
            continue
        score = kinds[kind]
        score.raised += 1
        m = min(int(t // 60), minutes - 1)
        near = slice(max(m - NEAR_MIN, 0), min(m + NEAR_MIN + 1, minutes))
        verdict: bool | None
        if kind == "sewer.blockage_suspected":
            verdict = any(a <= t <= b and data.get("reach") in r for a, b, r in active_blockages)
        elif kind == "overflow.risk":
            reasons = data.get("reasons") or []
            tripped = any(a <= t <= b and k == "tripped" for a, b, k in pump_incidents)
            found = series(dev)
            ahead = slice(m, min(m + RISK_HORIZON_MIN + 1, minutes))
            if found is None:
                verdict = False
            else:
                level, rim = found
                peak = float(level[ahead].max())
                verdict = (
                    True
                    if peak >= rim - 0.005
                    else None
                    if peak >= NEAR_MISS_SHARE * rim
                    else False
                )
            if verdict is not True and tripped and any("faulted" in r for r in reasons):
                verdict = True
            if verdict is not True and dev in gauge_node:  # blocked below: the risk was real
                path = set(site.downstream_path(gauge_node[dev]))
                verdict = (
                    True
                    if any(b.t0 <= t <= b.t1 and b.link in path for b in run.scenario.blockages)
                    else verdict
                )
        elif kind == "wet_well.fault":
            verdict = any(a <= t <= b for a, b, _ in pump_incidents)
        elif kind == "flood.ponding":
            depth = run.pond_min[near, pond_index[dev]] * 1000.0
            verdict = bool(depth.size and depth.max() >= PONDING_TRUE_SHARE * flood_cfg.ponding_mm)
        elif kind in ("level.high", "level.high_high"):
            found = series(dev)
            share = HIGH_FRACTION if kind == "level.high" else HIGH_HIGH_FRACTION
            level, rim = found if found else (None, 0.0)
            verdict = bool(
                level is not None
                and level[near].max() * 1000.0 >= share * rim * 1000.0 - LEVEL_TOLERANCE_MM
            )
        else:  # level.rising
            found = series(dev)
            window = int(level_cfg.rise_window_s // 60)
            need = 0.5 * (level_cfg.rise_mm_per_min or 0.0) * window / 1000.0
            verdict = False
            if found is not None:
                level = found[0]
                lo, hi = max(m - NEAR_MIN - window, 0), min(m + NEAR_MIN, minutes - 1)
                rises = level[lo + window : hi + 1] - level[lo : hi + 1 - window]
                verdict = bool(rises.size and rises.max() >= need)
        if verdict is None:
            score.near_miss += 1
        elif verdict:
            score.true += 1
        else:
            score.false += 1
            score.false_at.append((t, dev))
            score.false_data.append(data)
    # a wet well cycling: the station's false raises but those of a storm's overflow warning
    # (a storm that filled it less than foretold is the overflow rule's false alarm, counted
    # with overflow.risk, and apart here)
    wet_well_devices = {st.gauge, st.controller}
    wet_well_false = wet_well_storm_false = 0
    for kind, ks in kinds.items():
        for t, dev in ks.false_at:
            if dev not in wet_well_devices:
                continue
            if kind != "wet_well.fault" and _rained_before(run, t):
                wet_well_storm_false += 1
            else:
                wet_well_false += 1
    return SiteScore(
        name=site.name,
        months=months,
        kinds=dict(kinds),
        blockages_dry=dry_delays,
        blockages_wet=wet_delays,
        blockages_unobservable=unobservable,
        overflow_leads=leads,
        overflow_warnings=overflow_warnings,
        overflows_ungauged=ungauged,
        wet_well_false=wet_well_false,
        wet_well_storm_false=wet_well_storm_false,
        device_events=dict(device_events),
        readings=run.readings,
    )


def is_alarm(kind: str) -> bool:
    return DEFAULT_SEVERITY[kind].is_alarm
