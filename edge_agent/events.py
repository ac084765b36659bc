"""Event kinds, severities and the draft that rules and trackers hand to the outbox.

A rule never numbers or serialises an event: it returns ``EventDraft``s. The outbox gives each
one its gap-free ``seq`` and id when it is accepted (see ``edge_agent.outbox``), and the
encoder (``edge_agent.codec``) renders the versioned payload of docs/mqtt.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

__all__ = ["DEFAULT_SEVERITY", "EventDraft", "Severity"]


class Severity(IntEnum):
    """``sev`` in the payload: higher is more urgent. Alarms are ``MAJOR`` and above."""

    INFO = 0  # state changes, recoveries (leak.cleared, gas.normal, device.online)
    NOTICE = 1  # worth a look (level.rising, leak.suspected on first nights)
    WARNING = 2  # act soon (level.high, gas.alarm1, device.offline)
    MAJOR = 3  # act now (leak.confirmed, level.high_high, sewer.blockage_suspected)
    CRITICAL = 4  # life or property at risk (gas.alarm2, overflow.risk)

    @property
    def is_alarm(self) -> bool:
        return self >= Severity.WARNING


DEFAULT_SEVERITY: dict[str, Severity] = {
    "gateway.started": Severity.INFO,
    "gateway.outbox_dropped": Severity.WARNING,
    "device.online": Severity.INFO,
    "device.offline": Severity.WARNING,
    "device.fault": Severity.WARNING,
    "leak.suspected": Severity.NOTICE,
    "leak.confirmed": Severity.MAJOR,
    "leak.cleared": Severity.INFO,
    "leak.located": Severity.MAJOR,
    "level.rising": Severity.NOTICE,
    "level.high": Severity.WARNING,
    "level.high_high": Severity.MAJOR,
    "level.normal": Severity.INFO,
    "sewer.blockage_suspected": Severity.MAJOR,
    "overflow.risk": Severity.CRITICAL,
    "gas.alarm1": Severity.WARNING,
    "gas.alarm2": Severity.CRITICAL,
    "gas.normal": Severity.INFO,
    "pressure.low": Severity.WARNING,
    "pressure.high": Severity.WARNING,
    "pressure.drop": Severity.MAJOR,
    "pressure.normal": Severity.INFO,
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
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, dev: str, kind: str, ts: float, **data: Any) -> EventDraft:
        """A draft with the kind's default severity."""
        return cls(
            dev=dev, kind=kind, sev=DEFAULT_SEVERITY.get(kind, Severity.INFO), ts=ts, data=data
        )
