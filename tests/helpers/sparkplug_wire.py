"""An independent Sparkplug B payload reader and writer for tests, written from the protobuf
wire format and the field numbers of the Sparkplug B 3.0 specification (Payload: timestamp 1,
metrics 2, seq 3; Metric: name 1, alias 2, timestamp 3, datatype 4, is_null 7, properties 9,
int_value 10, long_value 11, float_value 12, double_value 13, boolean_value 14, string_value
15; PropertySet: keys 1, values 2; PropertyValue: type 1, is_null 2, int_value 3, long_value 4,
float_value 5, double_value 6, boolean_value 7, string_value 8). It shares no code with the
gateway's encoder (which uses the protobuf runtime), so a test that decodes the gateway's
messages with it checks the bytes, not the library against itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# Sparkplug B DataType numbers (specification, 6.4.16)
INT8, INT16, INT32, INT64 = 1, 2, 3, 4
UINT8, UINT16, UINT32, UINT64 = 5, 6, 7, 8
FLOAT, DOUBLE, BOOLEAN, STRING = 9, 10, 11, 12
SIGNED32 = {INT8: 8, INT16: 16, INT32: 32}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(buf: bytes) -> list[tuple[int, int, object]]:
    """(field number, wire type, raw value) of every field of one message."""
    out = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire} of field {number}")
        out.append((number, wire, value))
    if i != len(buf):
        raise ValueError("truncated message")
    return out


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _typed(datatype: int, raw: dict[int, object], base: int) -> object:
    """The value of a Metric (base 10) or PropertyValue (base 3) by its datatype."""
    if datatype in SIGNED32:
        return _signed(raw[base], SIGNED32[datatype])  # type: ignore[arg-type]
    if datatype in (UINT8, UINT16, UINT32):
        return raw[base]
    if datatype == INT64:
        return _signed(raw[base + 1], 64)  # type: ignore[arg-type]
    if datatype == UINT64:
        return raw[base + 1]
    if datatype == FLOAT:
        return struct.unpack("<f", raw[base + 2])[0]  # type: ignore[arg-type]
    if datatype == DOUBLE:
        return struct.unpack("<d", raw[base + 3])[0]  # type: ignore[arg-type]
    if datatype == BOOLEAN:
        return bool(raw[base + 4])
    if datatype == STRING:
        return raw[base + 5].decode()  # type: ignore[union-attr]
    raise ValueError(f"datatype {datatype}")


@dataclass
class Metric:
    name: str | None
    datatype: int
    value: object
    timestamp: int | None = None
    is_null: bool = False
    properties: dict[str, object] = field(default_factory=dict)


@dataclass
class Payload:
    timestamp: int | None
    seq: int | None
    metrics: list[Metric]

    def metric(self, name: str) -> Metric:
        return next(m for m in self.metrics if m.name == name)

    @property
    def values(self) -> dict[str | None, object]:
        return {m.name: None if m.is_null else m.value for m in self.metrics}


def _properties(buf: bytes) -> dict[str, object]:
    keys, values = [], []
    for number, _, value in fields(buf):
        if number == 1:
            keys.append(value.decode())  # type: ignore[union-attr]
        elif number == 2:
            raw = {n: v for n, _, v in fields(value)}  # type: ignore[arg-type]
            values.append(None if raw.get(2) else _typed(raw[1], raw, 3))  # type: ignore[arg-type]
    if len(keys) != len(values):
        raise ValueError("property keys and values differ in number")
    return dict(zip(keys, values, strict=True))


def _metric(buf: bytes) -> Metric:
    raw: dict[int, object] = {}
    for number, _, value in fields(buf):
        raw[number] = value
    datatype = raw.get(4)
    if not isinstance(datatype, int):
        raise ValueError("metric without a datatype")
    is_null = bool(raw.get(7))
    value = None if is_null else _typed(datatype, raw, 10)
    name = raw[1].decode() if 1 in raw else None  # type: ignore[union-attr]
    props = _properties(raw[9]) if 9 in raw else {}  # type: ignore[arg-type]
    return Metric(name, datatype, value, raw.get(3), is_null, props)  # type: ignore[arg-type]


def decode(buf: bytes) -> Payload:
    timestamp = seq = None
    metrics = []
    for number, _, value in fields(buf):
        if number == 1:
            timestamp = value
        elif number == 2:
            metrics.append(_metric(value))  # type: ignore[arg-type]
        elif number == 3:
            seq = value
    return Payload(timestamp, seq, metrics)  # type: ignore[arg-type]


# -- writing (an NCMD, as a host application sends it) --------------------------------------


def _put_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _put_varint(number << 3 | wire)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _put_varint(len(data)) + data


def encode_ncmd(timestamp_ms: int, metrics: dict[str, bool]) -> bytes:
    """A Payload with Boolean metrics, e.g. ``{"Node Control/Rebirth": True}``."""
    body = _key(1, 0) + _put_varint(timestamp_ms)
    for name, value in metrics.items():
        metric = (
            _bytes_field(1, name.encode())
            + _key(3, 0) + _put_varint(timestamp_ms)
            + _key(4, 0) + _put_varint(BOOLEAN)
            + _key(14, 0) + _put_varint(int(value))
        )  # fmt: skip
        body += _bytes_field(2, metric)
    return body
