"""Leak location for the daemon: two simultaneous recordings -> a point on the pipe path.

The site file gives the path between two loggers (``edge_agent.site_network``): legs with
their material and wave speed. ``dsp.correlate.gcc_tdoa`` finds the arrival-time difference
within the path's travel time, band-limited to where leak noise carries on the path's
materials; ``locate_on_legs`` turns it into metres from logger A and ``PipePath.position_at``
into a pipe segment and offset. Runs in a worker thread (numba kernels release the GIL).
"""

from __future__ import annotations

import numpy as np

from drivers.model import Recording
from dsp.correlate import gcc_tdoa, locate_on_legs
from dsp.network import NetworkError
from dsp.pipes import common_band_hz
from edge_agent.daemon.leak import Location
from edge_agent.site_network import path_between_loggers
from sitemodel import Site

__all__ = ["DEFAULT_MIN_CONFIDENCE", "SiteLocator"]

# Below this the peak barely stands out of the sidelobes: reporting a position would mislead.
DEFAULT_MIN_CONFIDENCE = 0.2
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

    def locate(self, a: Recording, b: Recording) -> Location | None:
        """Raises ValueError for recordings that cannot be correlated (rates differ, too
        short) or loggers without a path between them."""
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
        travel = path.travel_time_s
        result = gcc_tdoa(
            xa,
            xb,
            a.fs,
            max_lag_s=travel + abs(start_offset_s),
            band_hz=self.band_for(path.materials, a.fs),
        )
        tdoa = result.tdoa_s + start_offset_s
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
            data={"materials": list(path.materials)},
        )
