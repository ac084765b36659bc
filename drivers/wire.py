"""What a Modbus request costs on the wire: frame sizes per function code and a link's timing.

On an RS-485 bus the scarce resource is time on the wire, not CPU: at 9600 baud a 120-register
read moves 253 bytes and holds the half-duplex line for about 0.3 s. ``WireModel`` prices a
request from the bytes it moves, so the bus scheduler (``drivers.bus_schedule``) can plan in
wire time and each transport can give an answer the time it needs to arrive.

An RTU character is 1 start bit + data bits + a parity bit (none for ``N``) + stop bits: 11
bits for the spec's 8E1 or 8N2, 10 for the common 8N1. One request on the wire::

    [gap 3.5 chars][request frame][device turnaround][response frame]

- the gap: 3.5 characters of silence mark the end of the previous frame (the spec fixes
  1.75 ms above 19200 baud); a device also waits for it before answering, so it is counted
  on both sides of the request (``exchange_s``);
- the turnaround: how long the device takes to start answering beyond that silence (its
  firmware, the RS-485 driver switching direction, and on our side the OS and event loop),
  learned per device from the answers (``drivers.bus_schedule.Turnarounds``);
- a broadcast (unit 0) has no answer; the master waits the turnaround delay the spec asks for
  (100-200 ms) so every device has acted before the next frame (``broadcast_s``). On Modbus
  TCP too: a device still applying a broadcast when the next request arrives may drop one of
  them (pymodbus's own server does: its handler keeps one request at a time, and a poll right
  behind a broadcast start replaced it, or went unanswered).

Modbus TCP moves the same PDU in an MBAP frame (7 header bytes instead of the unit byte and
the CRC) over a link where bytes cost nothing measurable: its model has no character time and
no gap, only a fixed per-request cost (the round trip), so everything fits anywhere.

Frame sizes (RTU ADU, bytes): read requests 8; answers 5 + data (2 per register, 1 per 8
bits); write single 8 both ways; write multiple 9 + data, answered with 8; an exception
answer 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "BROADCAST_WAIT_S",
    "DEFAULT_TCP_ROUND_TRIP_S",
    "DEFAULT_TURNAROUND_S",
    "EXCEPTION_RESPONSE_BYTES",
    "MIN_GAP_ABOVE_19200_S",
    "WireModel",
    "char_time_s",
    "request_bytes",
    "response_bytes",
]

# Modbus over serial line: the master's "turnaround delay" after a broadcast (100-200 ms).
BROADCAST_WAIT_S = 0.1
# The spec fixes the 3.5-character silence at 1.75 ms above 19200 baud (CPU load on slaves).
MIN_GAP_ABOVE_19200_S = 0.00175
# A device's answer delay before anything is measured: typical RTU slaves answer in 5-20 ms.
DEFAULT_TURNAROUND_S = 0.01
# Loopback / LAN Modbus TCP: a request and its answer, before anything is measured.
DEFAULT_TCP_ROUND_TRIP_S = 0.001
RTU_OVERHEAD_BYTES = 3  # unit id + CRC-16
MBAP_OVERHEAD_BYTES = 7  # transaction id, protocol id, length, unit id
EXCEPTION_RESPONSE_BYTES = 5

_READ_BITS = (1, 2)
_READ_REGISTERS = (3, 4)
_WRITE_SINGLE = (5, 6)


def char_time_s(baudrate: int, bytesize: int = 8, parity: str = "N", stopbits: int = 1) -> float:
    """Seconds one character takes on the wire (start bit + data + parity + stop bits)."""
    if baudrate <= 0:
        raise ValueError(f"baudrate must be > 0, got {baudrate}")
    bits = 1 + bytesize + (0 if parity == "N" else 1) + stopbits
    return bits / baudrate


def request_bytes(function: int, count: int) -> int:
    """Bytes of an RTU request frame: ``count`` registers or bits read or written.

    Raises ``ValueError`` for a function code this gateway does not send.
    """
    if function in _READ_BITS or function in _READ_REGISTERS or function in _WRITE_SINGLE:
        return 8
    if function == 15:
        return 9 + math.ceil(count / 8)
    if function == 16:
        return 9 + 2 * count
    raise ValueError(f"function {function} is not one this gateway sends")


def response_bytes(function: int, count: int) -> int:
    """Bytes of a (non-exception) RTU answer to ``request_bytes(function, count)``."""
    if function in _READ_BITS:
        return 5 + math.ceil(count / 8)
    if function in _READ_REGISTERS:
        return 5 + 2 * count
    if function in _WRITE_SINGLE or function in (15, 16):
        return 8
    raise ValueError(f"function {function} is not one this gateway sends")


@dataclass(frozen=True, slots=True)
class WireModel:
    """The timing of one link. Build with ``rtu(...)`` or ``tcp(...)``.

    ``char_s``: seconds per character (0 on TCP); ``gap_s``: the silence between frames;
    ``turnaround_s``: a device's answer delay until one is measured; ``per_request_s``: a
    fixed cost of every request (the TCP round trip; 0 on a local serial line);
    ``broadcast_wait_s``: the wait after a broadcast; ``frame_extra_bytes``: bytes a frame
    has beyond the RTU ADU (+4 for MBAP: 7 header bytes replace unit id and CRC).
    """

    char_s: float
    gap_s: float
    turnaround_s: float = DEFAULT_TURNAROUND_S
    per_request_s: float = 0.0
    broadcast_wait_s: float = BROADCAST_WAIT_S
    frame_extra_bytes: int = 0

    def __post_init__(self) -> None:
        for name in ("char_s", "gap_s", "turnaround_s", "per_request_s", "broadcast_wait_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def rtu(
        cls,
        baudrate: int,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: int = 1,
        *,
        gap_s: float | None = None,
        turnaround_s: float = DEFAULT_TURNAROUND_S,
        per_request_s: float = 0.0,
    ) -> WireModel:
        """A serial line; ``gap_s=None`` is 3.5 characters (1.75 ms above 19200 baud).
        ``per_request_s``: a network hop in front of the line (RTU over TCP)."""
        char_s = char_time_s(baudrate, bytesize, parity, stopbits)
        if gap_s is None:
            gap_s = MIN_GAP_ABOVE_19200_S if baudrate > 19200 else 3.5 * char_s
        return cls(
            char_s,
            gap_s,
            turnaround_s,
            per_request_s,
            broadcast_wait_s=max(BROADCAST_WAIT_S, gap_s),
        )

    @classmethod
    def tcp(cls, round_trip_s: float = DEFAULT_TCP_ROUND_TRIP_S) -> WireModel:
        """Modbus TCP: bytes cost nothing measurable, a request costs one round trip."""
        return cls(
            0.0,
            0.0,
            turnaround_s=0.0,
            per_request_s=round_trip_s,
            frame_extra_bytes=MBAP_OVERHEAD_BYTES - RTU_OVERHEAD_BYTES,
        )

    @property
    def serial(self) -> bool:
        """True for a line where bytes take time (a half-duplex bus)."""
        return self.char_s > 0

    def frame_s(self, nbytes: int) -> float:
        """Seconds ``nbytes`` of one frame take on the wire."""
        return nbytes * self.char_s

    def exchange_s(self, function: int, count: int) -> float:
        """Wire time of a request and its answer with the silence before each (no device
        turnaround): the part of a request no device or software can make faster."""
        extra = 2 * self.frame_extra_bytes
        nbytes = request_bytes(function, count) + response_bytes(function, count) + extra
        return 2 * self.gap_s + nbytes * self.char_s + self.per_request_s

    def request_s(self, function: int, count: int, turnaround_s: float | None = None) -> float:
        """What a request costs the bus: ``exchange_s`` plus the device's turnaround (this
        model's, or the measured one given)."""
        turnaround = self.turnaround_s if turnaround_s is None else turnaround_s
        return self.exchange_s(function, count) + turnaround

    def broadcast_s(self, registers: int) -> float:
        """A broadcast write of ``registers`` holding registers (function 16, whatever the
        count) and the wait after it."""
        nbytes = request_bytes(16, registers) + self.frame_extra_bytes
        return self.gap_s + nbytes * self.char_s + self.per_request_s + self.broadcast_wait_s
