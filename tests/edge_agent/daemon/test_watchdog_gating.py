"""WATCHDOG=1 is sent only while every watched loop makes progress (in-process daemon on a
gateway with no buses, a real notify socket, and a loop that stops beating)."""

from __future__ import annotations

import asyncio
import socket

from edge_agent.daemon.app import Daemon, DaemonOptions
from edge_agent.daemon.systemd import Notifier

BOUND_S = 20.0


class Received:
    """Datagrams from the daemon, read without blocking the loop."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.all: list[str] = []

    def drain(self) -> None:
        while True:
            try:
                self.all.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return

    async def until(self, predicate, what: str) -> list[str]:
        """Collect until ``predicate(new messages)``; bounded; returns the new messages."""
        new: list[str] = []
        deadline = asyncio.get_running_loop().time() + BOUND_S
        while not predicate(new):
            try:
                msg = self.sock.recv(4096).decode()
            except BlockingIOError:
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"{what}: not seen; got {new[-5:]}") from None
                await asyncio.sleep(0.02)
                continue
            new.append(msg)
            self.all.append(msg)
        return new


def test_watchdog_stops_when_a_loop_stalls_and_resumes_when_it_moves(tmp_path, monkeypatch):
    config = tmp_path / "gateway.yaml"
    config.write_text("version: 1\ngateway: {site: s, id: g}\nbuses: []\n")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.setblocking(False)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # ping every 0.1 s while healthy
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    daemon = Daemon(
        DaemonOptions(
            config_path=config,
            state_dir=tmp_path / "state",
            status_interval_s=0.05,
            notifier=Notifier(str(tmp_path / "notify.sock")),
        )
    )
    rx = Received(sock)

    async def scenario() -> list[str]:
        task = asyncio.create_task(daemon.run())
        await rx.until(lambda m: any("READY=1" in x for x in m), "READY")
        await rx.until(lambda m: m.count("WATCHDOG=1") >= 2, "watchdog while healthy")
        daemon.progress.register("bus:stuck", 0.2)  # a loop that never beats again
        while not daemon.progress.stalled():
            await asyncio.sleep(0.05)
        rx.drain()  # sent before the stall: every tick from now on sees it (no await between)
        stalled = await rx.until(
            lambda m: sum(x.startswith("STATUS=") for x in m) >= 10, "ticks while stalled"
        )
        daemon.progress.beat("bus:stuck")
        await rx.until(lambda m: "WATCHDOG=1" in m, "watchdog after recovery")
        daemon.request_stop()
        assert await asyncio.wait_for(task, BOUND_S) == 0
        return stalled

    stalled = asyncio.run(scenario())
    rx.drain()
    sock.close()
    assert "WATCHDOG=1" not in stalled
    assert any("STOPPING=1" in m for m in rx.all)
    assert '"gateway":"g"' in (tmp_path / "state" / "status.json").read_text()
