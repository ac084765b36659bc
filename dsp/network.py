"""The pipe network as a graph: paths along pipes, listening reach, coverage, leak candidates.

Distances here are always along the pipes, never straight lines: leak noise travels in the
water column and the wall, so a logger 20 m from a leak across a street hears nothing if the
pipe between them is 300 m long.

Inputs are plain frozen dataclasses (``NetworkNode``, ``PipeSegment``, ``PipePosition``,
``Listener``): ``dsp`` imports nothing of the daemon's, the caller converts its own site model.
Positions are an offset in metres from the segment's ``start`` node.

The reach model (see docs/coverage-and-location.md):
- a leak of source level ``leak_level_db`` (dB re the same unit as the loggers' noise floor)
  loses ``listening_attenuation_db_per_m`` of each pipe it crosses (``dsp.pipes``) plus
  ``junction_loss_db`` per junction it passes;
- a logger hears it when the level arriving is at least ``detect_margin_db`` above its noise
  floor: the loss budget is ``leak_level_db - noise_floor_db - detect_margin_db``;
- the path that matters is the one of least loss (Dijkstra with loss in dB as edge weight), so
  reach on mixed networks follows metal further than plastic.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dsp.pipes import get_material, listening_attenuation_db_per_m, wave_speed

if TYPE_CHECKING:  # numpy is imported where sampled losses are computed (coverage, candidates):
    import numpy as np  # paths and neighbour pairs (the resident daemon's use) need none

__all__ = [
    "DEFAULT_DETECT_MARGIN_DB",
    "DEFAULT_LEAK_LEVEL_DB",
    "DEFAULT_MAX_LEAK_LEVEL_DB",
    "CandidateStretch",
    "Coverage",
    "Listener",
    "ListenerReach",
    "NetworkError",
    "NetworkNode",
    "PathLeg",
    "PipeNetwork",
    "PipePath",
    "PipePosition",
    "PipeSegment",
    "ReachModel",
    "Stretch",
]

# A nominal leak: 20 dB above a 0 dB floor at the leak, heard when 5 dB above the floor at the
# logger -> a 15 dB budget -> ~150 m on DN150 iron, ~25 m on DN110 PE (dsp.pipes).
DEFAULT_LEAK_LEVEL_DB = 20.0
DEFAULT_DETECT_MARGIN_DB = 5.0
# The loudest leak the candidate search considers (bounds the search when only one logger hears).
DEFAULT_MAX_LEAK_LEVEL_DB = 40.0
# Candidate search: sample spacing along pipes, and the misfit accepted around the best fit.
CANDIDATE_STEP_M = 1.0
DEFAULT_CANDIDATE_TOLERANCE_DB = 3.0
# Stretches shorter than this are rounding, not gaps.
MIN_STRETCH_M = 0.01


class NetworkError(ValueError):
    """The network or a position on it is invalid (unknown id, offset beyond the pipe, ...)."""


@dataclass(frozen=True, slots=True)
class NetworkNode:
    """A junction at local x/y metres (used for drawing only; lengths come from the pipes)."""

    id: str
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class PipeSegment:
    """A pipe from node ``start`` to node ``end``; ``None`` sizes mean the material default."""

    id: str
    start: str
    end: str
    material: str
    length_m: float
    diameter_mm: float | None = None
    wall_mm: float | None = None

    @property
    def wave_speed_m_s(self) -> float:
        return wave_speed(self.material, self.diameter_mm, self.wall_mm)

    @property
    def attenuation_db_per_m(self) -> float:
        """Listening attenuation: what limits how far along this pipe a logger hears."""
        return listening_attenuation_db_per_m(self.material, self.diameter_mm)


@dataclass(frozen=True, slots=True)
class PipePosition:
    """A point on the network: ``offset_m`` from the start node of ``segment``."""

    segment: str
    offset_m: float


@dataclass(frozen=True, slots=True)
class Listener:
    """A noise logger on the network with the in-band noise floor where it sits (dB)."""

    name: str
    position: PipePosition
    noise_floor_db: float = 0.0


@dataclass(frozen=True, slots=True)
class ReachModel:
    """How loud a leak is and how far above the floor it must arrive to be heard."""

    leak_level_db: float = DEFAULT_LEAK_LEVEL_DB
    detect_margin_db: float = DEFAULT_DETECT_MARGIN_DB
    junction_loss_db: float = 0.0

    def budget_db(self, noise_floor_db: float) -> float:
        """Loss a leak may suffer on its way and still be heard over ``noise_floor_db``."""
        return self.leak_level_db - noise_floor_db - self.detect_margin_db


@dataclass(frozen=True, slots=True)
class Stretch:
    """Part of one pipe, ``start_m`` < ``end_m`` counted from the segment's start node."""

    segment: str
    start_m: float
    end_m: float

    @property
    def length_m(self) -> float:
        return self.end_m - self.start_m


@dataclass(frozen=True, slots=True)
class PathLeg:
    """One pipe crossed by a path, walked from ``from_m`` to ``to_m`` (either direction)."""

    segment: str
    material: str
    from_m: float
    to_m: float
    wave_speed_m_s: float

    @property
    def length_m(self) -> float:
        return abs(self.to_m - self.from_m)

    @property
    def travel_time_s(self) -> float:
        return self.length_m / self.wave_speed_m_s


@dataclass(frozen=True, slots=True)
class PipePath:
    """The shortest path along pipes from position A to position B, leg by leg."""

    legs: tuple[PathLeg, ...]

    @property
    def length_m(self) -> float:
        return sum(leg.length_m for leg in self.legs)

    @property
    def travel_time_s(self) -> float:
        return sum(leg.travel_time_s for leg in self.legs)

    @property
    def materials(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(leg.material for leg in self.legs))

    def speed_legs(self) -> list[tuple[float, float]]:
        """``(length_m, wave_speed_m_s)`` per non-empty leg, for ``correlate.locate_on_legs``."""
        return [(leg.length_m, leg.wave_speed_m_s) for leg in self.legs if leg.length_m > 0]

    def position_at(self, distance_m: float) -> PipePosition:
        """The network position ``distance_m`` along the path from A.

        Raises ``NetworkError`` for a distance outside 0..length.
        """
        if not -1e-9 <= distance_m <= self.length_m + 1e-9:
            raise NetworkError(f"{distance_m:.2f} m is outside the {self.length_m:.2f} m path")
        walked = 0.0
        for leg in self.legs:
            if distance_m <= walked + leg.length_m or leg is self.legs[-1]:
                along = min(max(distance_m - walked, 0.0), leg.length_m)
                sign = 1.0 if leg.to_m >= leg.from_m else -1.0
                return PipePosition(leg.segment, leg.from_m + sign * along)
            walked += leg.length_m
        raise NetworkError("empty path")  # pragma: no cover - legs is never empty


@dataclass(frozen=True, slots=True)
class ListenerReach:
    """What one logger hears: the stretches and their total length; ``budget_db`` used."""

    listener: str
    budget_db: float
    stretches: tuple[Stretch, ...]
    own_pipe_reach_m: float

    @property
    def heard_length_m(self) -> float:
        return sum(s.length_m for s in self.stretches)


@dataclass(frozen=True, slots=True)
class Coverage:
    """Covered fraction of pipe length, each logger's reach, covered and uncovered stretches."""

    total_length_m: float
    covered_length_m: float
    reaches: tuple[ListenerReach, ...]
    covered: tuple[Stretch, ...]
    uncovered: tuple[Stretch, ...]
    model: ReachModel

    @property
    def covered_fraction(self) -> float:
        return self.covered_length_m / self.total_length_m if self.total_length_m else 0.0


@dataclass(frozen=True, slots=True)
class CandidateStretch:
    """Where a leak heard at the given levels can be: stretches whose misfit is within
    tolerance of the best, the best point, its misfit (dB RMS) and the source level it implies."""

    stretches: tuple[Stretch, ...]
    best: PipePosition
    best_misfit_db: float
    source_level_db: float
    heard_by: tuple[str, ...]


def _merge(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for lo, hi in sorted(intervals):
        if hi - lo < MIN_STRETCH_M:
            continue
        if merged and lo <= merged[-1][1] + MIN_STRETCH_M:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


class PipeNetwork:
    """An undirected graph of pipe segments between nodes. Immutable after construction."""

    def __init__(self, nodes: Sequence[NetworkNode], segments: Sequence[PipeSegment]) -> None:
        """Raises ``NetworkError`` for duplicate ids, unknown end nodes, a non-positive length,
        an unknown material or a bad diameter/wall."""
        self.nodes: dict[str, NetworkNode] = {}
        for node in nodes:
            if node.id in self.nodes:
                raise NetworkError(f"duplicate node id {node.id!r}")
            self.nodes[node.id] = node
        self.segments: dict[str, PipeSegment] = {}
        self._adjacent: dict[str, list[tuple[str, str]]] = {n: [] for n in self.nodes}
        self._speed: dict[str, float] = {}
        self._alpha: dict[str, float] = {}
        for seg in segments:
            if seg.id in self.segments:
                raise NetworkError(f"duplicate pipe id {seg.id!r}")
            for end in (seg.start, seg.end):
                if end not in self.nodes:
                    raise NetworkError(f"pipe {seg.id}: unknown node {end!r}")
            if not (seg.length_m > 0 and math.isfinite(seg.length_m)):
                raise NetworkError(f"pipe {seg.id}: length must be positive, got {seg.length_m}")
            try:
                get_material(seg.material)
                self._speed[seg.id] = seg.wave_speed_m_s
                self._alpha[seg.id] = seg.attenuation_db_per_m
            except ValueError as exc:
                raise NetworkError(f"pipe {seg.id}: {exc}") from exc
            self.segments[seg.id] = seg
            self._adjacent[seg.start].append((seg.id, seg.end))
            self._adjacent[seg.end].append((seg.id, seg.start))

    @property
    def total_length_m(self) -> float:
        return sum(s.length_m for s in self.segments.values())

    def segment(self, segment_id: str) -> PipeSegment:
        """Raises ``NetworkError`` for an unknown id."""
        try:
            return self.segments[segment_id]
        except KeyError:
            raise NetworkError(f"unknown pipe {segment_id!r}") from None

    def check_position(self, position: PipePosition) -> PipeSegment:
        """The segment a position lies on; raises ``NetworkError`` if it is off the pipe."""
        seg = self.segment(position.segment)
        if not 0.0 <= position.offset_m <= seg.length_m:
            raise NetworkError(
                f"offset {position.offset_m:g} m is outside pipe {seg.id} (0..{seg.length_m:g} m)"
            )
        return seg

    # --- shortest paths ----------------------------------------------------------------------

    def _edge_cost(self, seg: PipeSegment, length_m: float, weight: str) -> float:
        if weight == "length":
            return length_m
        if weight == "time":
            return length_m / self._speed[seg.id]
        return length_m * self._alpha[seg.id]

    def _dijkstra(
        self, origin: PipePosition, weight: str, junction_cost: float = 0.0
    ) -> tuple[dict[str, float], dict[str, tuple[str, str] | None]]:
        """Least cost from ``origin`` to every node, and the (segment, previous node) it came
        by (None for the origin's own segment ends)."""
        seg = self.check_position(origin)
        cost: dict[str, float] = {}
        came: dict[str, tuple[str, str] | None] = {}
        heap: list[tuple[float, str]] = []
        for node, length in (
            (seg.start, origin.offset_m),
            (seg.end, seg.length_m - origin.offset_m),
        ):
            c = self._edge_cost(seg, length, weight)
            if c < cost.get(node, math.inf):
                cost[node] = c
                came[node] = None
                heapq.heappush(heap, (c, node))
        done: set[str] = set()
        while heap:
            c, node = heapq.heappop(heap)
            if node in done:
                continue
            done.add(node)
            for seg_id, other in self._adjacent[node]:
                nxt = (
                    c
                    + junction_cost
                    + self._edge_cost(self.segments[seg_id], self.segments[seg_id].length_m, weight)
                )
                if nxt < cost.get(other, math.inf):
                    cost[other] = nxt
                    came[other] = (seg_id, node)
                    heapq.heappush(heap, (nxt, other))
        return cost, came

    def path_between(self, a: PipePosition, b: PipePosition) -> PipePath:
        """The shortest path along pipes from ``a`` to ``b``.

        Raises ``NetworkError`` for a position off the network or when no pipe connects them.
        """
        seg_a = self.check_position(a)
        seg_b = self.check_position(b)
        cost, came = self._dijkstra(a, "length")
        best = math.inf
        best_legs: list[PathLeg] = []
        if seg_a.id == seg_b.id:
            best = abs(b.offset_m - a.offset_m)
            best_legs = [self._leg(seg_a, a.offset_m, b.offset_m)]
        for node, offset_b in ((seg_b.start, 0.0), (seg_b.end, seg_b.length_m)):
            if node not in cost:
                continue
            total = cost[node] + abs(b.offset_m - offset_b)
            if total < best - 1e-9:
                best = total
                legs = self._walk_back(node, came, a, seg_a)
                legs.append(self._leg(seg_b, offset_b, b.offset_m))
                best_legs = legs
        if math.isinf(best):
            raise NetworkError(f"no pipe connects {a.segment} and {b.segment}")
        return PipePath(tuple(best_legs))

    def _leg(self, seg: PipeSegment, from_m: float, to_m: float) -> PathLeg:
        return PathLeg(seg.id, seg.material, from_m, to_m, self._speed[seg.id])

    def _walk_back(
        self,
        node: str,
        came: Mapping[str, tuple[str, str] | None],
        origin: PipePosition,
        seg_origin: PipeSegment,
    ) -> list[PathLeg]:
        legs: list[PathLeg] = []
        while True:
            step = came[node]
            if step is None:
                end_m = 0.0 if node == seg_origin.start else seg_origin.length_m
                legs.append(self._leg(seg_origin, origin.offset_m, end_m))
                break
            seg_id, prev = step
            seg = self.segments[seg_id]
            from_m = 0.0 if prev == seg.start else seg.length_m
            legs.append(self._leg(seg, from_m, seg.length_m - from_m))
            node = prev
        legs.reverse()
        return legs

    # --- losses from a point to everywhere -------------------------------------------------

    def loss_field(
        self, origin: PipePosition, junction_loss_db: float = 0.0
    ) -> dict[str, tuple[float, float, float | None]]:
        """Per segment: least loss (dB) from ``origin`` to its start node, to its end node, and
        the origin's offset if it lies on this segment (else None). ``loss_at`` uses this."""
        cost, _ = self._dijkstra(origin, "loss", junction_loss_db)
        out = {}
        for seg in self.segments.values():
            own = origin.offset_m if seg.id == origin.segment else None
            # Passing the junction into this segment costs one more junction loss.
            out[seg.id] = (
                cost.get(seg.start, math.inf) + junction_loss_db,
                cost.get(seg.end, math.inf) + junction_loss_db,
                own,
            )
        return out

    def loss_at(
        self, field: Mapping[str, tuple[float, float, float | None]], segment: str, x: np.ndarray
    ) -> np.ndarray:
        """Loss (dB) from the field's origin to offsets ``x`` on ``segment``."""
        return self._cost_at(field, segment, x, self._alpha[segment])

    def _cost_at(
        self,
        field: Mapping[str, tuple[float, float, float | None]],
        segment: str,
        x: np.ndarray,
        per_m: float,
    ) -> np.ndarray:
        """Least cost from a field's origin to offsets ``x`` on ``segment``, ``per_m`` the
        cost of a metre of it: through either end node, or straight along it from the origin
        when the origin lies on it."""
        import numpy as np  # here: paths and neighbour pairs (the resident daemon) need none

        from_start, from_end, own = field[segment]
        length = self.segments[segment].length_m
        cost = np.minimum(from_start + per_m * x, from_end + per_m * (length - x))
        if own is not None:
            cost = np.minimum(cost, per_m * np.abs(x - own))
        return cost

    # --- travel times from a point to everywhere -------------------------------------------

    def time_field(self, origin: PipePosition) -> dict[str, tuple[float, float, float | None]]:
        """Per segment: least travel time (s) of leak noise from ``origin`` to its start node,
        to its end node, and the origin's offset if it lies on this segment (else None).
        ``time_at`` uses this. Raises ``NetworkError`` for a position off the network."""
        cost, _ = self._dijkstra(origin, "time")
        return {
            seg.id: (
                cost.get(seg.start, math.inf),
                cost.get(seg.end, math.inf),
                origin.offset_m if seg.id == origin.segment else None,
            )
            for seg in self.segments.values()
        }

    def time_at(
        self, field: Mapping[str, tuple[float, float, float | None]], segment: str, x: np.ndarray
    ) -> np.ndarray:
        """Travel time (s) from the field's origin to offsets ``x`` on ``segment``."""
        return self._cost_at(field, segment, x, 1.0 / self._speed[segment])

    def loss_at_point(
        self, field: Mapping[str, tuple[float, float, float | None]], segment: str, x: float
    ) -> float:
        """``loss_at`` for one offset, in plain floats."""
        seg = self.segments[segment]
        alpha = self._alpha[segment]
        from_start, from_end, own = field[segment]
        loss = min(from_start + alpha * x, from_end + alpha * (seg.length_m - x))
        return loss if own is None else min(loss, alpha * abs(x - own))

    # --- reach and coverage ----------------------------------------------------------------

    def reach(self, listener: Listener, model: ReachModel | None = None) -> ListenerReach:
        """The stretches ``listener`` hears a ``model`` leak on. Raises ``NetworkError`` if the
        listener is off the network."""
        model = model or ReachModel()
        own = self.check_position(listener.position)
        budget = model.budget_db(listener.noise_floor_db)
        field = self.loss_field(listener.position, model.junction_loss_db)
        stretches: list[Stretch] = []
        for seg in self.segments.values():
            alpha = self._alpha[seg.id]
            from_start, from_end, at = field[seg.id]
            parts = []
            if from_start < budget:
                parts.append((0.0, min(seg.length_m, (budget - from_start) / alpha)))
            if from_end < budget:
                parts.append((max(0.0, seg.length_m - (budget - from_end) / alpha), seg.length_m))
            if at is not None and budget > 0:
                r = budget / alpha
                parts.append((max(0.0, at - r), min(seg.length_m, at + r)))
            stretches.extend(Stretch(seg.id, lo, hi) for lo, hi in _merge(parts))
        own_reach = max(budget, 0.0) / self._alpha[own.id]
        return ListenerReach(listener.name, budget, tuple(stretches), own_reach)

    def coverage(self, listeners: Sequence[Listener], model: ReachModel | None = None) -> Coverage:
        """Covered fraction of the network for ``listeners`` and a ``model`` leak.

        Raises ``NetworkError`` for a listener off the network or duplicate listener names.
        """
        model = model or ReachModel()
        names = [lst.name for lst in listeners]
        if len(set(names)) != len(names):
            raise NetworkError("listener names must be unique")
        reaches = tuple(self.reach(lst, model) for lst in listeners)
        covered: list[Stretch] = []
        uncovered: list[Stretch] = []
        for seg in self.segments.values():
            heard = _merge(
                (s.start_m, s.end_m) for r in reaches for s in r.stretches if s.segment == seg.id
            )
            covered.extend(Stretch(seg.id, lo, hi) for lo, hi in heard)
            edge = 0.0
            for lo, hi in heard:
                if lo - edge >= MIN_STRETCH_M:
                    uncovered.append(Stretch(seg.id, edge, lo))
                edge = hi
            if seg.length_m - edge >= MIN_STRETCH_M:
                uncovered.append(Stretch(seg.id, edge, seg.length_m))
        return Coverage(
            total_length_m=self.total_length_m,
            covered_length_m=sum(s.length_m for s in covered),
            reaches=reaches,
            covered=tuple(covered),
            uncovered=tuple(uncovered),
            model=model,
        )

    def neighbour_pairs(
        self, listeners: Sequence[Listener], model: ReachModel | None = None
    ) -> list[tuple[str, str]]:
        """Pairs of listeners worth correlating: no third listener on the shortest path between
        them, and a leak midway (in loss) heard by both (path loss <= both budgets summed)."""
        model = model or ReachModel()
        pairs = []
        for i, a in enumerate(listeners):
            field = self.loss_field(a.position, model.junction_loss_db)
            for b in listeners[i + 1 :]:
                loss = self.loss_at_point(field, b.position.segment, b.position.offset_m)
                if loss > model.budget_db(a.noise_floor_db) + model.budget_db(b.noise_floor_db):
                    continue
                try:
                    path = self.path_between(a.position, b.position)
                except NetworkError:
                    continue
                others = [c for c in listeners if c.name not in (a.name, b.name)]
                if not any(_on_path(path, c.position) for c in others):
                    pairs.append((a.name, b.name))
        return pairs

    # --- where is the leak? ----------------------------------------------------------------

    def candidate_stretch(
        self,
        listeners: Sequence[Listener],
        levels_db: Mapping[str, float | None],
        model: ReachModel | None = None,
        *,
        tolerance_db: float = DEFAULT_CANDIDATE_TOLERANCE_DB,
        max_leak_level_db: float = DEFAULT_MAX_LEAK_LEVEL_DB,
        step_m: float = CANDIDATE_STEP_M,
    ) -> CandidateStretch:
        """Where a suspected leak can be, from the in-band leak level each logger measured.

        ``levels_db[name]`` is the leak level at that logger (same dB scale as the noise
        floors), ``None`` for a logger that does not hear it. For each point x on the network
        the source level is fitted as mean(level_i + loss_i(x)) over the loggers that hear
        it; the misfit is the RMS of their residuals plus, for each logger that does not hear
        it, how far the fitted leak would arrive above its floor + detect margin. Points within
        ``tolerance_db`` of the best misfit (and needing a source no louder than
        ``max_leak_level_db``) form the candidate stretches.
        Raises ``NetworkError`` when no listed logger hears the leak or a name is unknown.
        """
        import numpy as np

        model = model or ReachModel()
        by_name = {lst.name: lst for lst in listeners}
        unknown = sorted(set(levels_db) - set(by_name))
        if unknown:
            raise NetworkError(f"levels for unknown loggers: {', '.join(unknown)}")
        hearing = [n for n, v in levels_db.items() if v is not None]
        if not hearing:
            raise NetworkError("no logger hears the leak: nothing to locate")
        silent = [n for n in by_name if levels_db.get(n) is None]
        fields = {
            n: self.loss_field(by_name[n].position, model.junction_loss_db)
            for n in hearing + silent
        }
        samples: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
        for seg in self.segments.values():
            count = max(2, math.ceil(seg.length_m / step_m) + 1)
            x = np.linspace(0.0, seg.length_m, count)
            fitted_terms = np.stack(
                [levels_db[n] + self.loss_at(fields[n], seg.id, x) for n in hearing]
            )
            source = fitted_terms.mean(axis=0)
            sq = ((fitted_terms - source) ** 2).mean(axis=0)
            for n in silent:
                arriving = source - self.loss_at(fields[n], seg.id, x)
                limit = by_name[n].noise_floor_db + model.detect_margin_db
                sq = sq + np.maximum(arriving - limit, 0.0) ** 2
            misfit = np.sqrt(sq)
            misfit[source > max_leak_level_db] = np.inf
            samples.append((seg.id, x, misfit, source))
        best_seg, best_i, best_misfit = "", 0, math.inf
        for seg_id, _x, misfit, _s in samples:
            i = int(np.argmin(misfit))
            if misfit[i] < best_misfit:
                best_seg, best_i, best_misfit = seg_id, i, float(misfit[i])
        if math.isinf(best_misfit):
            raise NetworkError(
                f"no point on the network explains the levels with a leak of at most "
                f"{max_leak_level_db:g} dB"
            )
        stretches: list[Stretch] = []
        best_source = 0.0
        for seg_id, x, misfit, source in samples:
            if seg_id == best_seg:
                best_source = float(source[best_i])
                best_x = float(x[best_i])
            ok = misfit <= best_misfit + tolerance_db
            stretches.extend(Stretch(seg_id, lo, hi) for lo, hi in _runs(x, ok))
        return CandidateStretch(
            stretches=tuple(stretches),
            best=PipePosition(best_seg, best_x),
            best_misfit_db=best_misfit,
            source_level_db=best_source,
            heard_by=tuple(hearing),
        )


def _runs(x: np.ndarray, ok: np.ndarray) -> list[tuple[float, float]]:
    """Contiguous runs of True samples as intervals, widened half a step either side."""
    out = []
    if x.size < 2:
        return out
    half = float(x[1] - x[0]) / 2.0
    i = 0
    while i < x.size:
        if not ok[i]:
            i += 1
            continue
        j = i
        while j + 1 < x.size and ok[j + 1]:
            j += 1
        out.append((max(0.0, float(x[i]) - half), min(float(x[-1]), float(x[j]) + half)))
        i = j + 1
    return out


def _on_path(path: PipePath, position: PipePosition) -> bool:
    for leg in path.legs:
        if leg.segment == position.segment:
            lo, hi = sorted((leg.from_m, leg.to_m))
            if lo + 1e-6 < position.offset_m < hi - 1e-6:
                return True
    return False
