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

from yamlread import meta

__all__ = [
    "BlockageConfig",
    "CoverConfig",
    "DeviceRulesConfig",
    "FaultConfig",
    "GasConfig",
    "LevelConfig",
    "OverflowConfig",
    "PointRulesConfig",
    "PressureConfig",
    "RulesConfig",
    "TelemetryConfig",
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

Checks = Iterator[tuple[str, str]]


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
        default_factory=OverflowConfig, metadata=meta("pump-station overflow risk")
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
