"""The benchmark's sewer hydraulics: manholes joined by circular pipes, a pump station's wet
well, satellites and road low points, stepped every few seconds through a year.

Written apart from ``drivers/sim`` (whose sewer is "dry level plus lagged rain plus a ramp"),
so that the rules developed against the simulator are judged against other physics:

- **pipes**: the local inertial form of the shallow-water momentum equation (Bates, Horritt
  and Fewtrell 2010) per link, friction from Manning's n implicit, so a pipe at normal depth
  carries Manning's flow and a raised downstream head (backwater) throttles it. The flow
  depth is the higher water surface over the higher invert; the area and hydraulic radius
  are those of a circle filled to that depth (full: surcharged, pressurised flow driven by the head
  difference). A free outfall (the water below is lower than the pipe's own flow depth
  there) leaves the pipe at normal depth.
- **blockages**: a local loss ``Q|Q| / (2 g (Cd A_open)^2)`` over the pipe's length, ``A_open``
  the cross-section left open; a full blockage passes nothing. Upstream the sewer backs up
  into the pipes' storage and the manholes (rising fast where storage is small), downstream
  it drains away: the levels diverge.
- **manholes**: storage = the shaft's plan area plus half of each connected pipe's surface
  width times its length (a narrow slot once a pipe is full); above the rim water spreads
  over the street (a large area) and flows back as the sewer drains.
- **wet well**: inflow from its pipes minus the pumps; duty / assist / standby control on
  start, assist and stop levels, duty rotating each cycle; a pump incident makes a running
  pump move nothing (air lock), a fraction of its flow (wear) or trip (off, fault signalled);
  a standby pump replaces a tripped one. Above the overflow level it spills.
- **inflow**: each manhole's dry-weather flow (minute series from ``weather``), run-off from
  its paved area through a 10-minute linear reservoir, slow rain-derived infiltration
  through a 12-hour one, and satellites' rising mains (their own wet wells cycling).
- **road low points**: run-off from the road fills a bowl that gullies drain into the
  manhole, unless the manhole is surcharged to within 0.3 m of the road.

``simulate_chunk`` advances the state by one chunk (a day) and returns what the sensors see
every ``RECORD_S`` seconds. The kernel is numba (``cache=True``): a year of a 20-manhole site
takes seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

__all__ = ["RECORD_S", "STEP_S", "Chunk", "Model", "simulate_chunk"]

STEP_S = 2.5
RECORD_S = 10.0
G = 9.81
MANNING_N = 0.013
CD = 0.6  # discharge coefficient of the opening a blockage leaves
CLEARING_S = 1800.0  # a crew jets a blockage away over half an hour
SLOT = 0.02  # surface width of a full pipe, as a share of its diameter (Preissmann slot)
STREET_M2 = 300.0  # area water spreads over above a manhole's rim
RUNOFF_C = 0.8
FAST_TAU_S = 600.0
SLOW_TAU_S = 12 * 3600.0
SLOW_SHARE = 0.15
ROAD_TAU_S = 300.0
GULLY_FREEBOARD_M = 0.3


@dataclass
class Model:
    """Arrays of one site and its state (mutated by ``simulate_chunk``)."""

    # nodes / links (link i leaves node i)
    invert: np.ndarray
    rim: np.ndarray
    shaft: np.ndarray
    down: np.ndarray
    length: np.ndarray
    diam: np.ndarray
    inv_up: np.ndarray
    inv_dn: np.ndarray
    impervious_m2: np.ndarray
    # station
    ww_area: float
    pump_m3s: float
    n_pumps: int
    stop_m: float
    start_m: float
    assist_m: float
    overflow_m: float
    # satellites
    sat_node: np.ndarray
    sat_pump: np.ndarray
    sat_volume: np.ndarray
    # road low points
    pond_node: np.ndarray
    pond_road_m2: np.ndarray
    pond_bowl_m2: np.ndarray
    pond_gully: np.ndarray
    # incidents (seconds since the start of the run)
    blk_link: np.ndarray
    blk_t0: np.ndarray
    blk_ramp: np.ndarray
    blk_frac: np.ndarray
    blk_t1: np.ndarray
    pmp_pump: np.ndarray
    pmp_t0: np.ndarray
    pmp_t1: np.ndarray
    pmp_kind: np.ndarray  # 0: runs, moves nothing; 1: worn (pmp_health); 2: tripped
    pmp_health: np.ndarray
    # state
    H: np.ndarray
    Q: np.ndarray
    fast: np.ndarray
    slow: np.ndarray
    ww: np.ndarray  # [level m, duty index]
    running: np.ndarray  # int8 per pump (3)
    sat_vol: np.ndarray
    sat_run: np.ndarray
    pond_vol: np.ndarray
    pond_in: np.ndarray
    t: float = 0.0


@dataclass
class Chunk:
    """What the sensors see every ``RECORD_S`` over one chunk."""

    t0: float
    depth: np.ndarray  # [R, nodes] m above the invert
    ww_level: np.ndarray  # [R] m above the wet-well floor
    running: np.ndarray  # [R, 3] int8: the controller's running signal
    tripped: np.ndarray  # [R, 3] int8: the controller's fault signal
    outflow: np.ndarray  # [R] l/s the pumps move
    pond_depth: np.ndarray  # [R, ponds] m of water on the road


@numba.njit(cache=True)
def _circle(y, d):
    """Area, hydraulic radius and surface width of a circle of diameter d filled to y."""
    if y <= 0.0:
        return 0.0, 0.0, 0.0
    if y >= d:
        return math.pi * d * d / 4.0, d / 4.0, SLOT * d
    theta = 2.0 * math.acos(1.0 - 2.0 * y / d)
    area = d * d / 8.0 * (theta - math.sin(theta))
    perimeter = d * theta / 2.0
    width = max(2.0 * math.sqrt(y * (d - y)), SLOT * d)
    return area, area / perimeter, width


@numba.njit(cache=True)
def _blocked(link, t, blk_link, blk_t0, blk_ramp, blk_frac, blk_t1):
    """The share of ``link`` blocked at ``t``: growing over its ramp, then cleared by a crew
    jetting it over ``CLEARING_S`` (not all at once: the backed-up water comes down gently)."""
    frac = 0.0
    for j in range(blk_link.size):
        if blk_link[j] == link and blk_t0[j] <= t < blk_t1[j] + CLEARING_S:
            grow = 1.0 if blk_ramp[j] <= 0 else min((t - blk_t0[j]) / blk_ramp[j], 1.0)
            if t >= blk_t1[j]:
                grow *= 1.0 - (t - blk_t1[j]) / CLEARING_S
            frac = max(frac, blk_frac[j] * grow)
    return frac


@numba.njit(cache=True)
def _pump_state(p, t, pmp_pump, pmp_t0, pmp_t1, pmp_kind, pmp_health):
    """(share of its rated flow the pump moves when running, tripped?)"""
    health, tripped = 1.0, False
    for j in range(pmp_pump.size):
        if pmp_pump[j] == p and pmp_t0[j] <= t < pmp_t1[j]:
            if pmp_kind[j] == 0:
                health = 0.0
            elif pmp_kind[j] == 1:
                health = min(health, pmp_health[j])
            else:
                tripped = True
    return health, tripped


@numba.njit(cache=True)
def _kernel(
    steps, rec_every, t0, dwf, rain, sat_dwf, pond_rain,
    invert, rim, shaft, down, length, diam, inv_up, inv_dn, imp_m2,
    ww_area, pump_m3s, n_pumps, stop_m, start_m, assist_m, overflow_m,
    sat_node, sat_pump, sat_volume,
    pond_node, pond_road, pond_bowl, pond_gully,
    blk_link, blk_t0, blk_ramp, blk_frac, blk_t1,
    pmp_pump, pmp_t0, pmp_t1, pmp_kind, pmp_health,
    H, Q, fast, slow, ww, running, sat_vol, sat_run, pond_vol, pond_in,
    out_depth, out_ww, out_run, out_trip, out_outflow, out_pond,
):  # fmt: skip
    n = invert.size
    dt = STEP_S
    lateral = np.zeros(n)
    inflow = np.zeros(n)
    storage = np.zeros(n)
    health = np.ones(3)
    tripped = np.zeros(3, dtype=np.bool_)
    rec = 0
    for step in range(steps):
        t = t0 + step * dt
        minute = int(step * dt // 60.0)
        # -- inflow at the manholes
        for i in range(n):
            run_in = imp_m2[i] * RUNOFF_C * rain[minute, i] / 3.6e6
            fast[i] += dt / FAST_TAU_S * (run_in - fast[i])
            slow[i] += dt / SLOW_TAU_S * (SLOW_SHARE * run_in - slow[i])
            lateral[i] = dwf[minute, i] + fast[i] + slow[i]
        for s in range(sat_node.size):
            sat_vol[s] += dt * sat_dwf[minute, s]
            if sat_vol[s] >= sat_volume[s]:
                sat_run[s] = 1
            if sat_run[s] == 1:
                moved = min(sat_pump[s], sat_vol[s] / dt)
                sat_vol[s] -= dt * moved
                lateral[sat_node[s]] += moved
                if sat_vol[s] <= 0.0:
                    sat_run[s] = 0
        for p in range(pond_node.size):
            pond_in[p] += (
                dt / ROAD_TAU_S * (pond_road[p] * 0.9 * pond_rain[minute, p] / 3.6e6 - pond_in[p])
            )
            pond_vol[p] += dt * pond_in[p]
            node = pond_node[p]
            if H[node] < rim[node] - GULLY_FREEBOARD_M:
                drained = min(pond_gully[p], pond_vol[p] / dt)
                pond_vol[p] -= dt * drained
                lateral[node] += drained
        # -- pipes: local inertial momentum, friction and blockage loss implicit
        for k in range(n):
            d = down[k]
            hu = H[k]
            hd = ww[0] if d < 0 else H[d]
            zu, zd, dk = inv_up[k], inv_dn[k], diam[k]
            yu = min(max(hu - zu, 0.0), dk)
            hd_eff = max(hd, zd + yu)  # a free outfall leaves at the pipe's own depth
            # flow depth: the higher water surface over the higher invert (Bates et al.)
            y = min(max(max(hu, hd_eff) - zu, 0.0), dk)
            if y < 1e-4:
                Q[k] = 0.0
                continue
            area, radius, _ = _circle(y, dk)
            frac = _blocked(k, t, blk_link, blk_t0, blk_ramp, blk_frac, blk_t1)
            if frac >= 0.999:
                Q[k] = 0.0
                continue
            slope = (hu - hd_eff) / length[k]
            denom = 1.0 + G * dt * MANNING_N**2 * abs(Q[k]) / (area * radius ** (4.0 / 3.0))
            if frac > 0.0:
                open_area = (1.0 - frac) * math.pi * dk * dk / 4.0
                denom += dt * area * abs(Q[k]) / (2.0 * CD * CD * open_area * open_area * length[k])
            Q[k] = (Q[k] + G * area * dt * slope) / denom
        # -- manholes: continuity
        for i in range(n):
            inflow[i] = lateral[i]
            storage[i] = shaft[i]
        for k in range(n):
            d = down[k]
            _, _, w_up = _circle(H[k] - inv_up[k], diam[k])
            storage[k] += 0.5 * length[k] * w_up
            inflow[k] -= Q[k]
            if d >= 0:
                inflow[d] += Q[k]
                _, _, w_dn = _circle(H[d] - inv_dn[k], diam[k])
                storage[d] += 0.5 * length[k] * w_dn
        into_well = 0.0
        for k in range(n):
            if down[k] < 0:
                into_well += Q[k]
        for i in range(n):
            area_i = STREET_M2 if H[i] > rim[i] else storage[i]
            H[i] = max(H[i] + dt * inflow[i] / area_i, invert[i])
        # -- the wet well and its pumps
        for p in range(3):
            health[p], tripped[p] = _pump_state(
                p, t, pmp_pump, pmp_t0, pmp_t1, pmp_kind, pmp_health
            )
        level = ww[0]
        if level <= stop_m:
            for p in range(3):
                running[p] = 0
        want = 0
        if level >= start_m:
            want = 1
        if level >= assist_m:
            want = 2
        for p in range(3):
            if tripped[p]:
                running[p] = 0
        on = running[0] + running[1] + running[2]
        if on < want:
            duty = int(ww[1])
            if on == 0:
                duty = (duty + 1) % n_pumps
                ww[1] = duty
            for j in range(n_pumps):
                p = (duty + j) % n_pumps
                if on < want and running[p] == 0 and not tripped[p]:
                    running[p] = 1
                    on += 1
        pumped = 0.0
        for p in range(3):
            if running[p] == 1:
                pumped += pump_m3s * health[p]
        level += dt * (into_well - pumped) / ww_area
        ww[0] = min(max(level, 0.0), overflow_m)
        # -- what the sensors see
        if (step + 1) % rec_every == 0 and rec < out_ww.size:
            for i in range(n):
                out_depth[rec, i] = H[i] - invert[i]
            out_ww[rec] = ww[0]
            for p in range(3):
                out_run[rec, p] = running[p]
                out_trip[rec, p] = 1 if tripped[p] else 0
            out_outflow[rec] = pumped * 1000.0
            for p in range(pond_node.size):
                out_pond[rec, p] = pond_vol[p] / pond_bowl[p]
            rec += 1


def simulate_chunk(
    model: Model,
    seconds: float,
    dwf: np.ndarray,
    rain: np.ndarray,
    sat_dwf: np.ndarray,
    pond_rain: np.ndarray,
) -> Chunk:
    """Advance ``model`` by ``seconds``; forcing arrays are per minute ([minutes, ...]):
    dry-weather flow and rain (mm/h) per manhole, satellites' inflow (m3/s), rain over each
    road low point (mm/h)."""
    steps = round(seconds / STEP_S)
    rec_every = round(RECORD_S / STEP_S)
    records = steps // rec_every
    n, ponds = model.invert.size, model.pond_node.size
    chunk = Chunk(
        t0=model.t,
        depth=np.zeros((records, n), dtype=np.float32),
        ww_level=np.zeros(records, dtype=np.float32),
        running=np.zeros((records, 3), dtype=np.int8),
        tripped=np.zeros((records, 3), dtype=np.int8),
        outflow=np.zeros(records, dtype=np.float32),
        pond_depth=np.zeros((records, ponds), dtype=np.float32),
    )
    m = model
    _kernel(
        steps, rec_every, m.t, dwf, rain, sat_dwf, pond_rain,
        m.invert, m.rim, m.shaft, m.down, m.length, m.diam, m.inv_up, m.inv_dn, m.impervious_m2,
        m.ww_area, m.pump_m3s, m.n_pumps, m.stop_m, m.start_m, m.assist_m, m.overflow_m,
        m.sat_node, m.sat_pump, m.sat_volume,
        m.pond_node, m.pond_road_m2, m.pond_bowl_m2, m.pond_gully,
        m.blk_link, m.blk_t0, m.blk_ramp, m.blk_frac, m.blk_t1,
        m.pmp_pump, m.pmp_t0, m.pmp_t1, m.pmp_kind, m.pmp_health,
        m.H, m.Q, m.fast, m.slow, m.ww, m.running, m.sat_vol, m.sat_run, m.pond_vol, m.pond_in,
        chunk.depth, chunk.ww_level, chunk.running, chunk.tripped, chunk.outflow, chunk.pond_depth,
    )  # fmt: skip
    model.t += steps * STEP_S
    return chunk
