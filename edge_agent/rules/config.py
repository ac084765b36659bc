"""Rule settings: the top-level ``rules:`` section and each device's ``rules:`` overrides.

Three layers decide a point's effective settings, the most specific winning:

1. ``RulesConfig`` (top-level ``rules:``): defaults per concern (level, gas, pressure, ...),
   applied by the *role* a profile gives a point (``level_mm``, ``gas_lel``, ...);
2. ``DeviceRulesConfig`` (``devices[i].rules``): a device's site-specific thresholds (a level
   gauge's high / high-high depend on the manhole depth, a pressure band on the zone);
3. ``DeviceRulesConfig.points[<point name>]``: ``PointRulesConfig``, where ``None`` means
   "inherit" and any value overrides the two layers above for that one point.

Every field has a default, so ``rules: {}`` is valid everywhere. Units are named in each
field (``_mm``, ``_bar``, ``_s``); per-point values are in the point's own unit.

Each section's ``config_checks()`` yields ``(field, message)`` for settings that contradict
each other (the config loader adds file:line:col); ``RulesEngine`` checks what needs the
profiles (point names, rain gauges).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from edge_agent.errors import UsageError
from yamlread import meta

__all__ = [
    "BlockageConfig",
    "CoverConfig",
    "DeviceRulesConfig",
    "FaultConfig",
    "FloodConfig",
    "GasConfig",
    "GasLeakConfig",
    "LevelConfig",
    "OverflowConfig",
    "PointRulesConfig",
    "PressureConfig",
    "RulesConfig",
    "RulesConfigError",
    "TelemetryConfig",
    "WetWellConfig",
]

# Telemetry (report by exception).
DEFAULT_HEARTBEAT_S = 900.0
DEFAULT_DEADBAND_PCT_OF_RANGE = 0.5

# Level gauges (sewer manholes, wet wells).
DEFAULT_LEVEL_HYSTERESIS_MM = 50.0
DEFAULT_LEVEL_ON_DELAY_S = 0.0
DEFAULT_LEVEL_K = 3  # 3 of the last 5 samples beyond a threshold raise it (field practice)
DEFAULT_LEVEL_N = 5
DEFAULT_LEVEL_RISE_MM_PER_MIN = 20.0
DEFAULT_RISE_WINDOW_S = 300.0

# Gas, GB/T 50493-2019: combustible first alarm <= 25 %LEL, second <= 50 %LEL; O2 outside
# 19.5..23.5 %VOL; toxic gases at 100 % / 200 % of the occupational exposure limit.
DEFAULT_LEL_ALARM1 = 25.0
DEFAULT_LEL_ALARM2 = 50.0
DEFAULT_O2_LOW_PCT = 19.5
DEFAULT_O2_HIGH_PCT = 23.5
DEFAULT_H2S_LIMIT_PPM = 10.0  # a common detector setting near GBZ 2.1's MAC of 10 mg/m3
DEFAULT_CO_LIMIT_PPM = 25.0  # about GBZ 2.1's PC-STEL of 30 mg/m3
DEFAULT_GAS_HYSTERESIS_PCT = 10.0
DEFAULT_O2_HYSTERESIS_PCT_VOL = 0.5  # absolute: 10 % of 19.5 would not clear in fresh air (20.9)
DEFAULT_GAS_K = 1  # gas is life safety: no persistence by default, hysteresis only
DEFAULT_GAS_N = 1

# Network pressure.
DEFAULT_PRESSURE_HYSTERESIS_BAR = 0.1
DEFAULT_PRESSURE_DROP_BAR_PER_MIN = 0.5
DEFAULT_PRESSURE_DROP_WINDOW_S = 120.0
DEFAULT_PRESSURE_K = 2
DEFAULT_PRESSURE_N = 3

# Yes/no alarms clear only after staying false this long, so a flapping bit raises once.
DEFAULT_FAULT_CLEAR_AFTER_S = 120.0
DEFAULT_COVER_CLOSED_AFTER_S = 60.0
DEFAULT_OVERFLOW_CLEAR_AFTER_S = 300.0

# Manhole covers.
DEFAULT_COVER_TILT_DEG = 10.0
DEFAULT_COVER_TILT_HYSTERESIS_DEG = 2.0

# Cross-device rules.
DEFAULT_BLOCKAGE_RISE_MM_PER_MIN = 2.0
DEFAULT_BLOCKAGE_WINDOW_S = 900.0
DEFAULT_DRY_RAIN_MM_H = 0.5
DEFAULT_DRY_FOR_S = 3600.0
DEFAULT_OVERFLOW_RISE_MM_PER_MIN = 5.0
DEFAULT_OVERFLOW_WINDOW_S = 300.0

# Blockage on a sewer reach (upstream gauge against the downstream one). A blockage backs the
# sewer up above it and starves it below; a dry day's diurnal swing, a storm or a flow wave move
# both ends the same way. Changes are relative (depth follows flow to a power below one at
# both ends alike): a dry-weather depth of 50 mm falling to 30 is as telling as 1 m to 0.6 m.
DEFAULT_REACH_RECENT_S = 300.0
DEFAULT_REACH_GAP_S = 300.0
DEFAULT_REACH_BASELINE_S = 3600.0
DEFAULT_REACH_SHIFT_PCT = 15.0  # a dry day's swing moves both ends by under 10 % in 40 min
# ln(depth + 10 mm) changes about half as much as ln(flow) in a part-full pipe's dry-weather
# range (depth goes as flow to the power 0.6): the same currency as a station's inflow.
DEFAULT_REACH_FLOOR_MM = 10.0
DEFAULT_REACH_STEADY_PCT = 5.0
DEFAULT_REACH_MIN_T = 4.0  # the divergence must stand this many standard errors above zero
DEFAULT_REACH_CONFIRM_S = 240.0
DEFAULT_REACH_WAVE_M_PER_S = 0.5  # a dry-weather flow wave travels at least this fast
DEFAULT_REACH_CLEAR_AFTER_S = 900.0

# Overflow: warn when the level will reach the rim (a wet well: its overflow level) this soon.
DEFAULT_OVERFLOW_ETA_S = 1800.0
DEFAULT_OVERFLOW_ETA_FROM_FRACTION = 0.5  # the ETA counts above this share of the rim depth
DEFAULT_OVERFLOW_NEAR_RIM_FRACTION = 0.85  # at or above this share of the depth: a risk anyway
DEFAULT_MANHOLE_OVERFLOW_CLEAR_AFTER_S = 900.0

# Wet wells, judged by their pump cycles.
DEFAULT_WET_WELL_CHECK_S = 180.0
DEFAULT_WET_WELL_MIN_DRAWDOWN_FRACTION = 0.3
DEFAULT_WET_WELL_MIN_DRAWDOWN_MM_PER_MIN = 20.0
DEFAULT_WET_WELL_RUN_FACTOR = 3.0
DEFAULT_WET_WELL_RUN_EXTRA_S = 600.0
DEFAULT_WET_WELL_LEARN_CYCLES = 5

# Road ponding (flood): 10 cm of water on a road is where city platforms start warning.
DEFAULT_PONDING_MM = 100.0
DEFAULT_PONDING_HYSTERESIS_MM = 30.0
DEFAULT_PONDING_K = 2
DEFAULT_PONDING_N = 3
DEFAULT_PONDING_RAIN_WITHIN_S = 3600.0
DEFAULT_PONDING_CLEAR_AFTER_S = 600.0

# Gas: concentration together with a pressure drop or a flow surge at one site.
DEFAULT_GAS_COINCIDE_S = 600.0
DEFAULT_GAS_FLOW_SURGE_PCT = 30.0
DEFAULT_GAS_FLOW_BASELINE_S = 3600.0
DEFAULT_GAS_LEAK_CLEAR_AFTER_S = 300.0

Checks = Iterator[tuple[str, str]]


class RulesConfigError(UsageError):
    """Rule settings that contradict the devices' profiles or the site's network (one line,
    exit 2); raised by ``RulesEngine`` at construction."""


def _ordered(pairs: list[tuple[str, float | None]]) -> Checks:
    """Thresholds given (not None) must increase in the listed order."""
    given = [(name, value) for name, value in pairs if value is not None]
    for (name_a, a), (name_b, b) in itertools.pairwise(given):
        if not a < b:
            yield name_b, f"{b:g} must be above {name_a} {a:g}"


def _persistence(k: int | None, n: int | None) -> Checks:
    if k is not None and n is not None and k > n:
        yield "k", f"{k} samples cannot be found in a window of n={n}"


@dataclass(frozen=True)
class TelemetryConfig:
    """Report by exception: send a point when it moved more than its deadband, or when it
    has been silent for ``heartbeat_s``."""

    heartbeat_s: float = field(
        default=DEFAULT_HEARTBEAT_S,
        metadata=meta("longest silence per point before a value is re-sent", min=1, unit="s"),
    )
    deadband_pct_of_range: float = field(
        default=DEFAULT_DEADBAND_PCT_OF_RANGE,
        metadata=meta(
            "default deadband as a percentage of the point's valid range (points without a "
            "range send every change)",
            min=0,
            max=100,
            unit="%",
        ),
    )
    deadband_by_role: dict[str, float] = field(
        default_factory=dict,
        metadata=meta("absolute deadband per point role, e.g. {level_mm: 5, gas_lel: 1}"),
    )


@dataclass(frozen=True)
class LevelConfig:
    """Level gauges (role ``level_mm``): thresholds, hysteresis, persistence, rate of rise."""

    high_mm: float | None = field(
        default=None, metadata=meta("level.high threshold (null: off)", unit="mm")
    )
    high_high_mm: float | None = field(
        default=None, metadata=meta("level.high_high threshold (null: off)", unit="mm")
    )
    hysteresis_mm: float = field(
        default=DEFAULT_LEVEL_HYSTERESIS_MM,
        metadata=meta("a raised level alarm clears this far below its threshold", min=0, unit="mm"),
    )
    on_delay_s: float = field(
        default=DEFAULT_LEVEL_ON_DELAY_S,
        metadata=meta("a threshold must hold this long before it raises", min=0, unit="s"),
    )
    k: int = field(
        default=DEFAULT_LEVEL_K, metadata=meta("K of the last N samples must agree", min=1)
    )
    n: int = field(default=DEFAULT_LEVEL_N, metadata=meta("N samples in the K-of-N window", min=1))
    rise_mm_per_min: float | None = field(
        default=DEFAULT_LEVEL_RISE_MM_PER_MIN,
        metadata=meta("level.rising when the level rises faster (null: off)", min=0, unit="mm/min"),
    )
    rise_window_s: float = field(
        default=DEFAULT_RISE_WINDOW_S,
        metadata=meta("window the rate of rise is measured over", min=1, unit="s"),
    )

    def config_checks(self) -> Checks:
        yield from _ordered([("high_mm", self.high_mm), ("high_high_mm", self.high_high_mm)])
        yield from _persistence(self.k, self.n)


@dataclass(frozen=True)
class GasConfig:
    """Gas detectors (roles ``gas_lel``, ``gas_h2s_ppm``, ``gas_co_ppm``, ``gas_o2_pct``)."""

    lel_alarm1: float = field(
        default=DEFAULT_LEL_ALARM1, metadata=meta("first alarm", min=0, max=100, unit="%LEL")
    )
    lel_alarm2: float = field(
        default=DEFAULT_LEL_ALARM2, metadata=meta("second alarm", min=0, max=100, unit="%LEL")
    )
    o2_low_pct: float = field(
        default=DEFAULT_O2_LOW_PCT, metadata=meta("oxygen deficiency alarm", min=0, unit="%VOL")
    )
    o2_high_pct: float = field(
        default=DEFAULT_O2_HIGH_PCT, metadata=meta("oxygen enrichment alarm", min=0, unit="%VOL")
    )
    h2s_limit_ppm: float = field(
        default=DEFAULT_H2S_LIMIT_PPM,
        metadata=meta("H2S occupational limit: alarm1 100 %, alarm2 200 %", min=0, unit="ppm"),
    )
    co_limit_ppm: float = field(
        default=DEFAULT_CO_LIMIT_PPM,
        metadata=meta("CO occupational limit: alarm1 100 %, alarm2 200 %", min=0, unit="ppm"),
    )
    hysteresis_pct: float = field(
        default=DEFAULT_GAS_HYSTERESIS_PCT,
        metadata=meta(
            "%LEL / H2S / CO alarms clear this percentage of their threshold below it",
            min=0,
            max=100,
            unit="%",
        ),
    )
    o2_hysteresis_pct_vol: float = field(
        default=DEFAULT_O2_HYSTERESIS_PCT_VOL,
        metadata=meta("O2 alarms clear this far back inside the band", min=0, unit="%VOL"),
    )
    on_delay_s: float = field(
        default=0.0, metadata=meta("an alarm must hold this long before it raises", min=0, unit="s")
    )
    k: int = field(default=DEFAULT_GAS_K, metadata=meta("K of the last N samples", min=1))
    n: int = field(default=DEFAULT_GAS_N, metadata=meta("N samples in the window", min=1))

    def config_checks(self) -> Checks:
        yield from _ordered([("lel_alarm1", self.lel_alarm1), ("lel_alarm2", self.lel_alarm2)])
        yield from _ordered([("o2_low_pct", self.o2_low_pct), ("o2_high_pct", self.o2_high_pct)])
        yield from _persistence(self.k, self.n)


@dataclass(frozen=True)
class PressureConfig:
    """Network pressure (role ``pressure_bar``): band and fast drops."""

    low_bar: float | None = field(
        default=None, metadata=meta("pressure.low below this (null: off)", unit="bar")
    )
    high_bar: float | None = field(
        default=None, metadata=meta("pressure.high above this (null: off)", unit="bar")
    )
    hysteresis_bar: float = field(
        default=DEFAULT_PRESSURE_HYSTERESIS_BAR,
        metadata=meta("clear this far inside the band", min=0, unit="bar"),
    )
    drop_bar_per_min: float | None = field(
        default=DEFAULT_PRESSURE_DROP_BAR_PER_MIN,
        metadata=meta("pressure.drop when falling faster (null: off)", min=0, unit="bar/min"),
    )
    drop_window_s: float = field(
        default=DEFAULT_PRESSURE_DROP_WINDOW_S,
        metadata=meta("window the drop rate is measured over", min=1, unit="s"),
    )
    k: int = field(default=DEFAULT_PRESSURE_K, metadata=meta("K of the last N samples", min=1))
    n: int = field(default=DEFAULT_PRESSURE_N, metadata=meta("N samples in the window", min=1))

    def config_checks(self) -> Checks:
        yield from _ordered([("low_bar", self.low_bar), ("high_bar", self.high_bar)])
        yield from _persistence(self.k, self.n)


@dataclass(frozen=True)
class CoverConfig:
    """Manhole covers (roles ``cover_open``, ``cover_tilt_deg``)."""

    tilt_deg: float = field(
        default=DEFAULT_COVER_TILT_DEG,
        metadata=meta("tilted beyond this counts as opened", min=0, max=90, unit="deg"),
    )
    hysteresis_deg: float = field(
        default=DEFAULT_COVER_TILT_HYSTERESIS_DEG,
        metadata=meta("closed again this far below tilt_deg", min=0, unit="deg"),
    )
    closed_after_s: float = field(
        default=DEFAULT_COVER_CLOSED_AFTER_S,
        metadata=meta("closed (and level) this long before cover.closed", min=0, unit="s"),
    )


@dataclass(frozen=True)
class FaultConfig:
    """``device.fault``: raised at the first fault, cleared once none has been seen for
    ``clear_after_s``."""

    clear_after_s: float = field(
        default=DEFAULT_FAULT_CLEAR_AFTER_S,
        metadata=meta("fault-free this long before device.fault.cleared", min=0, unit="s"),
    )


@dataclass(frozen=True)
class BlockageConfig:
    """``sewer.blockage_suspected``: a sewer level rising while the site's rain gauge is dry."""

    enabled: bool = field(default=True, metadata=meta("run the rule"))
    rise_mm_per_min: float = field(
        default=DEFAULT_BLOCKAGE_RISE_MM_PER_MIN,
        metadata=meta("a sustained rise faster than this is suspicious", min=0, unit="mm/min"),
    )
    window_s: float = field(
        default=DEFAULT_BLOCKAGE_WINDOW_S,
        metadata=meta("window the rise is measured over", min=1, unit="s"),
    )
    dry_rain_mm_h: float = field(
        default=DEFAULT_DRY_RAIN_MM_H,
        metadata=meta("rain rate at or below this is dry weather", min=0, unit="mm/h"),
    )
    dry_for_s: float = field(
        default=DEFAULT_DRY_FOR_S,
        metadata=meta("the rain gauge must have been dry this long", min=0, unit="s"),
    )
    reach_recent_s: float = field(
        default=DEFAULT_REACH_RECENT_S,
        metadata=meta(
            "on a reach of the site's sewer network: each end's level now is its mean over "
            "this window",
            min=30,
            unit="s",
        ),
    )
    reach_gap_s: float = field(
        default=DEFAULT_REACH_GAP_S,
        metadata=meta(
            "... compared with the median and quartiles of a baseline window ending this long "
            "before the recent one starts",
            min=0,
            unit="s",
        ),
    )
    reach_baseline_s: float = field(
        default=DEFAULT_REACH_BASELINE_S,
        metadata=meta("the baseline window's length", min=60, unit="s"),
    )
    reach_shift_pct: float = field(
        default=DEFAULT_REACH_SHIFT_PCT,
        metadata=meta(
            "the two ends must move apart by this much (each end's change relative to its "
            "level plus reach_floor_mm)",
            min=0,
            unit="%",
        ),
    )
    reach_floor_mm: float = field(
        default=DEFAULT_REACH_FLOOR_MM,
        metadata=meta(
            "added to a level before its relative change is taken (a nearly dry pipe's "
            "millimetres are not a large change)",
            min=1,
            unit="mm",
        ),
    )
    reach_steady_pct: float = field(
        default=DEFAULT_REACH_STEADY_PCT,
        metadata=meta(
            "the downstream end 'stays' (the upstream end 'holds') while it rises (falls) "
            "less than this",
            min=0,
            unit="%",
        ),
    )
    reach_min_t: float = field(
        default=DEFAULT_REACH_MIN_T,
        metadata=meta(
            "the divergence must exceed its standard error this many times (noisy gauges "
            "need a clearer signal)",
            min=0,
        ),
    )
    reach_confirm_s: float = field(
        default=DEFAULT_REACH_CONFIRM_S,
        metadata=meta("the ends must stay apart this long before it raises", min=0, unit="s"),
    )
    reach_wave_m_per_s: float = field(
        default=DEFAULT_REACH_WAVE_M_PER_S,
        metadata=meta(
            "a rise at the top with the bottom steady waits until a flow wave at this speed "
            "would have reached the bottom (the reach's length_m); a starved bottom does not",
            min=0.05,
            unit="m/s",
        ),
    )
    reach_clear_after_s: float = field(
        default=DEFAULT_REACH_CLEAR_AFTER_S,
        metadata=meta(
            "both ends back near where they stood for this long before it clears",
            min=0,
            unit="s",
        ),
    )


@dataclass(frozen=True)
class OverflowConfig:
    """``overflow.risk``: a pump-station fault, or every pump running with the wet well still
    rising."""

    enabled: bool = field(default=True, metadata=meta("run the rule"))
    rise_mm_per_min: float = field(
        default=DEFAULT_OVERFLOW_RISE_MM_PER_MIN,
        metadata=meta("wet-well rise that counts as 'still rising'", min=0, unit="mm/min"),
    )
    window_s: float = field(
        default=DEFAULT_OVERFLOW_WINDOW_S,
        metadata=meta("window the rise is measured over", min=1, unit="s"),
    )
    clear_after_s: float = field(
        default=DEFAULT_OVERFLOW_CLEAR_AFTER_S,
        metadata=meta("no reason left this long before overflow.risk.cleared", min=0, unit="s"),
    )
    eta_s: float = field(
        default=DEFAULT_OVERFLOW_ETA_S,
        metadata=meta(
            "warn when the level will reach the rim (a wet well: its overflow level) within "
            "this, at the rate over window_s",
            min=0,
            unit="s",
        ),
    )
    eta_from_fraction: float = field(
        default=DEFAULT_OVERFLOW_ETA_FROM_FRACTION,
        metadata=meta(
            "a manhole's time to the rim counts only above this share of its depth",
            min=0,
            max=1,
        ),
    )
    near_rim_fraction: float = field(
        default=DEFAULT_OVERFLOW_NEAR_RIM_FRACTION,
        metadata=meta(
            "at or above this share of a manhole's depth: a risk whatever the rate", min=0, max=1
        ),
    )
    manhole_clear_after_s: float = field(
        default=DEFAULT_MANHOLE_OVERFLOW_CLEAR_AFTER_S,
        metadata=meta(
            "a manhole's overflow.risk clears after this long without a reason", min=0, unit="s"
        ),
    )


@dataclass(frozen=True)
class WetWellConfig:
    """``wet_well.fault``: a pump station judged by its cycles (a start that does not draw the
    wet well down, a run far longer than normal), never by the rise the pumps will answer."""

    enabled: bool = field(default=True, metadata=meta("run the rule"))
    check_s: float = field(
        default=DEFAULT_WET_WELL_CHECK_S,
        metadata=meta(
            "the level's slope just before and this long after a pump starts are compared",
            min=10,
            unit="s",
        ),
    )
    min_drawdown_fraction: float = field(
        default=DEFAULT_WET_WELL_MIN_DRAWDOWN_FRACTION,
        metadata=meta(
            "a start must steepen the fall by at least this share of a normal start's",
            min=0,
            max=1,
        ),
    )
    min_drawdown_mm_per_min: float = field(
        default=DEFAULT_WET_WELL_MIN_DRAWDOWN_MM_PER_MIN,
        metadata=meta(
            "until normal starts are known (and with no rated pump flow): at least this",
            min=0,
            unit="mm/min",
        ),
    )
    run_factor: float = field(
        default=DEFAULT_WET_WELL_RUN_FACTOR,
        metadata=meta("a dry-weather run this many times the normal one is a fault", min=1),
    )
    run_extra_s: float = field(
        default=DEFAULT_WET_WELL_RUN_EXTRA_S,
        metadata=meta("... and at least this much longer than normal", min=0, unit="s"),
    )
    learn_cycles: int = field(
        default=DEFAULT_WET_WELL_LEARN_CYCLES,
        metadata=meta("dry-weather cycles seen before run times are judged", min=1),
    )


@dataclass(frozen=True)
class FloodConfig:
    """``flood.ponding``: water standing on a road sensor while it rains (or just rained)."""

    enabled: bool = field(default=True, metadata=meta("run the rule"))
    ponding_mm: float = field(
        default=DEFAULT_PONDING_MM,
        metadata=meta("water this deep on the road is a flood", min=0, unit="mm"),
    )
    hysteresis_mm: float = field(
        default=DEFAULT_PONDING_HYSTERESIS_MM,
        metadata=meta("it clears this far below ponding_mm", min=0, unit="mm"),
    )
    k: int = field(default=DEFAULT_PONDING_K, metadata=meta("K of the last N samples", min=1))
    n: int = field(default=DEFAULT_PONDING_N, metadata=meta("N samples in the window", min=1))
    rain_within_s: float = field(
        default=DEFAULT_PONDING_RAIN_WITHIN_S,
        metadata=meta(
            "a rain gauge must have seen rain this recently (water on a dry road is a parked "
            "van, a street cleaner or a burst main, not a flood)",
            min=0,
            unit="s",
        ),
    )
    clear_after_s: float = field(
        default=DEFAULT_PONDING_CLEAR_AFTER_S,
        metadata=meta("below the level this long before flood.ponding.cleared", min=0, unit="s"),
    )

    def config_checks(self) -> Checks:
        yield from _persistence(self.k, self.n)


@dataclass(frozen=True)
class GasLeakConfig:
    """``gas.leak_suspected``: at one gas site, gas present together with a pressure drop
    (``rules.pressure``) or a flow surge: worse than either alone."""

    enabled: bool = field(default=True, metadata=meta("run the rule"))
    coincide_s: float = field(
        default=DEFAULT_GAS_COINCIDE_S,
        metadata=meta(
            "gas and the pressure / flow evidence within this of each other", min=0, unit="s"
        ),
    )
    flow_surge_pct: float = field(
        default=DEFAULT_GAS_FLOW_SURGE_PCT,
        metadata=meta(
            "flow this far above its median over flow_baseline_s, with the pressure falling",
            min=0,
            unit="%",
        ),
    )
    flow_baseline_s: float = field(
        default=DEFAULT_GAS_FLOW_BASELINE_S,
        metadata=meta("the flow's normal is its median over this", min=60, unit="s"),
    )
    clear_after_s: float = field(
        default=DEFAULT_GAS_LEAK_CLEAR_AFTER_S,
        metadata=meta(
            "no evidence left this long before gas.leak_suspected.cleared", min=0, unit="s"
        ),
    )


@dataclass(frozen=True)
class RulesConfig:
    """The top-level ``rules:`` section: defaults applied by point role."""

    telemetry: TelemetryConfig = field(
        default_factory=TelemetryConfig, metadata=meta("report-by-exception telemetry")
    )
    level: LevelConfig = field(default_factory=LevelConfig, metadata=meta("level gauges"))
    gas: GasConfig = field(default_factory=GasConfig, metadata=meta("gas detectors"))
    pressure: PressureConfig = field(
        default_factory=PressureConfig, metadata=meta("network pressure")
    )
    cover: CoverConfig = field(default_factory=CoverConfig, metadata=meta("manhole covers"))
    faults: FaultConfig = field(
        default_factory=FaultConfig, metadata=meta("device faults (bits, bad quality)")
    )
    blockage: BlockageConfig = field(
        default_factory=BlockageConfig, metadata=meta("sewer blockage (level vs. rain)")
    )
    overflow: OverflowConfig = field(
        default_factory=OverflowConfig,
        metadata=meta("overflow risk at pump stations and manholes"),
    )
    wet_well: WetWellConfig = field(
        default_factory=WetWellConfig, metadata=meta("pump-station wet wells (pump cycles)")
    )
    flood: FloodConfig = field(default_factory=FloodConfig, metadata=meta("road ponding"))
    gas_leak: GasLeakConfig = field(
        default_factory=GasLeakConfig,
        metadata=meta("gas with a pressure drop or a flow surge at one gas site"),
    )


@dataclass(frozen=True)
class PointRulesConfig:
    """Overrides for one point of one device; ``null`` inherits the device / role default.
    Values are in the point's unit (mm for a level, %LEL, bar, ...)."""

    enabled: bool = field(default=True, metadata=meta("rules and telemetry for this point"))
    low_low: float | None = field(default=None, metadata=meta("second low threshold"))
    low: float | None = field(default=None, metadata=meta("first low threshold"))
    high: float | None = field(default=None, metadata=meta("first high threshold (gas: alarm1)"))
    high_high: float | None = field(
        default=None, metadata=meta("second high threshold (gas: alarm2)")
    )
    hysteresis: float | None = field(
        default=None, metadata=meta("distance back inside a threshold before it clears", min=0)
    )
    on_delay_s: float | None = field(
        default=None, metadata=meta("a threshold must hold this long", min=0, unit="s")
    )
    k: int | None = field(default=None, metadata=meta("K of the last N samples", min=1))
    n: int | None = field(default=None, metadata=meta("N samples in the window", min=1))
    rise_per_min: float | None = field(
        default=None, metadata=meta("rate-of-rise alarm, point units per minute", min=0)
    )
    deadband: float | None = field(
        default=None, metadata=meta("telemetry deadband in the point's unit", min=0)
    )
    heartbeat_s: float | None = field(
        default=None, metadata=meta("telemetry heartbeat for this point", min=1, unit="s")
    )

    def config_checks(self) -> Checks:
        yield from _ordered(
            [
                ("low_low", self.low_low),
                ("low", self.low),
                ("high", self.high),
                ("high_high", self.high_high),
            ]
        )
        yield from _persistence(self.k, self.n)


_INHERIT = PointRulesConfig()


@dataclass(frozen=True)
class DeviceRulesConfig:
    """A device's ``rules:``: site-specific thresholds and per-point overrides."""

    enabled: bool = field(default=True, metadata=meta("run rules for this device"))
    level_high_mm: float | None = field(
        default=None, metadata=meta("level.high for this gauge (null: the rules.level one)")
    )
    level_high_high_mm: float | None = field(
        default=None, metadata=meta("level.high_high for this gauge (null: rules.level)")
    )
    pressure_low_bar: float | None = field(
        default=None, metadata=meta("pressure.low for this transmitter (null: rules.pressure)")
    )
    pressure_high_bar: float | None = field(
        default=None, metadata=meta("pressure.high for this transmitter (null: rules.pressure)")
    )
    rain_gauge: str | None = field(
        default=None,
        metadata=meta(
            "device name of the rain gauge the blockage rule asks (null: any rain gauge of "
            "this gateway)"
        ),
    )
    wet_well: str | None = field(
        default=None,
        metadata=meta(
            "for a pump controller: a level device measuring its wet well (null: the "
            "controller's own level point)"
        ),
    )
    points: dict[str, PointRulesConfig] = field(
        default_factory=dict, metadata=meta("per-point overrides by point name")
    )

    def point(self, name: str) -> PointRulesConfig:
        """The overrides of point ``name`` (all inherited when it has none)."""
        return self.points.get(name, _INHERIT)

    def config_checks(self) -> Checks:
        yield from _ordered(
            [("level_high_mm", self.level_high_mm), ("level_high_high_mm", self.level_high_high_mm)]
        )
        yield from _ordered(
            [
                ("pressure_low_bar", self.pressure_low_bar),
                ("pressure_high_bar", self.pressure_high_bar),
            ]
        )
