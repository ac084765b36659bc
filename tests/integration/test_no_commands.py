"""By default the gateway subscribes to nothing (docs/mqtt.md: commands, Home Assistant and
Sparkplug B are opt-in), so nothing an outsider publishes (oversized, malformed, unknown
commands under ``cmd/``) reaches it.

Checked twice: in the source (``subscribe`` / message callbacks only in the two MQTT sessions,
which subscribe to what the integrations ask for, and that is nothing by default) and on a
real broker that logs every SUBSCRIBE: a consumer's subscription shows up (the control), the
running daemon's client id never does, and commands published at it change nothing. The
opt-in commands are tested in tests/integration/test_integrations.py."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.helpers.mosquitto import Consumer, Mosquitto
from tests.integration.test_secrets import ENTRY, _env, _read_status

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BASE = "lifeline/v1/riverside/gw-01"
SUBSCRIBING = re.compile(r"\.subscribe\(|on_message\b|message_callback_add")


# The uplink subscribes to its integrations' filters, the Sparkplug session to its NCMD; the
# hub and the commands handle what the uplink hands them.
SESSIONS = {
    "edge_agent/uplink/client.py",
    "edge_agent/integrations/sparkplug/session.py",
    "edge_agent/integrations/hub.py",
    "edge_agent/integrations/commands.py",
}


def test_only_the_mqtt_sessions_subscribe():
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in ("edge_agent", "drivers", "sitemodel", "yamlread", "dsp")
        for path in sorted((ROOT / package).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in SESSIONS
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if SUBSCRIBING.search(line)
    ]
    assert offenders == []


def test_integrations_off_ask_for_no_subscription():
    from edge_agent.integrations.catalog import Catalog
    from edge_agent.integrations.hub import Integrations, IntegrationSettings
    from edge_agent.uplink.topics import Topics

    hub = Integrations(
        IntegrationSettings(),
        Topics("lifeline/v1", "riverside", "gw-01"),
        Catalog("riverside", "gw-01", "edge-agent"),
        now=time.time,
        wall=time.time,
        target=object(),  # type: ignore[arg-type]
    )
    assert hub.subscriptions() == []


def test_running_daemon_subscribes_to_nothing_and_ignores_commands(tmp_path):
    broker = Mosquitto(tmp_path / "broker")
    broker.conf_path.write_text(broker.conf_path.read_text() + "log_type subscribe\n")
    config = tmp_path / "gateway.yaml"
    state = tmp_path / "state"
    config.write_text(
        "version: 1\ngateway: {site: riverside, id: gw-01}\nbuses: []\ndevices: []\n"
        f"storage: {{state_dir: {state}}}\nlogging: {{level: debug, format: json}}\n"
        f"uplink: {{url: '{broker.url}'}}\n"
    )
    log_path = tmp_path / "daemon.log"
    with broker, open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*ENTRY, "run", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env({}),
        )
        try:
            deadline = time.monotonic() + 90
            while (_read_status(state) or {}).get("uplink", {}).get("state") != "connected":
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "never connected"
                time.sleep(0.2)
            before = _read_status(state)
            with Consumer(broker, f"{BASE}/#", client_id="control-consumer"):
                pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="outsider")
                pub.connect(broker.host, broker.port)
                pub.loop_start()
                for topic, payload in [
                    (f"{BASE}/cmd/restart", b"{}"),
                    (f"{BASE}/cmd/shell", b'{"cmd": "rm -rf /"}'),
                    (f"{BASE}/cmd/unknown", b"\xff\x00not json"),
                    (f"{BASE}/cmd/big", b"x" * 1_000_000),
                    (f"{BASE}/state", b'{"v":1,"state":"offline"}'),
                ]:
                    pub.publish(topic, payload, qos=1).wait_for_publish(10)
                pub.disconnect()
                pub.loop_stop()
                time.sleep(1.0)
            assert proc.poll() is None
            after = _read_status(state)
        finally:
            proc.terminate()
            rc = proc.wait(30)
    assert rc == 0, log_path.read_text()
    broker_log = broker.log_path.read_text()
    assert "control-consumer 1 lifeline/v1/riverside/gw-01/#" in broker_log  # the control
    subscribe_lines = [line for line in broker_log.splitlines() if "riverside-gw-01" in line]
    assert not [line for line in subscribe_lines if " lifeline" in line or " #" in line]
    assert "cmd" not in log_path.read_text()
    assert after["pid"] == before["pid"]
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [e["kind"] for e in lines if e["event"] == "event"] == ["gateway.started"]
