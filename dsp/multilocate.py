"""Three or more loggers: one leak position from every pair's delay, and whether they agree.

Two loggers give one delay and one position between them. Three or more give a delay per pair,
and those delays must agree: for one source, t_AB + t_BC = t_AC for every triplet, whatever the
pipes between them. A pair that breaks it measured something else (a second source, a pump, a
wrong spacing, a clock error), and the solver says which.

``locate_delays`` takes the loggers' travel-time functions (``travel_time(x)``: seconds from
candidate point ``x`` to the logger along the pipes) sampled on a grid of candidate points,
and the measured pair delays ``t_A - t_B``. Each candidate predicts every pair's delay
``T_A(x) - T_B(x)``; the leak is where the confidence-weighted squared misfit over all pairs
is least (least squares on the pipe graph, no straight lines). The residual at that point (ms,
weighted RMS) says how well one source explains all delays. The grid comes from
``network_candidates`` (every pipe of a ``dsp.network.PipeNetwork``, travel time per pipe
material) or ``line_candidates`` (loggers along one pipe at one wave speed).

Consistency: ``triplet_closures`` lists |t_AB + t_BC - t_AC| per triplet measured. When the
residual or a closure exceeds the tolerance, the solver refits without each logger and without
each pair in turn and names the one whose removal lets the rest agree (``disagreeing``): a
pair ``"A/B"`` when dropping it alone does, else a logger when dropping all its pairs does.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dsp.network import PipeNetwork, PipePosition

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "Candidates",
    "MultiLocation",
    "PairDelay",
    "line_candidates",
    "locate_delays",
    "network_candidates",
    "triplet_closures",
]

DEFAULT_TOLERANCE_S = 0.5e-3  # delays agreeing within 0.5 ms are one source
DEFAULT_STEP_M = 0.25
MIN_CONFIDENCE = 0.5  # pairs below this take no part (their peak may be noise)


@dataclass(frozen=True, slots=True)
class PairDelay:
    """A measured ``tdoa_s = t_a - t_b`` and the correlation's confidence (0..1)."""

    a: str
    b: str
    tdoa_s: float
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class Candidates:
    """Candidate leak points: where each lies (``segments``/``offsets_m``, or a line's
    metres) and the travel time (s) from each point to each logger."""

    segments: tuple[str, ...]
    offsets_m: np.ndarray
    travel_s: Mapping[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class MultiLocation:
    """Where one source explains the delays best, and how well.

    ``position`` on the network (segment ``""`` for a line: ``offset_m`` from the first
    logger); ``residual_ms`` the weighted RMS misfit there; ``pair_residuals_ms`` per pair
    used ("A/B" -> measured minus predicted); ``closures_ms`` per triplet ("A/B/C");
    ``consistent`` when the residual and every closure are within tolerance; otherwise
    ``disagreeing`` names a logger or a pair "A/B" (None when none stands out);
    ``used``/``ignored`` the pairs taking part or left out for low confidence.
    """

    position: PipePosition
    residual_ms: float
    pair_residuals_ms: dict[str, float]
    closures_ms: dict[str, float]
    consistent: bool
    disagreeing: str | None
    used: tuple[str, ...]
    ignored: tuple[str, ...]
    at_edge: bool


def _key(a: str, b: str) -> str:
    return f"{a}/{b}"


def network_candidates(
    network: PipeNetwork, loggers: Mapping[str, PipePosition], step_m: float = DEFAULT_STEP_M
) -> Candidates:
    """Points every ``step_m`` along every pipe with their travel times to each logger.

    Raises ``NetworkError`` for a logger off the network, ``ValueError`` for a bad step."""
    if not (step_m > 0 and math.isfinite(step_m)):
        raise ValueError(f"step_m must be positive, got {step_m}")
    fields = {name: network.time_field(pos) for name, pos in loggers.items()}
    segs: list[str] = []
    offsets = []
    times: dict[str, list[np.ndarray]] = {name: [] for name in loggers}
    for seg in network.segments.values():
        count = max(2, math.ceil(seg.length_m / step_m) + 1)
        x = np.linspace(0.0, seg.length_m, count)
        segs.extend([seg.id] * count)
        offsets.append(x)
        for name, field in fields.items():
            times[name].append(network.time_at(field, seg.id, x))
    return Candidates(
        tuple(segs),
        np.concatenate(offsets),
        {name: np.concatenate(parts) for name, parts in times.items()},
    )


def line_candidates(
    positions_m: Mapping[str, float], wave_speed_m_s: float, step_m: float = DEFAULT_STEP_M
) -> Candidates:
    """Points every ``step_m`` between the outermost of loggers placed along one pipe
    (metres from its start) at one wave speed. Raises ``ValueError`` for a bad speed or step,
    or fewer than two distinct positions."""
    if not (wave_speed_m_s > 0 and math.isfinite(wave_speed_m_s)):
        raise ValueError(f"wave speed must be positive, got {wave_speed_m_s}")
    if not (step_m > 0 and math.isfinite(step_m)):
        raise ValueError(f"step_m must be positive, got {step_m}")
    lo, hi = min(positions_m.values()), max(positions_m.values())
    if not hi > lo:
        raise ValueError("the loggers must sit at different positions along the pipe")
    x = np.linspace(lo, hi, max(2, math.ceil((hi - lo) / step_m) + 1))
    travel = {name: np.abs(x - p) / wave_speed_m_s for name, p in positions_m.items()}
    return Candidates(tuple([""] * x.size), x, travel)


def triplet_closures(delays: Sequence[PairDelay]) -> dict[str, float]:
    """|t_AB + t_BC - t_AC| in seconds for every triplet whose three pairs were measured
    (either order of a pair; a reversed pair's delay changes sign). Key "A/B/C"."""
    measured: dict[tuple[str, str], float] = {}
    for d in delays:
        measured[(d.a, d.b)] = d.tdoa_s
        measured[(d.b, d.a)] = -d.tdoa_s
    names = sorted({d.a for d in delays} | {d.b for d in delays})
    out = {}
    for a, b, c in itertools.combinations(names, 3):
        if (a, b) in measured and (b, c) in measured and (a, c) in measured:
            out[f"{a}/{b}/{c}"] = abs(measured[(a, b)] + measured[(b, c)] - measured[(a, c)])
    return out


def _fit(cands: Candidates, delays: Sequence[PairDelay]) -> tuple[int, float, np.ndarray]:
    """Index of the best candidate, weighted RMS residual there (s), residual per pair."""
    cost = np.zeros(cands.offsets_m.size)
    total_w = 0.0
    preds = []
    for d in delays:
        pred = cands.travel_s[d.a] - cands.travel_s[d.b]
        preds.append(pred)
        w = max(d.confidence, 1e-3)
        cost += w * (d.tdoa_s - pred) ** 2
        total_w += w
    best = int(np.argmin(cost))
    per_pair = np.array([d.tdoa_s - p[best] for d, p in zip(delays, preds, strict=True)])
    return best, math.sqrt(cost[best] / total_w), per_pair


def locate_delays(
    cands: Candidates,
    delays: Sequence[PairDelay],
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    min_confidence: float = MIN_CONFIDENCE,
) -> MultiLocation:
    """Least-squares position of one source from pair delays (module docstring).

    Raises ``ValueError`` when fewer than two confident pairs remain, a pair names a logger
    the candidates do not know, or the tolerance is not positive.
    """
    if not (tolerance_s > 0 and math.isfinite(tolerance_s)):
        raise ValueError(f"tolerance must be positive, got {tolerance_s}")
    for d in delays:
        for name in (d.a, d.b):
            if name not in cands.travel_s:
                raise ValueError(f"pair {d.a}/{d.b}: unknown logger {name!r}")
    used = [d for d in delays if d.confidence >= min_confidence]
    ignored = tuple(_key(d.a, d.b) for d in delays if d.confidence < min_confidence)
    if len(used) < 2:
        raise ValueError(
            f"{len(used)} pair(s) with confidence >= {min_confidence:g}: "
            "need two or more to locate from several loggers"
        )
    best, residual, per_pair = _fit(cands, used)
    closures = triplet_closures(used)
    consistent = residual <= tolerance_s and all(c <= tolerance_s for c in closures.values())
    disagreeing = None if consistent else _who_disagrees(cands, used, tolerance_s)
    offsets = cands.offsets_m
    at_edge = cands.segments[best] == "" and best in (0, offsets.size - 1)
    return MultiLocation(
        position=PipePosition(cands.segments[best], float(offsets[best])),
        residual_ms=residual * 1e3,
        pair_residuals_ms={
            _key(d.a, d.b): float(r) * 1e3 for d, r in zip(used, per_pair, strict=True)
        },
        closures_ms={k: v * 1e3 for k, v in closures.items()},
        consistent=consistent,
        disagreeing=disagreeing,
        used=tuple(_key(d.a, d.b) for d in used),
        ignored=ignored,
        at_edge=at_edge,
    )


def _who_disagrees(cands: Candidates, used: Sequence[PairDelay], tolerance_s: float) -> str | None:
    """The pair, else the logger, whose removal leaves the others agreeing (residual and
    closures within tolerance), the smallest such residual winning. A pair first: one bad
    correlation is the likelier fault; a logger whose every pair is off (its clock, its
    placement) is found when no single pair explains it."""
    options: list[tuple[str, list[PairDelay]]] = [
        (_key(d.a, d.b), [e for e in used if e is not d]) for d in used
    ]
    loggers = sorted({d.a for d in used} | {d.b for d in used})
    by_logger = [(name, [d for d in used if name not in (d.a, d.b)]) for name in loggers]
    for group in (options, by_logger):
        best_name, best_residual = None, math.inf
        for name, rest in group:
            if len(rest) < 2:
                continue
            _, residual, _ = _fit(cands, rest)
            closures = triplet_closures(rest).values()
            agree = residual <= tolerance_s and all(c <= tolerance_s for c in closures)
            if agree and residual < best_residual:
                best_name, best_residual = name, residual
        if best_name is not None:
            return best_name
    return None
