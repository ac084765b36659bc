"""Group comparison: loggers recorded together, judged against each other.

Commercial noise-logger systems compare each logger with its neighbours of the same night: a
logger whose steady (quiet, tone-free) in-band noise stands well above what its peers hear is
flagged, whatever the absolute level, because the night's traffic, pressure and ambient are
common to all of them and a leak is not. That needs comparable units (loggers of one model
and calibration, or files from one instrument at one gain), and peers that listen in the same
band (compare loggers of one material family only).

``compare_group(levels)`` takes each member's steady level (``Features.quiet_level_db``) and
returns, per member, its excess over the median of the *others* and whether it is flagged:
excess >= ``min_excess_db`` and >= ``MAD_FACTOR`` robust standard deviations of the peers
(``1.4826 * MAD``, at least ``MIN_SPREAD_DB``): in a group whose members scatter widely, a
few dB is no news. A group needs ``MIN_MEMBERS`` members (two peers at least); with fewer,
no member is compared.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MIN_EXCESS_DB",
    "MIN_MEMBERS",
    "GroupComparison",
    "compare_group",
]

DEFAULT_MIN_EXCESS_DB = 6.0  # well over the peers: a logger 4x the power of the others
MAD_FACTOR = 3.0
MIN_SPREAD_DB = 1.0  # peers never agree better than this (recordings, placement)
MIN_MEMBERS = 3
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class GroupComparison:
    """One member against its peers: ``excess_db`` over their median level, ``spread_db``
    the peers' robust standard deviation, ``flagged`` when it stands well above them."""

    name: str
    level_db: float
    peers: int
    peer_median_db: float
    spread_db: float
    excess_db: float
    flagged: bool

    def to_dict(self) -> dict[str, float | int | bool]:
        """The ``group`` object of leak events and of ``analyze --group`` output."""
        return {
            "excess_db": round(self.excess_db, 2),
            "peer_median_db": round(self.peer_median_db, 2),
            "peers": self.peers,
            "flagged": self.flagged,
        }


def compare_group(
    levels: Mapping[str, float], *, min_excess_db: float = DEFAULT_MIN_EXCESS_DB
) -> dict[str, GroupComparison]:
    """Each member's steady level against the median of the others (module docstring).

    Non-finite levels (a silent or failed recording) take no part. Returns an empty dict for
    fewer than ``MIN_MEMBERS`` usable members. Raises ``ValueError`` for a non-finite or
    negative ``min_excess_db``.
    """
    if not (math.isfinite(min_excess_db) and min_excess_db >= 0):
        raise ValueError(f"min_excess_db must be a finite number >= 0, got {min_excess_db}")
    usable = {name: float(v) for name, v in levels.items() if math.isfinite(v)}
    if len(usable) < MIN_MEMBERS:
        return {}
    out = {}
    for name, level in usable.items():
        peers = [v for other, v in usable.items() if other != name]
        median = statistics.median(peers)
        mad = statistics.median(abs(v - median) for v in peers)
        spread = max(_MAD_TO_SIGMA * mad, MIN_SPREAD_DB)
        excess = level - median
        out[name] = GroupComparison(
            name=name,
            level_db=level,
            peers=len(peers),
            peer_median_db=median,
            spread_db=spread,
            excess_db=excess,
            flagged=excess >= min_excess_db and excess >= MAD_FACTOR * spread,
        )
    return out
