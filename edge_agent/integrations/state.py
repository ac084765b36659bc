"""The gateway's current state per device, as retained messages a late subscriber reads at once
(docs/mqtt.md, Retained state):

- ``devices/{device}``: metadata (the catalog), republished when it changes;
- ``availability/{device}``: ``online`` / ``offline`` since when (and why), from the bus's
  decision carried by each poll result (a first good poll is ``online``);
- ``alarms/{device}``: every alarm slot raised now, with the kind, its severity, the time and
  the ``seq`` of the event that raised it; ``"active": []`` when all is normal;
- ``values/{device}``: every point's latest reported value (merged from telemetry, which only
  carries what changed).

Pure logic: poll results, accepted events and catalogs in, ``Message``s out, times from what
comes in. ``CurrentState`` keeps the state whether or not it is published (Home Assistant and
Sparkplug read it too); ``publish_state`` says whether availability, alarms and values go out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from drivers.model import PollResult
from edge_agent.events import PAYLOAD_VERSION, Event, JsonValue, TelemetryValue
from edge_agent.integrations.catalog import Catalog, FieldDevice
from edge_agent.integrations.link import Message, json_bytes
from edge_agent.payload import ts_ms
from edge_agent.rules.conditions import LEAK, OFFLINE
from edge_agent.uplink.topics import Topics

__all__ = ["ActiveAlarm", "Availability", "CurrentState", "Held", "held_by"]

# A device's slots still raised in a new runtime (after a reload or a restart): see reconcile.
Held = Callable[[str], frozenset[str]]


@dataclass(frozen=True, slots=True)
class Availability:
    state: Literal["online", "offline"]
    ts: float  # since when (epoch s): the poll that decided it
    reason: str | None = None

    def payload(self, dev: str) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {
            "v": PAYLOAD_VERSION,
            "dev": dev,
            "state": self.state,
            "ts": ts_ms(self.ts, f"availability of {dev}"),
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class ActiveAlarm:
    """One raised slot: ``kind``/``sev``/``since``/``seq`` of the event that raised it."""

    id: str
    kind: str
    sev: int
    since: float
    seq: int
    point: str | None = None

    def payload(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {
            "id": self.id,
            "kind": self.kind,
            "sev": self.sev,
            "since": ts_ms(self.since, f"alarm {self.id}"),
            "seq": self.seq,
        }
        if self.point is not None:
            out["point"] = self.point
        return out

    def to_json(self) -> dict[str, JsonValue]:
        return {**self.payload(), "since": self.since}

    @classmethod
    def from_json(cls, data: dict[str, JsonValue]) -> ActiveAlarm:
        """Raises KeyError / TypeError / ValueError for a damaged record."""
        point = data.get("point")
        return cls(
            id=str(data["id"]),
            kind=str(data["kind"]),
            sev=int(data["sev"]),  # type: ignore[arg-type]
            since=float(data["since"]),  # type: ignore[arg-type]
            seq=int(data["seq"]),  # type: ignore[arg-type]
            point=None if point is None else str(point),
        )


class CurrentState:
    """Availability, active alarms and latest values of every device of ``catalog``."""

    def __init__(self, topics: Topics, catalog: Catalog, *, publish_state: bool = True) -> None:
        self.topics = topics
        self.catalog = catalog
        self.publish_state = publish_state
        self.availability: dict[str, Availability] = {}
        self.alarms: dict[str, dict[str, ActiveAlarm]] = {}
        self.alarms_ts: dict[str, float] = {}
        self.values: dict[str, dict[str, TelemetryValue]] = {}
        self.values_ts: dict[str, float] = {}

    # -- inputs ----------------------------------------------------------------------------

    def on_poll(self, result: PollResult) -> list[Message]:
        """A finished poll: its availability change (or, first seen, a good poll) -> messages."""
        dev = result.device
        if self.catalog.device(dev) is None:
            return []
        change = result.change
        if change is not None:
            new = Availability(
                "online" if change.online else "offline",
                result.ts,
                None if change.online else change.reason,
            )
        elif dev not in self.availability and result.ok:
            new = Availability("online", result.ts)
        else:
            return []
        old = self.availability.get(dev)
        if old is not None and old.state == new.state:
            return []
        self.availability[dev] = new
        out = [self._availability_message(dev)]
        if new.state == "online" and self._drop(dev, OFFLINE.id, result.ts):
            out.append(self._alarms_message(dev))
        return [m for m in out if m is not None]

    def on_event(self, event: Event) -> list[Message]:
        """An accepted event or telemetry record -> the alarms or values it changes."""
        fd = self.catalog.device(event.dev)
        if fd is None:
            return []
        if event.stream == "telemetry":
            self.values.setdefault(event.dev, {}).update(event.data)  # type: ignore[arg-type]
            self.values_ts[event.dev] = max(event.ts, self.values_ts.get(event.dev, event.ts))
            message = self._values_message(event.dev)
            return [message] if message is not None else []
        if self._apply_event(fd, event):
            message = self._alarms_message(event.dev)
            return [message] if message is not None else []
        return []

    def _apply_event(self, fd: FieldDevice, event: Event) -> bool:
        data = event.data
        slot = fd.condition(event.kind, data.get("point"))
        if slot is None:
            return False
        active = self.alarms.setdefault(fd.name, {})
        if event.kind in slot.clears:
            return self._drop(fd.name, slot.id, event.ts)
        if slot is OFFLINE and self._state_of(fd.name) != "offline":
            return False  # it came back before its offline event was stored
        current = active.get(slot.id)
        if current is not None and current.kind == event.kind:
            return False  # raised again (a reload's fresh rule): keep the first since/seq
        active[slot.id] = ActiveAlarm(
            slot.id, event.kind, int(event.sev), event.ts, event.seq, slot.point
        )
        self.alarms_ts[fd.name] = event.ts
        return True

    def _drop(self, dev: str, slot_id: str, ts: float) -> bool:
        if self.alarms.get(dev, {}).pop(slot_id, None) is None:
            return False
        self.alarms_ts[dev] = ts
        return True

    def _state_of(self, dev: str) -> str | None:
        availability = self.availability.get(dev)
        return availability.state if availability is not None else None

    # -- a new config ----------------------------------------------------------------------

    def set_catalog(self, catalog: Catalog, held: Held, now: float) -> list[Message]:
        """A (re)loaded config: metadata of new or changed devices, retained topics of removed
        ones cleared, and each device's alarm slots reconciled with what the new runtime
        holds (``held``: a rule that starts afresh no longer holds its slot and raises it
        again if it is still true; leak and availability slots are kept while their owner
        says so)."""
        old, self.catalog = self.catalog, catalog
        out: list[Message] = []
        for name in old.names:
            if catalog.device(name) is None:
                out += self.forget(name)
        for fd in catalog.devices:
            if old.device(fd.name) != fd:
                out.append(self._device_message(fd))
            if self.reconcile(fd, held, now):
                message = self._alarms_message(fd.name)
                if message is not None:
                    out.append(message)
        return out

    def reconcile(self, fd: FieldDevice, held: Held, now: float) -> bool:
        """Drop ``fd``'s raised slots its runtime no longer holds or knows; True if any."""
        active = self.alarms.get(fd.name, {})
        known = {c.id for c in fd.conditions}
        keep = held(fd.name)
        gone = [sid for sid in active if sid not in known or sid not in keep]
        for sid in gone:
            del active[sid]
        if gone:
            self.alarms_ts[fd.name] = now
        return bool(gone)

    def forget(self, dev: str) -> list[Message]:
        """A device that left the config: its state dropped, its retained topics cleared."""
        self.availability.pop(dev, None)
        self.alarms.pop(dev, None)
        self.values.pop(dev, None)
        return [Message.clear(t) for t in self.device_topics(dev)]

    def device_topics(self, dev: str) -> tuple[str, ...]:
        """Every retained topic the gateway may hold for ``dev``."""
        t = self.topics
        return (t.device(dev), t.availability(dev), t.alarms(dev), t.values(dev))

    # -- persistence (the alarm slots survive a restart; see the hub) -----------------------

    def alarms_to_json(self) -> dict[str, list[dict[str, JsonValue]]]:
        return {dev: [a.to_json() for a in slots.values()] for dev, slots in self.alarms.items()}

    def restore_alarms(self, data: dict[str, list[dict[str, JsonValue]]]) -> None:
        """Raises KeyError / TypeError / ValueError for a damaged record."""
        for dev, slots in data.items():
            if self.catalog.device(dev) is None:
                continue
            restored = (ActiveAlarm.from_json(s) for s in slots)
            self.alarms[dev] = {a.id: a for a in restored}

    # -- messages --------------------------------------------------------------------------

    def messages(self) -> list[Message]:
        """Everything retained, for a (re)connect: metadata, then availability, alarms and
        values of every device (alarms even when empty: "all normal" is news too)."""
        out = [self._device_message(fd) for fd in self.catalog.devices]
        for fd in self.catalog.devices:
            out += [
                m
                for m in (
                    self._availability_message(fd.name),
                    self._alarms_message(fd.name),
                    self._values_message(fd.name),
                )
                if m is not None
            ]
        return out

    def active(self, dev: str) -> tuple[ActiveAlarm, ...]:
        """``dev``'s raised slots, oldest first."""
        return tuple(sorted(self.alarms.get(dev, {}).values(), key=lambda a: (a.since, a.seq)))

    def _device_message(self, fd: FieldDevice) -> Message:
        return Message(self.topics.device(fd.name), json_bytes(fd.payload()), retain=True)

    def _availability_message(self, dev: str) -> Message | None:
        availability = self.availability.get(dev)
        if not self.publish_state or availability is None:
            return None
        return Message(
            self.topics.availability(dev), json_bytes(availability.payload(dev)), retain=True
        )

    def _alarms_message(self, dev: str) -> Message | None:
        if not self.publish_state:
            return None
        body: dict[str, JsonValue] = {
            "v": PAYLOAD_VERSION,
            "dev": dev,
            "active": [a.payload() for a in self.active(dev)],
        }
        if dev in self.alarms_ts:
            body["ts"] = ts_ms(self.alarms_ts[dev], f"alarms of {dev}")
        return Message(self.topics.alarms(dev), json_bytes(body), retain=True)

    def _values_message(self, dev: str) -> Message | None:
        values = self.values.get(dev)
        fd = self.catalog.device(dev)
        if not self.publish_state or not values or fd is None:
            return None
        data: dict[str, JsonValue] = {p.name: values.get(p.name) for p in fd.points}
        body: dict[str, JsonValue] = {
            "v": PAYLOAD_VERSION,
            "dev": dev,
            "ts": ts_ms(self.values_ts[dev], f"values of {dev}"),
            "data": data,
        }
        return Message(self.topics.values(dev), json_bytes(body), retain=True)


def held_by(
    active_rules: Callable[[str], frozenset[str]],
    leak_states: Iterable[tuple[str, str]],
    availability: Iterable[tuple[str, bool | None]],
) -> Held:
    """What a runtime holds raised, per device: its rules' raised slots, a leak slot while the
    logger's tracker is not normal, the offline slot while the bus has not seen it back
    (``availability``: device -> online, None while unknown)."""
    leaking = {name for name, state in leak_states if state != "normal"}
    back = {name for name, online in availability if online}

    def held(dev: str) -> frozenset[str]:
        extra = set()
        if dev in leaking:
            extra.add(LEAK.id)
        if dev not in back:
            extra.add(OFFLINE.id)
        return active_rules(dev) | extra

    return held
