"""The site file's pipe network as ``dsp.network`` sees it, and the logger pairs to correlate.

``dsp`` imports nothing of ours, so this is where ``sitemodel.Site`` (what the CIM platform
knows) becomes a ``dsp.network.PipeNetwork`` with ``Listener``s. The ``coverage`` command and
the daemon's leak location both go through here:

    network, listeners = site_network(site)
    for a, b in logger_pairs(site):
        path = path_between_loggers(site, a, b)   # legs with material and wave speed
    cands = logger_candidates(site, ["nl-02", "nl-03", "nl-05"])  # three or more loggers
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from dsp.network import (
    Listener,
    NetworkError,
    NetworkNode,
    PipeNetwork,
    PipePath,
    PipePosition,
    PipeSegment,
    ReachModel,
)
from sitemodel import NoiseLoggerParams, Site

if TYPE_CHECKING:  # numpy: imported by the analysis worker only (logger_candidates)
    from dsp.multilocate import Candidates

__all__ = [
    "listener_for",
    "logger_candidates",
    "logger_pairs",
    "path_between_loggers",
    "site_network",
]


def listener_for(site: Site, name: str) -> Listener:
    """The noise logger ``name`` as a ``Listener``: its pipe placement and noise floor (its own
    ``sim.ambient_db`` if set, else the site's ``noise_floor_db``).

    Raises ``KeyError`` for an unknown device and ``NetworkError`` for a device that is not a
    noise logger placed on a pipe.
    """
    dev = site.device(name)
    if dev.kind != "noise_logger":
        raise NetworkError(f"device {name} is a {dev.kind}, not a noise logger")
    if dev.pipe is None or dev.offset_m is None:
        raise NetworkError(f"noise logger {name} has no pipe placement (pipe, offset_m)")
    floor = site.noise_floor_db
    if isinstance(dev.sim, NoiseLoggerParams) and dev.sim.ambient_db is not None:
        floor = dev.sim.ambient_db
    return Listener(name, PipePosition(dev.pipe, float(dev.offset_m)), floor)


def site_network(site: Site) -> tuple[PipeNetwork, tuple[Listener, ...]]:
    """The site's network and its placed noise loggers (loggers without a pipe are skipped).

    Raises ``NetworkError`` if the pipes do not form a valid network (the site loader already
    checks ids and materials, so this means a bug or a hand-built ``Site``).
    """
    try:
        return _cached(site)
    except TypeError:  # a hand-built Site holding something unhashable: build it uncached
        return _build(site)


@lru_cache(maxsize=8)
def _cached(site: Site) -> tuple[PipeNetwork, tuple[Listener, ...]]:
    return _build(site)


def _build(site: Site) -> tuple[PipeNetwork, tuple[Listener, ...]]:
    nodes = [NetworkNode(n.id, n.x, n.y) for n in site.nodes]
    segments = [
        PipeSegment(p.id, p.from_node, p.to_node, p.material, p.length_m, p.diameter_mm, p.wall_mm)
        for p in site.pipes
    ]
    network = PipeNetwork(nodes, segments)
    listeners = tuple(
        listener_for(site, d.name)
        for d in site.devices_of("noise_logger")
        if d.pipe is not None and d.offset_m is not None
    )
    for lst in listeners:
        network.check_position(lst.position)
    return network, listeners


def logger_pairs(site: Site, model: ReachModel | None = None) -> list[tuple[str, str]]:
    """Neighbouring loggers worth correlating: no other logger on the pipe path between them
    and a leak between them audible to both (``PipeNetwork.neighbour_pairs``)."""
    network, listeners = site_network(site)
    return network.neighbour_pairs(listeners, model)


def path_between_loggers(site: Site, a: str, b: str) -> PipePath:
    """The pipe path from logger ``a`` to logger ``b``: legs with material and wave speed, for
    ``dsp.correlate.locate_on_legs`` and ``PipePath.position_at``.

    Raises ``KeyError`` for an unknown device, ``NetworkError`` for a device that is not a
    placed noise logger or loggers on unconnected pipes.
    """
    network, _ = site_network(site)
    return network.path_between(listener_for(site, a).position, listener_for(site, b).position)


def logger_candidates(site: Site, names: Sequence[str], step_m: float = 0.25) -> Candidates:
    """Candidate leak points every ``step_m`` along every pipe of the site with the travel
    time to each of the loggers ``names`` (``dsp.multilocate``). Raises like
    ``path_between_loggers``."""
    from dsp.multilocate import network_candidates  # numpy: not in the resident daemon

    network, _ = site_network(site)
    positions = {name: listener_for(site, name).position for name in names}
    return network_candidates(network, positions, step_m)
