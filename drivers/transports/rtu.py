"""Modbus RTU on a local serial port (RS-485 adapter, or one end of a socat pty pair).

pyserial opens the port exclusively (a second gateway process gets ``DriverInitError``). When
the port vanishes (USB adapter pulled), requests raise ``DriverIOError`` / ``DriverInitError``;
once it returns, the next request reopens it: no restart needed.
"""

from __future__ import annotations

import asyncio
import errno
import time
import traceback
from dataclasses import dataclass

from pymodbus.client import AsyncModbusSerialClient
from pymodbus.framer import FramerType

from drivers.errors import DriverInitError, DriverTimeout
from drivers.transports._pymodbus import PymodbusTransport, os_error_of
from drivers.wire import DEFAULT_TURNAROUND_S, WireModel, response_bytes

__all__ = ["Rs485Settings", "RtuTransport"]

_TIMER_RESOLUTION_S = 0.001  # asyncio's timers on epoll: whole milliseconds

_PARITIES = ("N", "E", "O")
_BUSY = "port busy (another program, e.g. a running edge-agent, holds it)"
_GONE = "no device behind the port (adapter unplugged, or the UART is off)"
# errno of a failed open -> what it means at the kerb ({port}: the port's path).
_OPEN_FAILURES = {
    errno.ENOENT: "no such port (adapter unplugged, or another name: ls /dev/serial/by-id)",
    errno.EACCES: "permission denied (the user may not open it: add the user to the port's "
    "group, usually dialout; ls -l {port})",
    errno.EPERM: "operation not permitted (a device policy forbids it: under systemd, the "
    "unit's DeviceAllow= lines)",
    errno.EAGAIN: _BUSY,  # pyserial's exclusive lock (flock) is taken
    errno.EBUSY: _BUSY,
    errno.ENOTTY: "not a serial port",
    errno.ENXIO: _GONE,
    errno.ENODEV: _GONE,
    errno.EIO: "input/output error (the adapter failed or is being unplugged)",
}


@dataclass(frozen=True, slots=True)
class Rs485Settings:
    """Kernel RS-485 mode (RTS drives the transceiver direction) for adapters that need it."""

    enabled: bool = False
    rts_level_for_tx: bool = True
    rts_level_for_rx: bool = False


class RtuTransport(PymodbusTransport):
    """RTU on serial ``port``. ``inter_frame_gap_s=None`` means 3.5 characters at the baud
    rate (1.75 ms above 19200 baud, as the Modbus serial spec fixes); ``turnaround_s`` is
    the devices' answer delay the scheduler assumes until it has measured theirs.

    pymodbus's async RTU client keeps no silence between frames and tells an answer's end by
    its length alone, so the gap is kept here: a request waits until the line has been quiet
    for ``inter_frame_gap_s`` since the last bytes of the answer came in (pymodbus reports
    each chunk it reads). After a request that got no answer the line may still carry a late
    one: the next request waits, on top of the gap, the time that answer would take, so the
    two never collide on the half-duplex line.
    """

    kind = "rtu"
    serial = True

    def __init__(
        self,
        *,
        port: str,
        baudrate: int = 9600,
        parity: str = "N",
        stopbits: int = 1,
        bytesize: int = 8,
        timeout_s: float = 1.0,
        inter_frame_gap_s: float | None = None,
        turnaround_s: float = DEFAULT_TURNAROUND_S,
        rs485: Rs485Settings | None = None,
    ) -> None:
        super().__init__(timeout_s=timeout_s)
        if parity not in _PARITIES:
            raise ValueError(f"parity {parity!r} is not one of N, E, O")
        if baudrate <= 0:
            raise ValueError(f"baudrate must be > 0, got {baudrate}")
        self.port = port
        self.baudrate = baudrate
        self.parity = parity
        self.stopbits = stopbits
        self.bytesize = bytesize
        self.rs485 = rs485 or Rs485Settings()
        self.wire = WireModel.rtu(
            baudrate, bytesize, parity, stopbits, gap_s=inter_frame_gap_s,
            turnaround_s=turnaround_s,
        )  # fmt: skip
        self.inter_frame_gap_s = self.wire.gap_s
        self._quiet_until = 0.0  # monotonic time before which no frame may start
        self._heard_at: float | None = None  # when the last bytes came in

    @property
    def where(self) -> str:
        return f"rtu {self.port}"

    def _make_client(self) -> AsyncModbusSerialClient:
        return AsyncModbusSerialClient(
            self.port,
            framer=FramerType.RTU,
            baudrate=self.baudrate,
            parity=self.parity,
            stopbits=self.stopbits,
            bytesize=self.bytesize,
            timeout=self.timeout_s,
            retries=0,
            reconnect_delay=0,  # the bus runner reopens the port, with its own backoff
            name=self.where,
            trace_packet=self._bytes_seen,
        )

    def _bytes_seen(self, sending: bool, data: bytes) -> bytes:
        """pymodbus hands over every chunk it reads: the last one ends the line's traffic."""
        if not sending:
            self._heard_at = time.monotonic()
        return data

    @property
    def settings(self) -> str:
        """The line settings as installers write them: ``9600 8E1``."""
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"

    def _open_failure(self, exc: BaseException) -> str:
        code, text = os_error_of(exc)
        if code == errno.EINVAL or isinstance(exc, ValueError):
            # termios.error EINVAL: the driver refused (or, glibc reports, silently dropped)
            # a setting, e.g. parity on a pty or on an adapter without it.
            return (
                f"the port refuses {self.settings} ({text}): its driver cannot do them; check "
                "the bus settings against the devices, or use another adapter"
            )
        if code in _OPEN_FAILURES:
            return _OPEN_FAILURES[code].format(port=self.port)
        return super()._open_failure(exc)

    def _failed_open_cleanup(self, exc: BaseException) -> None:
        # pymodbus's serial transport opens the port in its constructor, then sets its
        # timeouts, which configures the port again. When that second configuration is
        # refused, the open port and its exclusive lock are left in the constructor's dead
        # frame: closed here, or the next attempt finds the port "busy", locked by ourselves.
        from serial import SerialBase

        for frame, _line in traceback.walk_tb(exc.__traceback__):
            port = frame.f_locals.get("self")
            if isinstance(port, SerialBase) and port.is_open:
                port.close()

    def _after_connect(self) -> None:
        if not self.rs485.enabled:
            return
        from serial.rs485 import RS485Settings

        try:
            # pyserial-asyncio's transport holds the serial port pymodbus does not type.
            self._client.ctx.transport.sync_serial.rs485_mode = RS485Settings(  # type: ignore[union-attr]
                rts_level_for_tx=self.rs485.rts_level_for_tx,
                rts_level_for_rx=self.rs485.rts_level_for_rx,
            )
        except (OSError, ValueError, AttributeError) as exc:
            self.close()
            raise DriverInitError(f"{self.where}: cannot enable RS-485 mode: {exc}") from exc

    async def _gap(self) -> None:
        """Keep the silence that marks a frame boundary on the wire (3.5 characters).

        The event loop's timers wake on whole milliseconds (epoll), so a 1.75 ms silence
        slept as such becomes 2-3 ms: at 38400 baud a tenth of a recording block's time. So
        the last stretch, under a millisecond, is waited by yielding to the loop (other buses
        and tasks keep running) until the time has come.
        """
        wait = self._quiet_until - time.monotonic()
        if wait > _TIMER_RESOLUTION_S:
            await asyncio.sleep(wait - _TIMER_RESOLUTION_S)
        while time.monotonic() < self._quiet_until:
            await asyncio.sleep(0)

    def _line_quiet(self, function: int, count: int, outcome: str) -> None:
        """The next frame may start a gap after the answer's last byte came in; after a
        timeout, a gap after the late answer would have ended."""
        now = time.monotonic()
        if outcome == "answered" and self._heard_at is not None:
            self._quiet_until = min(now, self._heard_at) + self.inter_frame_gap_s
        elif outcome == "timed out":
            late = self.wire.frame_s(response_bytes(function, count))
            self._quiet_until = now + late + self.inter_frame_gap_s
        else:
            self._quiet_until = now + self.inter_frame_gap_s
        self._heard_at = None

    async def read(self, function, unit, address, count, *, timeout_s=None):
        await self._gap()
        outcome = "sent"
        try:
            values = await super().read(function, unit, address, count, timeout_s=timeout_s)
            outcome = "answered"
            return values
        except DriverTimeout:
            outcome = "timed out"
            raise
        finally:
            self._line_quiet(function, count, outcome)

    async def _write(self, function, unit, count, call, timeout_s):
        await self._gap()
        outcome = "sent"
        try:
            await super()._write(function, unit, count, call, timeout_s)
            outcome = "answered" if unit else "sent"  # a broadcast has no answer
        except DriverTimeout:
            outcome = "timed out"
            raise
        finally:
            self._line_quiet(function, count, outcome)
