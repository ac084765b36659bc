"""What the simulator plays: the ``scenarios:`` section of a site file, in seconds of sim time.

Leaks on pipes, storms, gas episodes, dropouts, fault bits, opened covers and sewer blockages.
The site model keeps the section as YAML (``Site.scenarios``); ``read_scenarios(site)`` reads
it with the same reader as the rest of the file, so a mistake is a ``SiteError`` line naming
file, line, column and field (``scenarios.gas[0].device: 'lv-1' is a level device, expected
gas``). Adding a kind of scenario is adding a dataclass and a field of ``Scenarios``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sitemodel import NAME_HELP, NAME_PATTERN, Site, SiteError
from yamlread import meta, read_section, whole
from yamlread.problems import fmt_num

__all__ = [
    "BlockageScenario",
    "CoverScenario",
    "DropoutScenario",
    "FaultScenario",
    "GasScenario",
    "LeakScenario",
    "Scenarios",
    "StormScenario",
    "read_scenarios",
]


_START = meta("when it starts", min=0, unit="s")


def _lasts(min: float = 0.001) -> dict[str, Any]:
    return meta("how long it lasts", min=min, unit="s")


@dataclass(frozen=True, slots=True)
class LeakScenario:
    """A leak on a pipe, heard by the noise loggers it reaches."""

    id: str = field(metadata=meta("leak id", pattern=NAME_PATTERN, pattern_help=NAME_HELP))
    pipe: str = field(metadata=meta("the pipe it is on"))
    offset_m: float = field(metadata=meta("along the pipe from its from node", min=0, unit="m"))
    level_db: float = field(metadata=meta("source level (dB re 1 unit)", min=-60, max=120))
    start_s: float = field(default=0.0, metadata=_START)
    duration_s: float | None = field(
        default=None, metadata=meta("how long it lasts (null: until repaired)", min=0.001)
    )

    def active(self, t: float) -> bool:
        return t >= self.start_s and (self.duration_s is None or t < self.start_s + self.duration_s)


@dataclass(frozen=True, slots=True)
class StormScenario:
    start_s: float = field(metadata=_START)
    duration_s: float = field(metadata=_lasts(1))
    peak_mm_per_h: float = field(default=30.0, metadata=meta("peak rain", min=0.1, max=300))


@dataclass(frozen=True, slots=True)
class GasScenario:
    """Gas at a detector; with ``pressure`` (a pressure device) the line it leaks from loses
    ``drop_bar`` within three minutes of the start and gets it back at the end."""

    device: str = field(metadata=meta("a gas detector"))
    start_s: float = field(metadata=_START)
    duration_s: float = field(default=600.0, metadata=_lasts(1))
    peak_lel: float = field(default=35.0, metadata=meta("peak %LEL", min=0, max=100))
    pressure: str | None = field(
        default=None, metadata=meta("the pressure device on the line it leaks from")
    )
    drop_bar: float = field(
        default=0.0, metadata=meta("pressure the line loses", min=0, max=100, unit="bar")
    )


@dataclass(frozen=True, slots=True)
class DropoutScenario:
    device: str = field(metadata=meta("the device that stops answering"))
    start_s: float = field(metadata=_START)
    duration_s: float = field(metadata=_lasts())


@dataclass(frozen=True, slots=True)
class FaultScenario:
    device: str = field(metadata=meta("the device that reports the fault"))
    start_s: float = field(metadata=_START)
    duration_s: float = field(metadata=_lasts())
    bits: int = field(metadata=meta("OR-ed into its fault/status word", min=1, max=0xFFFF))


@dataclass(frozen=True, slots=True)
class CoverScenario:
    device: str = field(metadata=meta("a cover sensor"))
    start_s: float = field(metadata=_START)
    duration_s: float = field(default=300.0, metadata=_lasts())
    tilt: bool = field(default=False, metadata=meta("lifted and tilted, not just opened"))


@dataclass(frozen=True, slots=True)
class BlockageScenario:
    """Debris blocks the sewer below a level gauge: its level climbs in dry weather; the gauge
    below the blockage (``downstream``) is starved: its dry-weather level falls by
    ``fall_pct`` within minutes."""

    device: str = field(metadata=meta("a sewer level gauge"))
    start_s: float = field(metadata=_START)
    duration_s: float = field(metadata=_lasts(1))
    rise_mm_per_min: float = field(
        default=5.0, metadata=meta("dry-weather rise", min=0.1, max=1000)
    )
    downstream: str | None = field(
        default=None, metadata=meta("the sewer level gauge below the blockage")
    )
    fall_pct: float = field(
        default=40.0, metadata=meta("share of its dry level it loses", min=0, max=100, unit="%")
    )


@dataclass(frozen=True, slots=True)
class Scenarios:
    leaks: tuple[LeakScenario, ...] = field(default=(), metadata=meta("leaks"))
    storms: tuple[StormScenario, ...] = field(default=(), metadata=meta("rain"))
    gas: tuple[GasScenario, ...] = field(default=(), metadata=meta("gas episodes"))
    dropouts: tuple[DropoutScenario, ...] = field(default=(), metadata=meta("silent devices"))
    faults: tuple[FaultScenario, ...] = field(default=(), metadata=meta("fault bits"))
    covers: tuple[CoverScenario, ...] = field(default=(), metadata=meta("opened covers"))
    blockages: tuple[BlockageScenario, ...] = field(default=(), metadata=meta("sewer blockages"))


# scenario list -> the device kinds it may name (None: any device)
_DEVICE_KINDS: dict[str, tuple[str, ...] | None] = {
    "gas": ("gas",),
    "dropouts": None,
    "faults": None,
    "covers": ("cover",),
    "blockages": ("level",),
}


def read_scenarios(site: Site) -> Scenarios:
    """The site's ``scenarios:`` (none when it has no such section). Raises ``SiteError``
    listing every problem: a bad value, an unknown pipe or device, a device of the wrong
    kind, a leak off its pipe."""
    if site.scenarios is None:
        return Scenarios()
    return read_section(
        site.scenarios,
        Scenarios,
        error=SiteError,
        checks=(partial(_references, site),),
        numbers_as_text=True,
    )


def _references(site: Site, scenarios: Scenarios) -> Iterator[tuple[str, str]]:
    pipes = {p.id: p for p in site.pipes}
    devices = {d.name: d for d in site.devices}
    seen: set[str] = set()
    for i, leak in whole(scenarios.leaks):
        if leak.id in seen:
            yield f"leaks[{i}].id", f"duplicate id {leak.id!r}"
        seen.add(leak.id)
        if leak.pipe not in pipes:
            yield f"leaks[{i}].pipe", f"unknown pipe {leak.pipe!r}"
        elif leak.offset_m > (length := round(pipes[leak.pipe].length_m, 3)):
            yield f"leaks[{i}].offset_m", f"{fmt_num(leak.offset_m)} is not in 0..{fmt_num(length)}"
    for section, kinds in _DEVICE_KINDS.items():
        for i, scenario in whole(getattr(scenarios, section)):
            yield from _device(devices, f"{section}[{i}].device", scenario.device, kinds)
    for i, gas in whole(scenarios.gas):
        if gas.pressure is not None:
            yield from _device(devices, f"gas[{i}].pressure", gas.pressure, ("pressure",))
    for i, block in whole(scenarios.blockages):
        if block.downstream is not None:
            where = f"blockages[{i}].downstream"
            if block.downstream == block.device:
                yield where, "the same gauge as device"
            else:
                yield from _device(devices, where, block.downstream, ("level",))


def _device(
    devices: dict[str, Any], where: str, name: str, kinds: tuple[str, ...] | None
) -> Iterator[tuple[str, str]]:
    device = devices.get(name)
    if device is None:
        yield where, f"unknown device {name!r}"
    elif kinds is not None and device.kind not in kinds:
        yield where, f"{name!r} is a {device.kind} device, expected {' or '.join(kinds)}"
    elif "blockages" in where and getattr(device.sim, "station", None) is not None:
        yield where, f"{name!r} reads a wet well, not a sewer: no blockage there"
