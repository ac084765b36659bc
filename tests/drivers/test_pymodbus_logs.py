"""pymodbus's own log lines name the bus, the link, the unit and the device, say what they
mean for an operator, and those the transport already reports (timeouts, failed opens) are
folded into its errors. Provoked for real: late answers over loopback TCP, a unit answering
with another unit's id on a pty."""

from __future__ import annotations

import asyncio
import logging

import pytest

from drivers.errors import DriverError, DriverTimeout
from drivers.sim.server import UnitFaults
from drivers.transport import make_transport
from tests.helpers.modbus import RTU_TEST_BAUD, pty_pair, served_units
from tests.helpers.net import free_port

UNITS = {1: {"holding": {0: [11]}}, 2: {"holding": {0: [21]}}}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture
def pymodbus_records():
    """What pymodbus logs at WARNING and above, after our filter on its logger."""
    parent = logging.getLogger("pymodbus")
    logger = logging.getLogger("pymodbus.logging")
    level = parent.level
    parent.setLevel(logging.WARNING)  # tests/helpers/modbus silences it for other tests
    handler = Records()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        parent.setLevel(level)


def test_late_tcp_answer_names_the_late_device_as_a_warning(pymodbus_records):
    """The answer to a timed-out request arrives while the next one waits: pymodbus's
    "request ask for transaction_id=2 but got id=1, Skipping." ERROR becomes a WARNING that
    says which device was late and what to change; the timeout itself is not repeated."""

    async def scenario():
        async with served_units(UNITS) as server:
            server.faults[1] = UnitFaults(delay_s=0.3)
            t = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=0.1)
            t.label("plc", {1: "lv-01", 2: "lv-02"})
            with pytest.raises(DriverTimeout):
                await t.read(3, 1, 0, 1)
            # The next request waits long enough: the late answer to the first arrives first.
            assert await t.read(3, 1, 0, 1, timeout_s=1.0) == [11]
            t.close()

    asyncio.run(scenario())
    (late,) = pymodbus_records.records
    assert late.levelno == logging.WARNING
    assert late.getMessage() == (
        "late answer from unit 1 ignored (transaction 1, while waiting for 2): the device "
        "answers slower than the bus's timeout_s"
    )
    assert (late.bus, late.device, late.unit) == ("plc", "lv-01", 1)
    assert late.link.startswith("tcp 127.0.0.1:")


def test_answer_with_no_request_waiting(pymodbus_records):
    """A late answer that arrives when nothing waits: one warning, naming the bus (the
    reader callback keeps the context of the open)."""

    async def scenario():
        async with served_units(UNITS) as server:
            server.faults[2] = UnitFaults(delay_s=0.2)
            t = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=0.1)
            t.label("plc", {2: "gd-01"})
            with pytest.raises(DriverTimeout):
                await t.read(3, 2, 0, 1)
            await asyncio.sleep(0.4)
            t.close()

    asyncio.run(scenario())
    (line,) = pymodbus_records.records
    assert line.levelno == logging.WARNING
    assert line.getMessage().startswith("answer ignored: no request was waiting for it")
    assert (line.bus, line.device, line.unit) == ("plc", "gd-01", 2)


def test_rtu_answer_from_another_unit(tmp_path, pymodbus_records):
    async def scenario(ptys):
        async with served_units(UNITS, kind="rtu", serial_port=ptys.server_path) as server:
            server.faults[1] = UnitFaults(reply_unit=2)
            t = make_transport("rtu", port=ptys.client_path, baudrate=RTU_TEST_BAUD, timeout_s=0.2)
            t.label("rs485-1", {1: "nl-01", 2: "nl-02"})
            with pytest.raises(DriverTimeout):
                await t.read(3, 1, 0, 1)
            t.close()

    with pty_pair(tmp_path) as ptys:
        asyncio.run(scenario(ptys))
    (line,) = pymodbus_records.records
    assert line.levelno == logging.WARNING
    assert line.getMessage() == (
        "answer from unit 2 ignored while waiting for unit 1 (a late answer, or two devices "
        "answering to unit id 2)"
    )
    assert (line.bus, line.device, line.unit) == ("rs485-1", "nl-02", 2)
    assert line.link.startswith("rtu ")


def test_timeouts_and_failed_opens_are_left_to_the_transport(pymodbus_records):
    """ "No response received after 0 retries" and "Failed to connect" say nothing the
    transport's own error (with the bus and device) does not: pymodbus logs neither."""

    async def scenario():
        async with served_units(UNITS) as server:
            server.faults[1] = UnitFaults(silent=True)
            t = make_transport("tcp", host="127.0.0.1", port=server.port, timeout_s=0.1)
            for _ in range(3):
                with pytest.raises(DriverTimeout):
                    await t.read(3, 1, 0, 1)
            t.close()
        refused = make_transport("tcp", host="127.0.0.1", port=free_port(), timeout_s=0.2)
        with pytest.raises(DriverError):
            await refused.connect()

    asyncio.run(scenario())
    assert pymodbus_records.texts() == []
