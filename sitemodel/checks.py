"""Rules across the records of a site file: unique ids, references (pipes to nodes, devices to
pipes, buses, pump stations and profiles), lengths and placements that must agree with the
network. Each is a small function of the read ``Site`` yielding ``(path, message)``; the reader
adds file:line:col. A record that could not be read is left out, and a reference is only
called unknown when every record it could name was read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from sitemodel.geo import latlon_to_local
from sitemodel.network import network_references
from sitemodel.site import Node, Pipe, pipe_length, spot_on
from yamlread import Checks, is_bad, whole
from yamlread.problems import fmt_num

if TYPE_CHECKING:
    from sitemodel.site import ProfileCatalog, Site

__all__ = ["LENGTH_SLACK", "PLACEMENT_TOLERANCE_M", "site_checks"]

# A device's lat/lon may sit this far from its placement on the pipe (chambers sit beside the
# main); further than that is a typo in one of the two, which would misplace events on the twin.
PLACEMENT_TOLERANCE_M = 50.0
# A pipe's length may exceed the straight line between its nodes (bends), never undercut it.
LENGTH_SLACK = 0.99
_UNIQUE = (("nodes", "id"), ("pipes", "id"), ("devices", "name"), ("sim_buses", "name"),
           ("sim_buses", "port"))  # fmt: skip


def site_checks(profiles: ProfileCatalog | None) -> tuple[Callable[[Any], Checks], ...]:
    """The checks ``load_site`` runs; with ``profiles``, device profiles are checked too."""
    return (
        unique_ids,
        pipe_ends,
        device_references,
        partial(device_profiles, profiles),
        network_references,
    )


def _by(items: Any, attr: str) -> dict[Any, Any] | None:
    """Records by ``attr``; ``None`` when some record could not be read."""
    good = whole(items)
    if len(good) != len(items):
        return None
    return {getattr(item, attr): item for _, item in good}


def unique_ids(site: Site) -> Iterator[tuple[str, str]]:
    for section, attr in _UNIQUE:
        seen: set[Any] = set()
        for i, item in whole(getattr(site, section)):
            value = getattr(item, attr)
            if value in seen:
                yield f"{section}[{i}].{attr}", f"duplicate {attr} {value!r}"
            seen.add(value)


def _ends(pipe: Pipe, nodes: dict[str, Node] | None) -> tuple[Node, Node] | None:
    if nodes is None or pipe.from_node not in nodes or pipe.to_node not in nodes:
        return None
    return nodes[pipe.from_node], nodes[pipe.to_node]


def pipe_ends(site: Site) -> Iterator[tuple[str, str]]:
    """Pipes join known nodes and are no shorter than the straight line between them."""
    nodes = _by(site.nodes, "id")
    for i, pipe in whole(site.pipes):
        for key, node in (("from", pipe.from_node), ("to", pipe.to_node)):
            if nodes is not None and node not in nodes:
                yield f"pipes[{i}].{key}", f"unknown node {node!r}"
        ends = _ends(pipe, nodes)
        if ends is None or pipe.from_node == pipe.to_node:
            continue
        straight = math.hypot(ends[1].x - ends[0].x, ends[1].y - ends[0].y)
        if math.isnan(pipe.length_m):
            if straight < 0.1:
                yield f"pipes[{i}]", "its nodes coincide: give length_m"
        elif pipe.length_m < straight * LENGTH_SLACK:
            message = f"{pipe.length_m:g} m is shorter than the {straight:.1f} m between its nodes"
            yield f"pipes[{i}].length_m", message


def device_references(site: Site) -> Iterator[tuple[str, str]]:
    """Buses and pipes exist, offsets lie on the pipe, coordinates agree with the placement,
    a unit id once per bus, a wet-well gauge names a pump station."""
    buses = _by(site.sim_buses, "name")
    pipes = _by(site.pipes, "id")
    nodes = _by(site.nodes, "id")
    devices = whole(site.devices)
    units: dict[tuple[str, int], str] = {}
    for i, d in devices:
        if buses is not None and d.bus not in buses:
            yield f"devices[{i}].bus", f"unknown sim bus {d.bus!r} (see sim_buses)"
        key = (d.bus, d.unit_id)
        if key in units:
            message = f"unit_id {d.unit_id} on bus {d.bus!r} is already used by {units[key]!r}"
            yield f"devices[{i}]", message
        units.setdefault(key, d.name)
        if d.pipe is not None and pipes is not None:
            if d.pipe not in pipes:
                yield f"devices[{i}].pipe", f"unknown pipe {d.pipe!r}"
                continue
            yield from _placement(site, i, d, pipes[d.pipe], nodes)
    by_name = _by(site.devices, "name")
    if by_name is None:  # a station is only unknown when every device could be read
        return
    for i, d in devices:
        station = getattr(d.sim, "station", None)
        if station is not None and getattr(by_name.get(station), "kind", "") != "pump_controller":
            yield f"devices[{i}]", f"sim.station {station!r} is not a pump_controller device"


def _placement(
    site: Site, i: int, d: Any, pipe: Pipe, nodes: dict[str, Node] | None
) -> Iterator[tuple[str, str]]:
    ends = _ends(pipe, nodes)
    if ends is None:
        return
    length = round(pipe_length(pipe, *ends), 3)
    offset = d.offset_m or 0.0
    if offset > length:
        yield f"devices[{i}].offset_m", f"{fmt_num(offset)} is not in 0..{fmt_num(length)}"
        return
    if math.isnan(d.lat) or math.isnan(d.lon) or is_bad(site.origin):
        return
    spot = spot_on(pipe, offset, *ends)
    x, y = latlon_to_local(site.origin.lat, site.origin.lon, d.lat, d.lon)
    gap = math.hypot(x - spot[0], y - spot[1])
    if gap > PLACEMENT_TOLERANCE_M:
        yield (
            f"devices[{i}].lat",
            f"lat/lon lie {gap:.0f} m from the device's spot on pipe {pipe.id} "
            f"(more than {PLACEMENT_TOLERANCE_M:g} m): one of them is wrong",
        )


def device_profiles(profiles: ProfileCatalog | None, site: Site) -> Iterator[tuple[str, str]]:
    """Every device's profile exists and is of the device's kind."""
    if profiles is None:
        return
    for i, d in whole(site.devices):
        if not profiles.exists(d.profile):
            known = ", ".join(profiles.names())
            yield f"devices[{i}].profile", f"unknown profile {d.profile!r} (known: {known})"
        elif (kind := profiles.get(d.profile).kind) != d.kind:
            yield f"devices[{i}].profile", f"{d.profile!r} is a {kind} profile, not {d.kind}"
