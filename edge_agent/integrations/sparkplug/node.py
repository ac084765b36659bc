"""The gateway as a Sparkplug B 3.0 edge node: what it says and when (pure; the session sends).

Topics ``spBv1.0/{group}/{NBIRTH|NDEATH|NDATA|NCMD}/{node}`` and
``spBv1.0/{group}/{DBIRTH|DDEATH|DDATA}/{node}/{device}``, QoS 0, not retained (the NDEATH,
the MQTT Will, QoS 1). Per the specification:

- ``seq`` counts 0-255 over every message of the node and wraps; an NBIRTH starts it at 0;
  the NDEATH carries none;
- ``bdSeq`` (Int64) is in the NBIRTH and in the NDEATH registered as the Will of the same
  MQTT connection; it counts connections (the session keeps it across restarts);
- the NBIRTH lists the node's metrics: ``bdSeq``, ``Node Control/Rebirth`` (Boolean, false),
  ``Properties/Agent``, ``Properties/Site``;
- a DBIRTH per online device lists every metric it will ever send: each point (its name; the
  datatype of its profile type; ``engUnit``, ``engLow``, ``engHigh`` properties from its unit
  and range) and, per alarm slot, ``Alarms/<slot>/Active`` (Boolean), ``.../Kind`` (String,
  empty when normal) and ``.../Seq`` (UInt64: the raising event's seq, 0 when normal);
- DDATA by exception: only metrics whose value changed since the device's last message;
- a device that goes offline gets a DDEATH, and a DBIRTH when it is back;
- ``Node Control/Rebirth`` = true in an NCMD: every birth again (``births``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from edge_agent.integrations.catalog import FieldDevice, PointInfo
from edge_agent.integrations.link import Message
from edge_agent.integrations.sparkplug.payloads import (
    REBIRTH,
    DataType,
    Metric,
    Property,
    encode,
)
from edge_agent.integrations.state import CurrentState
from edge_agent.rules.conditions import OFFLINE, Condition

__all__ = ["NAMESPACE", "SparkplugNode", "alarm_prefix"]

NAMESPACE = "spBv1.0"
Definition = tuple[str, int, tuple[Property, ...]]  # a DBIRTH metric: name, datatype, properties
_INT_TYPES = {
    "u16": DataType.UInt16, "i16": DataType.Int16, "u32": DataType.UInt32,
    "i32": DataType.Int32, "u64": DataType.UInt64, "i64": DataType.Int64,
    "bitfield": DataType.UInt16, "bitfield32": DataType.UInt32,
}  # fmt: skip


def point_datatype(point: PointInfo) -> int:
    """The Sparkplug datatype of a point's values (a scaled integer register is a Double)."""
    if point.type == "bool":
        return DataType.Boolean
    if point.type == "string":
        return DataType.String
    if point.type == "f32":
        return DataType.Float
    if point.type == "f64":
        return DataType.Double
    step = point.resolution
    if step is None or (step >= 1 and float(step).is_integer()):
        return _INT_TYPES[point.type]
    return DataType.Double


def alarm_prefix(slot: Condition) -> str:
    """``Alarms/gas/lel``, ``Alarms/device_fault``: folders, no '.' or ':' (SCADA tag names)."""
    family = slot.family.replace(".", "_")
    return f"Alarms/{family}" + (f"/{slot.point}" if slot.point is not None else "")


class SparkplugNode:
    """Births, data and deaths of one edge node. ``now_ms``: epoch milliseconds."""

    def __init__(
        self, group: str, node: str, *, site: str, agent: str, now_ms: Callable[[], int]
    ) -> None:
        self.group = group
        self.node = node
        self.site = site
        self.agent = agent
        self.now_ms = now_ms
        self.seq = 0
        self._born: dict[str, dict[str, object]] = {}  # device -> metric values last sent
        self._defined: dict[str, tuple[Definition, ...]] = {}  # device -> its DBIRTH

    # -- topics ----------------------------------------------------------------------------

    def topic(self, kind: str, device: str | None = None) -> str:
        base = f"{NAMESPACE}/{self.group}/{kind}/{self.node}"
        return base if device is None else f"{base}/{device}"

    @property
    def ncmd(self) -> str:
        return self.topic("NCMD")

    def _next_seq(self) -> int:
        seq = self.seq
        self.seq = (self.seq + 1) % 256
        return seq

    # -- node ------------------------------------------------------------------------------

    def death(self, bd_seq: int) -> bytes:
        """The NDEATH payload (the Will of the connection that uses ``bd_seq``)."""
        return encode(self.now_ms(), None, [Metric("bdSeq", DataType.Int64, bd_seq)])

    def births(self, state: CurrentState, bd_seq: int) -> list[Message]:
        """NBIRTH (seq 0) and a DBIRTH for every online device."""
        now = self.now_ms()
        self.seq = 0
        self._born.clear()
        metrics = [
            Metric("bdSeq", DataType.Int64, bd_seq, now),
            Metric(REBIRTH, DataType.Boolean, False, now),
            Metric("Properties/Agent", DataType.String, self.agent, now),
            Metric("Properties/Site", DataType.String, self.site, now),
        ]
        out = [Message(self.topic("NBIRTH"), encode(now, self._next_seq(), metrics), qos=0)]
        for fd in state.catalog.devices:
            out += self._device_birth(state, fd)
        return out

    # -- devices ---------------------------------------------------------------------------

    def _device_birth(self, state: CurrentState, fd: FieldDevice) -> list[Message]:
        availability = state.availability.get(fd.name)
        if availability is None or availability.state != "online":
            return []
        values = self._values(state, fd)
        now = self.now_ms()
        metrics = [
            Metric(name, datatype, values[name], now, props)
            for name, datatype, props in self._definitions(fd)
        ]
        self._born[fd.name] = values
        self._defined[fd.name] = tuple(self._definitions(fd))
        payload = encode(now, self._next_seq(), metrics)
        return [Message(self.topic("DBIRTH", fd.name), payload, qos=0)]

    def _definitions(self, fd: FieldDevice) -> list[Definition]:
        out = []
        for p in fd.points:
            props = []
            if p.unit:
                props.append(Property("engUnit", DataType.String, p.unit))
            if p.range is not None:
                props.append(Property("engLow", DataType.Double, p.range[0]))
                props.append(Property("engHigh", DataType.Double, p.range[1]))
            out.append((p.name, point_datatype(p), tuple(props)))
        for slot in fd.conditions:
            if slot is OFFLINE:
                continue  # DDEATH says that
            prefix = alarm_prefix(slot)
            out += [
                (f"{prefix}/Active", DataType.Boolean, ()),
                (f"{prefix}/Kind", DataType.String, ()),
                (f"{prefix}/Seq", DataType.UInt64, ()),
            ]
        return out

    def _values(self, state: CurrentState, fd: FieldDevice) -> dict[str, object]:
        current = state.values.get(fd.name, {})
        values: dict[str, object] = {p.name: current.get(p.name) for p in fd.points}
        active = {a.id: a for a in state.active(fd.name)}
        for slot in fd.conditions:
            if slot is OFFLINE:
                continue
            prefix = alarm_prefix(slot)
            alarm = active.get(slot.id)
            values[f"{prefix}/Active"] = alarm is not None
            values[f"{prefix}/Kind"] = alarm.kind if alarm is not None else ""
            values[f"{prefix}/Seq"] = alarm.seq if alarm is not None else 0
        return values

    def update(self, state: CurrentState, devices: Iterable[str]) -> list[Message]:
        """What changed for ``devices``: DDEATH (went offline), DBIRTH (back, or first seen
        online), DDATA (changed metrics only)."""
        out: list[Message] = []
        for name in devices:
            fd = state.catalog.device(name)
            if fd is None:
                continue
            availability = state.availability.get(name)
            online = availability is not None and availability.state == "online"
            if name not in self._born:
                if online:
                    out += self._device_birth(state, fd)
                continue
            if not online:
                out.append(self._device_death(name))
                continue
            values = self._values(state, fd)
            last = self._born[name]
            changed = [(k, v) for k, v in values.items() if last.get(k) != v]
            if not changed:
                continue
            types = {n: t for n, t, _ in self._defined[name]}
            now = self.now_ms()
            metrics = [Metric(k, types[k], v, now) for k, v in changed if k in types]
            last.update(changed)
            payload = encode(now, self._next_seq(), metrics)
            out.append(Message(self.topic("DDATA", name), payload, qos=0))
        return out

    def _device_death(self, name: str) -> Message:
        self._born.pop(name, None)
        self._defined.pop(name, None)
        payload = encode(self.now_ms(), self._next_seq(), [])
        return Message(self.topic("DDEATH", name), payload, qos=0)

    def removed(self, state: CurrentState) -> list[Message]:
        """A new config: a DDEATH for each born device it no longer has."""
        return [self._device_death(n) for n in list(self._born) if state.catalog.device(n) is None]

    def redefined(self, state: CurrentState) -> bool:
        """Whether a born device's metrics changed with the new config (births again)."""
        for name, defined in self._defined.items():
            fd = state.catalog.device(name)
            if fd is not None and tuple(self._definitions(fd)) != defined:
                return True
        return False
