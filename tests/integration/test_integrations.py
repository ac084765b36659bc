"""Every integration end to end, as an integrator meets them: the site simulators, the daemon
(a real process, every integration on, as ``demo --mqtt`` configures it) and a real mosquitto
running the shipped ACL example (deploy/mosquitto/acl.example) with a user per role.

- Retained state: a subscriber arriving late gets metadata, availability, alarms and values
  of every device, each valid against its schema.
- Home Assistant: from the retained topics alone (no event seen), every discovered entity's
  templates resolve to a value and every device's availability to ``online``.
- Commands: ``ops`` pings and records and gets answers on ``cmd-result/{id}``; ``viewer``,
  whom the ACL gives no write on ``cmd/``, gets no answer and the gateway never sees it.
- Sparkplug B: NBIRTH/DBIRTH decoded with the independent wire reader; a host's NCMD
  rebirth (bytes written by the test) brings every birth again from seq 0 with the same
  bdSeq; SIGKILL makes the broker send the NDEATH Will with that bdSeq.
- A reload that drops a device clears its retained topics and its Home Assistant entities.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge_agent import payload
from tests.edge_agent.integrations.test_homeassistant import assert_every_entity_resolves
from tests.helpers import sparkplug_wire as wire
from tests.helpers.mosquitto import Consumer, Mosquitto
from tests.integration.sitegw import Daemon, Simulator, wait_until, write_config

pytestmark = pytest.mark.slow

ROOT = "lifeline/v1/riverside/demo-gw"
ACL = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "acl.example"
USERS = {"demo-gw": "gw-pass", "ops": "ops-pass", "viewer": "viewer-pass", "homeassistant": "ha"}
SCHEMA_OF = {"devices": "device", "availability": "availability", "alarms": "alarms",
             "values": "values", "cmd-result": "command-result", "state": "state"}  # fmt: skip


def retained(consumer: Consumer) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for m in consumer.snapshot():
        out[m.topic] = m.payload
    return {t: p for t, p in out.items() if p}


def publish(user: str, topic: str, body: bytes, broker: Mosquitto) -> None:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-pub", protocol=mqtt.MQTTv5
    )
    client.username_pw_set(user, USERS[user])
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(topic, body, qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def command(verb: str, command_id: str, **extra) -> bytes:
    return json.dumps({"id": command_id, "ts": round(time.time() * 1000), **extra}).encode()


def test_every_integration_against_a_real_broker_and_acl(tmp_path):
    sim = Simulator(tmp_path)
    broker = Mosquitto(tmp_path / "broker", users=USERS, acl=ACL.read_text())
    broker.start()
    state = tmp_path / "state"
    secret = tmp_path / "mqtt.secret"
    secret.write_text(USERS["demo-gw"] + "\n")
    secret.chmod(0o600)
    config = write_config(
        tmp_path / "gateway.yaml", sim, state, uplink_url=broker.url, integrations=True
    )
    config.write_text(
        config.read_text().replace(
            "uplink: {url: ", f"uplink: {{username: demo-gw, password_file: {secret}, url: "
        )
    )
    names = {d.name for d in sim.site.devices}
    host = Consumer(broker, ["spBv1.0/#"], username="ops", password=USERS["ops"]).start()
    daemon = Daemon(tmp_path, config, state)
    try:
        # -- retained state and Home Assistant, from the retained topics alone -------------
        ha_user = {"username": "homeassistant", "password": USERS["homeassistant"]}
        topics = [f"{ROOT}/#", "homeassistant/#"]

        def complete():
            with Consumer(broker, topics, **ha_user) as late:
                time.sleep(1.0)  # retained messages come right after the SUBACK
                got = retained(late)
            configs = {t: json.loads(p) for t, p in got.items() if t.startswith("homeassistant/")}
            needed = {c["state_topic"] for c in configs.values()}
            needed |= {a["topic"] for c in configs.values() for a in c.get("availability", [])}
            if len(configs) < 100 or not needed <= set(got):
                return None
            if any(json.loads(got[f"{ROOT}/availability/{n}"])["state"] != "online" for n in names):
                return None
            return got, configs

        got, configs = wait_until(complete, 120, "retained state and discovery for every device")
        for topic, body in got.items():
            kind = topic.removeprefix(ROOT + "/").split("/")[0]
            if topic.startswith(ROOT) and kind in SCHEMA_OF:
                payload.validate(json.loads(body), SCHEMA_OF[kind])
        assert {t.rsplit("/", 1)[1] for t in got if t.startswith(f"{ROOT}/alarms/")} == names
        assert {t.rsplit("/", 1)[1] for t in got if t.startswith(f"{ROOT}/values/")} == names
        assert_every_entity_resolves(configs, got)
        ha_devices = {c["device"]["identifiers"][0] for c in configs.values()}
        assert len(ha_devices) == len(names) + 1  # the field devices and the gateway

        # -- commands: the ACL decides who may --------------------------------------------
        with Consumer(broker, f"{ROOT}/cmd-result/#", username="ops", password=USERS["ops"]) as ops:
            publish("viewer", f"{ROOT}/cmd/ping", command("ping", "viewer-1"), broker)
            publish("ops", f"{ROOT}/cmd/ping", command("ping", "ops-1"), broker)
            publish("ops", f"{ROOT}/cmd/record", command("record", "ops-2", device="nl-01"), broker)
            publish("ops", f"{ROOT}/cmd/reboot", command("reboot", "ops-3"), broker)
            ops.wait_for(lambda ms: len(ms) >= 3, 30)
            time.sleep(2.0)  # time for an answer to viewer-1, if there were one
            answers = {json.loads(m.payload)["id"]: json.loads(m.payload) for m in ops.snapshot()}
        for body in answers.values():
            payload.validate(body, "command-result")
        assert set(answers) == {"ops-1", "ops-2", "ops-3"}
        assert answers["ops-1"]["ok"] and answers["ops-1"]["result"]["devices"] == len(names)
        assert answers["ops-2"]["result"] == {"devices": ["nl-01"]}
        assert answers["ops-3"]["error"] == "unknown_command"
        commands_seen = [e for e in daemon.log_lines() if e.get("event") == "command"]
        assert {json.loads(e["answer"])["id"] for e in commands_seen} == set(answers)

        # -- Sparkplug B: births, a host's rebirth request ---------------------------------
        def births(since: int):
            msgs = host.snapshot()[since:]
            nbirths = [i for i, m in enumerate(msgs) if "/NBIRTH/" in m.topic]
            if not nbirths:
                return None
            after = msgs[nbirths[-1] :]
            born = {m.topic.rsplit("/", 1)[1] for m in after if "/DBIRTH/" in m.topic}
            return (after, born) if born >= names - {"lv-03"} else None

        first, _born = wait_until(lambda: births(0), 60, "NBIRTH and every DBIRTH")
        nbirth = wire.decode(first[0].payload)
        assert first[0].topic == "spBv1.0/riverside/NBIRTH/demo-gw" and nbirth.seq == 0
        bd_seq = nbirth.values["bdSeq"]
        dbirth = wire.decode(
            next(m.payload for m in first if m.topic.endswith("/DBIRTH/demo-gw/lv-01"))
        )
        assert dbirth.metric("level").properties["engUnit"] == "mm"
        seen = len(host.snapshot())
        ncmd = wire.encode_ncmd(round(time.time() * 1000), {"Node Control/Rebirth": True})
        publish("ops", "spBv1.0/riverside/NCMD/demo-gw", ncmd, broker)
        again, _ = wait_until(lambda: births(seen), 30, "births again after the NCMD")
        renewed = wire.decode(again[0].payload)
        assert (renewed.seq, renewed.values["bdSeq"]) == (0, bd_seq)
        for m in host.snapshot():
            wire.decode(m.payload)  # every message of the node is Sparkplug B

        # -- a reload that drops a device clears what it left retained ----------------------
        write_config(
            config, sim, state, uplink_url=broker.url, integrations=True, drop_devices=("mc-01",)
        )
        config.write_text(
            config.read_text().replace(
                "uplink: {url: ", f"uplink: {{username: demo-gw, password_file: {secret}, url: "
            )
        )
        daemon.signal(signal.SIGHUP)

        def mc01_gone():
            with Consumer(broker, topics, **ha_user) as late:
                time.sleep(1.0)
                left = [t for t in retained(late) if "mc-01" in t]
            return not left

        wait_until(mc01_gone, 60, "mc-01's retained topics and entities cleared")
        host_seen = len(host.snapshot())

        # -- SIGKILL: the broker sends the NDEATH Will with this session's bdSeq ----------
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait(10)

        def ndeath():
            return [m for m in host.snapshot()[host_seen:] if m.topic.endswith("/NDEATH/demo-gw")]

        (death,) = wait_until(ndeath, 30, "the NDEATH Will")
        assert wire.decode(death.payload).values == {"bdSeq": bd_seq}
    finally:
        daemon.stop()
        host.stop()
        broker.stop()
        sim.stop()
    assert not [e for e in daemon.log_lines() if e.get("level") == "error"]
