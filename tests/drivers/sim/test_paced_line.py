"""The paced line, the bus benchmark's measuring instrument, on its own: the wire's timing
on an injected clock, then bytes through real ptys arriving no sooner than the baud allows."""

from __future__ import annotations

import os
import select
import time
import tty

import pytest

from drivers.sim.paced_line import Frame, PacedLine, Relay, Wire
from drivers.sim.ptys import PtyPair

CHAR_9600 = 11 / 9600


class TestWire:
    """One half-duplex line, times given."""

    def test_bytes_arrive_one_character_time_apart(self):
        wire = Wire(9600)
        arrivals = wire.offer("master", bytes(8), now=1.0)
        assert arrivals == pytest.approx([1.0 + (i + 1) * CHAR_9600 for i in range(8)])
        assert wire.busy_s == pytest.approx(8 * CHAR_9600)

    def test_a_chunk_written_while_the_wire_is_busy_waits_behind_it(self):
        wire = Wire(9600)
        first = wire.offer("device", bytes(100), now=0.0)
        second = wire.offer("device", bytes(10), now=0.01)  # 100 chars take 0.115 s
        assert second[0] == pytest.approx(first[-1] + CHAR_9600)
        (frame,) = wire.finish()
        assert (frame.side, frame.nbytes) == ("device", 110)
        assert frame.end - frame.start == pytest.approx(110 * CHAR_9600)
        assert wire.collisions == 0

    def test_half_duplex_the_other_side_waits_and_it_is_a_collision(self):
        wire = Wire(9600)
        answer = wire.offer("device", bytes(50), now=0.0)
        request = wire.offer("master", bytes(8), now=0.02)
        assert request[0] == pytest.approx(answer[-1] + CHAR_9600)
        assert wire.collisions == 1

    def test_frames_end_at_a_silence_or_a_turn(self):
        wire = Wire(9600)
        wire.offer("master", bytes([3, 3, 0, 200, 0, 120, 0, 0]), now=0.0)
        wire.offer("device", bytes(245), now=0.02)
        wire.offer("master", bytes([3, 6, 0, 110, 0, 1, 0, 0]), now=0.5)
        wire.offer("master", bytes(4), now=0.5 + 8 * CHAR_9600 + 2 * CHAR_9600)  # after 2 chars
        frames = wire.finish()
        assert [(f.side, f.nbytes) for f in frames] == [
            ("master", 8),
            ("device", 245),
            ("master", 8),
            ("master", 4),
        ]
        assert frames[0].head == bytes([3, 3, 0, 200, 0, 120])
        assert frames[1].start == pytest.approx(0.02)

    def test_frames_round_trip_through_json(self):
        frame = Frame("master", 1.0, 1.01, 8, b"\x03\x06\x00n\x00\x01")
        assert Frame.from_json(frame.to_json()) == frame

    def test_bad_rates_are_refused(self):
        with pytest.raises(ValueError):
            Wire(0)


def _read_exactly(fd: int, n: int, timeout_s: float) -> tuple[bytes, float]:
    """Read ``n`` bytes from ``fd``; the data and the monotonic time the last one came."""
    got = b""
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            got += os.read(fd, n - len(got))
    return got, time.monotonic()


@pytest.mark.parametrize("baudrate", [9600, 38400])
def test_bytes_through_ptys_take_their_wire_time_both_ways(baudrate, tmp_path):
    """96 bytes from the gateway's end reach the device's end intact and no sooner than
    96 characters of 11 bits allow; the answer back likewise; the log holds both frames."""
    char = 11 / baudrate
    request, answer = bytes(range(96)), bytes(range(200, 56, -1))
    with PtyPair(tmp_path, server_name="sim", client_name="dev") as ptys:
        line = PacedLine(ptys.client_path, tmp_path / "gw", baudrate=baudrate)
        with Relay([line]):
            gateway = os.open(tmp_path / "gw", os.O_RDWR | os.O_NOCTTY)
            device = os.open(ptys.server_path, os.O_RDWR | os.O_NOCTTY)
            tty.setraw(gateway)
            tty.setraw(device)
            sent = time.monotonic()
            os.write(gateway, request)
            got, arrived = _read_exactly(device, len(request), 5.0)
            assert got == request
            assert arrived - sent >= len(request) * char
            assert arrived - sent < len(request) * char + 2.0  # loose: a busy machine
            sent = time.monotonic()
            os.write(device, answer)
            got, arrived = _read_exactly(gateway, len(answer), 5.0)
            assert got == answer
            assert arrived - sent >= len(answer) * char
            os.close(gateway)
            os.close(device)
    frames = line.frames
    assert [(f.side, f.nbytes) for f in frames] == [("master", 96), ("device", 144)]
    for frame in frames:
        assert frame.end - frame.start == pytest.approx(frame.nbytes * char)
    assert line.wire.collisions == 0
    assert not (tmp_path / "gw").exists()
