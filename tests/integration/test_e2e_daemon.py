"""End to end: the site simulators, the daemon (a real process) and a real mosquitto.

The expected events arrive on the contract's topics with valid payloads: the retained birth
and device metadata, gateway.started, a device dropping off the bus and coming back, a gas
alarm raised and cleared; SIGTERM gives exit 0 and a retained ``offline`` state that a
consumer connecting afterwards still sees; the daemon's log has no ERROR line. Scenarios run
at 60 x (docs/simulator.md).
"""

from __future__ import annotations

import json

import pytest

from edge_agent import payload
from tests.helpers.mosquitto import Consumer, Mosquitto
from tests.integration.sitegw import Daemon, Simulator, write_config

pytestmark = pytest.mark.slow

ROOT = "lifeline/v1/riverside/demo-gw"


def _events(messages) -> list[dict]:
    return [json.loads(m.payload) for m in messages if m.topic.startswith(f"{ROOT}/event/")]


def _has(kind: str, dev: str):
    return lambda msgs: any(e["kind"] == kind and e["dev"] == dev for e in _events(msgs))


def test_events_reach_the_broker_and_sigterm_leaves_offline(tmp_path):
    sim = Simulator(tmp_path)
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    state = tmp_path / "state"
    config = write_config(tmp_path / "gateway.yaml", sim, state)
    consumer = Consumer(broker, f"{ROOT}/#").start()
    daemon = Daemon(tmp_path, config, state, mqtt=broker.url)
    try:
        consumer.wait_for(_has("gateway.started", "demo-gw"), 60)
        # mc-02 drops out at sim 300 s (5 s) for 360 s; gd-01's gas episode at 900 s, 720 s.
        consumer.wait_for(_has("device.offline", "mc-02"), 40)
        consumer.wait_for(_has("device.online", "mc-02"), 40)
        consumer.wait_for(_has("gas.alarm1", "gd-01"), 40)
        msgs = consumer.wait_for(_has("gas.normal", "gd-01"), 40)

        states = [m for m in msgs if m.topic == f"{ROOT}/state"]
        assert states and json.loads(states[0].payload)["state"] == "online"
        meta = {
            m.topic.rsplit("/", 1)[1]: json.loads(m.payload)
            for m in msgs
            if m.topic.startswith(f"{ROOT}/devices/")
        }
        assert set(meta) == {d.name for d in sim.site.devices}
        assert meta["nl-02"]["pipe_segment"] == "P-02"
        assert meta["nl-02"]["asset_id"] == "CIM-WS-NL-0002"
        # The kind comes from the config's site_file (docs/mqtt.md: devices/{device}).
        assert {m["kind"] for m in meta.values()} == {d.kind for d in sim.site.devices}

        events = _events(msgs)
        for event in events:
            payload.validate(event)  # the contract's JSON Schema
        for m in msgs:
            if m.topic.startswith(f"{ROOT}/event/"):
                assert m.topic == f"{ROOT}/event/{json.loads(m.payload)['dev']}" and m.qos == 1
        seqs = sorted({e["seq"] for e in events})
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "gap-free seq"
        offline = next(e for e in events if e["kind"] == "device.offline" and e["dev"] == "mc-02")
        assert offline["sev"] >= 2 and offline["id"] == f"demo-gw:{offline['seq']}"
        gas = next(e for e in events if e["kind"] == "gas.alarm1")
        assert gas["data"]["value"] >= 25
        assert any(m.topic.startswith(f"{ROOT}/telemetry/") for m in msgs)

        assert daemon.stop() == 0
        consumer.wait_for(
            lambda ms: any(
                m.topic == f"{ROOT}/state" and json.loads(m.payload)["state"] == "offline"
                for m in ms
            ),
            10,
        )
    finally:
        daemon.stop()
        consumer.stop()
        sim.stop()
    # mc-02's drop-out included, a normal run logs no ERROR, and what pymodbus itself logs
    # names its bus (drivers/transports/_pymodbus_logs.py).
    lines = daemon.log_lines()
    assert [x for x in lines if x.get("level") in ("error", "critical")] == []
    assert all(x.get("bus") for x in lines if str(x.get("logger", "")).startswith("pymodbus"))
    # A consumer arriving later still learns the gateway is offline (retained).
    with Consumer(broker, f"{ROOT}/state") as late:
        (first,) = late.wait_for(lambda ms: len(ms) >= 1, 10)[:1]
        assert first.retain and json.loads(first.payload)["state"] == "offline"
    broker.stop()
