"""Loading a site file: read it with ``yamlread``, check it (``sitemodel.checks``), and fill in
what the file leaves to the network: pipe sizes from the material, lengths from the nodes,
device positions from their pipe placement or their coordinates."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from sitemodel.checks import site_checks
from sitemodel.geo import latlon_to_local
from sitemodel.site import ProfileCatalog, Site, SiteError, pipe_length, spot_on
from yamlread import read_file, read_text

__all__ = ["load_site", "parse_site"]


def load_site(path: str | Path, *, profiles: ProfileCatalog | None = None) -> Site:
    """Read and validate a site file.

    With ``profiles`` (a ``drivers.profile.ProfileRegistry``), every device's profile must
    exist and be of the device's kind. Raises ``SiteError`` listing every problem of the file,
    one line each (``file:line:col: field: problem``), or one line for a file that cannot be
    read.
    """
    site = read_file(
        path,
        Site,
        what="site file",
        error=SiteError,
        checks=site_checks(profiles),
        numbers_as_text=True,
    )
    return _filled_in(replace(site, source=str(path)))


def parse_site(
    text: str, *, source: str = "<site>", profiles: ProfileCatalog | None = None
) -> Site:
    """Validate site YAML given as text; ``source`` names it in errors. Raises ``SiteError``."""
    site = read_text(
        text,
        Site,
        file=source,
        error=SiteError,
        checks=site_checks(profiles),
        numbers_as_text=True,
    )
    return _filled_in(replace(site, source=source))


def _filled_in(site: Site) -> Site:
    """What the checked file leaves to the network: pipe sizes and lengths, device positions."""
    nodes = {n.id: n for n in site.nodes}
    pipes = {}
    for p in site.pipes:
        diameter, wall = p.size() or (p.diameter_mm, p.wall_mm)
        length = pipe_length(p, nodes[p.from_node], nodes[p.to_node])
        pipes[p.id] = replace(p, diameter_mm=diameter, wall_mm=wall, length_m=length)
    devices = []
    for d in site.devices:
        x, y, lat, lon = math.nan, math.nan, d.lat, d.lon
        offset = d.offset_m
        if d.pipe is not None:
            p = pipes[d.pipe]
            offset = 0.0 if offset is None else offset
            x, y = spot_on(p, offset, nodes[p.from_node], nodes[p.to_node])
        if math.isnan(lat):
            lat, lon = site.to_latlon(x, y)
        else:
            x, y = latlon_to_local(site.origin.lat, site.origin.lon, lat, lon)
        devices.append(replace(d, x=x, y=y, lat=lat, lon=lon, offset_m=offset))
    return replace(
        site, name=site.name or site.site, pipes=tuple(pipes.values()), devices=tuple(devices)
    )
