"""Conditions: what a rule holds raised until it clears, named so that consumers of the MQTT
contract can tell which alarms are active now (the retained alarm snapshot, Home Assistant's
binary sensors, Sparkplug's alarm metrics).

A ``Condition`` is one slot of one device: the kinds that raise it (an escalation such as
``level.high`` -> ``level.high_high`` stays in the same slot), the kinds that clear it, and the
point it watches when it watches one (``gas:lel`` and ``gas:h2s`` are two slots). Its ``id``
is stable across restarts: ``<family>`` or ``<family>:<point>``. The rules engine lists each
device's conditions from its wiring and says which are raised now (``RulesEngine.conditions``,
``RulesEngine.active``); the leak and availability slots are owned by the leak pipeline and
the bus, so they are named here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LEAK", "OFFLINE", "Condition"]


@dataclass(frozen=True, slots=True)
class Condition:
    """One alarm slot of a device. ``family`` is the rule family (``level``, ``gas``,
    ``level.rising``, ``device.fault``, ``cover``, ``leak``, ...)."""

    family: str
    raises: tuple[str, ...]
    clears: tuple[str, ...]
    point: str | None = None

    @property
    def id(self) -> str:
        """``<family>`` or ``<family>:<point>``: stable, unique per device."""
        return self.family if self.point is None else f"{self.family}:{self.point}"

    def takes(self, kind: str, point: object = None) -> bool:
        """Whether an event of ``kind`` (with ``data.point`` = ``point``) raises or clears
        this slot."""
        if kind not in self.raises and kind not in self.clears:
            return False
        return self.point is None or point == self.point


LEAK = Condition("leak", ("leak.warning", "leak.suspected", "leak.confirmed"), ("leak.cleared",))
OFFLINE = Condition("device.offline", ("device.offline",), ("device.online",))
