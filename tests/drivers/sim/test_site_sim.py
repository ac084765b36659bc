"""The reference site served for real: a plain pymodbus client over loopback TCP, RTU over
TCP and a socat serial pty; a broadcast recording transferred block by block; the
``edge-agent simulate`` command end to end."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType

from drivers.codec import decode_registers
from drivers.sim.clock import ManualClock
from drivers.sim.noise_logger import STATUS_READY, STATUS_RECORDING, leak_path, path_delay_s
from drivers.sim.scenarios import read_scenarios
from drivers.sim.site_sim import SiteSimulator
from tests.drivers.sim.site_support import PROFILES, REPO, SEED_SITE, gcc_phat_lag, seed_site
from tests.helpers import modbus as _quiet_pymodbus  # noqa: F401  (silences pymodbus timeouts)

TIMEOUT_S = 0.5
WAIT_STEPS = 200  # bounded polling: 200 x 0.05 s at most


def _client(endpoint, framer=FramerType.SOCKET) -> AsyncModbusTcpClient:
    return AsyncModbusTcpClient(
        endpoint.host, port=endpoint.port, framer=framer, timeout=TIMEOUT_S, retries=0
    )


async def _read(client, point, unit):
    fn = {
        "holding": client.read_holding_registers,
        "input": client.read_input_registers,
        "coil": client.read_coils,
        "discrete": client.read_discrete_inputs,
    }[point.function]
    rr = await fn(point.address, count=point.register_count, device_id=unit)
    assert not rr.isError(), rr
    regs = rr.bits[: point.register_count] if point.is_bits else rr.registers
    return decode_registers(point, regs)


async def _recording(client, unit, rec) -> tuple[np.ndarray, float, int]:
    """Transfer a finished recording block by block: (counts, scale, crc)."""
    rr = await client.read_holding_registers(rec.sample_count, count=6, device_id=unit)
    regs = rr.registers
    count = regs[0] << 16 | regs[1]
    scale = struct.unpack(">f", struct.pack(">HH", regs[2], regs[3]))[0]
    crc = regs[4] << 16 | regs[5]
    blocks = -(-count // rec.block_size)
    samples: list[int] = []
    for index in range(blocks):
        wr = await client.write_register(rec.block_index, index, device_id=unit)
        assert not wr.isError(), wr
        rr = await client.read_holding_registers(rec.block, count=rec.block_size, device_id=unit)
        samples.extend(rr.registers)
    counts = np.array(samples[:count], dtype=np.uint16).view(np.int16)
    return counts, scale, crc


def test_tcp_site_reads_points_broadcast_recording_and_dropouts():
    """Every bus answers on loopback; a broadcast start gives two loggers recordings whose
    CRC verifies and whose GCC-PHAT lag is the leak's path-delay difference; an absent or
    dropped-out unit is silent and comes back."""
    site = seed_site()
    clock = ManualClock()
    leak = read_scenarios(site).leaks[0]

    async def scenario():
        sim = SiteSimulator(site, clock=clock, port_base=0, seed=4, tick_s=0.02)
        await sim.start()
        try:
            assert set(sim.endpoints) == {b.name for b in site.sim_buses}
            sewer = _client(sim.endpoints["sewer"])
            water = _client(sim.endpoints["water"])
            await sewer.connect()
            await water.connect()

            # a level gauge: identification and a plausible level, as the profile decodes it
            lv = site.device("lv-02")
            profile = PROFILES.get(lv.profile)
            for check in profile.identification:
                assert check.matches(await _read(sewer, check.point, lv.unit_id))
            level = await _read(sewer, profile.point("level"), lv.unit_id)
            assert 100 < level < lv.sim.cover_depth_mm

            # a set point outside the profile's range is refused (exception 3) and kept;
            # one inside is taken: the distance to the surface follows the new mount height
            mount = profile.point("mount_height")
            before = await _read(sewer, mount, lv.unit_id)
            wr = await sewer.write_register(mount.address, 50, device_id=lv.unit_id)
            assert wr.isError() and wr.exception_code == 3
            assert await _read(sewer, mount, lv.unit_id) == before
            wr = await sewer.write_register(mount.address, 5000, device_id=lv.unit_id)
            assert not wr.isError()
            clock.advance(1.0)
            await asyncio.sleep(0.1)  # a few ticks
            distance = await _read(sewer, profile.point("distance"), lv.unit_id)
            level = await _read(sewer, profile.point("level"), lv.unit_id)
            assert distance + level == pytest.approx(5000, abs=20)

            # an absent unit is silent (timeout), never an exception reply
            with pytest.raises(ModbusIOException):
                await sewer.read_input_registers(0, count=1, device_id=99)

            # a manual dropout: silent, then back
            sim.set_offline("lv-02", True)
            with pytest.raises(ModbusIOException):
                await sewer.read_input_registers(0, count=2, device_id=lv.unit_id)
            sim.set_offline("lv-02", False)
            assert await _read(sewer, profile.point("level"), lv.unit_id) > 0

            # broadcast start on the water bus
            nl = PROFILES.get("noise-logger-nl200")
            rec = nl.recording
            a, b = site.device("nl-02"), site.device("nl-03")
            await water.write_register(rec.control, 1, device_id=0, no_response_expected=True)
            for _ in range(WAIT_STEPS):
                if sim.models[a.name].rec_status == STATUS_RECORDING:
                    break
                await asyncio.sleep(0.05)
            rr = await water.read_holding_registers(rec.status, count=1, device_id=a.unit_id)
            assert rr.registers == [STATUS_RECORDING]
            assert sim.models[a.name].rec_started == sim.models[b.name].rec_started
            clock.advance(rec.default_duration_s + 1)
            for _ in range(WAIT_STEPS):
                rr = await water.read_holding_registers(rec.status, count=1, device_id=b.unit_id)
                ra = await water.read_holding_registers(rec.status, count=1, device_id=a.unit_id)
                if rr.registers == ra.registers == [STATUS_READY]:
                    break
                await asyncio.sleep(0.05)
            ca, scale_a, crc_a = await _recording(water, a.unit_id, rec)
            cb, _, crc_b = await _recording(water, b.unit_id, rec)
            assert len(ca) == rec.default_duration_s * 4096
            assert zlib.crc32(ca.astype(">i2").tobytes()) == crc_a
            assert zlib.crc32(cb.astype(">i2").tobytes()) == crc_b
            assert scale_a > 0
            da = path_delay_s(site, leak_path(site, leak.pipe, leak.offset_m, a.pipe, a.offset_m))
            db = path_delay_s(site, leak_path(site, leak.pipe, leak.offset_m, b.pipe, b.offset_m))
            lag = gcc_phat_lag(ca.astype(float), cb.astype(float))
            assert abs(lag - (da - db) * 4096) <= 1.0

            # a duration out of range is refused with exception 3, the old one kept
            wr = await water.write_register(rec.duration_s, 0, device_id=a.unit_id)
            assert wr.isError() and wr.exception_code == 3
            rr = await water.read_holding_registers(rec.duration_s, count=1, device_id=a.unit_id)
            assert rr.registers == [rec.default_duration_s]
            sewer.close()
            water.close()
        finally:
            await sim.stop()
        assert sim.endpoints == {}

    asyncio.run(scenario())


def test_a_failing_tick_is_reported_not_hidden():
    """A bug in a model ends the tick task; ``error`` says why and ``stop`` still closes."""
    site = seed_site()

    async def scenario():
        sim = SiteSimulator(site, clock=ManualClock(), port_base=0, tick_s=0.01)
        await sim.start()
        try:
            assert sim.error is None

            def broken(t, dt):
                raise ZeroDivisionError("model bug")

            sim.models["gd-01"].update = broken
            for _ in range(WAIT_STEPS):
                if sim.error is not None:
                    break
                await asyncio.sleep(0.01)
            assert isinstance(sim.error, ZeroDivisionError)
        finally:
            await sim.stop()
        assert sim.servers == {}

    asyncio.run(scenario())


def test_rtu_over_tcp_serves_the_same_registers():
    site = seed_site()

    async def scenario():
        async with SiteSimulator(
            site, clock=ManualClock(), transport="rtu_over_tcp", port_base=0
        ) as sim:
            client = _client(sim.endpoints["gaschamber"], FramerType.RTU)
            await client.connect()
            gd = site.device("gd-01")
            profile = PROFILES.get(gd.profile)
            lel = await _read(client, profile.point("lel"), gd.unit_id)
            assert 0 <= lel < 5
            client.close()

    asyncio.run(scenario())


def test_pty_transport_serves_rtu_on_a_socat_pty(tmp_path):
    """--transport pty: an RTU master on the client end of the pty reads the devices."""
    site = seed_site()

    async def scenario():
        sim = SiteSimulator(site, clock=ManualClock(), transport="pty", pty_dir=tmp_path)
        await sim.start()
        try:
            ep = sim.endpoints["pumpstation"]
            assert ep.kind == "rtu" and ep.path == str(tmp_path / "pumpstation")
            client = AsyncModbusSerialClient(
                ep.path, framer=FramerType.RTU, baudrate=ep.baudrate, timeout=1.0, retries=1
            )
            await client.connect()
            ps = site.device("ps-01")
            profile = PROFILES.get(ps.profile)
            for check in profile.identification:
                assert check.matches(await _read(client, check.point, ps.unit_id))
            well = await _read(client, profile.point("wet_well_level"), ps.unit_id)
            assert ps.sim.stop_level_mm - 50 < well < ps.sim.start_level_mm + 50
            client.close()
        finally:
            await sim.stop()
        assert not (tmp_path / "pumpstation").exists()

    asyncio.run(scenario())


def test_a_taken_port_fails_start_and_releases_the_others():
    site = seed_site()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]

    async def scenario():
        # bus 0 on a free port, bus 1 on the taken one
        sim = SiteSimulator(site, clock=ManualClock(), port_base=taken - 1)
        with pytest.raises(OSError):
            await sim.start()
        assert sim.servers == {} and sim.endpoints == {}

    try:
        asyncio.run(scenario())
    finally:
        blocker.close()


# --- the command ------------------------------------------------------------------------------


def _simulate(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def test_simulate_command_prints_endpoints_and_stops_by_itself():
    r = _simulate("--site", str(SEED_SITE), "--port-base", "0", "--json", "--for", "1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[0])
    assert out["site"] == "riverside"
    assert out["endpoints"]["water"]["units"]["nl-02"] == 2
    assert all(ep["port"] > 0 for ep in out["endpoints"].values())


def test_simulate_bad_site_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "site.yaml"
    bad.write_text(SEED_SITE.read_text().replace("unit_id: 2,", "unit_id: 300,", 1))
    r = _simulate("--site", str(bad))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "unit_id: 300 is not in 1..247" in lines[0], r.stderr
    assert "site.yaml:" in lines[0]


def test_simulate_port_in_use_is_one_line_exit_1():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    try:
        r = _simulate("--site", str(SEED_SITE), "--port-base", str(blocker.getsockname()[1]))
    finally:
        blocker.close()
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot listen" in lines[0], r.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--speed", "0"], "--speed"),
        (["--port-base", "70000"], "--port-base"),
        (["--pty-dir", "/tmp"], "--pty-dir needs --transport pty"),
    ],
)
def test_simulate_bad_arguments_exit_2(args, fragment):
    r = _simulate("--site", str(SEED_SITE), *args)
    assert r.returncode == 2 and fragment in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("fault gd-01 0x1", "ok: gd-01 fault bits 0x0001"),
        ("fault gd-01 0x10000", "error: gd-01: fault bits 65536 do not fit a 16-bit status word"),
        ("fault nope 1", "error: no device 'nope' on site 'riverside'"),
        ("fault gd-01 lots", "error: invalid literal"),
        ("offline lv-02", "ok: lv-02 offline"),
        ("online lv-02", "ok: lv-02 online"),
        ("force ps-01 pump2_fault true", "ok: ps-01.pump2_fault forced to true"),
        ("force ps-01 pump9_fault true", "error: profile 'pump-controller-ps2' has no point"),
        ("force gd-01 lel -5", "error: lel: -5 does not fit u16"),
        ("release ps-01 pump2_fault", "ok: ps-01.pump2_fault follows its dynamics"),
        ("status", "t=00:00:00"),
        ("dance", "error: 'dance': commands are"),
    ],
)
def test_control_commands_answer_one_line(command, answer):
    """--control commands change the simulator or explain themselves; none stops it."""
    from edge_agent.commands.simulate import control_command

    sim = SiteSimulator(seed_site(), clock=ManualClock())
    try:
        reply = control_command(sim, command)
        assert reply.startswith(answer), reply
        assert "\n" not in reply
        sim.step()  # a refused command left nothing the next tick cannot encode
    finally:
        asyncio.run(sim.stop())


def test_simulate_control_takes_a_device_off_the_bus_and_back():
    """Over the real command: `offline lv-02` on stdin silences unit 1 of the sewer bus."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "edge_agent", "simulate", "--site", str(SEED_SITE)),
            *("--port-base", "0", "--json", "--control", "--for", "60"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        first = json.loads(proc.stdout.readline())
        port = first["endpoints"]["sewer"]["port"]

        async def read_level():
            client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=TIMEOUT_S, retries=0)
            await client.connect()
            try:
                rr = await client.read_input_registers(0, count=2, device_id=1)
                return not rr.isError()
            except ModbusIOException:
                return False
            finally:
                client.close()

        assert asyncio.run(read_level())
        proc.stdin.write("offline lv-02\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ok: lv-02 offline"
        assert not asyncio.run(read_level())
        proc.stdin.write("online lv-02\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ok: lv-02 online"
        assert asyncio.run(read_level())
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_a_profile_of_another_kind_is_refused():
    """A site loaded without a profile check still cannot serve a gas profile as a level."""
    import dataclasses

    from drivers.errors import ProfileError

    site = seed_site()
    wrong = tuple(
        dataclasses.replace(d, profile="gas-detector-mg4") if d.name == "lv-02" else d
        for d in site.devices
    )
    with pytest.raises(ProfileError, match="lv-02: profile 'gas-detector-mg4' is a gas profile"):
        SiteSimulator(dataclasses.replace(site, devices=wrong), clock=ManualClock())


def test_stop_is_idempotent_and_start_works_again():
    """A stopped simulator can be started again (new endpoints, recordings still render)."""
    site = seed_site()
    clock = ManualClock()

    async def scenario():
        sim = SiteSimulator(site, clock=clock, port_base=0, tick_s=0.02)
        await sim.start()
        await sim.stop()
        await sim.stop()
        assert sim.endpoints == {}
        await sim.start()
        try:
            logger = sim.models["nl-02"]
            logger.start(clock.elapsed())
            clock.advance(logger.duration_s + 1)
            for _ in range(WAIT_STEPS):
                if logger.rec_status == STATUS_READY:
                    break
                await asyncio.sleep(0.05)
            assert logger.rec_status == STATUS_READY
            assert set(sim.endpoints) == {b.name for b in site.sim_buses}
        finally:
            await sim.stop()
        sim.step()  # stepping a stopped simulator is harmless

    asyncio.run(scenario())
