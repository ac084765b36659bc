"""Helpers for tests that run the real daemon against the site simulators as subprocesses.

``Simulator(tmp)`` runs ``edge-agent simulate --port-base 0 --json`` (free loopback ports,
never 15020-15039) and reads its endpoints; ``write_config`` writes a gateway config polling
them (the demo's generator, so both stay in step); ``Daemon`` runs ``edge-agent run`` with a
notify socket of its own, so tests see READY=1, STATUS= and WATCHDOG=1 as systemd would.
Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from edge_agent.commands.demo import gateway_yaml
from sitemodel import load_site

ROOT = Path(__file__).resolve().parents[2]
SEED_SITE = ROOT / "seeds" / "site.yaml"
ENTRY = [sys.executable, "-m", "edge_agent"]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
    env["PYTHONPATH"] = str(ROOT)
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
        env.pop(key, None)
    env.update(extra or {})
    return env


class Simulator:
    """The seed site's simulators in a subprocess on free ports. ``control=True`` opens its
    live control (``control("offline lv-03")`` answers the simulator's one line)."""

    def __init__(
        self, tmp: Path, *, speed: float = 60.0, site: Path = SEED_SITE, control: bool = False
    ) -> None:
        self.site_path = site
        self.site = load_site(site)
        self.log = open(tmp / "simulate.log", "w")  # noqa: SIM115 - closed in stop()
        args = [
            *ENTRY,
            "simulate",
            "--site",
            str(site),
            "--speed",
            str(speed),
            "--port-base",
            "0",
            "--json",
        ]
        self.proc = subprocess.Popen(
            [*args, "--control"] if control else args,
            stdin=subprocess.PIPE if control else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=_env(),
        )
        line = _readline(self.proc, 60.0)
        doc = json.loads(line)
        self.endpoints = {
            name: SimpleNamespace(host=ep["host"], port=ep["port"])
            for name, ep in doc["endpoints"].items()
        }

    def control(self, command: str) -> str:
        """Send one live-control command; its answer (``ok: ...`` / ``error: ...``)."""
        assert self.proc.stdin is not None, "started without control=True"
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return _readline(self.proc, 30.0).strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box or not box[0]:
        proc.kill()
        raise TimeoutError(f"no line from {proc.args[:4]} within {timeout} s")
    return box[0]


def write_config(
    path: Path,
    sim: Simulator,
    state_dir: Path,
    *,
    uplink_url: str | None = None,
    drop_devices: tuple[str, ...] = (),
    integrations: bool = False,
) -> Path:
    text = gateway_yaml(
        sim.site,
        sim.endpoints,
        state_dir,
        sim.site_path,
        logging_section="{level: info, format: json}",
        uplink_url=uplink_url,
        integrations=integrations,
    )
    if drop_devices:
        text = (
            "\n".join(
                line
                for line in text.splitlines()
                if not any(f"name: {d}," in line for d in drop_devices)
            )
            + "\n"
        )
    path.write_text(text)
    return path


class NotifySocket:
    """A datagram socket standing in for systemd's: a thread keeps reading (as systemd does,
    so the daemon's queue never fills) and collects the sd_notify messages."""

    def __init__(self, tmp: Path) -> None:
        self.path = str(tmp / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def wait_for(self, predicate, timeout: float) -> list[str]:
        """Wait until ``predicate(messages)``; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while not predicate(list(self.messages)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"sd_notify condition not met; got {self.messages[-5:]}")
            time.sleep(0.05)
        return list(self.messages)

    def close(self) -> None:
        self._closed = True
        self._thread.join(2)
        self.sock.close()


class Daemon:
    """``edge-agent run`` in a subprocess, its JSON log lines in ``log_path``."""

    def __init__(
        self,
        tmp: Path,
        config: Path,
        state_dir: Path,
        *,
        mqtt: str | None = None,
        notify: NotifySocket | None = None,
        watchdog_usec: int | None = None,
    ) -> None:
        extra: dict[str, str] = {}
        if notify is not None:
            extra["NOTIFY_SOCKET"] = notify.path
        if watchdog_usec is not None:
            extra["WATCHDOG_USEC"] = str(watchdog_usec)
        args = [*ENTRY, "run", "--config", str(config), "--state-dir", str(state_dir)]
        if mqtt:
            args += ["--mqtt", mqtt]
        self.log_path = tmp / "daemon.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args, stdout=self.log, stderr=subprocess.STDOUT, env=_env(extra)
        )

    def log_lines(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": line, "not_json": True})
        return out

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code (kills after ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll ``predicate`` until truthy (returned); raises TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(interval)
