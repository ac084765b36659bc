"""The events behind the figures, for a person to read: ``benchmarks/sewer.py --dump DIR``.

For each site, ``DIR/<site>.jsonl`` holds one JSON object per line:

- ``{"what": "false", ...}``: each false raise (kind, device, minute, its ``data``), the
  device's true level (mm, every ``STEP_MIN``) from ``BEFORE_MIN`` before to ``AFTER_MIN``
  after with its rim, the site's mean rain (mm/h) over the same span, and the events the
  rules raised on that device around it; a false ``sewer.blockage_suspected`` also its reach's
  downstream gauge's true level (``downstream_mm``) and what truly happened on the site within
  ``NEARBY_S`` (``incidents``: blockages on any reach, gauge and pump incidents, clogged
  rain gauges, with their minutes): the situation the rule mistook for a blockage;
- ``{"what": "overflow", ...}``: each overflow at a gauge or the wet well, its lead (minutes
  from the first warning to the rim; none: 0) and the same traces before it;
- ``{"what": "blockage", ...}``: each blockage (pipe, reaches with their length, sudden or
  growing, share blocked, minutes it lasted), whether it was in dry weather and seen, its
  onset, when its gauges first showed it (``seen_min``: no rule can tell of it sooner), the
  first ``sewer.blockage_suspected`` naming its reach and the delay from onset, and each of its
  reach's end gauges' level with and without it (``level_mm`` / ``unblocked_mm``) from the
  onset.

What an engineer needs to see why a rule fired or was late; nothing here is scored.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .run import SiteRun
from .scoring import AFTER_CLEARED_MIN, SiteScore, _dry, blockage_onset, seen_at

__all__ = ["write_dump"]

BEFORE_MIN = 90
AFTER_MIN = 120
STEP_MIN = 2
NEARBY_S = 4 * 3600.0


def _trace(series: np.ndarray, m: int, scale: float = 1.0) -> list[float]:
    lo, hi = max(m - BEFORE_MIN, 0), min(m + AFTER_MIN + 1, series.shape[0])
    return [round(float(v) * scale, 1) for v in series[lo:hi:STEP_MIN]]


def write_dump(run: SiteRun, score: SiteScore, directory: Path) -> Path:
    """Write ``run``'s false raises and overflows (``score``) to ``directory``."""
    site, st = run.site, run.site.station
    manholes = {m.gauge: m for m in run.network.manholes}
    polls = {g.name: g.poll_s for g in site.gauges}

    def level(dev: str) -> tuple[np.ndarray | None, float | None]:
        gauge = next((g for g in site.gauges if g.name == dev), None)
        if gauge is not None:
            return run.depth_min[:, gauge.node], site.nodes[gauge.node].depth_m * 1000.0
        if dev in (st.gauge, st.controller):
            return run.ww_min, st.overflow_mm
        pond = next((i for i, p in enumerate(site.ponding) if p.name == dev), None)
        if pond is not None:
            return run.pond_min[:, pond], None
        return None, None

    def nearby(dev: str, t: float) -> list:
        return [
            [round(e[0] / 60.0, 1), e[2], e[4].get("reasons") or e[4].get("faults")]
            for e in run.events
            if e[1] == dev and abs(e[0] - t) <= NEARBY_S
        ]

    def record(what: str, dev: str, t: float, **extra) -> dict:
        m = int(t // 60)
        series, rim = level(dev)
        manhole = manholes.get(dev)
        return {
            "what": what,
            "dev": dev,
            "t_min": round(t / 60.0, 1),
            **extra,
            "rim_mm": rim,
            "crown_mm": manhole.crown_mm if manhole else None,
            "storm_mm_h": manhole.storm_mm_h if manhole else None,
            "poll_s": polls.get(dev),
            "trace_from_min": -min(BEFORE_MIN, m),
            "trace_step_min": STEP_MIN,
            "level_mm": None if series is None else _trace(series, m, 1000.0),
            "rain_mm_h": _trace(run.weather.rain_mm_h, m),
            "events": nearby(dev, t),
        }

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{site.name}.jsonl"
    with path.open("w") as out:
        for kind, ks in sorted(score.kinds.items()):
            for (t, dev), data in zip(ks.false_at, ks.false_data, strict=True):
                entry = record("false", dev, t, kind=kind, data=data)
                if kind == "sewer.blockage_suspected":
                    entry |= _reach_context(run, t, data, level)
                out.write(json.dumps(entry) + "\n")
        for (dev, t, first), lead in zip(
            score.overflow_warnings, score.overflow_leads, strict=True
        ):
            warned = None if first is None else round(first / 60.0, 1)
            out.write(
                json.dumps(record("overflow", dev, t, lead_min=round(lead, 1), warned_min=warned))
                + "\n"
            )
        for entry in _blockages(run):
            out.write(json.dumps(entry) + "\n")
    return path


def _reach_context(run: SiteRun, t: float, data: dict, level) -> dict:
    """Beside a false blockage: the reach's downstream gauge's level and the site's true
    incidents within ``NEARBY_S``."""
    m = int(t // 60)
    down = data.get("downstream")
    series = level(down)[0] if down else None
    sc, links = run.scenario, run.site.links
    incidents: list[list] = [
        ["blockage", links[b.link].id, list(b.reaches), _minutes(b.t0), _minutes(b.t1)]
        for b in sc.blockages
        if b.t0 - NEARBY_S <= t <= b.t1 + NEARBY_S
    ]
    for label, items in (("gauge", sc.gauge_incidents), ("clog", sc.clogs)):
        incidents += [
            [label, g.kind, g.device, _minutes(g.t0), _minutes(g.t1)]
            for g in items
            if g.t0 - NEARBY_S <= t <= g.t1 + NEARBY_S
        ]
    incidents += [
        ["pump", p.kind, p.pump, _minutes(p.t0), _minutes(p.t1)]
        for p in sc.pump_incidents
        if p.t0 - NEARBY_S <= t <= p.t1 + NEARBY_S
    ]
    return {
        "downstream_mm": None if series is None else _trace(series, m, 1000.0),
        "incidents": incidents,
        "drift_mm_per_day": {
            dev: round(sc.drift_mm_per_day.get(dev, 0.0), 2)
            for dev in (data.get("upstream"), down)
            if dev
        },
    }


def _minutes(t: float | None) -> float | None:
    return None if t is None else round(t / 60.0, 1)


def _blockages(run: SiteRun) -> list[dict]:
    """One record per blockage (see the module docstring)."""
    site = run.site
    reaches = {r.id: r for r in run.network.reaches}
    node_of = {g.name: g.node for g in site.gauges}
    out = []
    for b in run.scenario.blockages:
        onset = blockage_onset(run, b)
        seen = seen_at(run, b, onset)
        first = next(
            (
                e[0]
                for e in run.events
                if e[2] == "sewer.blockage_suspected"
                and e[4].get("reach") in b.reaches
                and b.t0 - 60 <= e[0] <= b.t1 + AFTER_CLEARED_MIN * 60
            ),
            None,
        )
        m = int(onset // 60)
        ends = {
            name
            for rid in b.reaches
            for name in (reaches[rid].upstream, reaches[rid].downstream)
            if name is not None
        }
        out.append(
            {
                "what": "blockage",
                "link": site.links[b.link].id,
                "reaches": {rid: reaches[rid].length_m for rid in b.reaches},
                "sudden": b.ramp_s <= 120,
                "fraction": round(b.fraction, 3),
                "lasted_min": round((b.t1 - b.t0) / 60.0),
                "dry": _dry(run, onset),
                "onset_min": _minutes(onset),
                "seen_min": _minutes(seen),
                "raised_min": _minutes(first),
                "delay_min": None if first is None else round(max(first - onset, 0.0) / 60, 1),
                "trace_step_min": STEP_MIN,
                "level_mm": {
                    name: [
                        round(float(v) * 1000.0, 1)
                        for v in run.depth_min[m : m + AFTER_CLEARED_MIN : STEP_MIN, node_of[name]]
                    ]
                    for name in sorted(ends)
                },
                "unblocked_mm": {
                    name: [
                        round(float(v) * 1000.0, 1)
                        for v in run.depth_cf_min[
                            m : m + AFTER_CLEARED_MIN : STEP_MIN, node_of[name]
                        ]
                    ]
                    for name in sorted(ends)
                },
            }
        )
    return out
