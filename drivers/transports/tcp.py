"""Modbus TCP (MBAP framing) and RTU over TCP (RTU frames through a serial-to-TCP gateway)."""

from __future__ import annotations

import errno
import socket

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.framer import FramerType

from drivers.transports._pymodbus import PymodbusTransport, os_error_of
from drivers.wire import DEFAULT_TCP_ROUND_TRIP_S, DEFAULT_TURNAROUND_S, WireModel

__all__ = ["DEFAULT_MODBUS_TCP_PORT", "RtuOverTcpTransport", "TcpTransport"]

DEFAULT_MODBUS_TCP_PORT = 502
# errno of a failed connect -> what it means at the kerb ({port}: the TCP port).
_OPEN_FAILURES = {
    errno.ECONNREFUSED: "connection refused (nothing listens on port {port}: wrong port, or "
    "the device's Modbus TCP server is off)",
    errno.EHOSTUNREACH: "host unreachable (no route to it: check the address, the cable and "
    "the device's network settings)",
    errno.ENETUNREACH: "network unreachable (no route to that network: check the gateway's "
    "address and routes)",
    errno.ETIMEDOUT: "no answer (host down, or a firewall drops the connection)",
    errno.ECONNRESET: "connection reset by the device (it may accept only one client)",
}


class TcpTransport(PymodbusTransport):
    """Modbus TCP to ``host:port``. Raises as ``drivers.transport.Transport`` documents."""

    kind = "tcp"
    serial = False
    _framer = FramerType.SOCKET

    def __init__(
        self, *, host: str, port: int = DEFAULT_MODBUS_TCP_PORT, timeout_s: float = 1.0
    ) -> None:
        super().__init__(timeout_s=timeout_s)
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} is not in 1..65535")
        self.host = host
        self.port = port

    @property
    def where(self) -> str:
        return f"{self.kind} {self.host}:{self.port}"

    def _open_failure(self, exc: BaseException) -> str:
        if isinstance(exc, socket.gaierror):
            return f"unknown host {self.host!r} ({exc.strerror}): check the name or use an address"
        code, _text = os_error_of(exc)
        if code in _OPEN_FAILURES:
            return _OPEN_FAILURES[code].format(port=self.port)
        return super()._open_failure(exc)

    def _make_client(self) -> AsyncModbusTcpClient:
        return AsyncModbusTcpClient(
            self.host,
            port=self.port,
            framer=self._framer,
            timeout=self.timeout_s,
            retries=0,
            reconnect_delay=0,  # the bus runner reconnects, with its own backoff
            name=self.where,
        )


class RtuOverTcpTransport(TcpTransport):
    """RTU frames over TCP: a serial bus behind a transparent gateway, still half-duplex.

    The line settings (``baudrate`` ...) are those of the serial line behind the device
    server: they set no port here, they price each request's time on that line
    (``drivers.wire``) on top of the network round trip.
    """

    kind = "rtu_over_tcp"
    serial = True
    _framer = FramerType.RTU

    def __init__(
        self,
        *,
        host: str,
        port: int = DEFAULT_MODBUS_TCP_PORT,
        timeout_s: float = 1.0,
        baudrate: int = 9600,
        parity: str = "N",
        stopbits: int = 1,
        bytesize: int = 8,
        inter_frame_gap_s: float | None = None,
        turnaround_s: float = DEFAULT_TURNAROUND_S,
    ) -> None:
        super().__init__(host=host, port=port, timeout_s=timeout_s)
        self.wire = WireModel.rtu(
            baudrate, bytesize, parity, stopbits, gap_s=inter_frame_gap_s,
            turnaround_s=turnaround_s, per_request_s=DEFAULT_TCP_ROUND_TRIP_S,
        )  # fmt: skip
