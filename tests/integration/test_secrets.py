"""The MQTT password never shows: not in the daemon's logs (JSON or console, right password or
refused), not in ``status`` / ``status --json``, not in ``check-config`` or ``probe`` output,
not in any file of the state directory. A password pasted into a broker URL is refused with
exit 2 without echoing it (or any part of it), before anything is created or connected.

The daemon runs as a real process (``edge-agent run``) against a real mosquitto that requires
the password; each secret is random per test, so a match can only be a leak.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.errors import UsageError
from edge_agent.uplink.settings import parse_broker_url
from tests.helpers.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ENTRY = [sys.executable, "-m", "edge_agent"]
ENV_VAR = "EDGE_AGENT_MQTT_PASSWORD"
WAIT_S = 90.0


def _secret(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(10)}"


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
    env["PYTHONPATH"] = str(ROOT)
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", ENV_VAR):
        env.pop(key, None)
    env.update(extra)
    return env


def gateway_yaml(state: Path, *, url: str, password: str, fmt: str, bus_port: int) -> str:
    """A gateway with one level gauge on a TCP bus nobody serves (so device errors are logged
    and shown by status) and an uplink that authenticates with ``password`` (a YAML line)."""
    return f"""\
version: 1
gateway: {{site: riverside, id: gw-01}}
buses:
  - {{name: pumpstation, type: tcp, host: 127.0.0.1, port: {bus_port}, timeout_s: 0.2, retries: 0,
     offline_after: 1}}
devices:
  - {{name: lv-01, bus: pumpstation, unit_id: 2, profile: level-radar-lr10, poll_interval_s: 1}}
uplink:
  url: {url}
  username: gw-01
  {password}
  keepalive_s: 5
storage: {{state_dir: {state}}}
logging: {{level: debug, format: {fmt}}}
"""


def _in_process(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue() + err.getvalue()


def _read_status(state: Path) -> dict | None:
    try:
        return json.loads((state / "status.json").read_text())
    except (OSError, ValueError):
        return None


def _every_file(state: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(state.rglob("*")) if p.is_file())


@pytest.mark.parametrize(
    ("source", "fmt", "right"),
    [
        ("env", "json", True),
        ("file", "console", True),
        ("env", "console", False),
        ("file", "json", False),
    ],
)
def test_the_password_appears_nowhere(tmp_path, monkeypatch, source, fmt, right):
    password = _secret("Pw")
    wrong = _secret("Wrong")
    used = password if right else wrong
    with Mosquitto(tmp_path / "broker", users={"gw-01": password}) as broker:
        state = tmp_path / "state"
        extra: dict[str, str] = {}
        if source == "env":
            line = f"password_env: {ENV_VAR}"
            extra[ENV_VAR] = used
        else:
            secret_file = tmp_path / "mqtt.secret"
            secret_file.write_text(used + "\n")
            secret_file.chmod(0o600)
            line = f"password_file: {secret_file}"
        config = tmp_path / "gateway.yaml"
        config.write_text(
            gateway_yaml(state, url=broker.url, password=line, fmt=fmt, bus_port=free_port())
        )
        log_path = tmp_path / "daemon.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [*ENTRY, "run", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_env(extra),
            )
            try:
                deadline = time.monotonic() + WAIT_S
                while True:
                    doc = _read_status(state)
                    uplink = (doc or {}).get("uplink", {})
                    devices = (doc or {}).get("devices", [])
                    seen_error = any(d.get("online") is False for d in devices)
                    if seen_error and (
                        uplink.get("state") == "connected" if right else uplink.get("last_error")
                    ):
                        break
                    assert proc.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, f"status never got there: {doc}"
                    time.sleep(0.2)
                if not right:
                    assert "refused" in uplink["last_error"] or "authori" in uplink["last_error"]

                # What an operator runs next to the daemon, in the same environment.
                monkeypatch.setenv(ENV_VAR, used)
                outputs = []
                for argv in (
                    ["status", "--state-dir", str(state)],
                    ["status", "--state-dir", str(state), "--json"],
                    ["status", "--config", str(config)],
                    ["check-config", str(config)],
                    ["check-config", "--secrets", str(config)],
                    ["check-config", "--secrets", "--json", str(config)],
                    ["probe", "--config", str(config), "lv-01"],
                    ["probe", "--config", str(config), "lv-01", "--json"],
                ):
                    rc, text = _in_process(argv)
                    assert rc in (0, 1), (argv, rc, text)
                    outputs.append(text)
                proc.send_signal(signal.SIGHUP)  # a reload re-reads the password: logged?
                time.sleep(1.0)
            finally:
                proc.terminate()
                rc = proc.wait(30)
        assert rc == 0, log_path.read_text()

    logs = log_path.read_text()
    assert "lv-01" in logs and ("uplink" in logs or "mqtt" in logs)  # it did log things
    if fmt == "json":
        assert all(json.loads(line) for line in logs.splitlines())
    for secret in (password, wrong):
        assert secret not in logs
        for text in outputs:
            assert secret not in text
        assert secret.encode() not in _every_file(state)
        assert secret.encode() not in (tmp_path / "gateway.yaml").read_bytes()


def _config_with(tmp_path: Path, uplink_body: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "version: 1\ngateway: {site: riverside, id: gw-01}\nbuses: []\ndevices: []\n"
        f"storage: {{state_dir: {tmp_path / 'state'}}}\n"
        f"uplink:\n{uplink_body}"
    )
    return path


def test_problems_next_to_the_secret_do_not_show_it(tmp_path, monkeypatch):
    """check-config on configs that are wrong right beside the password source."""
    password = _secret("Pw")
    monkeypatch.setenv(ENV_VAR, password)
    (tmp_path / "mqtt.secret").write_text(password)
    (tmp_path / "binary.secret").write_bytes(password.encode() + b"\xff\xfe")
    cases = [
        f"  password_env: {ENV_VAR}\n  password_file: {tmp_path / 'mqtt.secret'}\n",
        f"  password_env: {ENV_VAR}\n  pasword_env: {password}\n",
        f"  password_file: {tmp_path / 'binary.secret'}\n  url: mqtts://127.0.0.1:1\n",
        f"  password_env: {ENV_VAR}\n  username: [{password}\n",
        f"  password_env: {ENV_VAR}\n  url: mqtt://gw-01:{password}@broker.invalid\n",
        f"  password_env: {ENV_VAR}\n  url: mqtts://{password}@broker.invalid:8883\n",
    ]
    for body in cases:
        path = _config_with(tmp_path, body)
        for argv in (
            ["check-config", str(path)],
            ["check-config", "--secrets", str(path)],
            ["check-config", "--json", "--secrets", str(path)],
            ["run", "--config", str(path)],
        ):
            rc, text = _in_process(argv)
            # check-config reads the password only with --secrets, as the daemon would.
            assert rc == 2 or (rc == 0 and "--secrets" not in argv and argv[0] != "run")
            assert password not in text, (body, argv)
            assert "Traceback" not in text
    assert not (tmp_path / "state").exists()  # refused before the outbox was opened


# A password in a URL, with the characters that end urlsplit's host part early.
URL_PASSWORDS = ["plain", "sl/ash", "ha#sh", "qu?ery", "co:lon", "at@at", "per%2Fcent"]


@pytest.mark.parametrize("shape", URL_PASSWORDS)
def test_password_in_mqtt_url_is_refused_without_echo(shape):
    password = _secret("Pw") + shape
    for url in (
        f"mqtts://gw-01:{password}@127.0.0.1:8883",
        f"mqtt://gw-01:{password}@127.0.0.1",
        f"mqtts://{password}@broker.invalid",
        f"mqtt://:{password}@127.0.0.1:1883",
    ):
        with pytest.raises(UsageError) as err:
            parse_broker_url(url)
        message = str(err.value)
        assert "credentials" in message, message
        for part in (password, *password.replace("#", "/").replace("?", "/").split("/")):
            if len(part) >= 4:
                assert part not in message, (url, message)


def test_password_in_mqtt_override_exits_2_before_anything_starts(tmp_path):
    """The real command: one stderr line, exit 2, no state directory, nothing connected."""
    password = _secret("Pw") + "/x#y"
    with Mosquitto(tmp_path / "broker") as broker:
        config = _config_with(tmp_path, "  url: null\n")
        time.sleep(0.5)  # start()'s own readiness probe is logged by now
        before = broker.log_path.read_text().count("New connection")
        proc = subprocess.run(
            [
                *ENTRY,
                "run",
                "--config",
                str(config),
                "--mqtt",
                f"mqtt://gw-01:{password}@{broker.host}:{broker.port}",
            ],
            capture_output=True,
            text=True,
            env=_env({}),
            timeout=60,
        )
        time.sleep(0.5)  # a connection would be logged by now
        after = broker.log_path.read_text().count("New connection")
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "credentials do not belong in the URL" in lines[0], lines
    for part in password.replace("#", "/").split("/"):
        assert part not in proc.stderr
    assert not (tmp_path / "state").exists()
    assert after == before, "the daemon connected to the broker"
