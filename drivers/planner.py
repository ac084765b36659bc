"""Read planning: merge the points that are due into the fewest Modbus requests.

Each Modbus function (coils, discrete inputs, input registers, holding registers) is its own
request type, so points are grouped per function, sorted by address and cut into requests
greedily: a request grows while it stays within ``max_registers`` (125, the Modbus limit for
registers) or ``max_bits`` (2000 for coils / discrete inputs), reads through no more than
``max_gap`` unused addresses between two points, and never spans an address the profile marks
unreadable (devices answer "illegal data address" for the whole request if one is).

Why greedy is optimal: points of one function do not overlap, so some optimal plan puts
consecutive points (in address order) into each request; and every rule above holds for any
sub-run of a feasible run. Taking the longest feasible run first can then never cost a
request (the usual exchange argument). ``tests/drivers/test_planner.py`` checks it against a
brute force on small maps.

Public API (stable; the bus runner and probe use it)::

    plan_reads(points, *, max_registers=125, max_bits=2000, max_gap=16, max_bit_gap=256,
               unreadable=()) -> ReadPlan                           # raises PlanError
    plan_profile(profile, points=None, **limits) -> ReadPlan        # the profile's unreadable
    ReadPlan.requests: tuple[ReadRequest(function, address, count, points), ...]
    ReadPlan.decode(responses) -> list[tuple[Point, value, Quality]]   # raises CodecError
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from drivers.codec import CodecError, Value, active_bits, decode_point, decode_registers
from drivers.errors import DriverError
from drivers.model import Quality
from drivers.profile import BIT_FUNCTIONS, BITFIELD_TYPES, FUNCTIONS, Point, Profile

__all__ = [
    "DEFAULT_MAX_BITS",
    "DEFAULT_MAX_BIT_GAP",
    "DEFAULT_MAX_GAP",
    "DEFAULT_MAX_REGISTERS",
    "PlanError",
    "ReadPlan",
    "ReadRequest",
    "plan_profile",
    "plan_reads",
]

DEFAULT_MAX_REGISTERS = 125  # Modbus: read holding / input registers, at most 125 per request
DEFAULT_MAX_BITS = 2000  # Modbus: read coils / discrete inputs, at most 2000 per request
DEFAULT_MAX_GAP = 16  # reading 16 unused registers costs less than a second round trip
DEFAULT_MAX_BIT_GAP = 256  # bits are packed 8 per byte: gaps are nearly free

Unreadable = tuple[str, int, int]


class PlanError(DriverError, ValueError):
    """Points that cannot be read at all (too wide for one request, or unreadable)."""


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One Modbus read: ``count`` registers (or bits) of ``function`` from ``address``,
    carrying ``points`` (in address order)."""

    function: str
    address: int
    count: int
    points: tuple[Point, ...]

    @property
    def end(self) -> int:
        return self.address + self.count - 1


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """The requests that read a set of points, and how to decode their answers."""

    requests: tuple[ReadRequest, ...]

    @property
    def points(self) -> tuple[Point, ...]:
        return tuple(p for r in self.requests for p in r.points)

    def decode(
        self,
        responses: Mapping[ReadRequest, Sequence[int | bool] | None],
        memo: dict[str, tuple[Sequence[int | bool], frozenset[str] | None, Value, Quality]]
        | None = None,
    ) -> list[tuple[Point, Value, Quality]]:
        """Decode every point whose request has a response (``None`` or missing: skipped,
        the bus runner marks those stale).

        Bitfield points are decoded first, so a point's ``fault_point`` flags apply even
        when the two sit in different requests. Bit responses may be longer than ``count``
        (pymodbus pads coils to whole bytes). Raises ``CodecError`` for a short response.

        ``memo`` (the caller's, one per device) remembers each point's registers, the flags
        of its ``fault_point`` and what they decoded to: a point whose registers and flags
        are those of the last poll is not decoded again (decoding is a pure function of
        them, so this is exact; most registers of a device change seldom).
        """
        slices: list[tuple[Point, Sequence[int | bool]]] = []
        for request in self.requests:
            values = responses.get(request)
            if values is None:
                continue
            if len(values) < request.count:
                raise CodecError(
                    f"{request.function} {request.address}+{request.count}: "
                    f"response has only {len(values)} values"
                )
            for point in request.points:
                start = point.address - request.address
                slices.append((point, values[start : start + point.register_count]))
        faults: dict[str, frozenset[str]] = {}
        for point, regs in slices:
            if point.type in BITFIELD_TYPES:
                faults[point.name] = active_bits(point, decode_registers(point, regs))  # type: ignore[arg-type]
        out = []
        for point, regs in slices:
            flags = faults.get(point.fault_point) if point.fault_point is not None else None
            if memo is not None:
                last = memo.get(point.name)
                if last is not None and last[0] == regs and last[1] == flags:
                    out.append((point, last[2], last[3]))
                    continue
            value, quality = decode_point(point, regs, faults)
            if memo is not None:
                memo[point.name] = (regs, flags, value, quality)
            out.append((point, value, quality))
        return out


def _spans_unreadable(
    function: str, start: int, end: int, unreadable: Iterable[Unreadable]
) -> bool:
    return any(f == function and s <= end and start <= e for f, s, e in unreadable)


def plan_reads(
    points: Iterable[Point],
    *,
    max_registers: int = DEFAULT_MAX_REGISTERS,
    max_bits: int = DEFAULT_MAX_BITS,
    max_gap: int = DEFAULT_MAX_GAP,
    max_bit_gap: int = DEFAULT_MAX_BIT_GAP,
    unreadable: Iterable[Unreadable] = (),
) -> ReadPlan:
    """The fewest requests that read every point (see the module docstring for the rules).

    ``max_gap`` / ``max_bit_gap`` are the most unused registers / bits read through between
    two points of one request (0: only adjacent points merge). Requests come out ordered by
    function (coil, discrete, input, holding) then address. Raises ``PlanError`` for a point
    wider than one request or lying in an unreadable range, or for a bad limit.
    """
    if not 1 <= max_registers <= DEFAULT_MAX_REGISTERS:
        raise PlanError(f"max_registers {max_registers} is not in 1..{DEFAULT_MAX_REGISTERS}")
    if not 1 <= max_bits <= DEFAULT_MAX_BITS:
        raise PlanError(f"max_bits {max_bits} is not in 1..{DEFAULT_MAX_BITS}")
    if max_gap < 0 or max_bit_gap < 0:
        raise PlanError("max_gap and max_bit_gap must not be negative")
    unreadable = tuple(unreadable)
    by_function: dict[str, list[Point]] = {f: [] for f in FUNCTIONS}
    for point in points:
        by_function[point.function].append(point)
    requests: list[ReadRequest] = []
    for function in FUNCTIONS:
        bits = function in BIT_FUNCTIONS
        limit = max_bits if bits else max_registers
        gap_limit = max_bit_gap if bits else max_gap
        group: list[Point] = []
        start = end = 0
        for point in sorted(by_function[function], key=lambda p: (p.address, p.end)):
            if point.register_count > limit:
                raise PlanError(
                    f"point {point.name!r} spans {point.register_count} registers, more than "
                    f"one request may read ({limit})"
                )
            if _spans_unreadable(function, point.address, point.end, unreadable):
                raise PlanError(
                    f"point {point.name!r} ({function} {point.address}..{point.end}) lies in "
                    "an unreadable range"
                )
            if group:
                new_end = max(end, point.end)
                if (
                    point.address - end - 1 <= gap_limit
                    and new_end - start + 1 <= limit
                    and not _spans_unreadable(function, start, new_end, unreadable)
                ):
                    group.append(point)
                    end = new_end
                    continue
                requests.append(ReadRequest(function, start, end - start + 1, tuple(group)))
            group, start, end = [point], point.address, point.end
        if group:
            requests.append(ReadRequest(function, start, end - start + 1, tuple(group)))
    return ReadPlan(tuple(requests))


def plan_profile(
    profile: Profile, points: Iterable[Point] | None = None, **limits: int
) -> ReadPlan:
    """``plan_reads`` for a profile's enabled points (or the given subset), honouring the
    profile's unreadable ranges. Raises ``PlanError``."""
    chosen = profile.enabled_points if points is None else tuple(points)
    unreadable = [(r.function, r.start, r.end) for r in profile.unreadable]
    return plan_reads(chosen, unreadable=unreadable, **limits)
