"""Noise-logger recordings over Modbus: start, wait until ready, block transfer, checksum.

The register protocol is in docs/architecture.md; the addresses come from the profile's
``recording`` block (``drivers.profile.RecordingBlock``), so another logger model only needs
another YAML file. In short: write the duration, write 1 to ``control`` (to unit 0 as a
broadcast so every logger on the bus starts at the same instant), poll ``status`` until 2
(ready), read sample rate / count / scale / CRC-32, then for each block N write N to
``block_index`` and read ``block_size`` samples from ``block``.

    recording = await record(transport, 3, profile.recording, 8, device="nl-03")
    both = await record_broadcast(transport, {1: "nl-01", 2: "nl-02"}, profile.recording, 8)

Pass ``runner.shared_transport()`` of a ``drivers.bus.BusRunner`` to let block transfers
interleave with polling on a half-duplex bus. Every request is retried ``retries`` times after
a timeout (a garbled block on a noisy bus costs one request, not the recording).

Raises ``RecordingError`` (a ``DriverIOError``): the logger reports an error, never gets
ready, or the samples fail the CRC; ``DriverError``s of the transport otherwise.
"""

from __future__ import annotations

import asyncio
import math
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping

import structlog

from drivers.errors import DriverError, DriverIOError, DriverTimeout
from drivers.model import Recording
from drivers.profile import RecordingBlock
from drivers.transport import READ_HOLDING_REGISTERS, Transport

__all__ = [
    "DEFAULT_READY_TIMEOUT_S",
    "DEFAULT_STATUS_POLL_S",
    "STATUS_ERROR",
    "STATUS_IDLE",
    "STATUS_READY",
    "STATUS_RECORDING",
    "RecordingError",
    "record",
    "record_broadcast",
]

log = structlog.get_logger("drivers.noise_logger")

STATUS_IDLE, STATUS_RECORDING, STATUS_READY, STATUS_ERROR = 0, 1, 2, 3
DEFAULT_STATUS_POLL_S = 0.5
DEFAULT_READY_TIMEOUT_S = 30.0  # beyond the duration: loggers finish writing to flash
DEFAULT_RETRIES = 2


class RecordingError(DriverIOError):
    """A recording failed: logger error status, never ready, or a checksum mismatch."""


class _Session:
    """The numbers one recording run shares (transport, timings, injected sleep)."""

    def __init__(self, transport, block, retries, status_poll_s, ready_timeout_s, sleep):
        if block.block_size < 1:
            raise ValueError("block_size must be >= 1")
        self.t: Transport = transport
        self.block: RecordingBlock = block
        self.retries = retries
        self.status_poll_s = status_poll_s
        self.ready_timeout_s = ready_timeout_s
        self.sleep = sleep

    async def _retry(self, call):
        for attempt in range(self.retries + 1):
            try:
                return await call()
            except DriverTimeout:
                if attempt == self.retries:
                    raise
        raise AssertionError("unreachable")

    async def read(self, unit: int, address: int, count: int) -> list[int]:
        return await self._retry(lambda: self.t.read(READ_HOLDING_REGISTERS, unit, address, count))

    async def write(self, unit: int, address: int, values: list[int]) -> None:
        await self._retry(lambda: self.t.write_registers(unit, address, values))

    def u32(self, words: list[int]) -> int:
        hi, lo = (words[0], words[1]) if self.block.word_order == "big" else (words[1], words[0])
        return (hi << 16) | lo

    def f32(self, words: list[int]) -> float:
        return struct.unpack(">f", self.u32(words).to_bytes(4, "big"))[0]

    async def wait_ready(self, unit: int, duration_s: int) -> None:
        """Poll status until ready; raises ``RecordingError`` on error status or timeout."""
        await self.sleep(duration_s)
        polls = max(1, math.ceil(self.ready_timeout_s / self.status_poll_s))
        status = None
        for _ in range(polls):
            (status,) = await self.read(unit, self.block.status, 1)
            if status == STATUS_READY:
                return
            if status == STATUS_ERROR:
                raise RecordingError(f"unit {unit}: logger reports a recording error")
            await self.sleep(self.status_poll_s)
        raise RecordingError(
            f"unit {unit}: recording not ready {self.ready_timeout_s:g} s after "
            f"{duration_s} s of recording (status {status})"
        )

    async def fetch(self, unit: int, device: str, started_at: float) -> Recording:
        """Read header and blocks of a ready recording and check its CRC-32."""
        b = self.block
        # sample_rate .. crc32 are contiguous in the shipped protocol; read them together.
        first, last = b.sample_rate, max(b.sample_count, b.scale, b.crc32) + 1
        header = await self.read(unit, first, last - first + 1)

        def at(address: int, n: int) -> list[int]:
            return header[address - first : address - first + n]

        fs = at(b.sample_rate, 1)[0]
        count = self.u32(at(b.sample_count, 2))
        scale = self.f32(at(b.scale, 2))
        crc = self.u32(at(b.crc32, 2))
        if fs <= 0 or count <= 0:
            raise RecordingError(f"unit {unit}: empty recording (fs {fs}, {count} samples)")
        blocks = math.ceil(count / b.block_size)
        counts = bytearray()  # big-endian 16-bit words as they arrive: the int16 samples' bytes
        for index in range(blocks):
            await self.write(unit, b.block_index, [index])
            words = await self.read(unit, b.block, b.block_size)
            counts += struct.pack(f">{len(words)}H", *words)
        del counts[2 * count :]  # the last block's padding
        actual = zlib.crc32(counts)
        if actual != crc:
            raise RecordingError(
                f"unit {unit}: recording checksum mismatch (logger {crc:08x}, read {actual:08x})"
            )
        return Recording(device, float(fs), bytes(counts), float(scale), started_at)


def _check_duration(block: RecordingBlock, duration_s: int) -> int:
    if not isinstance(duration_s, int) or not 1 <= duration_s <= block.max_duration_s:
        raise ValueError(f"duration_s {duration_s!r} is not in 1..{block.max_duration_s}")
    return duration_s


async def record(
    transport: Transport,
    unit: int,
    block: RecordingBlock,
    duration_s: int,
    *,
    device: str | None = None,
    retries: int = DEFAULT_RETRIES,
    status_poll_s: float = DEFAULT_STATUS_POLL_S,
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> Recording:
    """Start one logger, wait, transfer and verify its recording.

    ``started_at`` is the wall time the start was sent. Raises ``ValueError`` (bad
    duration), ``RecordingError``, ``DriverError``.
    """
    _check_duration(block, duration_s)
    s = _Session(transport, block, retries, status_poll_s, ready_timeout_s, sleep)
    await s.write(unit, block.duration_s, [duration_s])
    started_at = wall()
    await s.write(unit, block.control, [1])
    try:
        await s.wait_ready(unit, duration_s)
        return await s.fetch(unit, device or f"unit-{unit}", started_at)
    except DriverError:
        await _abort(s, unit)
        raise


async def record_broadcast(
    transport: Transport,
    units: Mapping[int, str],
    block: RecordingBlock,
    duration_s: int,
    *,
    errors: dict[int, DriverError] | None = None,
    retries: int = DEFAULT_RETRIES,
    status_poll_s: float = DEFAULT_STATUS_POLL_S,
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> dict[int, Recording]:
    """Start every logger on the bus with one broadcast, then collect ``units`` (unit -> name).

    All recordings share one ``started_at`` (the broadcast instant): that is what makes
    time-difference leak location work. A logger that fails is left out of the result; its
    error goes into ``errors`` when given, and is logged. Raises ``RecordingError`` if none
    succeeded, ``ValueError`` for a bad duration, ``DriverError`` if the broadcast cannot
    be sent.
    """
    _check_duration(block, duration_s)
    if not units:
        raise ValueError("record_broadcast needs at least one unit")
    s = _Session(transport, block, retries, status_poll_s, ready_timeout_s, sleep)
    await transport.broadcast_registers(block.duration_s, [duration_s])
    started_at = wall()
    await transport.broadcast_registers(block.control, [1])
    await sleep(duration_s)
    done: dict[int, Recording] = {}
    failed: dict[int, DriverError] = {} if errors is None else errors
    for unit, name in units.items():
        try:
            await s.wait_ready(unit, 0)
            done[unit] = await s.fetch(unit, name, started_at)
        except DriverError as exc:
            failed[unit] = exc
            log.warning("recording failed", device=name, unit=unit, reason=str(exc))
            await _abort(s, unit)
    if not done:
        reasons = "; ".join(str(e) for e in failed.values())
        raise RecordingError(f"no logger delivered its recording: {reasons}")
    return done


async def _abort(s: _Session, unit: int) -> None:
    """Best effort: tell the logger to stop, so it does not keep a half recording busy."""
    try:
        await s.t.write_registers(unit, s.block.control, [0])
    except DriverError:
        pass
