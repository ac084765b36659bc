"""One broker URL rule: ``check-config`` and ``run`` accept and refuse the same URLs, whether
the URL is the config's ``uplink.url`` or ``run --mqtt`` (``mqtt://ip6-localhost:1883`` once
passed check-config and was refused by run: two loopback rules had drifted apart)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from edge_agent.cli import main
from edge_agent.commands import run
from edge_agent.config.broker_url import is_loopback_host
from edge_agent.errors import UsageError
from tests.edge_agent.config.conftest import MINIMAL

# (url, uplink.tls.insecure_plaintext, accepted)
URLS = [
    ("mqtt://127.0.0.1:1883", False, True),
    ("mqtt://127.8.9.10", False, True),
    ("mqtt://[::1]:1883", False, True),
    ("mqtt://localhost", False, True),
    ("mqtt://LOCALHOST:1884", False, True),
    ("mqtt://localhost.localdomain", False, True),
    ("mqtt://ip6-localhost:1883", False, True),
    ("mqtt://ip6-loopback", False, True),
    ("MQTT://localhost", False, True),
    (" mqtts://broker.example ", False, True),
    ("mqtts://broker.example:8883", False, True),
    ("mqtts://[2001:db8::1]:8883", False, True),
    ("mqtt://broker.example:1883", True, True),
    ("mqtt://broker.example:1883", False, False),
    ("mqtt://10.0.0.1", False, False),
    ("mqtt://localhost.example", False, False),
    ("mqtt://128.0.0.1", False, False),
    ("http://localhost", False, False),
    ("localhost:1883", False, False),
    ("mqtts://", False, False),
    ("mqtts://broker.example:0", False, False),
    ("mqtts://broker.example:99999", False, False),
    ("mqtts://broker.example:x", False, False),
    ("mqtts://broker.example/topic", False, False),
    ("mqtts://broker.example?x=1", False, False),
    ("mqtts://gw:secret@broker.example", False, False),
    ("mqtts://gw@broker.example", False, False),
    ("mqtts://[::1", False, False),
]


def _config(tmp_path, url: str | None, insecure: bool) -> str:
    uplink = "uplink: {" + (f"url: {url.strip()!r}, " if url is not None else "")
    uplink += f"tls: {{insecure_plaintext: {str(insecure).lower()}}}}}\n"
    path = tmp_path / "gateway.yaml"
    path.write_text(MINIMAL.read_text() + uplink)
    return str(path)


def _run_refuses(config: str, mqtt: str | None) -> bool:
    try:
        run.check(argparse.Namespace(config=config, mqtt=mqtt))
    except UsageError:
        return True
    return False


@pytest.mark.parametrize(("url", "insecure", "accepted"), URLS)
def test_check_config_and_run_agree(tmp_path, capsys, url, insecure, accepted):
    path = _config(tmp_path, url, insecure)
    assert (main(["check-config", path]) == 0) is accepted, capsys.readouterr().err
    assert _run_refuses(path, mqtt=None) is not accepted
    # the same URL given to run as --mqtt over a config without one
    bare = _config(tmp_path, None, insecure)
    assert _run_refuses(bare, mqtt=url) is not accepted


def test_a_refused_url_is_one_line_and_never_echoes_credentials(tmp_path, capsys):
    path = _config(tmp_path, "mqtts://gw:hunter2@broker.example", False)
    assert main(["check-config", path]) == 2
    err = capsys.readouterr().err
    assert "hunter2" not in err and err.count("\n") == 1 and "uplink.url: credentials" in err
    bare = _config(tmp_path, None, False)
    with pytest.raises(UsageError) as info:  # a '/' in the password ends urlsplit's host early
        run.check(argparse.Namespace(config=bare, mqtt="mqtt://gw:hunter2/x@broker.example"))
    assert "hunter2" not in str(info.value)


def test_the_run_process_refuses_what_check_config_refuses(tmp_path):
    """Through the real entry point: exit 2 and the same reason, before anything starts."""
    path = _config(tmp_path, "mqtt://broker.example:1883", False)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent", "run", "--config", path],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "plaintext mqtt:// to broker.example (not loopback)" in done.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("Ip6-Localhost", True), ("127.0.0.53", True), ("::1", True),
     ("0.0.0.0", False), ("::", False), ("localhost6", False), ("", False)],
)  # fmt: skip
def test_loopback_hosts(host, loopback):
    assert is_loopback_host(host) is loopback
