"""Find the Modbus units that answer on a link and name the profile each one matches.

A unit is *present* when it answers a read at all: with values, or with an exception a
device gives for a register it lacks (1-3) or when busy (5, 6). Silence is absence (a real
bus), and so are exceptions 10/11 (a TCP gateway saying the unit is not behind it) and 4 (what
pymodbus's own server answers for an unknown unit id; a device in real trouble answers 4 too,
but an installer is better served by "not found" than by a phantom device).

Presence costs one request per unit id: the identification register most profiles share
(holding 9000 on the shipped ones). Only present units are then identified against every
profile's ``identification`` checks (answers are cached per register block, so models sharing
a vendor block cost no extra requests).

Speed: an absent unit costs a full timeout, so on TCP ``workers`` connections scan in
parallel (pymodbus's client has one request in flight per connection); a serial line and an
RTU-over-TCP gateway take one request at a time, with the shortest safe timeout
(``serial_scan_timeout_s``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from drivers.codec import CodecError, decode_registers
from drivers.errors import (
    DriverError,
    DriverInitError,
    DriverIOError,
    DriverTimeout,
    ModbusExceptionResponse,
)
from drivers.profile import IdentCheck, Profile
from drivers.transport import READ_FUNCTION_OF_TABLE, Transport
from drivers.wire import char_time_s

__all__ = [
    "ABSENT_EXCEPTIONS",
    "DEFAULT_TCP_SCAN_TIMEOUT_S",
    "DEFAULT_TCP_WORKERS",
    "ScanHit",
    "identify",
    "parse_unit_ids",
    "scan_units",
    "serial_scan_timeout_s",
]

DEFAULT_TCP_SCAN_TIMEOUT_S = 0.3
DEFAULT_TCP_WORKERS = 32
ABSENT_EXCEPTIONS = frozenset({4, 10, 11})
# Typical slave turnaround is tens of ms; the frames themselves are ~30 characters.
_SERIAL_TURNAROUND_S = 0.05
_SERIAL_FRAME_CHARS = 40
_MAX_LINK_FAILURES = 3


def serial_scan_timeout_s(baudrate: int) -> float:
    """The shortest timeout that still hears a normal device at ``baudrate``."""
    return round(_SERIAL_TURNAROUND_S + _SERIAL_FRAME_CHARS * char_time_s(baudrate), 3)


@dataclass(frozen=True, slots=True)
class ScanHit:
    """One unit that answered: the matching profile (``None``: no profile matched)."""

    unit_id: int
    profile: str | None
    baudrate: int | None = None
    note: str = ""

    def as_dict(self) -> dict:
        return {
            "unit_id": self.unit_id,
            "profile": self.profile,
            "baudrate": self.baudrate,
            "note": self.note,
        }


def parse_unit_ids(text: str) -> list[int]:
    """``"1-10,17,20-22"`` -> sorted unit ids. Raises ``ValueError`` naming the bad part."""
    ids: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        lo_text, dash, hi_text = part.partition("-")
        try:
            lo = int(lo_text)
            hi = int(hi_text) if dash else lo
        except ValueError:
            raise ValueError(f"{part!r} is not a unit id or range like 1-247") from None
        if not 1 <= lo <= hi <= 247:
            raise ValueError(f"{part!r}: unit ids are 1..247, low before high")
        ids.update(range(lo, hi + 1))
    return sorted(ids)


def _presence_check(profiles: Sequence[Profile]) -> tuple[int, int, int]:
    """The (function, address, count) most profiles identify with; holding 0 if none."""
    firsts = Counter(
        (READ_FUNCTION_OF_TABLE[first.function], first.address)
        for first in (p.identification[0].point for p in profiles if p.identification)
    )
    if not firsts:
        return (3, 0, 1)
    (function, address), _ = firsts.most_common(1)[0]
    return (function, address, 1)


async def _answers(
    t: Transport, unit: int, request: tuple[int, int, int], timeout_s: float, retries: int
):
    """Values, an exception response, or None for silence (after ``retries`` more tries)."""
    function, address, count = request
    for _ in range(retries + 1):
        try:
            return await t.read(function, unit, address, count, timeout_s=timeout_s)
        except DriverTimeout:
            continue
        except ModbusExceptionResponse as exc:
            return exc
    return None


async def identify(
    t: Transport,
    unit: int,
    profiles: Sequence[Profile],
    *,
    timeout_s: float,
    retries: int = 1,
    known: Mapping[tuple[int, int, int], object] | None = None,
) -> str | None:
    """The name of the first profile whose identification checks all match ``unit``.

    ``known``: answers already read, by (function, address, count) (the presence probe's),
    so they are not asked again. Raises ``DriverError`` only when the link fails (not for
    silence or exceptions).
    """
    cache: dict[tuple[int, int, int], object] = dict(known or {})

    async def value_of(check: IdentCheck):
        point = check.point
        key = (READ_FUNCTION_OF_TABLE[point.function], point.address, point.register_count)
        if key not in cache:
            cache[key] = await _answers(t, unit, key, timeout_s, retries)
        answer = cache[key]
        if not isinstance(answer, list):
            return None
        try:
            return decode_registers(point, answer)
        except CodecError:
            return None

    for profile in profiles:
        if not profile.identification:
            continue
        for check in profile.identification:
            if not check.matches(await value_of(check)):
                break
        else:
            return profile.name
    return None


async def scan_units(
    connect: Callable[[], Transport],
    unit_ids: Iterable[int],
    profiles: Sequence[Profile],
    *,
    timeout_s: float,
    workers: int = 1,
    retries: int | None = None,
    baudrate: int | None = None,
    on_progress: Callable[[int, int, ScanHit | None], None] | None = None,
) -> list[ScanHit]:
    """Scan ``unit_ids`` over ``workers`` transports made by ``connect`` (one per worker).

    ``retries`` after a timeout: default 0 on TCP (a TCP reply is not lost on the way; silence
    is absence) and 1 on a serial line (a frame can be lost to noise).

    ``on_progress(done, total, hit_or_None)`` is called after each unit. Returns the hits in
    unit order. Raises ``DriverInitError`` when no worker can open the link,
    ``DriverIOError`` when the link keeps breaking.
    """
    ids = list(unit_ids)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for unit in ids:
        queue.put_nowait(unit)
    presence = _presence_check(profiles)

    def tries(t: Transport) -> int:
        if retries is not None:
            return retries
        return 1 if t.serial else 0

    hits: list[ScanHit] = []
    done = 0
    opened = 0
    init_errors: list[DriverInitError] = []

    link_failures: Counter[int] = Counter()

    async def worker() -> None:
        nonlocal done, opened
        t = connect()
        try:
            try:
                await t.connect()
            except DriverInitError as exc:
                init_errors.append(exc)  # a gateway may cap its connections: others go on
                return
            opened += 1
            while not queue.empty():
                unit = queue.get_nowait()
                try:
                    hit = await _scan_one(
                        t, unit, presence, profiles, timeout_s, tries(t), baudrate
                    )
                except DriverError as exc:
                    # The link broke: reopen and let this or another worker retry the unit.
                    link_failures[unit] += 1
                    if link_failures[unit] > _MAX_LINK_FAILURES:
                        raise DriverIOError(f"link keeps failing at unit {unit}: {exc}") from exc
                    queue.put_nowait(unit)
                    t.close()
                    await t.connect()
                    continue
                done += 1
                if hit is not None:
                    hits.append(hit)
                if on_progress is not None:
                    on_progress(done, len(ids), hit)
        finally:
            t.close()

    tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, min(workers, len(ids))))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:  # one worker failed: stop the others before reporting
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if opened == 0 and init_errors:
        raise init_errors[0]
    return sorted(hits, key=lambda h: h.unit_id)


async def _scan_one(t, unit, presence, profiles, timeout_s, retries, baudrate) -> ScanHit | None:
    answer = await _answers(t, unit, presence, timeout_s, retries)
    if answer is None:
        return None
    note = ""
    if isinstance(answer, ModbusExceptionResponse):
        if answer.code in ABSENT_EXCEPTIONS:
            return None
        note = f"answered {answer.name} (code {answer.code})"
    profile = await identify(
        t, unit, profiles, timeout_s=timeout_s, retries=retries, known={presence: answer}
    )
    if profile is not None:
        # The presence probe's exception only says how an unknown unit showed itself; next to
        # a named profile it reads like a fault at the kerb (a cover sensor has no holding 0).
        note = ""
    return ScanHit(unit_id=unit, profile=profile, baudrate=baudrate, note=note)
