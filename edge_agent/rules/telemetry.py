"""Report-by-exception telemetry: send a point when it moved, or when it has been quiet.

A reading is sent when its point has never been sent, its quality changed, its value moved
by more than the point's deadband since the last value *sent* (not the last read, so a slow
drift is reported once it adds up), or ``heartbeat_s`` passed since the last send.

Deadband, most specific first: ``devices[i].rules.points.<p>.deadband``, then the point's
own ``deadband`` (profile YAML or ``devices[i].overrides.points.<p>.deadband``), then
``rules.telemetry.deadband_by_role[<role>]``, then ``deadband_pct_of_range`` of the point's
valid range; a point without a range sends every change. Time is the readings' ``ts``.

``on_poll`` batches: one ``TelemetryDraft`` per device poll holding every point worth
sending (one outbox row and one MQTT message per poll, not one per reading).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from drivers.model import PollResult, Quality, Reading
from drivers.profile import Point
from edge_agent.events import TelemetryDraft, TelemetryValue
from edge_agent.rules.config import PointRulesConfig, RulesConfig, TelemetryConfig
from edge_agent.rules.engine import DeviceInfo

__all__ = ["TelemetryFilter", "plain"]


@dataclass(frozen=True, slots=True)
class _Policy:
    enabled: bool
    deadband: float
    heartbeat_s: float


@dataclass(slots=True)
class _LastSent:
    value: object
    quality: Quality  # the member: compared by identity, per reading
    ts: float


def _policy(point: Point | None, overrides: PointRulesConfig, cfg: TelemetryConfig) -> _Policy:
    heartbeat = overrides.heartbeat_s if overrides.heartbeat_s is not None else cfg.heartbeat_s
    if point is None:
        return _Policy(True, overrides.deadband or 0.0, heartbeat)
    if overrides.deadband is not None:
        deadband = overrides.deadband
    elif point.deadband is not None:
        deadband = point.deadband
    elif point.role is not None and point.role in cfg.deadband_by_role:
        deadband = cfg.deadband_by_role[point.role]
    elif point.valid_range is not None:
        lo, hi = point.valid_range
        deadband = (hi - lo) * cfg.deadband_pct_of_range / 100.0
    else:
        deadband = 0.0
    return _Policy(point.enabled and overrides.enabled, deadband, heartbeat)


class TelemetryFilter:
    """Decides, per reading, whether it goes upstream. Keeps only the last sent value per
    point; O(1) per reading."""

    def __init__(self, rules: RulesConfig, devices: Sequence[DeviceInfo]):
        self._config = rules.telemetry
        self._policies: dict[tuple[str, str], _Policy] = {}
        for device in devices:
            for point in device.profile.points:
                overrides = device.rules.point(point.name)
                self._policies[device.name, point.name] = _policy(point, overrides, self._config)
        self._default = _policy(None, PointRulesConfig(), self._config)
        self._last: dict[tuple[str, str], _LastSent] = {}

    def carry_over(self, previous: TelemetryFilter, same_devices: Collection[str]) -> None:
        """Continue from ``previous`` (before a config reload): the last value sent of every
        point of ``same_devices`` (devices polled as before), so an unchanged value is not
        sent again; a new deadband or heartbeat applies from the next reading on. Devices
        polled differently start fresh: their next poll is sent whole."""
        for key, last in previous._last.items():
            if key[0] in same_devices and key in self._policies:
                self._last[key] = last

    def should_send(self, reading: Reading) -> bool:
        """Whether to send ``reading``; when True it becomes the point's last sent value."""
        key = (reading.device, reading.point)
        policy = self._policies.get(key, self._default)
        if not policy.enabled:
            return False
        last = self._last.get(key)
        if last is None or self._changed(last, reading, policy):
            self._last[key] = _LastSent(reading.value, reading.quality, reading.ts)
            return True
        return False

    def on_poll(self, result: PollResult) -> TelemetryDraft | None:
        """The poll's readings worth sending as one record; None when none is (or it failed)."""
        should_send = self.should_send
        values = {r.point: plain(r.value) for r in result.readings if should_send(r)}
        return TelemetryDraft(result.device, result.ts, values) if values else None

    @staticmethod
    def _changed(last: _LastSent, reading: Reading, policy: _Policy) -> bool:
        if reading.quality is not last.quality:
            return True
        if reading.ts - last.ts >= policy.heartbeat_s or reading.ts < last.ts:
            return True  # (earlier than the last sent: the wall clock stepped back; rebase)
        new, old = reading.value, last.value
        numeric = (int, float)
        if (
            isinstance(new, numeric)
            and isinstance(old, numeric)
            and not isinstance(new, bool)
            and not isinstance(old, bool)
        ):
            return abs(new - old) > policy.deadband or (new != new) != (old != old)  # NaN
        return new != old


def plain(value: TelemetryValue) -> TelemetryValue:
    """A JSON-able telemetry value (NaN/inf become None: JSON has no spelling for them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
