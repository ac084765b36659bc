"""A serial line that takes the time a real one does: a relay between two ptys that lets bytes
through at the baud rate, one direction at a time, and logs every frame it carried.

A pty moves bytes at memory speed whatever baud rate it is told, so a gateway on a pty never
learns what RS-485 time costs. ``PacedLine`` sits between the gateway and a simulator: the
gateway opens ``link_path`` (a pty this line makes), the simulator serves ``device_path``
(e.g. the client end of a ``drivers.sim.ptys.PtyPair``). Every byte either side writes goes
onto one shared wire and reaches the other side when its last bit would have: a character
takes ``bits_per_char / baudrate`` seconds (11 bits: start, 8 data, parity or a second stop
bit, stop), and the wire carries one character at a time, so the line is half duplex: bytes
written while the other side's bytes are on the wire wait for them (and are counted as a
collision, which on a real RS-485 line garbles both).

This is a measuring instrument (``benchmarks/bus_time.py``): it knows nothing of Modbus and
shares no code with the gateway's own wire model (``drivers.wire``), which it judges. It logs
frames: bytes of one side back to back, ended by a silence of 1.5 characters or the other
side's turn, with their wire start and end, byte count and first bytes.

    line = PacedLine(device_path, link_path, baudrate=9600)
    with Relay([line]):                    # a thread moves bytes until the block ends
        ... the gateway polls link_path ...
    line.frames                            # [Frame(side, start, end, nbytes, head), ...]

``python -m drivers.sim.paced_line --baudrate 9600 DEVICE=LINK ...`` runs lines in a process
of their own until SIGTERM, then writes the frames as JSON lines (``--log``). It asks for
real-time scheduling (``SCHED_FIFO``) where the system allows it, so that other work on the
machine does not delay the instrument's bytes (it sleeps in ``select`` between them, and
records in the log whether it got it and how late any byte was handed over).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import sys
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

__all__ = ["BITS_PER_CHAR", "Frame", "PacedLine", "Relay", "Wire"]

BITS_PER_CHAR = 11  # Modbus RTU: start + 8 data + parity (or a 2nd stop bit) + stop
FRAME_SILENCE_CHARS = 1.5  # RTU: a longer silence inside a frame ends it
# Bytes are handed over in batches at most this often (a UART's FIFO does the same), except
# the last one queued, which goes at its own time: a frame's end is never late for it.
BATCH_S = 0.001
REALTIME_PRIORITY = 10  # SCHED_FIFO, low among real-time ones
HEAD_BYTES = 6  # kept per frame: unit, function, and the request's address and count
Side = Literal["master", "device"]


@dataclass(frozen=True, slots=True)
class Frame:
    """Bytes one side put on the wire back to back: ``start`` of the first bit, ``end`` of
    the last (monotonic seconds of the relay's clock), ``head`` its first bytes."""

    side: Side
    start: float
    end: float
    nbytes: int
    head: bytes

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "head": self.head.hex()}

    @classmethod
    def from_json(cls, data: dict) -> Frame:
        return cls(
            data["side"], data["start"], data["end"], data["nbytes"], bytes.fromhex(data["head"])
        )


class Wire:
    """The timing of one half-duplex line. Pure: times are given, never read.

    ``offer(side, data, now)`` puts bytes on the wire behind whatever is still on it and
    returns when each arrives at the other side (the end of its last bit).
    """

    def __init__(self, baudrate: int, bits_per_char: int = BITS_PER_CHAR) -> None:
        if baudrate <= 0 or bits_per_char <= 0:
            raise ValueError("baudrate and bits_per_char must be > 0")
        self.char_s = bits_per_char / baudrate
        self.free_at = -1.0  # when the last byte on the wire ends
        self.busy_s = 0.0  # total time characters occupied the wire
        self.collisions = 0
        self.frames: list[Frame] = []
        self._side: Side | None = None
        self._frame_start = 0.0
        self._frame_bytes = 0
        self._head = b""

    def offer(self, side: Side, data: bytes, now: float) -> list[float]:
        """Arrival time of each byte of ``data`` written by ``side`` at ``now``."""
        if not data:
            return []
        if now < self.free_at and side != self._side:
            self.collisions += 1
        start = max(now, self.free_at)
        silence = start - self.free_at
        if side != self._side or silence >= FRAME_SILENCE_CHARS * self.char_s:
            self._close_frame()
            self._side, self._frame_start, self._frame_bytes, self._head = side, start, 0, b""
        char = self.char_s
        arrivals = [start + (i + 1) * char for i in range(len(data))]
        self.free_at = arrivals[-1]
        self.busy_s += len(data) * char
        self._frame_bytes += len(data)
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]
        return arrivals

    def _close_frame(self) -> None:
        if self._side is not None and self._frame_bytes:
            self.frames.append(
                Frame(self._side, self._frame_start, self.free_at, self._frame_bytes, self._head)
            )
            self._frame_bytes = 0

    def finish(self) -> list[Frame]:
        """Close the frame on the wire; every frame carried so far."""
        self._close_frame()
        self._side = None
        return self.frames


class PacedLine:
    """One paced line between ``device_path`` (opened here) and a new pty whose slave end
    is linked at ``link_path`` (for the gateway). ``open()`` / ``close()``; a ``Relay``
    moves the bytes."""

    def __init__(
        self,
        device_path: str | os.PathLike,
        link_path: str | os.PathLike,
        *,
        baudrate: int,
        bits_per_char: int = BITS_PER_CHAR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device_path = str(device_path)
        self.link_path = Path(link_path)
        self.wire = Wire(baudrate, bits_per_char)
        self.clock = clock
        self.max_lag_s = 0.0  # how much later than its wire time a byte was handed over
        self._fds: dict[Side, int] = {}
        self._keep_slave: int | None = None
        self._pending: dict[Side, deque[tuple[float, int]]] = {
            "master": deque(),
            "device": deque(),
        }

    @property
    def frames(self) -> list[Frame]:
        return self.wire.finish()

    def open(self) -> PacedLine:
        device = os.open(self.device_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(device)
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        # Held open, so the master reads nothing (rather than EIO) before the gateway opens.
        self._keep_slave = slave
        with contextlib.suppress(FileNotFoundError):
            self.link_path.unlink()
        self.link_path.symlink_to(os.ttyname(slave))
        self._fds = {"master": master, "device": device}
        return self

    def close(self) -> None:
        for fd in [*self._fds.values(), self._keep_slave]:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fds, self._keep_slave = {}, None
        with contextlib.suppress(FileNotFoundError):
            self.link_path.unlink()

    def fds(self) -> dict[int, Side]:
        return {fd: side for side, fd in self._fds.items()}

    def readable(self, side: Side) -> None:
        """Take what ``side`` wrote and put it on the wire."""
        try:
            data = os.read(self._fds[side], 4096)
        except (BlockingIOError, OSError):
            return
        arrivals = self.wire.offer(side, data, self.clock())
        pending = self._pending["device" if side == "master" else "master"]
        pending.extend(zip(arrivals, data, strict=True))

    def deliver(self) -> float:
        """Hand over every byte whose time has come; the time the next one is due (inf)."""
        now = self.clock()
        next_at = float("inf")
        for side, pending in self._pending.items():
            out = bytearray()
            while pending and pending[0][0] <= now:
                at, byte = pending.popleft()
                self.max_lag_s = max(self.max_lag_s, now - at)
                out.append(byte)
            if out:
                with contextlib.suppress(OSError):
                    os.write(self._fds[side], bytes(out))
            if pending:
                batch_at = min(pending[-1][0], max(pending[0][0], now + BATCH_S))
                next_at = min(next_at, batch_at)
        return next_at


class Relay:
    """Moves bytes of ``lines`` in one thread (or in the caller: ``run(stop)``)."""

    def __init__(self, lines: Sequence[PacedLine]) -> None:
        self.lines = list(lines)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set (checked at least every 50 ms)."""
        owners = {fd: (line, side) for line in self.lines for fd, side in line.fds().items()}
        fds = list(owners)
        next_at = float("inf")
        while not stop.is_set():
            wait = min(max(next_at - time.monotonic(), 0.0), 0.05)
            ready, _, _ = select.select(fds, [], [], wait)
            for fd in ready:
                line, side = owners[fd]
                line.readable(side)
            next_at = min(line.deliver() for line in self.lines)

    def __enter__(self) -> Relay:
        for line in self.lines:
            if not line.fds():
                line.open()
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, args=(self._stop,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        for line in self.lines:
            line.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lines", nargs="+", metavar="DEVICE=LINK", help="paths to relay")
    parser.add_argument("--baudrate", type=int, required=True)
    parser.add_argument("--bits", type=int, default=BITS_PER_CHAR, help="bits per character")
    parser.add_argument("--log", type=Path, help="write every frame here as JSON lines")
    args = parser.parse_args(argv)
    lines = []
    for spec in args.lines:
        device, sep, link = spec.partition("=")
        if not sep:
            parser.error(f"{spec!r}: give DEVICE=LINK")
        lines.append(PacedLine(device, link, baudrate=args.baudrate, bits_per_char=args.bits))
    realtime = _realtime()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for line in lines:
        line.open()
    print("ready", flush=True)
    try:
        Relay(lines).run(stop)
    finally:
        for line in lines:
            line.close()
    if args.log is not None:
        with args.log.open("w") as out:
            for index, line in enumerate(lines):
                summary = {"line": index, "link": str(line.link_path), "busy_s": line.wire.busy_s}
                summary["realtime"] = realtime
                summary |= {"collisions": line.wire.collisions, "max_lag_s": line.max_lag_s}
                out.write(json.dumps(summary) + "\n")
                for frame in line.frames:
                    out.write(json.dumps({"line": index, **frame.to_json()}) + "\n")
    return 0


def _realtime() -> bool:
    """Real-time priority for this process if the system grants it."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
    except (OSError, AttributeError):
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
