"""Sewer sites for the benchmark: the reference site's drainage, and generated ones.

A site is a tree of manholes (``Node``) joined by circular pipes (``Link``) draining to one
pump station's wet well (``Station``), with level gauges on some manholes, rain gauges, road
ponding sensors at low points and satellite pump stations discharging into the sewer. The
rules see it as a ``SewerNetwork``: one ``SewerReach`` per gauge, from it down to the next
gauge (or the station), built by ``rules_network`` from the tree, the way a site file
describes it.

``reference_site()`` is the Riverside sewer of seeds/site.yaml (lv-03 at MH-09 above lv-02 at
MH-17 above pump station PS-01 with its wet-well gauge lv-01 and rain gauge rg-01, and the
underpass sensor rp-01) with pipe sizes and levels a designer would give it.
``generate_site(rng, name)`` draws another: 8-22 manholes in a random tree, pipe sizes from
the flow they carry (one size either way now and then), depths, slopes, 3-7 gauges at random
manholes, 1-3 rain gauges, 0-2 satellites, 0-2 ponding sensors, a station of 2-3 pumps sized
between generous and tight, and each gauge's noise and poll interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edge_agent.rules.network import Manhole, PondingSpot, SewerNetwork, SewerReach, WetWell

__all__ = [
    "WET_WELL",
    "BenchSite",
    "Gauge",
    "Link",
    "Node",
    "PondingSensor",
    "RainGauge",
    "Satellite",
    "Station",
    "generate_site",
    "pipe_capacity_l_s",
    "reference_site",
    "rules_network",
]

WET_WELL = -1  # a link's ``down`` when it discharges into the station's wet well
MANNING_N = 0.013
# 1 mm/h on a paved hectare at a run-off coefficient of 0.8: 10 m3/h x 0.8 = 2.22 l/s
STORM_L_S_PER_HA_MM_H = 0.8 * 1e4 / 3.6e6 * 1000
DIAMETERS_M = (0.225, 0.3, 0.375, 0.45, 0.525, 0.6, 0.75, 0.9)


@dataclass(frozen=True, slots=True)
class Node:
    """A manhole: invert and rim elevations (m), plan area, what flows in at it."""

    id: str
    x: float
    y: float
    invert_m: float
    rim_m: float
    area_m2: float
    dwf_l_s: float  # mean dry-weather inflow
    impervious_ha: float  # paved area whose run-off enters here
    commercial: bool = False

    @property
    def depth_m(self) -> float:
        return self.rim_m - self.invert_m


@dataclass(frozen=True, slots=True)
class Link:
    """A pipe from node ``up`` to node ``down`` (or ``WET_WELL``)."""

    id: str
    up: int
    down: int
    length_m: float
    diameter_m: float
    invert_up_m: float
    invert_down_m: float


@dataclass(frozen=True, slots=True)
class Station:
    """The pump station: its controller and wet-well gauge names, and its wet well."""

    controller: str
    gauge: str
    floor_m: float
    area_m2: float
    pumps: int
    pump_l_s: float
    stop_mm: float
    start_mm: float
    assist_mm: float
    overflow_mm: float
    poll_s: float = 20.0
    noise_mm: float = 4.0


@dataclass(frozen=True, slots=True)
class Gauge:
    """A radar level gauge over a manhole (``node``): it reads the depth above the invert."""

    name: str
    node: int
    noise_mm: float
    poll_s: float
    mount_mm: float  # antenna height above the invert; it goes blind within BLANKING of it


@dataclass(frozen=True, slots=True)
class RainGauge:
    name: str
    x: float
    y: float
    mm_per_tip: float = 0.2
    poll_s: float = 60.0


@dataclass(frozen=True, slots=True)
class PondingSensor:
    """A road low point beside ``node``: run-off from ``road_ha`` collects in a bowl of
    ``bowl_m2`` and leaves through gullies of ``gully_l_s`` into the manhole (not while the
    manhole is surcharged to the road)."""

    name: str
    node: int
    road_ha: float
    bowl_m2: float
    gully_l_s: float
    noise_mm: float = 3.0
    poll_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Satellite:
    """A small pump station upstream whose rising main discharges into ``node``."""

    node: int
    dwf_l_s: float
    pump_l_s: float
    volume_m3: float  # between its start and stop levels


@dataclass(frozen=True)
class BenchSite:
    name: str
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]  # links[i].up == i: every node has one outgoing pipe
    station: Station
    gauges: tuple[Gauge, ...]
    rain_gauges: tuple[RainGauge, ...]
    ponding: tuple[PondingSensor, ...] = ()
    satellites: tuple[Satellite, ...] = ()
    extent_m: float = 1000.0
    reaches: dict[str, tuple[int, ...]] = field(default_factory=dict)  # reach id -> links

    def downstream_path(self, node: int) -> list[int]:
        """Links from ``node`` down to the wet well."""
        path = []
        while node != WET_WELL:
            path.append(node)
            node = self.links[node].down
        return path

    def gauge_at(self, node: int) -> Gauge | None:
        return next((g for g in self.gauges if g.node == node), None)

    def carried_paved_ha(self, link: int) -> float:
        """Paved area whose run-off passes through a pipe."""
        return sum(
            node.impervious_ha
            for i, node in enumerate(self.nodes)
            if link in self.downstream_path(i)
        )

    def design_storm_mm_h(self, link: int) -> float | None:
        """The rain a pipe was built to carry: its full capacity less three times the dry
        flow, over the paved area it drains (what a designer's CIM record holds)."""
        pipe = self.links[link]
        slope = (pipe.invert_up_m - pipe.invert_down_m) / pipe.length_m
        spare = pipe_capacity_l_s(pipe.diameter_m, slope) - 3.0 * self.carried_dwf_l_s(link)
        paved = self.carried_paved_ha(link)
        if paved <= 0 or spare <= 0:
            return None
        return round(min(max(spare / (paved * STORM_L_S_PER_HA_MM_H), 1.0), 500.0), 1)

    def carried_dwf_l_s(self, link: int) -> float:
        """Mean dry-weather flow through a pipe: every manhole upstream of it, and its own."""
        return sum(
            node.dwf_l_s for i, node in enumerate(self.nodes) if link in self.downstream_path(i)
        ) + sum(s.dwf_l_s for s in self.satellites if link in self.downstream_path(s.node))


def pipe_capacity_l_s(diameter_m: float, slope: float) -> float:
    area = math.pi * diameter_m**2 / 4
    radius = diameter_m / 4
    return 1000.0 * area * radius ** (2 / 3) * math.sqrt(slope) / MANNING_N


def rules_network(site: BenchSite) -> tuple[SewerNetwork, dict[str, tuple[int, ...]]]:
    """The site as the rules see it, and each reach's links (a blockage on one of them is
    that reach's). A reach runs from each gauge down to the next gauge or the wet well."""
    gauged = {g.node: g for g in site.gauges}
    reaches, links_of = [], {}
    for gauge in site.gauges:
        path, node = [], gauge.node
        while True:
            path.append(node)
            node = site.links[node].down
            if node == WET_WELL or node in gauged:
                break
        down = None if node == WET_WELL else gauged[node].name
        reach_id = f"{gauge.name}->{down or site.station.controller}"
        # the length along the sewer, as the site file states it (pipes carry length_m)
        length = round(sum(site.links[i].length_m for i in path), 1)
        reaches.append(
            SewerReach(reach_id, gauge.name, down, station=site.station.controller, length_m=length)
        )
        links_of[reach_id] = tuple(path)
    st = site.station
    paved_ha = sum(node.impervious_ha for node in site.nodes)
    network = SewerNetwork(
        reaches=tuple(reaches),
        manholes=tuple(
            Manhole(
                g.name,
                round(site.nodes[g.node].depth_m * 1000),
                round(site.links[g.node].diameter_m * 1000),
                storm_mm_h=site.design_storm_mm_h(g.node),
            )
            for g in site.gauges
        ),
        wet_wells=(
            WetWell(
                st.controller,
                st.gauge,
                overflow_mm=st.overflow_mm,
                assist_mm=st.assist_mm,
                area_m2=st.area_m2,
                pump_l_s=st.pump_l_s,
                duty_pumps=min(st.pumps, 2),  # the controller runs duty and assist at most
                storm_l_s_per_mm_h=round(paved_ha * STORM_L_S_PER_HA_MM_H, 2),
            ),
        ),
        ponding=tuple(PondingSpot(p.name) for p in site.ponding),
    )
    return network, links_of


def _link(
    i: int, down: int, length: float, diameter: float, inv_up: float, inv_down: float
) -> Link:
    return Link(f"P{i:02d}", i, down, length, diameter, inv_up, inv_down)


def reference_site() -> BenchSite:
    """Riverside's sewer (seeds/site.yaml): a chain of six manholes to PS-01."""
    # node: (id, x, y, depth to rim m, dwf l/s, impervious ha, pipe length to next, diameter)
    spec = [
        ("MH-21", 480.0, 150.0, 2.4, 0.9, 0.20, 160.0, 0.300),  # head of the Riverside Rd sewer
        ("MH-09", 330.0, 95.0, 2.6, 1.2, 0.25, 150.0, 0.300),  # lv-03
        ("MH-12", 250.0, 60.0, 2.9, 0.8, 0.15, 140.0, 0.375),
        ("MH-17", 190.0, -95.0, 3.2, 1.4, 0.25, 170.0, 0.375),  # lv-02
        ("MH-19", 120.0, -120.0, 3.5, 1.0, 0.20, 130.0, 0.450),
        ("MH-20", 60.0, -140.0, 3.8, 0.7, 0.10, 70.0, 0.450),
    ]
    slope = 0.004
    floor = 0.0
    station = Station(
        controller="ps-01",
        gauge="lv-01",
        floor_m=floor,
        area_m2=6.0,
        pumps=3,
        pump_l_s=30.0,
        stop_mm=500.0,
        start_mm=1600.0,
        assist_mm=2200.0,
        overflow_mm=4000.0,
        poll_s=20.0,
        noise_mm=4.0,
    )
    inlet = floor + (station.assist_mm + 200.0) / 1000.0
    nodes, links = [], []
    inverts = [0.0] * len(spec)
    below = inlet
    for i in range(len(spec) - 1, -1, -1):
        inverts[i] = below + slope * spec[i][6]
        below = inverts[i]
    for i, (nid, x, y, depth, dwf, imp, length, diameter) in enumerate(spec):
        nodes.append(Node(nid, x, y, inverts[i], inverts[i] + depth, 1.2, dwf, imp))
        down = i + 1 if i + 1 < len(spec) else WET_WELL
        inv_down = inverts[i + 1] if down != WET_WELL else inlet
        links.append(_link(i, down, length, diameter, inverts[i], inv_down))
    gauges = (
        Gauge("lv-03", 1, noise_mm=2.5, poll_s=60.0, mount_mm=2400.0),
        Gauge("lv-02", 3, noise_mm=2.5, poll_s=60.0, mount_mm=3000.0),
    )
    return BenchSite(
        name="riverside",
        nodes=tuple(nodes),
        links=tuple(links),
        station=station,
        gauges=gauges,
        rain_gauges=(RainGauge("rg-01", 0.0, -150.0),),
        ponding=(PondingSensor("rp-01", 2, road_ha=0.6, bowl_m2=400.0, gully_l_s=35.0),),
        satellites=(),
        extent_m=600.0,
    )


def generate_site(rng: np.random.Generator, name: str) -> BenchSite:
    """Another site (see the module docstring); every figure drawn from ``rng``."""
    n_nodes = int(rng.integers(8, 23))
    parents = [WET_WELL]
    for i in range(1, n_nodes):
        # mostly extend the newest branch; sometimes start a branch off an earlier manhole
        parent = i - 1 if rng.random() < 0.7 else int(rng.integers(0, i))
        while sum(1 for p in parents if p == parent) >= 2:  # at most two pipes join a manhole
            parent = int(rng.integers(0, i))
        parents.append(parent)
    lengths = rng.uniform(60.0, 300.0, n_nodes)
    dwf = rng.lognormal(math.log(0.8), 0.6, n_nodes)
    # paved area connected to the sewage network (misconnections, yard gullies): small
    impervious = rng.uniform(0.02, 0.25, n_nodes) * (rng.random(n_nodes) < 0.85)
    commercial = rng.random(n_nodes) < 0.25
    # flow carried by each pipe: everything upstream of it
    carried = dwf.copy()
    runoff = impervious.copy()
    for i in range(n_nodes - 1, 0, -1):
        carried[parents[i]] += carried[i]
        runoff[parents[i]] += runoff[i]
    slopes = rng.uniform(0.002, 0.008, n_nodes)
    diameters = []
    for i in range(n_nodes):
        # l/s: peak dry flow and the paved area's run-off at 40 mm/h (a design storm)
        design = 3.0 * carried[i] + 40.0 * STORM_L_S_PER_HA_MM_H * runoff[i]
        size = next((d for d in DIAMETERS_M if pipe_capacity_l_s(d, slopes[i]) >= design), 0.9)
        k = DIAMETERS_M.index(size) + int(rng.choice([-1, 0, 0, 0, 0, 1]))
        diameters.append(DIAMETERS_M[min(max(k, 0), len(DIAMETERS_M) - 1)])
    # pump station sized on the total flow: the duty pump between 1.6 and 3 x the mean
    total = float(carried[0])
    pumps = int(rng.choice([2, 3]))
    # duty and assist together pass the peak dry flow and 10-30 mm/h on the paved area
    storm = float(rng.uniform(10.0, 30.0)) * STORM_L_S_PER_HA_MM_H * runoff[0]
    pump_l_s = float((3.0 * total + storm) / 2.0)
    area = float(rng.uniform(4.0, 20.0))
    stop = 500.0
    start = stop + float(rng.uniform(800, 1400))
    assist = start + float(rng.uniform(400, 800))
    overflow = assist + float(rng.uniform(1200, 2200))
    station = Station(
        controller="ps-01",
        gauge="lv-ww",
        floor_m=0.0,
        area_m2=area,
        pumps=pumps,
        pump_l_s=pump_l_s,
        stop_mm=stop,
        start_mm=start,
        assist_mm=assist,
        overflow_mm=overflow,
        poll_s=float(rng.choice([10.0, 20.0, 30.0])),
        noise_mm=float(rng.uniform(3.0, 10.0)),
    )
    inlet = (assist + 200.0) / 1000.0
    inverts = [0.0] * n_nodes
    for i in range(n_nodes):
        below = inlet if parents[i] == WET_WELL else inverts[parents[i]]
        inverts[i] = below + slopes[i] * lengths[i]
    # positions: walk away from the station
    xs, ys = [0.0] * n_nodes, [0.0] * n_nodes
    for i in range(n_nodes):
        angle = rng.uniform(-1.0, 1.0) + (0.0 if parents[i] in (WET_WELL, i - 1) else 1.2)
        px = 0.0 if parents[i] == WET_WELL else xs[parents[i]]
        py = 0.0 if parents[i] == WET_WELL else ys[parents[i]]
        xs[i], ys[i] = px + lengths[i] * math.cos(angle), py + lengths[i] * math.sin(angle)
    nodes, links = [], []
    for i in range(n_nodes):
        depth = max(float(rng.uniform(1.8, 4.5)), diameters[i] + 1.0)
        nodes.append(
            Node(
                f"MH-{i + 1:02d}",
                xs[i],
                ys[i],
                inverts[i],
                inverts[i] + depth,
                float(rng.uniform(1.0, 1.6)),
                float(dwf[i]),
                float(impervious[i]),
                bool(commercial[i]),
            )
        )
        down_invert = inlet if parents[i] == WET_WELL else inverts[parents[i]]
        links.append(_link(i, parents[i], float(lengths[i]), diameters[i], inverts[i], down_invert))
    n_gauges = int(rng.integers(3, min(7, n_nodes) + 1))
    gauged = sorted(int(g) for g in rng.choice(n_nodes, n_gauges, replace=False))
    gauges = tuple(
        Gauge(
            f"lv-{k + 1:02d}",
            node,
            noise_mm=float(rng.uniform(1.5, 8.0)),
            poll_s=float(rng.choice([30.0, 60.0, 60.0, 120.0])),
            mount_mm=nodes[node].depth_m * 1000 - 200.0,
        )
        for k, node in enumerate(gauged)
    )
    extent = float(max(max(abs(x) for x in xs), max(abs(y) for y in ys), 300.0))
    rain_gauges = tuple(
        RainGauge(
            f"rg-{k + 1:02d}",
            float(rng.uniform(-0.2, 1.0) * extent),
            float(rng.uniform(-0.5, 0.5) * extent),
            poll_s=float(rng.choice([60.0, 120.0])),
        )
        for k in range(int(rng.integers(1, 4)))
    )
    satellites = tuple(
        Satellite(
            int(rng.integers(1, n_nodes)),
            dwf_l_s=float(rng.uniform(0.5, 3.0)),
            pump_l_s=float(rng.uniform(5.0, 15.0)),
            volume_m3=float(rng.uniform(2.0, 8.0)),
        )
        for _ in range(int(rng.integers(0, 3)))
    )
    ponding = tuple(
        PondingSensor(
            f"rp-{k + 1:02d}",
            int(rng.integers(0, n_nodes)),
            road_ha=float(rng.uniform(0.2, 1.5)),
            bowl_m2=float(rng.uniform(200.0, 800.0)),
            gully_l_s=float(rng.uniform(20.0, 80.0)),
            noise_mm=float(rng.uniform(2.0, 6.0)),
            poll_s=float(rng.choice([60.0, 120.0])),
        )
        for k in range(int(rng.integers(0, 3)))
    )
    return BenchSite(
        name=name,
        nodes=tuple(nodes),
        links=tuple(links),
        station=station,
        gauges=gauges,
        rain_gauges=rain_gauges,
        ponding=ponding,
        satellites=satellites,
        extent_m=extent,
    )
