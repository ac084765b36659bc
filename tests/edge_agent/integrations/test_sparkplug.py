"""Sparkplug B: every message the edge node builds decoded by an independent wire-format
reader (tests/helpers/sparkplug_wire.py, not the protobuf runtime that encoded it): births
with every metric (name, datatype, units as properties), seq 0-255 from the NBIRTH, bdSeq in
NBIRTH and NDEATH, DDATA by exception, DDEATH when a device goes offline, alarms as metrics;
and NCMD rebirth read from bytes the test writes by hand."""

from __future__ import annotations

import itertools

from drivers.model import AvailabilityChange, PollResult
from edge_agent.integrations.sparkplug import sparkplug_b_pb2
from edge_agent.integrations.sparkplug.node import SparkplugNode
from edge_agent.integrations.sparkplug.payloads import DataType, requests_rebirth
from edge_agent.integrations.state import CurrentState
from tests.edge_agent.integrations.fixtures import (
    T0,
    TOPICS,
    catalog_and_engine,
    event,
    telemetry,
)
from tests.helpers import sparkplug_wire as wire

NOW_MS = int(T0 * 1000)


def setup():
    catalog, _ = catalog_and_engine()
    state = CurrentState(TOPICS, catalog)
    node = SparkplugNode(
        "riverside", "gw-01", site="riverside", agent="edge-agent 9", now_ms=lambda: NOW_MS
    )
    return state, node


def online(state, dev, ts=T0):
    state.on_poll(PollResult("sewer", dev, ts))


def test_datatype_numbers_are_the_proto_s():
    for name in (
        "Int16",
        "UInt16",
        "UInt32",
        "Int64",
        "UInt64",
        "Float",
        "Double",
        "Boolean",
        "String",
    ):
        assert getattr(DataType, name) == sparkplug_b_pb2.DataType.Value(name)


def test_births_list_every_metric_with_units_and_seq_from_zero():
    state, node = setup()
    online(state, "lv-01")
    state.on_event(telemetry(1, "lv-01", T0, level=812.0, battery=97, temperature=-4.5))
    messages = node.births(state, bd_seq=7)
    assert [m.topic for m in messages] == [
        "spBv1.0/riverside/NBIRTH/gw-01",
        "spBv1.0/riverside/DBIRTH/gw-01/lv-01",  # only devices known online are born
    ]
    assert all(m.qos == 0 and not m.retain for m in messages)
    nbirth, dbirth = (wire.decode(m.payload) for m in messages)
    assert (nbirth.seq, dbirth.seq) == (0, 1)
    assert nbirth.metric("bdSeq").datatype == wire.INT64 and nbirth.values["bdSeq"] == 7
    rebirth = nbirth.metric("Node Control/Rebirth")
    assert (rebirth.datatype, rebirth.value) == (wire.BOOLEAN, False)
    level = dbirth.metric("level")
    assert (level.datatype, level.value) == (wire.FLOAT, 812.0)
    assert level.properties == {"engUnit": "mm", "engLow": 0.0, "engHigh": 10000.0}
    assert dbirth.metric("temperature").datatype == wire.DOUBLE  # i16 x 0.1
    assert dbirth.values["temperature"] == -4.5
    assert dbirth.metric("battery").datatype == wire.UINT16
    assert dbirth.metric("echo_strength").is_null  # a point not reported yet
    assert dbirth.values["Alarms/level/level/Active"] is False
    assert dbirth.values["Alarms/level/level/Kind"] == ""
    assert dbirth.metric("Alarms/device_fault/Seq").datatype == wire.UINT64
    assert dbirth.timestamp == NOW_MS


def test_ddata_by_exception_alarms_as_metrics_and_ddeath():
    state, node = setup()
    online(state, "lv-01")
    state.on_event(telemetry(1, "lv-01", T0, level=812.0, battery=97))
    node.births(state, bd_seq=0)
    state.on_event(telemetry(2, "lv-01", T0 + 1, level=830.0))
    (ddata,) = node.update(state, ["lv-01"])
    assert ddata.topic == "spBv1.0/riverside/DDATA/gw-01/lv-01"
    assert wire.decode(ddata.payload).values == {"level": 830.0}
    assert node.update(state, ["lv-01"]) == []  # nothing changed: nothing sent
    state.on_event(event(5, "lv-01", "level.high", T0 + 2, point="level"))
    got = wire.decode(node.update(state, ["lv-01"])[0].payload)
    assert got.values == {
        "Alarms/level/level/Active": True,
        "Alarms/level/level/Kind": "level.high",
        "Alarms/level/level/Seq": 5,
    }
    down = AvailabilityChange(False, reason="timeout", failures=3)
    state.on_poll(PollResult("sewer", "lv-01", T0 + 3, error="timeout", change=down))
    (death,) = node.update(state, ["lv-01"])
    assert death.topic == "spBv1.0/riverside/DDEATH/gw-01/lv-01"
    assert wire.decode(death.payload).seq == 4
    state.on_poll(PollResult("sewer", "lv-01", T0 + 9, change=AvailabilityChange(True)))
    (reborn,) = node.update(state, ["lv-01"])
    assert reborn.topic == "spBv1.0/riverside/DBIRTH/gw-01/lv-01"


def test_seq_wraps_at_256_and_an_nbirth_restarts_it():
    state, node = setup()
    online(state, "lv-01")
    node.births(state, 0)
    seqs = []
    for i in range(300):
        state.on_event(telemetry(i + 2, "lv-01", T0 + i, level=float(i)))
        seqs += [wire.decode(m.payload).seq for m in node.update(state, ["lv-01"])]
    assert max(seqs) == 255 and seqs[seqs.index(255) + 1] == 0
    assert all(b == (a + 1) % 256 for a, b in itertools.pairwise(seqs))
    assert wire.decode(node.births(state, 1)[0].payload).seq == 0


def test_ndeath_carries_bdseq_and_no_seq():
    _, node = setup()
    death = wire.decode(node.death(42))
    assert death.seq is None and death.values == {"bdSeq": 42}
    assert death.metric("bdSeq").datatype == wire.INT64


def test_rebirth_request_from_hand_written_bytes():
    assert requests_rebirth(wire.encode_ncmd(NOW_MS, {"Node Control/Rebirth": True}))
    assert not requests_rebirth(wire.encode_ncmd(NOW_MS, {"Node Control/Rebirth": False}))
    assert not requests_rebirth(wire.encode_ncmd(NOW_MS, {"Node Control/Reboot": True}))


def test_a_removed_device_dies_and_a_changed_one_needs_new_births():
    state, node = setup()
    for dev in ("lv-01", "gd-01"):
        online(state, dev)
    node.births(state, 0)
    smaller, _ = catalog_and_engine(
        "version: 1\ngateway: {site: riverside, id: gw-01}\n"
        "buses: [{name: sewer, type: tcp, host: 127.0.0.1, port: 15022}]\n"
        "devices:\n  - {name: lv-01, bus: sewer, unit_id: 1, profile: level-radar-lr10,"
        " overrides: {points: {level: {unit: m, scale: 1}}},"
        " rules: {points: {level: {high: 1000, high_high: 2000}}}}\n"
    )
    state.set_catalog(smaller, lambda _d: frozenset(), T0)
    assert [m.topic for m in node.removed(state)] == ["spBv1.0/riverside/DDEATH/gw-01/gd-01"]
    assert node.redefined(state)  # lv-01's level unit changed: its DBIRTH must say so
