"""Sparkplug B payloads through the official protobuf definition (``sparkplug_b_pb2``, generated
from Eclipse Tahu's ``sparkplug_b.proto``): metrics in, bytes out, and the one thing the edge
node reads, ``Node Control/Rebirth`` in an NCMD.

Importing this module imports protobuf (about 5 MB of RSS): only the Sparkplug edge node does.

Regenerate the module after replacing the .proto (``make sparkplug-proto``)::

    python -m venv /tmp/protogen && /tmp/protogen/bin/pip install grpcio-tools
    cd edge_agent/integrations/sparkplug
    /tmp/protogen/bin/python -m grpc_tools.protoc -I. --python_out=. sparkplug_b.proto

(the generated code needs a protobuf runtime of the same major version, at least the one that
generated it: pyproject.toml pins it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from edge_agent.integrations.sparkplug import sparkplug_b_pb2

pb: Any = sparkplug_b_pb2  # generated: its message classes are made at import time

__all__ = [
    "REBIRTH",
    "DataType",
    "Metric",
    "Property",
    "SparkplugError",
    "encode",
    "requests_rebirth",
]

REBIRTH = "Node Control/Rebirth"


class DataType:
    """The Sparkplug B 3.0 datatype numbers (sparkplug_b.proto ``DataType``) this node uses."""

    Int8, Int16, Int32, Int64 = 1, 2, 3, 4
    UInt8, UInt16, UInt32, UInt64 = 5, 6, 7, 8
    Float, Double, Boolean, String = 9, 10, 11, 12


_INT32 = (DataType.Int8, DataType.Int16, DataType.Int32)
_UINT32 = (DataType.UInt8, DataType.UInt16, DataType.UInt32)


class SparkplugError(ValueError):
    """A payload that is not Sparkplug B (one line)."""


@dataclass(frozen=True, slots=True)
class Property:
    key: str
    datatype: int
    value: object


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric: ``value`` None is sent as ``is_null``; ``timestamp`` in epoch ms."""

    name: str
    datatype: int
    value: object
    timestamp: int | None = None
    properties: tuple[Property, ...] = ()


def _set_value(target: Any, datatype: int, value: Any) -> None:
    """Fill a Metric or PropertyValue's value field for ``datatype`` (Sparkplug B 3.0, 6.4.16:
    signed 8-32 bit values travel as their 32-bit two's complement in ``int_value``)."""
    if datatype in _INT32 or datatype in _UINT32:
        target.int_value = round(value) & 0xFFFFFFFF
    elif datatype in (DataType.Int64, DataType.UInt64):
        target.long_value = round(value) & 0xFFFFFFFFFFFFFFFF
    elif datatype == DataType.Float:
        target.float_value = float(value)
    elif datatype == DataType.Double:
        target.double_value = float(value)
    elif datatype == DataType.Boolean:
        target.boolean_value = bool(value)
    elif datatype == DataType.String:
        target.string_value = str(value)
    else:
        raise SparkplugError(f"datatype {datatype} is not one this node sends")


def _is_null(value: object) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def encode(timestamp: int, seq: int | None, metrics: Iterable[Metric]) -> bytes:
    """A Sparkplug B payload. ``seq`` None: an NDEATH (it carries none)."""
    payload = pb.Payload()
    payload.timestamp = timestamp
    if seq is not None:
        payload.seq = seq
    for metric in metrics:
        m = payload.metrics.add()
        m.name = metric.name
        m.datatype = metric.datatype
        if metric.timestamp is not None:
            m.timestamp = metric.timestamp
        if _is_null(metric.value):
            m.is_null = True
        else:
            _set_value(m, metric.datatype, metric.value)
        if metric.properties:
            for prop in metric.properties:
                m.properties.keys.append(prop.key)
                pv = m.properties.values.add()
                pv.type = prop.datatype
                _set_value(pv, prop.datatype, prop.value)
    return bytes(payload.SerializeToString())


def requests_rebirth(raw: bytes) -> bool:
    """Whether an NCMD payload sets ``Node Control/Rebirth`` to true. Raises SparkplugError
    for bytes that are not a Sparkplug B payload."""
    payload = pb.Payload()
    try:
        payload.ParseFromString(raw)
    except DecodeError as exc:
        raise SparkplugError(f"NCMD is not a Sparkplug B payload: {exc}") from None
    return any(
        m.name == REBIRTH and m.WhichOneof("value") == "boolean_value" and m.boolean_value
        for m in payload.metrics
    )
