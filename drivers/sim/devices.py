"""Plausible dynamics for every simulated device kind, and the register image they serve.

A ``DeviceModel`` is one site device: its state advances with ``update(t, dt)`` (sim seconds,
any step size: first-order lags use the exact exponential, the pump station sub-steps), and
``refresh()`` encodes its current values into its ``UnitStore`` exactly as its profile lays
them out (``drivers.codec.encode_value``), identification block included. Values are given
by point name or by the point's ``role`` (``level_mm``, ``gas_lel``, ...), so a second
profile of the same kind works without code.

The ``World`` is what the scenarios of the site file say about the weather and the
episodes: rain intensity and totals from storms, gas leaks, opened covers, scheduled faults.
Fault bits on demand (``DeviceModel.fault_bits``) and forced point values
(``DeviceModel.forced``) are OR-ed / laid over the dynamics. Writable points (set points,
enables) keep what the master wrote: the store is their truth.

The physics is deliberately small: a sewer level follows rain through a first-order lag
on top of a dry-weather diurnal swing; a wet well integrates inflow minus the pumps that its
controller runs with start / assist / stop levels; gas is a background with a bell-shaped
episode; network pressure dips at the demand peaks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from drivers.codec import Value, decode_registers, encode_value
from drivers.profile import Point, Profile
from sitemodel import (
    CoverParams,
    GasParams,
    LevelParams,
    PressureParams,
    PumpControllerParams,
    RainParams,
    Site,
    SiteDevice,
)

from .scenarios import Scenarios
from .server import Table, UnitStore

__all__ = [
    "CoverModel",
    "DeviceModel",
    "GasModel",
    "LevelModel",
    "PressureModel",
    "PumpStationModel",
    "RainGaugeModel",
    "World",
]

PUMP_SUBSTEP_S = 5.0  # the wet well moves mm per second: finer steps keep the hysteresis honest
PUMP_CURRENT_A = 14.0
HIGH_HIGH_MARGIN_MM = 300.0  # the backup float sits this far below the overflow level
GAS_LINE_DRAIN_S = 180.0  # a leaking gas line loses its scenario's drop_bar over this
_SETTERS = {
    "coil": UnitStore.set_coils,
    "discrete": UnitStore.set_discrete,
    "input": UnitStore.set_input,
    "holding": UnitStore.set_holding,
}


def _bell(t: float, start_s: float, duration_s: float) -> float:
    """0 outside the episode, sin^2 rising to 1 halfway through it."""
    u = t - start_s
    if u <= 0 or u >= duration_s:
        return 0.0
    return math.sin(math.pi * u / duration_s) ** 2


class World:
    """The scenarios' shared state at sim time ``t`` (seconds since the simulator started).

    ``epoch_start`` maps sim time to epoch seconds for the time of day (local time, as the
    gateway's night window is).
    """

    def __init__(self, site: Site, scenarios: Scenarios, *, epoch_start: float) -> None:
        self.site = site
        self.scenarios = scenarios
        self.epoch_start = epoch_start
        self.stations: dict[str, PumpStationModel] = {}

    def hour_of_day(self, t: float) -> float:
        tm = time.localtime(self.epoch_start + t)
        return tm.tm_hour + tm.tm_min / 60.0 + tm.tm_sec / 3600.0

    def seconds_into_day(self, t: float) -> float:
        """Sim seconds since the last local midnight."""
        return self.hour_of_day(t) * 3600.0

    def rain_mm_per_h(self, t: float) -> float:
        return sum(
            s.peak_mm_per_h * _bell(t, s.start_s, s.duration_s) for s in self.scenarios.storms
        )

    def rain_total_mm(self, t: float) -> float:
        """Rain fallen since sim time 0 (closed form of the integral of ``rain_mm_per_h``)."""
        total = 0.0
        for s in self.scenarios.storms:
            u = min(max(t - s.start_s, 0.0), s.duration_s)
            d = s.duration_s
            total += (
                s.peak_mm_per_h
                / 3600.0
                * (u / 2 - d / (4 * math.pi) * math.sin(2 * math.pi * u / d))
            )
        return total

    def gas_lel(self, device: str, t: float) -> float:
        return sum(
            g.peak_lel * _bell(t, g.start_s, g.duration_s)
            for g in self.scenarios.gas
            if g.device == device
        )

    def cover(self, device: str, t: float) -> tuple[bool, bool]:
        """(opened, tilted) of a cover sensor."""
        for c in self.scenarios.covers:
            if c.device == device and c.start_s <= t < c.start_s + c.duration_s:
                return (not c.tilt, c.tilt)
        return (False, False)

    def blockage_mm(self, device: str, t: float) -> float:
        """How far a blockage below ``device`` has backed the sewer up (settled level)."""
        total = 0.0
        for b in self.scenarios.blockages:
            if b.device == device and b.start_s <= t < b.start_s + b.duration_s:
                total += b.rise_mm_per_min * (t - b.start_s) / 60.0
        return total

    def starved(self, device: str, t: float) -> float:
        """Share of its dry-weather flow a blockage above ``device`` keeps from it (0..1):
        the water drains away below the blockage within a few minutes."""
        share = 0.0
        for b in self.scenarios.blockages:
            if b.downstream == device and b.start_s <= t < b.start_s + b.duration_s:
                share = max(share, b.fall_pct / 100.0 * (1 - math.exp(-(t - b.start_s) / 120.0)))
        return share

    def pressure_drop_bar(self, device: str, t: float) -> float:
        """How much pressure a gas leak takes from the line ``device`` measures."""
        drop = 0.0
        for g in self.scenarios.gas:
            if g.pressure == device and g.start_s <= t < g.start_s + g.duration_s:
                drop += g.drop_bar * min((t - g.start_s) / GAS_LINE_DRAIN_S, 1.0)
        return drop

    def fault_bits(self, device: str, t: float) -> int:
        bits = 0
        for f in self.scenarios.faults:
            if f.device == device and f.start_s <= t < f.start_s + f.duration_s:
                bits |= f.bits
        return bits

    def dropped(self, device: str, t: float) -> bool:
        return any(
            d.device == device and d.start_s <= t < d.start_s + d.duration_s
            for d in self.scenarios.dropouts
        )


class DeviceModel:
    """One simulated device: dynamics plus its register image (see the module docstring).

    Subclasses implement ``update(t, dt)`` and ``values(t)``; ``settings()`` gives initial
    values of writable points. ``owned`` addresses (holding) are written by the subclass
    directly (the noise logger's recording registers) and left alone by ``refresh``.
    """

    def __init__(
        self, device: SiteDevice, profile: Profile, world: World, rng: np.random.Generator
    ) -> None:
        self.device = device
        self.profile = profile
        self.world = world
        self.rng = rng
        self.t = 0.0
        self.fault_bits = 0  # on demand (SiteSimulator.set_fault)
        self.forced: dict[str, Value] = {}  # point name -> value laid over the dynamics
        self.owned: set[int] = set()
        self.store = UnitStore()
        self._build_store()

    # -- dynamics (subclasses) ----------------------------------------------------------------
    def update(self, t: float, dt: float) -> None:
        """Advance the state to sim time ``t`` (``dt`` since the last update)."""
        self.t = t

    def values(self) -> dict[str, Value]:
        """Current engineering values by point name or role."""
        return {}

    def settings(self) -> dict[str, Value]:
        """Initial values of writable points (set points, enables)."""
        return {}

    def status_bits(self) -> int:
        """The device's own status / fault bits (without faults on demand)."""
        return 0

    def on_write(self, function: int, address: int, values: list[int] | list[bool]) -> int | None:
        """A master wrote to this unit (already stored, set points range-checked); return a
        Modbus exception code to refuse it. Writable points are read from the store."""
        return None

    def on_read(self, function: int, address: int, count: int) -> None:
        """A master is reading (called before the answer); most devices do not care."""

    def write(self, function: int, address: int, values: list[int] | list[bool]) -> int | None:
        """What the bus's write hook calls: a set point written outside its profile range is
        refused with exception 3 (illegal data value) and keeps its old value, as a device
        does; anything else goes to ``on_write``."""
        table = _WRITE_TABLE.get(function)
        if table is None:
            return None
        span = range(address, address + len(values))
        touched = [
            p
            for p in self.profile.points
            if p.writable
            and _TABLE[p.function] == table
            and p.address <= span[-1]
            and p.end >= span[0]
        ]
        for point in touched:
            value = decode_registers(point, self._regs(point))
            rng = point.valid_range
            if rng is not None and not isinstance(value, str) and not rng[0] <= value <= rng[1]:
                for p in touched:  # the whole request is refused: put every point back
                    _SETTERS[p.function](self.store, p.address, self._shadow[p.name])
                return 3
        for point in touched:
            self._shadow[point.name] = list(self._regs(point))
        return self.on_write(function, address, values)

    def _regs(self, point: Point) -> list:
        table = self.store.table(_TABLE[point.function])
        return [table[a] for a in range(point.address, point.end + 1)]

    # -- register image -----------------------------------------------------------------------
    def setting(self, name: str) -> Value:
        """Decode a writable point's current value from the store (what the master wrote)."""
        point = self.profile.point(name)
        return decode_registers(point, self._regs(point))

    def _write(self, point: Point, value: Value) -> None:
        _SETTERS[point.function](self.store, point.address, encode_value(point, value))

    def _build_store(self) -> None:
        for check in self.profile.identification:
            self._write(check.point, check.expected)
            if check.point.function == "holding":
                self.store.read_only.update(range(check.point.address, check.point.end + 1))
        initial = self.settings()
        self._shadow: dict[str, list] = {}  # last accepted registers of each writable point
        for point in self.profile.points:
            self._write(point, initial.get(point.name, False if point.type == "bool" else 0))
            if point.writable:
                self._shadow[point.name] = list(self._regs(point))
            elif point.function == "holding":
                self.store.read_only.update(range(point.address, point.end + 1))

    def refresh(self) -> None:
        """Encode the current values (and status bits) into the store."""
        values = self.values()
        bits = (
            self.status_bits() | self.fault_bits | self.world.fault_bits(self.device.name, self.t)
        )
        for point in self.profile.points:
            if point.writable or (point.function == "holding" and point.address in self.owned):
                continue
            if point.name in self.forced:
                value = self.forced[point.name]
            elif point.role == "status" and point.type in ("bitfield", "bitfield32"):
                value = bits
            elif point.name in values:
                value = values[point.name]
            elif point.role is not None and point.role in values:
                value = values[point.role]
            else:
                continue
            self._write(point, value)


_TABLE: dict[str, Table] = {
    "coil": "coils",
    "discrete": "discrete",
    "input": "input",
    "holding": "holding",
}
_WRITE_TABLE: dict[int, Table] = {5: "coils", 15: "coils", 6: "holding", 16: "holding"}


def _noise(rng: np.random.Generator, sd: float) -> float:
    return float(rng.normal(0.0, sd))


def _lag(state: float, target: float, dt: float, tau: float) -> float:
    """Exact first-order lag step: any ``dt`` gives the same curve."""
    return target + (state - target) * math.exp(-dt / tau)


class LevelModel(DeviceModel):
    """A radar level gauge: sewer level following rain, or a pump station's wet well."""

    params: LevelParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params = self.device.sim  # type: ignore[assignment]
        self.rain_lag = 0.0
        self.backed_mm = 0.0
        self.level_mm = self._dry(0.0)

    def settings(self) -> dict[str, Value]:
        return {"mount_height": self._mount_height(), "damping": 5.0}

    def _mount_height(self) -> float:
        return round(self.device.sim.cover_depth_mm - 200.0)  # type: ignore[union-attr]

    def _dry(self, t: float) -> float:
        p = self.device.sim
        h = self.world.hour_of_day(t)
        swing = 0.5 - 0.5 * math.cos(2 * math.pi * (h - 3.0) / 24.0)  # lowest at 03:00
        return p.dry_level_mm + p.diurnal_mm * swing  # type: ignore[union-attr]

    def update(self, t: float, dt: float) -> None:
        super().update(t, dt)
        p = self.params
        if p.station is not None:
            self.level_mm = self.world.stations[p.station].level_mm
            return
        self.rain_lag = _lag(self.rain_lag, self.world.rain_mm_per_h(t), dt, p.lag_s)
        # a blockage backs the sewer up as it happens (no lag); when it is cleared the
        # backed-up water drains through the catchment's lag
        backed = self.world.blockage_mm(self.device.name, t)
        self.backed_mm = backed if backed > 0 else _lag(self.backed_mm, 0.0, dt, p.lag_s)
        dry = self._dry(t) * (1.0 - self.world.starved(self.device.name, t))
        target = dry + p.storm_gain_mm_per_mm_h * self.rain_lag + self.backed_mm
        self.level_mm = min(target, p.cover_depth_mm)  # above the cover it spills, not rises

    def values(self) -> dict[str, Value]:
        level = max(0.0, self.level_mm + _noise(self.rng, 2.0))
        mount = float(self.setting("mount_height"))
        return {
            "level_mm": level,
            "distance_mm": max(0.0, mount - level),
            "signal_db": 42.0 + _noise(self.rng, 0.5),
            "temperature_c": 14.0 + _noise(self.rng, 0.1),
            "battery_pct": 88,
        }


class RainGaugeModel(DeviceModel):
    """A tipping bucket: whole tips of the rain fallen since the counter was reset."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reset_mm = 0.0

    def settings(self) -> dict[str, Value]:
        return {"mm_per_tip": self.device.sim.mm_per_tip}  # type: ignore[union-attr]

    def _tipped_mm(self, t: float) -> float:
        per_tip = float(self.setting("mm_per_tip")) or RainParams().mm_per_tip
        return math.floor((self.world.rain_total_mm(t) - self.reset_mm) / per_tip) * per_tip

    def on_write(self, function: int, address: int, values: list[int] | list[bool]) -> int | None:
        reset = self.profile.point("reset_total") if self.profile.has_point("reset_total") else None
        if reset is not None and function in (5, 15) and address == reset.address and values[0]:
            self.reset_mm = self.world.rain_total_mm(self.t)
            self.store.set_coils(address, [False])
        return None

    def values(self) -> dict[str, Value]:
        t = self.t
        per_tip = float(self.setting("mm_per_tip")) or RainParams().mm_per_tip
        total = self._tipped_mm(t)
        hour_ago = self._tipped_mm(max(0.0, t - 3600.0))
        ten_ago = self._tipped_mm(max(0.0, t - 600.0))
        return {
            "rain_tips": round(total / per_tip),
            "rain_mm_total": total,
            "rain_rate_mm_h": (total - ten_ago) * 6.0,  # mm in the last 10 min -> mm/h
            "rain_mm_hour": total - hour_ago,
            "rain_mm_day": total - self._tipped_mm(max(0.0, t - self.world.seconds_into_day(t))),
            "battery_pct": 92,
        }


class GasModel(DeviceModel):
    """A four-gas detector in a valve chamber: background plus the scenario's episodes."""

    LEL_ALARM1, LEL_ALARM2 = 25.0, 50.0
    O2_LOW, O2_HIGH = 19.5, 23.5

    def values(self) -> dict[str, Value]:
        p: GasParams = self.device.sim  # type: ignore[assignment]
        lel = max(0.0, p.background_lel + self.world.gas_lel(self.device.name, self.t))
        lel = min(100.0, lel + _noise(self.rng, 0.15))
        o2 = 20.9 - 0.02 * lel + _noise(self.rng, 0.03)  # methane displaces a little air
        alarms = (lel >= self.LEL_ALARM1) << 0 | (lel >= self.LEL_ALARM2) << 1
        alarms |= (o2 < self.O2_LOW) << 6 | (o2 > self.O2_HIGH) << 7
        return {
            "gas_lel": round(lel, 1),
            "gas_h2s_ppm": max(0.0, 0.2 + _noise(self.rng, 0.05)),
            "gas_co_ppm": max(0, round(2 + _noise(self.rng, 0.5))),
            "gas_o2_pct": o2,
            "gas_alarms": int(alarms),
            "temperature_c": 13.0 + _noise(self.rng, 0.1),
        }


class PressureModel(DeviceModel):
    """Network pressure: dips at the morning and evening demand peaks; the minimum and maximum
    since the master last read them (so transients between polls are not lost)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.now_bar = self._pressure(0.0)
        self.low = self.high = self.now_bar
        self._restart = False
        pts = [p for p in self.profile.points if p.role in ("pressure_min_bar", "pressure_max_bar")]
        self._capture = pts

    def _pressure(self, t: float) -> float:
        p: PressureParams = self.device.sim  # type: ignore[assignment]
        h = self.world.hour_of_day(t)
        demand = math.exp(-(((h - 7.5) / 1.5) ** 2)) + 0.8 * math.exp(-(((h - 19.0) / 2.0) ** 2))
        drop = self.world.pressure_drop_bar(self.device.name, t)
        return max(
            0.0, p.mean_bar + p.diurnal_bar * (0.5 - demand) - drop + _noise(self.rng, 0.004)
        )

    def on_read(self, function: int, address: int, count: int) -> None:
        # the answer carries the registers as they are now; the capture restarts after it
        if any(p.address < address + count and p.end >= address for p in self._capture):
            self._restart = True

    def update(self, t: float, dt: float) -> None:
        super().update(t, dt)
        self.now_bar = self._pressure(t)
        if self._restart:
            self.low = self.high = self.now_bar
            self._restart = False
        self.low, self.high = min(self.low, self.now_bar), max(self.high, self.now_bar)

    def values(self) -> dict[str, Value]:
        return {
            "pressure_bar": self.now_bar,
            "pressure_min_bar": self.low,
            "pressure_max_bar": self.high,
            "temperature_c": 12.0 + _noise(self.rng, 0.1),
            "battery_pct": 81,
            "uptime_s": int(86_400 * 40 + self.t),
        }


class CoverModel(DeviceModel):
    """A manhole-cover sensor: reed switch, tilt, battery; opened by the scenarios."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_count = 0
        self._was_open = False

    def update(self, t: float, dt: float) -> None:
        super().update(t, dt)
        opened, _ = self.world.cover(self.device.name, t)
        if opened and not self._was_open:
            self.open_count += 1
        self._was_open = opened

    def values(self) -> dict[str, Value]:
        p: CoverParams = self.device.sim  # type: ignore[assignment]
        opened, tilted = self.world.cover(self.device.name, self.t)
        tilt = 88.0 if opened else 14.0 if tilted else 0.4
        return {
            "cover_open": opened,
            "water_detected": False,
            "cover_tilt_deg": max(0.0, tilt + _noise(self.rng, 0.1)),
            "battery_pct": max(0, min(100, round((p.battery_v - 2.0) / 1.7 * 100))),
            "battery_v": min(3.7, p.battery_v),
            "cover_open_count": self.open_count,
            "temperature_c": 11.0 + _noise(self.rng, 0.1),
        }

    def status_bits(self) -> int:
        _, tilted = self.world.cover(self.device.name, self.t)
        return 1 << 1 if tilted else 0  # tamper


class PumpStationModel(DeviceModel):
    """A sewage pump station: the wet well integrates inflow minus the running pumps.

    The duty pump starts at ``start_level``, the next one assists above the assist level,
    all stop at ``stop_level`` (set points are writable holding registers); the duty rotates
    every cycle; a pump that is disabled (coil) or faulted (forced ``pumpN_fault``) is skipped.
    Inflow: dry-weather flow with a diurnal swing plus rain through a first-order lag.
    """

    params: PumpControllerParams

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params = self.device.sim  # type: ignore[assignment]
        p = self.params
        self.level_mm = (p.stop_level_mm + p.start_level_mm) / 2.0
        self.running = [False] * 3
        self.run_s = [3600.0 * (1200 + 150 * i) for i in range(3)]
        self.starts_today = 0
        self.duty = 0
        self.rain_lag = 0.0
        self.inflow_l_s = 0.0
        self.world.stations[self.device.name] = self

    def settings(self) -> dict[str, Value]:
        p = self.device.sim
        n = p.pumps  # type: ignore[union-attr]
        return {
            "start_level": p.start_level_mm,  # type: ignore[union-attr]
            "stop_level": p.stop_level_mm,  # type: ignore[union-attr]
            **{f"pump{i + 1}_enabled": i < n for i in range(3)},
        }

    def _available(self) -> list[int]:
        out = []
        for i in range(self.params.pumps):
            name = f"pump{i + 1}"
            enabled = not self.profile.has_point(f"{name}_enabled") or self.setting(
                f"{name}_enabled"
            )
            if enabled and not self.forced.get(f"{name}_fault", False):
                out.append(i)
        return out

    def _control(self, start: float, stop: float) -> None:
        available = self._available()
        for i in range(3):
            if i not in available:
                self.running[i] = False
        if self.level_mm <= stop:
            self.running = [False] * 3
            return
        want = 0
        if self.level_mm >= start:
            want = 1
        if self.level_mm >= self.params.assist_level_mm:
            want = 2
        if sum(self.running) >= want or not available:
            return
        if not any(self.running):
            self.duty = (self.duty + 1) % len(available)
        order = available[self.duty % len(available) :] + available[: self.duty % len(available)]
        for i in order:
            if sum(self.running) >= want:
                break
            if not self.running[i]:
                self.running[i] = True
                self.starts_today += 1

    def update(self, t: float, dt: float) -> None:
        super().update(t, dt)
        p = self.params
        start = float(self.setting("start_level"))
        stop = float(self.setting("stop_level"))
        steps = max(1, math.ceil(dt / PUMP_SUBSTEP_S))
        h = dt / steps
        for k in range(steps):
            tk = t - dt + (k + 1) * h
            self.rain_lag = _lag(self.rain_lag, self.world.rain_mm_per_h(tk), h, p.lag_s)
            swing = 0.5 - 0.5 * math.cos(2 * math.pi * (self.world.hour_of_day(tk) - 3.0) / 24.0)
            self.inflow_l_s = p.dry_inflow_l_s * (0.5 + swing) + (
                p.storm_inflow_l_s_per_mm_h * self.rain_lag
            )
            out = sum(self.running) * p.pump_rate_l_s
            # l/s over m2 for s seconds = mm: (l/s) * s / m2 = 1e-3 m3 / m2 = 1 mm
            self.level_mm += (self.inflow_l_s - out) * h / p.wet_well_area_m2
            self.level_mm = min(max(self.level_mm, 0.0), p.overflow_level_mm)
            self._control(start, stop)
            for i, on in enumerate(self.running):
                if on:
                    self.run_s[i] += h

    def values(self) -> dict[str, Value]:
        p = self.params
        v: dict[str, Value] = {
            "wet_well_level": max(0.0, self.level_mm + _noise(self.rng, 3.0)),
            "outflow": sum(self.running) * p.pump_rate_l_s,
            "float_high_high": self.level_mm >= p.overflow_level_mm - HIGH_HIGH_MARGIN_MM,
            "mains_failure": False,
            "door_open": False,
            "pump_starts_today": min(self.starts_today, 0xFFFF),
        }
        for i in range(3):
            n = f"pump{i + 1}"
            v[f"{n}_running"] = self.running[i]
            v[f"{n}_fault"] = bool(self.forced.get(f"{n}_fault", False))
            v[f"{n}_current"] = PUMP_CURRENT_A + _noise(self.rng, 0.2) if self.running[i] else 0.0
            v[f"{n}_run_hours"] = self.run_s[i] / 3600.0
        return v

    def status_bits(self) -> int:
        return 1  # auto mode


def settle(models: Mapping[str, DeviceModel], t: float, dt: float) -> None:
    """Advance every model to ``t`` (pump stations first: gauges read their wet wells)."""
    ordered = sorted(models.values(), key=lambda m: not isinstance(m, PumpStationModel))
    for model in ordered:
        model.update(t, dt)
