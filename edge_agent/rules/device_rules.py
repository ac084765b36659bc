"""Rules on one device as a whole: faults, availability, manhole covers.

- ``FaultRule``: fault bits, pump faults and bad quality (FAULT / OUT_OF_RANGE) of any point
  give ``device.fault`` when the first appears and ``device.fault.cleared`` once none has been
  seen for ``clear_after_s``; ``data.faults`` names them (``status.echo_lost``,
  ``level:out_of_range``).
- ``availability_event``: a poll's availability transition (decided by the bus after
  ``offline_after`` failed polls in a row, or on the first good poll after) gives
  ``device.offline`` / ``device.online``.
- ``CoverRule``: the open switch, or a tilt beyond ``tilt_deg`` (with hysteresis), gives
  ``cover.opened`` at once; both back at rest for ``closed_after_s`` gives ``cover.closed``.
"""

from __future__ import annotations

from drivers.model import AvailabilityChange, Quality, Reading
from drivers.profile import BITFIELD_TYPES, Point, Profile
from edge_agent.events import EventDraft
from edge_agent.rules.alarm import Alarm, Latch, Transition
from edge_agent.rules.config import CoverConfig, FaultConfig

__all__ = ["CoverRule", "FaultRule", "availability_event"]

_BAD = frozenset({Quality.FAULT, Quality.OUT_OF_RANGE})


class FaultRule:
    """Everything wrong with one device, as one alarm.

    Called with every reading of the device (a dozen points a second): the labels a point
    can report are built once per point, and whether any fault is present is recomputed
    only when a source changed, so a healthy poll costs a few dict lookups."""

    def __init__(self, device: str, profile: Profile, config: FaultConfig):
        self.device = device
        self.profile = profile
        self.latch = Latch(config.clear_after_s)
        # source -> what to report while it is active (None: inactive)
        self.sources: dict[str, str | None] = {}
        self._labels: dict[str, _PointLabels] = {}
        self._any: bool | None = None  # any source active; None: recompute

    @property
    def active(self) -> list[str]:
        return sorted(label for label in self.sources.values() if label)

    def carry_over(self, old: FaultRule, *, same_device: bool) -> None:
        """Continue from this device's fault rule before a reload: raised or not always
        (a fault still present is not announced again; a cleared one clears after
        ``clear_after_s``); which faults are present only for the same device."""
        self.latch.carry_over(old.latch, evidence=same_device)
        if same_device:
            self.sources = dict(old.sources)
            self._any = None

    def __call__(self, reading: Reading, point: Point) -> list[EventDraft]:
        quality = reading.quality
        if quality is Quality.STALE:
            return []  # no news: the device did not answer, availability handles that
        labels = self._labels.get(point.name)
        if labels is None:
            labels = self._labels[point.name] = _PointLabels(point)
        self._set(labels.quality_key, labels.bad.get(quality))
        value = reading.value
        if labels.bits and isinstance(value, int):
            for bit, key, label in labels.bits:
                self._set(key, label if value >> bit & 1 else None)
        if labels.pump_key is not None and isinstance(value, bool):
            self._set(labels.pump_key, point.name if value else None)
        if self._any is None:
            self._any = any(self.sources.values())
        transition = self.latch.update(self._any, reading.ts)
        if transition is Transition.RAISE:
            return [EventDraft.of(self.device, "device.fault", reading.ts, faults=self.active)]
        if transition is Transition.CLEAR:
            return [EventDraft.of(self.device, "device.fault.cleared", reading.ts)]
        return []

    def _set(self, key: str, label: str | None) -> None:
        if self.sources.get(key) != label:
            self.sources[key] = label
            self._any = None


class _PointLabels:
    """The fault sources one point feeds and what each reports (built once per point)."""

    __slots__ = ("bad", "bits", "pump_key", "quality_key")

    def __init__(self, point: Point) -> None:
        self.quality_key = f"q:{point.name}"
        self.bad = {q: f"{point.name}:{q.value}" for q in _BAD}
        self.bits: tuple[tuple[int, str, str], ...] = ()
        if point.type in BITFIELD_TYPES:
            self.bits = tuple(
                (bit, f"b:{point.name}.{name}", f"{point.name}.{name}")
                for bit, name in point.fault_bits.items()
            )
        self.pump_key = f"p:{point.name}" if point.role == "pump_fault" else None


def availability_event(device: str, change: AvailabilityChange, ts: float) -> EventDraft:
    """``device.offline`` / ``device.online`` for a transition the bus decided (the count of
    failed polls lives in ``drivers.bus.DeviceCoordinator`` only)."""
    if change.online:
        offline_s = None if change.offline_s is None else round(change.offline_s, 1)
        return EventDraft.of(device, "device.online", ts, offline_s=offline_s)
    return EventDraft.of(
        device, "device.offline", ts, reason=change.reason, failures=change.failures
    )


class CoverRule:
    """Open switch or tilt: opened; both back at rest for a while: closed. Starts closed."""

    def __init__(self, device: str, config: CoverConfig):
        self.device = device
        self.tilt = Alarm(config.tilt_deg, hysteresis=config.hysteresis_deg)
        self.switch_open = False
        self.last_tilt: float | None = None
        self.latch = Latch(config.closed_after_s)

    def is_open(self) -> bool:
        """Whether ``cover.opened`` is raised (until ``cover.closed``)."""
        return self.latch.active

    def carry_over(self, old: CoverRule, *, same_device: bool) -> None:
        """Continue from this cover's rule before a reload: opened or closed always; the
        switch and tilt last read only for the same device."""
        self.latch.carry_over(old.latch, evidence=same_device)
        self.tilt.carry_over(old.tilt, evidence=same_device)
        if same_device:
            self.switch_open, self.last_tilt = old.switch_open, old.last_tilt

    def __call__(self, reading: Reading, point: Point) -> list[EventDraft]:
        if reading.quality is not Quality.GOOD:
            return []
        if point.role == "cover_open" and isinstance(reading.value, bool):
            self.switch_open = reading.value
        elif point.role == "cover_tilt_deg" and isinstance(reading.value, int | float):
            self.last_tilt = float(reading.value)
            self.tilt.update(abs(self.last_tilt), reading.ts)
        else:
            return []
        transition = self.latch.update(self.switch_open or self.tilt.active, reading.ts)
        if transition is None:
            return []
        return [
            EventDraft.of(
                self.device,
                "cover.opened" if transition is Transition.RAISE else "cover.closed",
                reading.ts,
                switch_open=self.switch_open,
                tilt_deg=self.last_tilt,
            )
        ]
