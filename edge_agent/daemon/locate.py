"""Leak location for the daemon: simultaneous recordings -> a point on the pipe network.

The site file gives the path between two loggers (``edge_agent.site_network``): legs with
their material and wave speed. ``dsp.correlate.locate_tdoa`` finds the arrival-time
difference within the path's travel time, guided by the coherence of the two recordings near
the band leak noise carries on the path's materials; ``locate_on_legs`` turns it into metres
from logger A and ``PipePath.position_at`` into a pipe segment and offset. Three or more
loggers: every pair's delay, one least-squares position on the pipe graph for all of them
(``dsp.multilocate``). Runs in the analysis worker process (numba).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from drivers.model import Recording
from dsp.correlate import TdoaResult, locate_on_legs, locate_tdoa
from dsp.multilocate import PairDelay, locate_delays
from dsp.network import NetworkError, PipePath, PipePosition
from dsp.pipes import common_band_hz
from edge_agent.daemon.analysis_runner import Location
from edge_agent.events import JsonValue
from edge_agent.site_network import (
    listener_for,
    logger_candidates,
    path_between_loggers,
    site_network,
)
from sitemodel import Site

__all__ = ["DEFAULT_MIN_CONFIDENCE", "SiteLocator"]

# Below this the peak could be noise's (dsp.correlate: 0.5 = noise alone would give such a peak
# 1 % of the time): reporting a position would mislead.
DEFAULT_MIN_CONFIDENCE = 0.5
NYQUIST_MARGIN = 0.98  # gcc_tdoa wants the band strictly inside (0, fs/2)


class SiteLocator:
    """``locate(a, b)`` for loggers of one site. Thread-safe (no mutable state)."""

    def __init__(self, site: Site, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> None:
        self.site = site
        self.min_confidence = min_confidence

    @staticmethod
    def band_for(materials: tuple[str, ...], fs: float) -> tuple[float, float] | None:
        """The band every material of the path carries (``dsp.pipes.common_band_hz``), kept
        below Nyquist for this sample rate."""
        if not materials:
            return None
        lo, hi = common_band_hz(materials)
        hi = min(hi, fs / 2 * NYQUIST_MARGIN)
        return (lo, hi) if lo < hi else None

    def _delay(self, a: Recording, b: Recording) -> tuple[PipePath, TdoaResult, float]:
        """(path, correlation, tdoa_s corrected for the start difference) of two loggers.
        Raises ValueError for recordings that cannot be correlated or no path between them."""
        if a.fs != b.fs:
            raise ValueError(f"sample rates differ: {a.device} {a.fs:g} Hz, {b.device} {b.fs:g} Hz")
        try:
            path = path_between_loggers(self.site, a.device, b.device)
        except (KeyError, NetworkError) as exc:
            raise ValueError(f"no pipe path between {a.device} and {b.device}: {exc}") from exc
        n = min(len(a.samples), len(b.samples))
        xa = np.ascontiguousarray(a.samples[:n], dtype=np.float64)
        xb = np.ascontiguousarray(b.samples[:n], dtype=np.float64)
        # Recordings started apart (different buses) shift the lag by the start difference.
        start_offset_s = a.started_at - b.started_at
        result = locate_tdoa(
            xa,
            xb,
            a.fs,
            max_lag_s=path.travel_time_s + abs(start_offset_s),
            band_hz=self.band_for(path.materials, a.fs),
        )
        return path, result, result.tdoa_s + start_offset_s

    @staticmethod
    def _fields(result: TdoaResult) -> dict[str, JsonValue]:
        return {
            "band_hz": [round(v, 1) for v in result.band_hz] if result.band_hz else None,
            "mean_coherence": None
            if result.mean_coherence is None
            else round(result.mean_coherence, 3),
        }

    def locate(self, a: Recording, b: Recording) -> Location | None:
        """Raises ValueError for recordings that cannot be correlated (rates differ, too
        short) or loggers without a path between them."""
        path, result, tdoa = self._delay(a, b)
        travel = path.travel_time_s
        if result.outside_peak or result.confidence < self.min_confidence or abs(tdoa) > travel:
            return None
        distance = locate_on_legs(tdoa, path.speed_legs())
        position = path.position_at(min(max(distance, 0.0), path.length_m))
        return Location(
            a=a.device,
            b=b.device,
            pipe=position.segment,
            offset_m=position.offset_m,
            distance_m=distance,
            spacing_m=path.length_m,
            tdoa_ms=tdoa * 1e3,
            confidence=result.confidence,
            data={"materials": list(path.materials), "method": "pair", **self._fields(result)},
        )

    def locate_many(self, recordings: Sequence[Recording]) -> Location | None:
        """Three or more loggers: every pair's delay, one least-squares position on the site's
        pipes. ``a`` is the logger nearest that position; ``data`` holds the residual, whether
        the delays agree and who disagrees. None when fewer than two pairs are confident.
        Raises ValueError like ``locate``."""
        delays = []
        for ra, rb in itertools.combinations(recordings, 2):
            _, result, tdoa = self._delay(ra, rb)
            delays.append(PairDelay(ra.device, rb.device, tdoa, result.confidence))
        names = [r.device for r in recordings]
        cands = logger_candidates(self.site, names)
        try:
            where = locate_delays(cands, delays, min_confidence=self.min_confidence)
        except ValueError:  # fewer than two confident pairs
            return None
        distances = {n: self._distance_to(n, where.position) for n in names}
        nearest = min(names, key=distances.__getitem__)
        used = [d for d in delays if f"{d.a}/{d.b}" in where.used]
        return Location(
            a=nearest,
            b="",
            pipe=where.position.segment,
            offset_m=where.position.offset_m,
            distance_m=distances[nearest],
            spacing_m=0.0,
            tdoa_ms=0.0,
            confidence=min(d.confidence for d in used),
            data={
                "method": "multi",
                "loggers": names,
                "pairs_used": len(used),
                "residual_ms": round(where.residual_ms, 3),
                "consistent": where.consistent,
                "disagreeing": where.disagreeing,
            },
        )

    def _distance_to(self, logger: str, position: PipePosition) -> float:
        """Metres along the pipes from ``logger`` to ``position``."""
        network, _ = site_network(self.site)
        return network.path_between(listener_for(self.site, logger).position, position).length_m
