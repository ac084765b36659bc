"""Where the gateway's devices sit on the drainage and gas networks: what the network rules
need, and what each kind of gas site alarms at.

The shapes (``SewerReach``, ``Manhole``, ``WetWell``, ``PondingSpot``, ``GasSite``,
``SewerNetwork``) are the site file's (``sitemodel.network``, re-exported here); the
caller (the daemon from the site file, a benchmark from its generated sites, a test) hands a
``SewerNetwork`` to ``RulesEngine(..., network=...)``; the rules never read a file.
``RulesEngine`` checks that each named device exists and has the point role the rule reads,
and raises ``RulesConfigError`` naming the entry otherwise.

``GAS_SITE_KINDS``: the combustible-gas levels of each kind of gas site (``gas_limits``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sitemodel.network import (
    GAS_SITE_KIND_NAMES,
    GasSite,
    GasSiteKind,
    Manhole,
    PondingSpot,
    SewerNetwork,
    SewerReach,
    WetWell,
)

__all__ = [
    "GAS_SITE_KINDS",
    "GAS_SITE_KIND_NAMES",
    "GasSite",
    "GasSiteKind",
    "GasSiteLimits",
    "Manhole",
    "PondingSpot",
    "SewerNetwork",
    "SewerReach",
    "WetWell",
    "gas_limits",
]


@dataclass(frozen=True, slots=True)
class GasSiteLimits:
    """Combustible-gas levels of one kind of site, %LEL: first and second alarm, and the
    reading that counts as gas present for the combined rule (well above a clean
    chamber's background, well below the first alarm)."""

    alarm1_lel: float
    alarm2_lel: float
    present_lel: float
    standard: str


# GB/T 50493-2019: first alarm <= 25 %LEL, second <= 50 %LEL. GB 50838-2015 (utility tunnels):
# the natural-gas compartment alarms at <= 20 %LEL and shuts off at <= 35 %LEL. Where people
# are (tunnels, premises) gas present counts from a lower reading.
GAS_SITE_KINDS: dict[str, GasSiteLimits] = {
    "gate_station": GasSiteLimits(25.0, 50.0, 10.0, "GB/T 50493-2019"),
    "regulator_station": GasSiteLimits(25.0, 50.0, 10.0, "GB/T 50493-2019"),
    "valve_chamber": GasSiteLimits(25.0, 50.0, 10.0, "GB/T 50493-2019"),
    "utility_tunnel": GasSiteLimits(20.0, 35.0, 5.0, "GB 50838-2015"),
    "user_premises": GasSiteLimits(25.0, 50.0, 5.0, "GB/T 50493-2019"),
}


def gas_limits(site: GasSite) -> GasSiteLimits:
    """The alarm levels of ``site``'s kind."""
    return GAS_SITE_KINDS[site.kind]
