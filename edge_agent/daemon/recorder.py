"""Recordings off the bus for the leak pipeline (its ``Recorder``): one broadcast start per
bus for a synchronised job (every logger on the bus starts at the same instant), unicast
otherwise. Buses record in parallel; a transfer interleaves with polling request by request
(``BusRunner.shared_transport``), each completed request a progress beat for the watchdog
(a block transfer takes minutes on a 9600-baud bus)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import NamedTuple

from drivers.bus import BusRunner
from drivers.errors import DriverError
from drivers.model import Recording
from drivers.noise_logger import record, record_broadcast
from drivers.profile import RecordingBlock
from edge_agent.clock import Clock

__all__ = ["BusRecorder", "LoggerPlace"]


class LoggerPlace(NamedTuple):
    """Where a noise logger is: its bus, unit id and recording registers."""

    bus: str
    unit: int
    block: RecordingBlock


class BusRecorder:
    """Records loggers through their buses' runners; ``beat(bus)`` after every completed
    request of a transfer and after each recording."""

    def __init__(
        self,
        runners: Mapping[str, BusRunner],
        loggers: Mapping[str, LoggerPlace],
        duration_s: int,
        clock: Clock,
        beat: Callable[[str], None],
    ) -> None:
        self.runners, self.loggers, self.beat = runners, loggers, beat
        self.duration_s, self.clock = duration_s, clock

    async def record(
        self, devices: tuple[str, ...], *, synchronised: bool
    ) -> dict[str, Recording | str]:
        """A recording, or why there is none, per device."""
        by_bus: dict[str, list[str]] = {}
        for name in devices:
            by_bus.setdefault(self.loggers[name].bus, []).append(name)
        parts = await asyncio.gather(
            *(self._record_bus(bus, names, synchronised) for bus, names in by_bus.items())
        )
        return {name: got for part in parts for name, got in part.items()}

    async def _record_bus(
        self, bus: str, names: list[str], synchronised: bool
    ) -> dict[str, Recording | str]:
        transport = self.runners[bus].shared_transport(on_request=lambda: self.beat(bus))
        if synchronised and len(names) > 1:
            units = {self.loggers[n].unit: n for n in names}
            block = self.loggers[names[0]].block
            errors: dict[int, DriverError] = {}
            try:
                got = await record_broadcast(
                    transport, units, block, self.duration_s, errors=errors,
                    wall=self.clock.time, sleep=self.clock.sleep,
                )  # fmt: skip
            except DriverError as exc:
                return {n: str(exc) for n in names}
            finally:
                self.beat(bus)
            return {n: got.get(u) or str(errors.get(u, "no recording")) for u, n in units.items()}
        out: dict[str, Recording | str] = {}
        for name in names:
            _, unit, block = self.loggers[name]
            try:
                out[name] = await record(
                    transport, unit, block, self.duration_s, device=name,
                    wall=self.clock.time, sleep=self.clock.sleep,
                )  # fmt: skip
            except DriverError as exc:
                out[name] = str(exc)
            self.beat(bus)
        return out
