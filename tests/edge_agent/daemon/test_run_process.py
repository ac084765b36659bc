"""``edge-agent run`` as systemd runs it: a real process against the real site simulators,
a notify socket of the test's own, signals, the status file and command."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from tests.helpers.modbus import pty_pair
from tests.helpers.net import free_port
from tests.helpers.ports import refuses_even_parity
from tests.integration.sitegw import (
    ENTRY,
    Daemon,
    NotifySocket,
    Simulator,
    _env,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.slow


def _status(state_dir) -> tuple[int, dict | None]:
    proc = subprocess.run(
        [*ENTRY, "status", "--state-dir", str(state_dir), "--json"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    try:
        return proc.returncode, json.loads(proc.stdout)
    except ValueError:
        return proc.returncode, None


def test_lifecycle_ready_watchdog_status_reload_stop(tmp_path):
    """READY after the first polls, WATCHDOG while healthy, status from the state dir,
    SIGHUP refused for a broken config and applied for a good one, SIGTERM exits 0."""
    sim = Simulator(tmp_path)
    notify = NotifySocket(tmp_path)
    state = tmp_path / "state"
    config = write_config(tmp_path / "gateway.yaml", sim, state)
    daemon = Daemon(tmp_path, config, state, notify=notify, watchdog_usec=2_000_000)
    try:
        msgs = notify.wait_for(lambda m: any("READY=1" in x for x in m), 90)
        ready = next(x for x in msgs if "READY=1" in x)
        assert "STATUS=" in ready and "devices online" in ready
        notify.wait_for(lambda m: "WATCHDOG=1" in m, 60)
        assert any(
            x.startswith("STATUS=") and "outbox" in x and "uplink disabled" in x
            for x in notify.messages
        )

        code, snap = wait_until(lambda: (r := _status(state))[0] == 0 and r, 60, "status")
        assert snap["running"] and snap["ready"] and snap["gateway"] == "demo-gw"
        assert len(snap["devices"]) == len(sim.site.devices)
        assert snap["uplink"]["state"] == "disabled"
        assert snap["outbox"]["depth"] >= 1  # gateway.started at least, no broker to take it

        # SIGUSR1: the loggers record now. A first start records nothing on the day cadence
        # (no start-up burst: a night slot, a minute after the start at the earliest, or a
        # request comes first), so the request is told apart from the schedule by the job's
        # reason, whatever the time of day. The recordings are analysed in a worker process
        # (the daemon loads no numba): a cold cache compiles there, tens of seconds on a
        # loaded 2-core machine, while the daemon polls on.
        loggers = snap["loggers"]
        assert loggers

        def jobs(reason: str) -> list[dict]:
            return [
                x
                for x in daemon.log_lines()
                if x.get("event") == "recording job done" and x.get("reason") == reason
            ]

        daemon.signal(signal.SIGUSR1)
        wait_until(
            lambda: any(x.get("event") == "recordings requested" for x in daemon.log_lines()),
            30,
            "SIGUSR1 heard",
        )
        wait_until(  # (a recording that failed on a busy machine is retried: still on demand)
            lambda: sum(j["recorded"] for j in jobs("demand")) >= len(loggers),
            150,
            "the requested recordings",
        )
        wait_until(  # once analysed (a cold worker compiles first); status.json every tick
            lambda: (r := _status(state)[1]) and all(lg["recordings"] >= 1 for lg in r["loggers"]),
            150,
            "the recordings in status",
        )
        assert not jobs("day"), "a first start does not record on the day cadence"

        # A broken config on SIGHUP: refused, the daemon keeps running on the old one.
        good = config.read_text()
        config.write_text(good.replace("unit_id: 1,", "unit_id: 999,", 1))
        daemon.signal(signal.SIGHUP)
        code, snap = wait_until(
            lambda: (r := _status(state))[1] and r[1]["config_error"] and r, 60, "reload refused"
        )
        assert code == 0 and "999" in snap["config_error"]
        assert len(snap["devices"]) == len(sim.site.devices)

        # A good one: applied (one device fewer), the error cleared.
        write_config(config, sim, state, drop_devices=("mc-03",))
        daemon.signal(signal.SIGHUP)
        code, snap = wait_until(
            lambda: (
                (r := _status(state))[1] and len(r[1]["devices"]) == len(sim.site.devices) - 1 and r
            ),
            60,
            "reload applied",
        )
        assert snap["config_error"] is None
        assert daemon.proc.poll() is None

        assert daemon.stop() == 0
        notify.wait_for(lambda m: any("STOPPING=1" in x for x in m), 5)
        code, snap = _status(state)
        assert code == 1 and snap["running"] is False
        lines = daemon.log_lines()
        assert not [x for x in lines if x.get("not_json")], "every log line is JSON"
        assert any(x.get("event") == "reload refused, keeping the running config" for x in lines)
    finally:
        daemon.stop()
        sim.stop()
        notify.close()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("version: 1\ngateway: {site: s, id: g}\nbuses: []\nbogus: 1\n", "bogus"),
        ("version: [\n", "YAML"),
    ],
)
def test_bad_config_exits_2_with_one_problem_per_line(tmp_path, text, needle):
    config = tmp_path / "gateway.yaml"
    config.write_text(text)
    proc = subprocess.run(
        [*ENTRY, "run", "--config", str(config), "--state-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert proc.returncode == 2
    assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_unwritable_state_dir_exits_1(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    config = tmp_path / "gateway.yaml"
    config.write_text("version: 1\ngateway: {site: s, id: g}\nbuses: []\n")
    proc = subprocess.run(
        [*ENTRY, "run", "--config", str(config), "--state-dir", str(blocker / "state")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "state directory" in proc.stderr and "Traceback" not in proc.stderr


def test_failing_links_back_off_and_status_log_and_status_say_why(tmp_path):
    """A serial bus whose port refuses its parity and a TCP bus nobody listens on: the
    daemon runs (READY once every device was tried), each device goes offline once with the
    link's reason in the log and in ``status``, STATUS= names the cause, the buses retry at
    the backoff rate, and nothing is logged as an ERROR or without its bus."""
    with pty_pair(tmp_path / "ptys") as ptys:
        if not refuses_even_parity(ptys.client_path):
            pytest.skip("this C library does not report the pty's dropped parity (not glibc)")
        tcp_port = free_port()
        config = tmp_path / "gateway.yaml"
        config.write_text(
            "version: 1\n"
            "gateway: {site: test, id: gw-1}\n"
            "buses:\n"
            f"  - {{name: rs485, type: rtu, port: {ptys.client_path}, baudrate: 9600, "
            "parity: E, timeout_s: 0.2, retries: 0, offline_after: 1,"
            " backoff: {initial_s: 2.0, max_s: 2.0}}\n"
            f"  - {{name: plc, type: tcp, host: 127.0.0.1, port: {tcp_port}, timeout_s: 0.2,"
            " retries: 0, offline_after: 1, backoff: {initial_s: 2.0, max_s: 2.0}}\n"
            "devices:\n"
            "  - {name: lv-01, bus: rs485, unit_id: 1, profile: level-radar-lr10,"
            " poll_interval_s: 0.2}\n"
            "  - {name: lv-02, bus: rs485, unit_id: 2, profile: level-radar-lr10,"
            " poll_interval_s: 0.2}\n"
            "  - {name: gd-01, bus: plc, unit_id: 1, profile: gas-detector-mg4,"
            " poll_interval_s: 0.2}\n"
            "logging: {level: info, format: json}\n"
        )
        state = tmp_path / "state"
        notify = NotifySocket(tmp_path)
        daemon = Daemon(tmp_path, config, state, notify=notify)
        try:
            msgs = notify.wait_for(lambda m: any("READY=1" in x for x in m), 60)
            status_line = next(x for x in msgs if "READY=1" in x)
            assert (
                f"STATUS=0/3 devices online (bus rs485: cannot open rtu {ptys.client_path}: "
                "the port refuses 9600 8E1"
            ) in status_line
            assert "; 1 more), outbox" in status_line

            code, first = wait_until(lambda: (r := _status(state))[0] == 0 and r, 60, "status")
            time.sleep(5.0)
            code, later = _status(state)
            assert daemon.proc.poll() is None and code == 0
        finally:
            daemon.stop()
            notify.close()
    errors = {d["name"]: d["last_error"] for d in later["devices"]}
    assert "the port refuses 9600 8E1" in errors["lv-01"] == errors["lv-02"]
    assert errors["gd-01"].startswith(f"cannot open tcp 127.0.0.1:{tcp_port}: connection refused")
    for before, after in zip(first["devices"], later["devices"], strict=True):
        # 5 s at a 2 s backoff: at most 4 more attempts (25 at the 0.2 s poll interval).
        assert after["polls_failed"] - before["polls_failed"] <= 4, (before, after)
    lines = daemon.log_lines()
    offline = {x["device"]: x["reason"] for x in lines if x.get("event") == "device offline"}
    assert offline == errors  # once each, with the reason status shows
    assert [x for x in lines if x.get("level") in ("error", "critical")] == []
    assert all(x.get("bus") for x in lines if str(x.get("logger", "")).startswith("pymodbus"))


class _ServedInThread:
    """A simulated RTU unit on the server end of a pty pair, on its own loop in a thread,
    while the test waits on the daemon subprocess."""

    def __init__(self, serial_port: str, unit: int, store) -> None:
        import asyncio
        import threading

        from drivers.sim.server import SimServer
        from tests.helpers.modbus import RTU_TEST_BAUD

        self._stop = threading.Event()
        started = threading.Event()

        async def serve() -> None:
            server = SimServer("rtu", serial_port=serial_port, baudrate=RTU_TEST_BAUD)
            server.add_unit(unit, store)
            await server.start()
            started.set()
            try:
                while not self._stop.is_set():
                    await asyncio.sleep(0.05)
            finally:
                await server.stop()

        self._thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
        self._thread.start()
        assert started.wait(10), "the Modbus server did not start"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def test_a_serial_port_that_vanishes_while_running_backs_off_and_comes_back(tmp_path):
    """A USB-RS485 adapter pulled out under a running daemon: its device goes offline once
    with the port's reason in the log, in ``status`` and in STATUS=, the bus retries at its
    backoff rate, and plugged back in the device recovers by itself."""
    from tests.edge_agent.rules.helpers import PROFILES
    from tests.helpers.modbus import RTU_TEST_BAUD, profile_store

    store = profile_store(PROFILES.get("level-radar-lr10"), {"level": 500.0})
    with pty_pair(tmp_path / "ptys") as ptys:
        server = _ServedInThread(ptys.server_path, 1, store)
        config = tmp_path / "gateway.yaml"
        config.write_text(
            "version: 1\ngateway: {site: test, id: gw-1}\nbuses:\n"
            f"  - {{name: rs485, type: rtu, port: {ptys.client_path}, baudrate: {RTU_TEST_BAUD},"
            " timeout_s: 0.2, retries: 0, offline_after: 2, backoff: {initial_s: 2.0,"
            " max_s: 2.0}}\n"
            "devices:\n"
            "  - {name: lv-01, bus: rs485, unit_id: 1, profile: level-radar-lr10,"
            " poll_interval_s: 0.2}\n"
            "logging: {level: info, format: json}\n"
        )
        state = tmp_path / "state"
        notify = NotifySocket(tmp_path)
        daemon = Daemon(tmp_path, config, state, notify=notify)
        gone = f"cannot open rtu {ptys.client_path}: no such port"
        try:
            msgs = notify.wait_for(lambda m: any("READY=1" in x for x in m), 60)
            assert "STATUS=1/1 devices online" in next(x for x in msgs if "READY=1" in x)
            server.stop()
            ptys.vanish()
            why = f"STATUS=0/1 devices online (lv-01: {gone}"
            notify.wait_for(lambda m: any(why in x for x in m), 30)

            def status_names_it():
                snap = _status(state)[1]
                return snap and gone in (snap["devices"][0]["last_error"] or "") and snap

            first = wait_until(status_names_it, 30, "status naming the vanished port")
            time.sleep(5.0)
            _, later = _status(state)
            # 5 s at a 2 s backoff: at most 4 more attempts (25 at the 0.2 s poll interval).
            failed = later["devices"][0]["polls_failed"] - first["devices"][0]["polls_failed"]
            assert 1 <= failed <= 4, failed
            ptys.restore()
            server = _ServedInThread(ptys.server_path, 1, store)
            wait_until(lambda: _status(state)[1]["devices"][0]["online"], 30, "back online")
        finally:
            daemon.stop()
            server.stop()
            notify.close()
    lines = daemon.log_lines()
    offline = [x for x in lines if x.get("event") == "device offline"]
    assert len(offline) == 1 and gone in offline[0]["reason"]
    assert [x["device"] for x in lines if x.get("event") == "device recovered"] == ["lv-01"]
    assert [x for x in lines if x.get("level") in ("error", "critical")] == []
