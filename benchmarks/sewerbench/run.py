"""One site's year: the hydraulics day by day, what its sensors report, the real rules.

``run_site(site, days, seed)`` draws the weather and the incidents, steps the hydraulics
(``hydraulics.simulate_chunk``) one day at a time, turns each day into the readings and poll
outcomes a gateway would get (gauge noise, drift, stray echoes, stuck values, lost echoes,
blind spots under the antenna, dropouts, vehicles over road sensors, tipping buckets and
clogged funnels), each read to its register's resolution as the site's register map gives it
(``drivers.codec.round_to_step`` with the profile point's ``step``: a radar level, LR10's
``level``, to the whole millimetre; a rain rate, TB2's ``rain_rate``, a u16 at scale 0.1, to
0.1 mm/h), and feeds them in time order to the ``RulesEngine`` the daemon uses, built
with the site's ``SewerNetwork``, as ``PollResult``s whose availability changes come from the
bus's own ``DeviceCoordinator`` (time is the polls' ``ts``: no clock is read). What comes back
(``SiteRun``) is every event the rules raised and the truth to judge them by (levels per
minute, incidents).

As in the daemon, every polled value reaches the rules, with one saving: a pump's running
and fault signals are passed when they change and every ten minutes, not at every poll
(the rules act on changes; the wet-well gauge's readings drive their timers).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from drivers.bus import DeviceCoordinator, DeviceSpec, PollPolicy
from drivers.codec import round_to_step
from drivers.model import PollResult, Quality, Reading
from drivers.profile import ProfileRegistry
from edge_agent.rules import DeviceInfo, DeviceRulesConfig, RulesConfig, RulesEngine
from edge_agent.rules.network import SewerNetwork

from .hydraulics import RECORD_S, Model, simulate_chunk
from .scenario import DAY_S, Scenario, draw_scenario
from .sites import WET_WELL, BenchSite, rules_network
from .weather import MINUTES_PER_DAY, Weather, diurnal_factors, groundwater_factor, make_weather

__all__ = ["SiteRun", "run_site"]

BLANKING_MM = 250.0  # a radar gauge sees nothing this close to its antenna
PUMP_HEARTBEAT_S = 600.0
HIGH_FRACTION = 0.5  # level.high at half the depth to the rim, high-high at three quarters
HIGH_HIGH_FRACTION = 0.75
INFILTRATION_SHARE = 0.2  # groundwater infiltration as a share of the dry-weather flow
PROFILES = {
    "level": "level-radar-lr10",
    "rain": "rain-gauge-tb2",
    "pump_controller": "pump-controller-ps2",
}


def _step(registry: ProfileRegistry, kind: str, point: str) -> float | None:
    """The resolution a device of ``kind`` reports ``point`` to (its profile's register
    map: LR10's level 1 mm, TB2's rain rate 0.1 mm/h), as the gateway decodes it."""
    return registry.get(PROFILES[kind]).point(point).step


def _quantise(value: float, step: float | None) -> float:
    return value if step is None else round_to_step(value, step)


@dataclass
class SiteRun:
    site: BenchSite
    days: int
    scenario: Scenario
    weather: Weather
    links_of: dict[str, tuple[int, ...]]
    network: SewerNetwork = field(default_factory=SewerNetwork)
    events: list[tuple[float, str, str, int, dict]] = field(default_factory=list)
    # the same readings through the rules without the site's network (one gauge at a time)
    baseline_events: list[tuple[float, str, str, int, dict]] = field(default_factory=list)
    depth_min: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [min, nodes] m
    depth_cf_min: np.ndarray = field(default_factory=lambda: np.zeros(0))  # without blockages
    ww_min: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [min] m
    pond_min: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [min, ponds] m
    readings: int = 0


def _model(site: BenchSite, scenario: Scenario) -> Model:
    n = len(site.nodes)
    st = site.station
    f = np.float64

    def arr(values, dtype=f):
        return np.array(list(values), dtype=dtype)

    blk, pmp = scenario.blockages, scenario.pump_incidents
    return Model(
        invert=arr(nd.invert_m for nd in site.nodes),
        rim=arr(nd.rim_m for nd in site.nodes),
        shaft=arr(nd.area_m2 for nd in site.nodes),
        down=arr((lk.down for lk in site.links), np.int64),
        length=arr(lk.length_m for lk in site.links),
        diam=arr(lk.diameter_m for lk in site.links),
        inv_up=arr(lk.invert_up_m for lk in site.links),
        inv_dn=arr(lk.invert_down_m for lk in site.links),
        impervious_m2=arr(nd.impervious_ha * 1e4 for nd in site.nodes),
        ww_area=st.area_m2,
        pump_m3s=st.pump_l_s / 1000.0,
        n_pumps=st.pumps,
        stop_m=st.stop_mm / 1000.0,
        start_m=st.start_mm / 1000.0,
        assist_m=st.assist_mm / 1000.0,
        overflow_m=st.overflow_mm / 1000.0,
        sat_node=arr((s.node for s in site.satellites), np.int64),
        sat_pump=arr(s.pump_l_s / 1000.0 for s in site.satellites),
        sat_volume=arr(s.volume_m3 for s in site.satellites),
        pond_node=arr((p.node for p in site.ponding), np.int64),
        pond_road_m2=arr(p.road_ha * 1e4 for p in site.ponding),
        pond_bowl_m2=arr(p.bowl_m2 for p in site.ponding),
        pond_gully=arr(p.gully_l_s / 1000.0 for p in site.ponding),
        blk_link=arr((b.link for b in blk), np.int64),
        blk_t0=arr(b.t0 for b in blk),
        blk_ramp=arr(b.ramp_s for b in blk),
        blk_frac=arr(b.fraction for b in blk),
        blk_t1=arr(b.t1 for b in blk),
        pmp_pump=arr((p.pump for p in pmp), np.int64),
        pmp_t0=arr(p.t0 for p in pmp),
        pmp_t1=arr(p.t1 for p in pmp),
        pmp_kind=arr(({"no_flow": 0, "worn": 1, "tripped": 2}[p.kind] for p in pmp), np.int64),
        pmp_health=arr(p.health for p in pmp),
        H=arr(nd.invert_m + 0.02 for nd in site.nodes),
        Q=np.zeros(n),
        fast=np.zeros(n),
        slow=np.zeros(n),
        ww=np.array([st.stop_mm / 1000.0 + 0.2, 0.0]),
        running=np.zeros(3, dtype=np.int8),
        sat_vol=np.zeros(len(site.satellites)),
        sat_run=np.zeros(len(site.satellites), dtype=np.int8),
        pond_vol=np.zeros(len(site.ponding)),
        pond_in=np.zeros(len(site.ponding)),
    )


def _engine(site: BenchSite, network) -> RulesEngine:
    registry = ProfileRegistry()
    devices = []
    for g in site.gauges:
        depth = site.nodes[g.node].depth_m * 1000
        rules = DeviceRulesConfig(
            level_high_mm=round(depth * HIGH_FRACTION),
            level_high_high_mm=round(depth * HIGH_HIGH_FRACTION),
        )
        devices.append(DeviceInfo(g.name, registry.get(PROFILES["level"]), rules=rules))
    devices.append(DeviceInfo(site.station.gauge, registry.get(PROFILES["level"])))
    devices.append(DeviceInfo(site.station.controller, registry.get(PROFILES["pump_controller"])))
    devices += [DeviceInfo(r.name, registry.get(PROFILES["rain"])) for r in site.rain_gauges]
    devices += [DeviceInfo(p.name, registry.get(PROFILES["level"])) for p in site.ponding]
    return RulesEngine(RulesConfig(), devices, network=network)


class _NoRequests:
    """A poll plan with nothing to read: the benchmark makes the readings itself and asks
    the coordinator only for availability."""

    requests: tuple = ()

    def decode(self, device: str, results: object, ts: float) -> list[Reading]:
        return []


def _coordinator(name: str, poll_s: float) -> DeviceCoordinator:
    spec = DeviceSpec(name, 1, _NoRequests(), poll_s, PollPolicy(jitter_s=0.0))
    return DeviceCoordinator(spec, 0.0)


class _Gauge:
    """One level-type device's readings: noise, drift, stray echoes, stuck, echo lost; each
    reported to ``step`` mm (its register's resolution): a live gauge on a slow surface
    repeats a reading now and then, as in the field."""

    def __init__(self, name, poll_s, noise_mm, mount_mm, scenario: Scenario, rng, epoch, step):
        self.name, self.poll_s, self.noise, self.mount = name, poll_s, noise_mm, mount_mm
        self.step: float | None = step
        self.rng = rng
        self.epoch = epoch
        self.phase = float(rng.uniform(0, poll_s))
        self.incidents = [i for i in scenario.gauge_incidents if i.device == name]
        self.vehicles = [v for v in scenario.vehicles if v.device == name]
        self.drift = scenario.drift_mm_per_day.get(name, 0.0)
        self.spike_p = scenario.spikes_per_day * poll_s / DAY_S
        self.stuck_value: float | None = None

    def times(self, t0: float, t1: float) -> np.ndarray:
        first = math.ceil((t0 - self.phase) / self.poll_s) * self.poll_s + self.phase
        return np.arange(first, t1, self.poll_s)

    def state(self, t: float) -> str | None:
        for inc in self.incidents:
            if inc.t0 <= t < inc.t1:
                return inc.kind
        return None

    def read(self, t: float, true_mm: float, out: list) -> None:
        ts = self.epoch + t
        state = self.state(t)
        if state == "dropout":
            out.append((ts, 1, self.name, None))
            return
        if state != "stuck":
            self.stuck_value = None
        value = true_mm + self.rng.normal(0.0, self.noise) + self.drift * t / DAY_S
        for v in self.vehicles:
            if v.t0 <= t < v.t1:
                value = v.height_mm + self.rng.normal(0.0, 20.0)
        if self.rng.random() < self.spike_p:
            value += self.rng.uniform(100.0, 900.0)
        if state == "stuck":
            if self.stuck_value is None:
                self.stuck_value = value
            value = self.stuck_value
        quality = Quality.GOOD
        if state == "echo_lost" or value >= self.mount - BLANKING_MM:
            quality = Quality.FAULT
        value = _quantise(max(value, 0.0), self.step)
        out.append((ts, 0, self.name, Reading(self.name, "level", value, "mm", quality, ts)))


def run_site(
    site: BenchSite, days: int, seed: int, epoch: float = 1.7672e9, baseline: bool = True
) -> SiteRun:
    """Simulate ``days`` of ``site`` and feed its rules (see the module docstring); with
    ``baseline`` the same poll results also go to an engine without the site's network (the
    rules one gauge at a time, as before issue 11), side by side."""
    rng = np.random.default_rng(seed)
    network, links_of = rules_network(site)
    scenario = draw_scenario(rng, site, links_of, days)
    weather = make_weather(rng, days, site.extent_m, start_month=int(rng.integers(0, 12)))
    run = SiteRun(site, days, scenario, weather, links_of, network)
    n, minutes = len(site.nodes), days * MINUTES_PER_DAY
    dwf_pattern = {c: diurnal_factors(rng, days, c) for c in (False, True)}
    groundwater = groundwater_factor(days)
    run.depth_min = np.zeros((minutes, n), dtype=np.float32)
    run.depth_cf_min = np.zeros((minutes, n), dtype=np.float32)
    run.ww_min = np.zeros(minutes, dtype=np.float32)
    run.pond_min = np.zeros((minutes, len(site.ponding)), dtype=np.float32)
    model = _model(site, scenario)
    # the same year without its blockages: what each blockage changed at the gauges
    unblocked = _model(site, dataclasses.replace(scenario, blockages=()))
    engine = _engine(site, network)
    engines = [(engine, run.events)]
    if baseline:
        engines.append((_engine(site, None), run.baseline_events))
    polls = {g.name: g.poll_s for g in site.gauges} | {p.name: p.poll_s for p in site.ponding}
    polls |= {r.name: r.poll_s for r in site.rain_gauges}
    polls |= {site.station.gauge: site.station.poll_s, site.station.controller: site.station.poll_s}
    coordinators = {name: _coordinator(name, poll_s) for name, poll_s in polls.items()}
    registry = ProfileRegistry()
    level_step = _step(registry, "level", "level")
    rain_step = _step(registry, "rain", "rain_rate")
    sensors = [
        _Gauge(g.name, g.poll_s, g.noise_mm, g.mount_mm, scenario, rng, epoch, level_step)
        for g in site.gauges
    ]
    st = site.station
    well = _Gauge(
        st.gauge, st.poll_s, st.noise_mm, st.overflow_mm + 400.0, scenario, rng, epoch, level_step
    )
    ponds = [
        _Gauge(p.name, p.poll_s, p.noise_mm, 3000.0, scenario, rng, epoch, level_step)
        for p in site.ponding
    ]
    rain_cum = [0.0] * len(site.rain_gauges)
    rain_hist: list[list[float]] = [[0.0] * 10 for _ in site.rain_gauges]
    last_signal: dict[str, tuple[bool, float]] = {}
    for day in range(days):
        a, b = day * MINUTES_PER_DAY, (day + 1) * MINUTES_PER_DAY
        dwf = np.empty((MINUTES_PER_DAY, n))
        rain = np.empty((MINUTES_PER_DAY, n))
        for i, node in enumerate(site.nodes):
            base = dwf_pattern[node.commercial][a:b] + INFILTRATION_SHARE * groundwater[a:b]
            dwf[:, i] = node.dwf_l_s / 1000.0 * base / (1 + INFILTRATION_SHARE)
            rain[:, i] = weather.rain_at(node.x, node.y, a, b)
        sat_dwf = np.empty((MINUTES_PER_DAY, len(site.satellites)))
        for s, sat in enumerate(site.satellites):
            sat_dwf[:, s] = sat.dwf_l_s / 1000.0 * dwf_pattern[False][a:b]
        pond_rain = np.empty((MINUTES_PER_DAY, len(site.ponding)))
        for p, pond in enumerate(site.ponding):
            node = site.nodes[pond.node]
            pond_rain[:, p] = weather.rain_at(node.x, node.y, a, b)
        chunk = simulate_chunk(model, DAY_S, dwf, rain, sat_dwf, pond_rain)
        every = int(60 / RECORD_S)
        if scenario.blockages:
            other = simulate_chunk(unblocked, DAY_S, dwf, rain, sat_dwf, pond_rain)
            run.depth_cf_min[a:b] = other.depth[every - 1 :: every]
        else:
            run.depth_cf_min[a:b] = chunk.depth[every - 1 :: every]
        run.depth_min[a:b] = chunk.depth[every - 1 :: every]
        run.ww_min[a:b] = chunk.ww_level[every - 1 :: every]
        run.pond_min[a:b] = chunk.pond_depth[every - 1 :: every]
        out: list = []
        t0, t1 = chunk.t0, chunk.t0 + DAY_S
        last_record = chunk.ww_level.size - 1

        def rec(t: float, t0: float = t0, last: int = last_record) -> int:
            return min(int((t - t0) // RECORD_S), last)

        for gauge, spec in zip(sensors, site.gauges, strict=True):
            for t in gauge.times(t0, t1):
                gauge.read(t, float(chunk.depth[rec(t), spec.node]) * 1000.0, out)
        for t in well.times(t0, t1):
            r = rec(t)
            well.read(t, float(chunk.ww_level[r]) * 1000.0, out)
            signals = {f"pump{p + 1}_running": bool(chunk.running[r, p]) for p in range(3)}
            signals |= {f"pump{p + 1}_fault": bool(chunk.tripped[r, p]) for p in range(3)}
            signals["float_high_high"] = bool(chunk.ww_level[r] * 1000.0 >= st.overflow_mm - 300.0)
            ts = epoch + t + 0.5
            for point, value in signals.items():
                last = last_signal.get(point)
                if last is None or last[0] != value or ts - last[1] >= PUMP_HEARTBEAT_S:
                    last_signal[point] = (value, ts)
                    out.append(
                        (
                            ts,
                            0,
                            st.controller,
                            Reading(st.controller, point, value, "", Quality.GOOD, ts),
                        )
                    )
        for pond_gauge, p in zip(ponds, range(len(site.ponding)), strict=True):
            for t in pond_gauge.times(t0, t1):
                pond_gauge.read(t, float(chunk.pond_depth[rec(t), p]) * 1000.0, out)
        for k, rg in enumerate(site.rain_gauges):
            per_min = weather.rain_at(rg.x, rg.y, a, b) / 60.0  # mm in each minute
            clogged = [c for c in scenario.clogs if c.device == rg.name]
            cum = rain_cum[k] + np.cumsum(per_min)
            rain_cum[k] = float(cum[-1])
            tips = np.floor(np.concatenate([rain_hist[k], cum]) / rg.mm_per_tip) * rg.mm_per_tip
            rain_hist[k] = list(cum[-10:])
            phase = 7.0 * (k + 1)
            for t in np.arange(t0 + phase, t1, rg.poll_s):
                m = int((t - t0) // 60)
                rate = _quantise((tips[m + 10] - tips[m]) * 6.0, rain_step)
                if any(c.t0 <= t < c.t1 for c in clogged):
                    rate = 0.0
                ts = epoch + t
                out.append(
                    (ts, 0, rg.name, Reading(rg.name, "rain_rate", rate, "mm/h", Quality.GOOD, ts))
                )
        out.sort(key=lambda item: item[0])
        for ts, failed, device, reading in out:
            coordinator = coordinators[device]
            if failed:
                change = coordinator.failed("timeout", ts)
                result = PollResult("sim", device, ts, error="timeout", change=change)
            else:
                change = coordinator.succeeded(ts)
                result = PollResult("sim", device, ts, readings=(reading,), change=change)
            for rules, events in engines:
                for e in rules.on_poll(result):
                    events.append((e.ts - epoch, e.dev, e.kind, int(e.sev), e.data))
        run.readings += len(out)
    return run


def overflow_nodes(site: BenchSite) -> list[int]:
    """Nodes whose overflow a gauge can see (gauged manholes)."""
    return [g.node for g in site.gauges if g.node != WET_WELL]
