"""Event kinds, severities and the drafts that rules and trackers hand to the outbox.

A rule never numbers or serialises an event: it returns ``EventDraft``s (telemetry:
``TelemetryDraft``s), which go through the pipeline's one ``emit`` to the outbox. The outbox
encodes ``data`` once, gives each its gap-free ``seq`` and id when it is accepted (see
``edge_agent.outbox``), and ``edge_agent.payload`` renders the versioned payload of
docs/mqtt.md around that text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal, TypeAlias

__all__ = [
    "DEFAULT_SEVERITY",
    "PAYLOAD_VERSION",
    "TELEMETRY_KIND",
    "Draft",
    "Event",
    "EventDraft",
    "JsonValue",
    "Severity",
    "Stream",
    "TelemetryDraft",
    "TelemetryValue",
]

# What an event's ``data`` may hold: JSON values (a tuple is a list).
JsonValue: TypeAlias = (
    "bool | int | float | str | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)
TelemetryValue: TypeAlias = float | int | bool | str | None  # one point's value
Stream: TypeAlias = Literal["event", "telemetry"]

PAYLOAD_VERSION = 1  # ``v`` in every payload; bumped only on an incompatible change
TELEMETRY_KIND = "telemetry"  # the ``kind`` of a numbered telemetry record


class Severity(IntEnum):
    """``sev`` in the payload: higher is more urgent. Alarms are ``MAJOR`` and above."""

    INFO = 0  # state changes, recoveries (leak.cleared, gas.normal, device.online)
    NOTICE = 1  # worth a look (level.rising, leak.warning, leak.suspected)
    WARNING = 2  # act soon (level.high, gas.alarm1, device.offline)
    MAJOR = 3  # act now (leak.confirmed, level.high_high, sewer.blockage_suspected)
    CRITICAL = 4  # life or property at risk (gas.alarm2, gas.leak_suspected, overflow.risk)

    @property
    def is_alarm(self) -> bool:
        return self >= Severity.WARNING


# Every event kind the gateway emits, with its severity: the contract of docs/mqtt.md ("Event
# kinds"). tests/edge_agent/test_event_kinds.py fails when code emits a kind missing here or
# in that table. Alarms raised by a rule clear with the family's ``normal`` kind or with
# ``<kind>.cleared`` (info).
DEFAULT_SEVERITY: dict[str, Severity] = {
    "gateway.started": Severity.INFO,
    "gateway.outbox_dropped": Severity.WARNING,
    "device.online": Severity.INFO,
    "device.offline": Severity.WARNING,
    "device.fault": Severity.WARNING,
    "device.fault.cleared": Severity.INFO,
    "leak.warning": Severity.NOTICE,
    "leak.suspected": Severity.NOTICE,
    "leak.confirmed": Severity.MAJOR,
    "leak.cleared": Severity.INFO,
    "leak.located": Severity.MAJOR,
    "level.rising": Severity.NOTICE,
    "level.rising.cleared": Severity.INFO,
    "level.high": Severity.WARNING,
    "level.high_high": Severity.MAJOR,
    "level.normal": Severity.INFO,
    "sewer.blockage_suspected": Severity.MAJOR,
    "sewer.blockage_suspected.cleared": Severity.INFO,
    "overflow.risk": Severity.CRITICAL,
    "overflow.risk.cleared": Severity.INFO,
    "wet_well.fault": Severity.MAJOR,
    "wet_well.fault.cleared": Severity.INFO,
    "flood.ponding": Severity.MAJOR,
    "flood.ponding.cleared": Severity.INFO,
    "gas.alarm1": Severity.WARNING,
    "gas.alarm2": Severity.CRITICAL,
    "gas.normal": Severity.INFO,
    "gas.leak_suspected": Severity.CRITICAL,
    "gas.leak_suspected.cleared": Severity.INFO,
    "pressure.low": Severity.WARNING,
    "pressure.high": Severity.WARNING,
    "pressure.drop": Severity.MAJOR,
    "pressure.drop.cleared": Severity.INFO,
    "pressure.normal": Severity.INFO,
    "threshold.low": Severity.WARNING,
    "threshold.high": Severity.WARNING,
    "threshold.normal": Severity.INFO,
    "cover.opened": Severity.WARNING,
    "cover.closed": Severity.INFO,
}


@dataclass(frozen=True, slots=True)
class EventDraft:
    """What a rule or tracker decided: not yet numbered, not yet on disk.

    ``ts`` is epoch seconds (float) of the observation that triggered it; ``data`` holds
    small JSON-able values (numbers, strings, bools, short lists) only.
    """

    dev: str
    kind: str
    sev: Severity
    ts: float
    data: Mapping[str, JsonValue] = field(default_factory=dict)

    @classmethod
    def of(cls, dev: str, kind: str, ts: float, **data: JsonValue) -> EventDraft:
        """A draft with the kind's default severity."""
        return cls(
            dev=dev, kind=kind, sev=DEFAULT_SEVERITY.get(kind, Severity.INFO), ts=ts, data=data
        )


@dataclass(frozen=True, slots=True)
class TelemetryDraft:
    """Readings of one device worth sending (by exception or heartbeat): ``values`` maps a
    point name to its value (number, bool or string). ``ts`` is epoch seconds."""

    dev: str
    ts: float
    values: Mapping[str, TelemetryValue]


Draft: TypeAlias = EventDraft | TelemetryDraft  # what goes through the pipeline's emit


@dataclass(frozen=True, slots=True)
class Event:
    """An accepted, numbered record: on disk in the outbox, ready to publish.

    Events (``stream == "event"``) are numbered by a gap-free ``seq`` per gateway that survives
    restarts; telemetry (``stream == "telemetry"``, ``kind == "telemetry"``) has its own
    counter, so evicting or losing QoS 0 telemetry never opens a gap in the event sequence.
    ``ts_synced`` is False when the gateway clock was not synchronised at acceptance (the
    payload then carries ``"tsq": "unsynced"``). ``data_json`` is the compact JSON text of
    ``data``, encoded once when the outbox accepted it; the payload is built around it.
    """

    gateway: str
    seq: int
    dev: str
    kind: str
    sev: Severity
    ts: float
    data_json: str
    ts_synced: bool = True
    stream: Stream = "event"

    @property
    def data(self) -> dict[str, JsonValue]:
        """``data`` parsed (for readers: logs, the demo, tests; publishing never parses it)."""
        parsed: dict[str, JsonValue] = json.loads(self.data_json)
        return parsed

    @property
    def id(self) -> str:
        """Unique id: ``<gateway>:<seq>`` for events, ``<gateway>:t<seq>`` for telemetry."""
        if self.stream == "telemetry":
            return f"{self.gateway}:t{self.seq}"
        return f"{self.gateway}:{self.seq}"

    @property
    def is_alarm(self) -> bool:
        return self.stream == "event" and self.sev.is_alarm
