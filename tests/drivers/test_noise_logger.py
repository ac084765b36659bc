"""Recordings against a logger model on a real simulated bus (loopback TCP and a socat pty)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from drivers.bus import BusRead, BusRunner, DeviceSpec, PollPolicy
from drivers.noise_logger import RecordingError, record, record_broadcast
from drivers.profile import ProfileRegistry
from drivers.transport import make_transport
from tests.helpers.modbus import RTU_TEST_BAUD, NoiseLoggers, pty_pair, served_units

BLOCK = ProfileRegistry().get("noise-logger-nl200").recording


async def quick_sleep(seconds: float) -> None:
    """The logger model is ready at once; keep the protocol's waits but not their length."""
    await asyncio.sleep(min(seconds, 0.01))


def _samples(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-32768, 32767, n, dtype=np.int16)


def test_unicast_recording_round_trip():
    """Samples come back scaled, in order, with fs, device name and start time."""

    async def scenario():
        async with served_units({}) as server:
            loggers = NoiseLoggers(server, scale=0.5)
            samples = _samples(1, 1000)  # 9 blocks, the last one partly padding
            loggers.add(4, samples)
            t = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=0.5)
            before = time.time()
            async with t:
                rec = await record(t, 4, BLOCK, 3, device="nl-04", sleep=quick_sleep)
            assert rec.device == "nl-04" and rec.fs == 4096.0
            assert before <= rec.started_at <= time.time()
            np.testing.assert_array_equal(rec.samples, samples.astype(np.float64) * 0.5)
            assert loggers.started == {4: [3]}

    asyncio.run(scenario())


def test_broadcast_starts_every_logger_at_once_on_a_pty_bus(tmp_path):
    """One broadcast start; every good logger delivers; a failing one is reported, not fatal."""

    async def scenario(ptys):
        async with served_units({}, kind="rtu", serial_port=ptys.server_path) as server:
            loggers = NoiseLoggers(server)
            for unit in (1, 2, 3):
                loggers.add(unit, _samples(unit, 300))
            loggers.fail.add(3)
            t = make_transport("rtu", port=ptys.client_path, baudrate=RTU_TEST_BAUD, timeout_s=0.5)
            errors = {}
            async with t:
                recs = await record_broadcast(
                    t,
                    {1: "nl-01", 2: "nl-02", 3: "nl-03"},
                    BLOCK,
                    2,
                    errors=errors,
                    sleep=quick_sleep,
                )
            assert set(recs) == {1, 2}
            assert recs[1].started_at == recs[2].started_at
            for unit in (1, 2):
                expected = _samples(unit, 300).astype(np.float64) * 0.001
                np.testing.assert_allclose(recs[unit].samples, expected, rtol=1e-6)
            assert loggers.started == {1: [2], 2: [2], 3: [2]}  # all started by the broadcast
            assert isinstance(errors[3], RecordingError) and "recording error" in str(errors[3])

    with pty_pair(tmp_path) as ptys:
        asyncio.run(scenario(ptys))


def test_checksum_mismatch_is_an_error():
    async def scenario():
        async with served_units({}) as server:
            loggers = NoiseLoggers(server)
            loggers.add(1, _samples(7, 200))
            loggers.corrupt_crc.add(1)
            t = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=0.5)
            async with t:
                with pytest.raises(RecordingError, match="checksum mismatch"):
                    await record(t, 1, BLOCK, 1, sleep=quick_sleep)
                with pytest.raises(RecordingError, match="no logger delivered"):
                    await record_broadcast(t, {1: "a"}, BLOCK, 1, sleep=quick_sleep)

    asyncio.run(scenario())


def test_never_ready_times_out_with_a_clear_message():
    async def scenario():
        async with served_units({}) as server:
            loggers = NoiseLoggers(server, ready_after_s=3600)
            loggers.add(1, _samples(2, 100))
            t = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=0.5)
            async with t:
                with pytest.raises(RecordingError, match="not ready"):
                    await record(
                        t,
                        1,
                        BLOCK,
                        1,
                        ready_timeout_s=0.05,
                        status_poll_s=0.01,
                        sleep=quick_sleep,
                    )
            assert server.units[1].holding[100] == 0  # aborted

    asyncio.run(scenario())


def test_block_transfer_interleaves_with_polling():
    """While a recording transfers through the shared transport, the bus keeps polling."""

    class OneRegister:
        requests = (BusRead(3, 0, 1),)

        def decode(self, device, results, ts):
            return []

    async def scenario():
        async with served_units({9: {"holding": {0: [1]}}}) as server:
            loggers = NoiseLoggers(server)
            loggers.add(1, _samples(3, 2400))  # 20 blocks: 40 requests
            t = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=0.5)
            policy = PollPolicy(timeout_s=0.5, jitter_s=0.0)
            runner = BusRunner("b", t, [DeviceSpec("gauge", 9, OneRegister(), 0.001, policy)])
            runner.start()
            gauge = runner.coordinators["gauge"]
            await asyncio.sleep(0.05)
            before = gauge.polls_ok
            rec = await record(runner.shared_transport(), 1, BLOCK, 1, sleep=quick_sleep)
            during = gauge.polls_ok - before
            await runner.stop()
            assert len(rec.samples) == 2400
            assert during >= 10  # polls ran between the recording's requests

    asyncio.run(scenario())


@pytest.mark.parametrize("duration", [0, 61, 2.5])
def test_bad_durations_are_refused(duration):
    async def scenario():
        t = make_transport("tcp", host="127.0.0.1", port=1)
        with pytest.raises(ValueError):
            await record(t, 1, BLOCK, duration)

    asyncio.run(scenario())
