"""Per-kind device parameters: the optional ``sim:`` block of a site device.

What the simulator needs to know of a device's surroundings beyond the network: the traffic a
noise logger hears, a manhole's depth, a wet well's area and pump levels, a gauge's tip size.
The block's dataclass is chosen by the device's ``kind`` (``PARAMS_BY_KIND``); every value is
optional and bounded in its ``meta()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from yamlread import meta

__all__ = [
    "PARAMS_BY_KIND",
    "CoverParams",
    "DeviceParams",
    "GasParams",
    "LevelParams",
    "NoiseLoggerParams",
    "PressureParams",
    "PumpControllerParams",
    "RainParams",
]

_STATION_PATTERN = r"[A-Za-z0-9_.-]+"


@dataclass(frozen=True, slots=True)
class NoiseLoggerParams:
    """What a logger hears besides leaks: road traffic and a nearby pump's tone."""

    traffic_per_min: float = field(
        default=0.5, metadata=meta("passing vehicles per minute of daytime", min=0, max=60)
    )
    pump_tone_hz: float | None = field(
        default=None, metadata=meta("a pump's hum (e.g. 50 or 100 Hz)", min=10, max=1000)
    )
    ambient_db: float | None = field(
        default=None, metadata=meta("in-band ambient (null: the site's)", min=-120, max=120)
    )


@dataclass(frozen=True, slots=True)
class LevelParams:
    """A level gauge: in a sewer manhole, or in a pump station's wet well (``station``)."""

    station: str | None = field(
        default=None,
        metadata=meta("a pump_controller device: this gauge reads its wet well",
                      pattern=_STATION_PATTERN),
    )  # fmt: skip
    cover_depth_mm: float = field(
        default=3000.0, metadata=meta("invert to cover: where it overflows", min=100, max=50_000)
    )
    dry_level_mm: float = field(
        default=350.0, metadata=meta("dry-weather level before the daily swing", min=0, max=50_000)
    )
    diurnal_mm: float = field(
        default=60.0, metadata=meta("dry-weather swing over the day", min=0, max=5_000)
    )
    storm_gain_mm_per_mm_h: float = field(
        default=35.0, metadata=meta("settled rise per mm/h of rain", min=0, max=1_000)
    )
    lag_s: float = field(
        default=420.0, metadata=meta("first-order lag of the catchment", min=1, max=86_400)
    )


@dataclass(frozen=True, slots=True)
class RainParams:
    mm_per_tip: float = field(default=0.2, metadata=meta("rain per bucket tip", min=0.01, max=10))


@dataclass(frozen=True, slots=True)
class GasParams:
    background_lel: float = field(
        default=1.0, metadata=meta("%LEL in a ventilated chamber", min=0, max=100)
    )


@dataclass(frozen=True, slots=True)
class PressureParams:
    mean_bar: float = field(default=2.5, metadata=meta("mean pressure", min=0, max=1_000))
    diurnal_bar: float = field(
        default=0.12, metadata=meta("dip at the morning and evening peaks", min=0, max=1_000)
    )


@dataclass(frozen=True, slots=True)
class PumpControllerParams:
    """A sewer pump station: wet-well volume balance with duty/standby pumps."""

    pumps: int = field(default=2, metadata=meta("pumps in the station", min=1, max=3))
    wet_well_area_m2: float = field(default=6.0, metadata=meta("area", min=0.1, max=1_000))
    overflow_level_mm: float = field(
        default=4000.0, metadata=meta("where the wet well spills", min=100, max=50_000)
    )
    start_level_mm: float = field(
        default=1600.0, metadata=meta("duty pump starts", min=1, max=50_000)
    )
    assist_level_mm: float = field(
        default=2200.0, metadata=meta("standby pump joins", min=1, max=50_000)
    )
    stop_level_mm: float = field(default=500.0, metadata=meta("pumps stop", min=0, max=50_000))
    pump_rate_l_s: float = field(default=30.0, metadata=meta("per pump", min=0.1, max=10_000))
    dry_inflow_l_s: float = field(default=6.0, metadata=meta("dry weather", min=0, max=10_000))
    storm_inflow_l_s_per_mm_h: float = field(
        default=2.5, metadata=meta("extra inflow per mm/h of rain", min=0, max=10_000)
    )
    lag_s: float = field(
        default=420.0, metadata=meta("first-order lag of the catchment", min=1, max=86_400)
    )

    def config_checks(self) -> Iterator[tuple[str, str]]:
        if not (
            self.stop_level_mm
            < self.start_level_mm
            <= self.assist_level_mm
            < self.overflow_level_mm
        ):
            yield "", "needs stop < start <= assist < overflow (the *_level_mm values)"


@dataclass(frozen=True, slots=True)
class CoverParams:
    battery_v: float = field(default=3.6, metadata=meta("battery voltage", min=0, max=60))


# device kind -> the dataclass of its `sim:` block
PARAMS_BY_KIND: dict[str, type] = {
    "noise_logger": NoiseLoggerParams,
    "level": LevelParams,
    "rain": RainParams,
    "gas": GasParams,
    "pressure": PressureParams,
    "pump_controller": PumpControllerParams,
    "cover": CoverParams,
}

DeviceParams = (
    NoiseLoggerParams
    | LevelParams
    | RainParams
    | GasParams
    | PressureParams
    | PumpControllerParams
    | CoverParams
)
