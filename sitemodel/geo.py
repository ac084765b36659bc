"""Local metres (east, north of the site origin) <-> WGS-84 latitude and longitude."""

from __future__ import annotations

import math

__all__ = ["EARTH_RADIUS_M", "latlon_to_local", "local_to_latlon"]

EARTH_RADIUS_M = 6_371_008.8


def local_to_latlon(lat0: float, lon0: float, x: float, y: float) -> tuple[float, float]:
    """Equirectangular projection: plenty for a district a few km across."""
    lat = lat0 + math.degrees(y / EARTH_RADIUS_M)
    lon = lon0 + math.degrees(x / (EARTH_RADIUS_M * math.cos(math.radians(lat0))))
    return lat, lon


def latlon_to_local(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    y = math.radians(lat - lat0) * EARTH_RADIUS_M
    x = math.radians(lon - lon0) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
    return x, y
