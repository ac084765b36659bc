"""TLS at the daemon level: plain ``mqtt://`` to a host that is not loopback is refused at
config time and at ``--mqtt`` time (one line, exit 2, before anything is created or any
connection is tried: the host is ``broker.invalid``, which never resolves); against a broker
that requires a client certificate the daemon connects with the right CA and certificate, and
with a wrong CA it refuses the broker, says so in its log and ``status``, and keeps every event
in the outbox."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from edge_agent.outbox import Outbox, OutboxSettings
from tests.helpers.mosquitto import Certs, Consumer, Mosquitto, make_certs
from tests.integration.test_secrets import ENTRY, _env, _read_status

pytestmark = pytest.mark.slow

WAIT_S = 90.0


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("pki"))


def _config(tmp_path: Path, uplink: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "version: 1\ngateway: {site: riverside, id: gw-01}\nbuses: []\ndevices: []\n"
        f"storage: {{state_dir: {tmp_path / 'state'}}}\n"
        "logging: {level: info, format: json}\n"
        f"uplink:\n{uplink}"
    )
    return path


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ENTRY, *argv], capture_output=True, text=True, env=_env({}), timeout=60)


PLAINTEXT = "(not loopback): use mqtts://"


@pytest.mark.parametrize(
    ("uplink", "mqtt", "needle"),
    [
        ("  url: mqtt://broker.invalid:1883\n", None, "plaintext mqtt:// to broker.invalid"),
        ("  url: mqtt://broker.invalid\n", None, "plaintext mqtt:// to broker.invalid"),
        ("  url: null\n", "mqtt://broker.invalid:1883", PLAINTEXT),
        ("  url: mqtts://127.0.0.1:8883\n", "mqtt://10.0.0.1", PLAINTEXT),
        ("  url: null\n", "mqtt://[2001:db8::1]:1883", PLAINTEXT),
    ],
)
def test_plaintext_off_loopback_is_refused_before_anything(tmp_path, uplink, mqtt, needle):
    config = _config(tmp_path, uplink)
    argv = ["run", "--config", str(config)] + (["--mqtt", mqtt] if mqtt else [])
    for args in (argv, ["check-config", str(config)]):
        proc = _run(args)
        if args[0] == "check-config" and mqtt:
            assert proc.returncode == 0  # the file itself is fine; the override is not
            continue
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and needle in lines[0], lines
        assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "state").exists(), "refused after the state directory was made"


def test_plaintext_to_loopback_is_allowed(tmp_path):
    config = _config(tmp_path, "  url: mqtt://localhost:1\n")
    proc = _run(["check-config", str(config)])
    assert proc.returncode == 0, proc.stderr


def _wait_status(state: Path, proc: subprocess.Popen, predicate, log: Path) -> dict:
    deadline = time.monotonic() + WAIT_S
    while True:
        doc = _read_status(state)
        if doc is not None and predicate(doc):
            return doc
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"status never got there: {doc}"
        time.sleep(0.2)


@pytest.mark.parametrize("ca", ["right", "wrong"])
def test_client_certificate_and_wrong_ca(tmp_path, certs, ca):
    ca_file = certs.ca if ca == "right" else certs.wrong_ca
    with Mosquitto(tmp_path / "broker", tls=certs) as broker:
        config = _config(
            tmp_path,
            f"  url: {broker.url}\n"
            f"  tls: {{ca_file: {ca_file}, cert_file: {certs.client_cert},"
            f" key_file: {certs.client_key}}}\n",
        )
        state = tmp_path / "state"
        log_path = tmp_path / "daemon.log"
        consumer = Consumer(broker, "lifeline/v1/riverside/gw-01/#").start()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [*ENTRY, "run", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_env({}),
            )
            try:
                if ca == "right":
                    _wait_status(
                        state, proc, lambda d: d["uplink"]["state"] == "connected", log_path
                    )
                    consumer.wait_for(
                        lambda ms: any(m.topic.endswith("/event/gw-01") for m in ms), 30
                    )
                else:
                    doc = _wait_status(
                        state, proc, lambda d: d["uplink"]["last_error"] is not None, log_path
                    )
                    time.sleep(1.0)
                    doc = _read_status(state) or doc
                    assert doc["uplink"]["state"] != "connected"
                    assert "certificate" in doc["uplink"]["last_error"], doc["uplink"]
                    assert doc["uplink"]["published"] == 0
                    assert doc["outbox"]["depth"] >= 1  # gateway.started, kept
            finally:
                proc.terminate()
                rc = proc.wait(30)
                consumer.stop()
        assert rc == 0, log_path.read_text()
        seen = consumer.snapshot()
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    if ca == "right":
        assert any(m.topic.endswith("/state") for m in seen)
        return
    assert not seen, "a message got through a broker we refused"
    refusals = [e for e in lines if "certificate" in json.dumps(e) and e["level"] != "info"]
    assert refusals, lines
    with Outbox(OutboxSettings(state_dir=state), "gw-01") as box:
        assert box.depth() >= 1  # nothing was lost or marked sent
