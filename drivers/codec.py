"""Registers <-> values for every profile type, word order and byte order.

A value of ``n`` registers is laid out as ``2n`` bytes: ``byte_order`` says whether each
register carries its high byte first (``big``) or second (``little``); ``word_order`` says
whether the most significant register comes first (``big``) or last (``little``). For a
32-bit value the four combinations are the field names ABCD (big/big), CDAB (word little),
BADC (byte little) and DCBA (both little). Strings keep register order; ``byte_order`` swaps
the two characters within each register. Coils and discrete inputs are single bits (``bool``).

Engineering value = raw * ``scale`` + ``offset``, rounded to the point's resolution. An integer
type with scale 1 and offset 0 stays an ``int``; otherwise the value is a float, rounded for
integer raw types to the decimals of scale and offset (raw 209 at scale 0.1 is 20.9, not
20.900000000000002); an ``f32`` is the shortest decimal that is the same f32 (1.6542879, not
1.6542879343032837) with that many significant digits after scaling; and a point with a
``resolution`` is rounded to it (a radar level in mm to 1 mm).

Public API (stable; the planner, bus runner, probe and simulators use it)::

    decode_registers(point, regs) -> int | float | bool | str      # raises CodecError
    encode_value(point, value) -> list[int]                        # raises CodecError
    decode_point(point, regs, faults=None) -> (value, Quality)     # raises CodecError
    round_to_step(value, step) -> float                            # a value at a resolution
    active_bits(point, value) -> frozenset[str]                    # set bit names of a bitfield
    all_orders(regs) -> dict[str, dict[str, value]]                # probe --raw
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Mapping, Sequence

from drivers.errors import DriverError
from drivers.model import Quality
from drivers.profile import BITFIELD_TYPES, Point

__all__ = [
    "CodecError",
    "Value",
    "active_bits",
    "all_orders",
    "decode_point",
    "decode_registers",
    "encode_value",
    "raw_from_registers",
    "raw_to_registers",
    "round_to_step",
]

Value = int | float | bool | str

# struct format per type (big-endian: registers are first put into ABCD order).
_STRUCT: dict[str, str] = {
    "u16": ">H",
    "i16": ">h",
    "bitfield": ">H",
    "u32": ">I",
    "i32": ">i",
    "f32": ">f",
    "bitfield32": ">I",
    "u64": ">Q",
    "i64": ">q",
    "f64": ">d",
}
_STRUCTS = {t: struct.Struct(f) for t, f in _STRUCT.items()}
_INT_TYPES = frozenset({"u16", "i16", "u32", "i32", "u64", "i64", "bitfield", "bitfield32"})

# Order labels for ``all_orders``: (word_order, byte_order) per label, per width.
_ORDER_LABELS: dict[int, dict[str, tuple[str, str]]] = {
    1: {"AB": ("big", "big"), "BA": ("big", "little")},
    2: {
        "ABCD": ("big", "big"),
        "CDAB": ("little", "big"),
        "BADC": ("big", "little"),
        "DCBA": ("little", "little"),
    },
    4: {
        "ABCDEFGH": ("big", "big"),
        "GHEFCDAB": ("little", "big"),
        "BADCFEHG": ("big", "little"),
        "HGFEDCBA": ("little", "little"),
    },
}
_TYPES_BY_WIDTH: dict[int, tuple[str, ...]] = {
    1: ("u16", "i16"),
    2: ("u32", "i32", "f32"),
    4: ("u64", "i64", "f64"),
}


class CodecError(DriverError, ValueError):
    """Registers that cannot be decoded for a point, or a value that cannot be encoded."""


def _check_registers(point: Point, regs: Sequence[int]) -> None:
    if len(regs) != point.register_count:
        raise CodecError(
            f"{point.name}: expected {point.register_count} register(s), got {len(regs)}"
        )


def _bad_register(regs: Sequence[int], where: str) -> CodecError:
    bad = next((r for r in regs if isinstance(r, bool) or not 0 <= r <= 0xFFFF), regs)
    return CodecError(f"{where}{bad!r} is not a 16-bit register value")


def raw_from_registers(regs: Sequence[int], word_order: str, byte_order: str) -> bytes:
    """The registers as big-endian (ABCD...) bytes, undoing the given orders.

    Raises ``CodecError`` for a value that is not a 16-bit register."""
    words = regs if word_order == "big" else regs[::-1]
    try:
        # byte order is the endianness each register is packed with
        return struct.pack(f"{'>' if byte_order == 'big' else '<'}{len(words)}H", *words)
    except struct.error as exc:
        raise _bad_register(regs, "") from exc


def raw_to_registers(data: bytes, word_order: str, byte_order: str) -> list[int]:
    """Big-endian bytes laid out as registers in the given orders (inverse of the above)."""
    regs = list(struct.unpack(f"{'>' if byte_order == 'big' else '<'}{len(data) // 2}H", data))
    return regs if word_order == "big" else regs[::-1]


def _decode_raw(type_: str, regs: Sequence[int], word_order: str, byte_order: str) -> Value:
    if type_ == "string":
        data = raw_from_registers(regs, "big", byte_order)
        return data.decode("latin-1").rstrip("\x00 ")
    return _STRUCTS[type_].unpack(raw_from_registers(regs, word_order, byte_order))[0]


def decode_registers(point: Point, regs: Sequence[int | bool]) -> Value:
    """Decode one point's registers (or its one bit) into its engineering value.

    Raises ``CodecError`` when the register count or a register value does not fit.
    """
    if point.type == "bool":
        if len(regs) != 1:
            raise CodecError(f"{point.name}: expected 1 bit, got {len(regs)}")
        return bool(regs[0])
    _check_registers(point, regs)  # type: ignore[arg-type]
    if any(isinstance(r, bool) for r in regs):
        raise _bad_register(regs, f"{point.name}: ")  # type: ignore[arg-type]
    try:
        raw = _decode_raw(point.type, regs, point.word_order, point.byte_order)  # type: ignore[arg-type]
    except CodecError as exc:
        raise _bad_register(regs, f"{point.name}: ") from exc  # type: ignore[arg-type]
    if isinstance(raw, str) or point.type in BITFIELD_TYPES:
        return raw
    digits = None
    if point.type == "f32" and isinstance(raw, float) and math.isfinite(raw):
        raw, digits = _shortest_f32(raw)
    if point.resolution is not None:
        return round_to_step(raw * point.scale + point.offset, point.resolution)
    if point.scale == 1.0 and point.offset == 0.0:
        return raw
    value = raw * point.scale + point.offset
    if point.type in _INT_TYPES:
        # An integer count times 0.1 is meant to be x.y, not x.y00000000000002.
        value = round(value, max(_decimals(point.scale), _decimals(point.offset)))
    elif digits is not None and math.isfinite(value):
        value = float(f"{value:.{digits}g}")  # the f32's digits, not the multiply's noise
    return value


def round_to_step(value: float, step: float) -> float:
    """``value`` rounded to a multiple of ``step``, printed with the step's decimals (1654.29
    at step 1 is 1654.0, 20.93 at 0.1 is 20.9, never 20.900000000000002). NaN and infinities
    pass through (quality judges them)."""
    if not math.isfinite(value):
        return value
    return round(round(value / step) * step, _decimals(step))


def _shortest_f32(raw: float) -> tuple[float, int]:
    """The shortest decimal that is the same f32, and its significant digits: an f32 carries
    6 to 9 of them, the rest of its float64 is noise (1.6542879, not 1.6542879343032837)."""
    bits = _F32.pack(raw)
    for digits in range(6, 10):
        short = float(f"{raw:.{digits}g}")
        if _F32.pack(short) == bits:
            return short, digits
    return raw, 17


_F32 = struct.Struct(">f")


@functools.lru_cache(maxsize=256)
def _decimals(x: float) -> int:
    text = repr(float(x))
    if "e" in text:
        return 15
    return len(text.split(".")[1].rstrip("0"))


def encode_value(point: Point, value: Value) -> list[int]:
    """Registers (or ``[0]`` / ``[1]`` for a bit) that decode to ``value``.

    Integer types round ``(value - offset) / scale`` to the nearest integer; strings are
    padded with NULs. Raises ``CodecError`` when the value does not fit the type.
    """
    if point.type == "bool":
        if not isinstance(value, bool | int) or value not in (0, 1):
            raise CodecError(f"{point.name}: {value!r} is not a bit")
        return [int(bool(value))]
    if point.type == "string":
        if not isinstance(value, str):
            raise CodecError(f"{point.name}: {value!r} is not text")
        try:
            data = value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise CodecError(f"{point.name}: {value!r} is not latin-1 text") from exc
        count = point.register_count
        if len(data) > 2 * count:
            raise CodecError(f"{point.name}: {value!r} does not fit {count} registers")
        return raw_to_registers(data.ljust(2 * count, b"\x00"), "big", point.byte_order)
    if isinstance(value, str) or (isinstance(value, bool) and point.type not in BITFIELD_TYPES):
        raise CodecError(f"{point.name}: {value!r} is not a number")
    raw: int | float
    if point.type in BITFIELD_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CodecError(f"{point.name}: {value!r} is not an integer bit field")
        raw = value
    elif point.scale == 1.0 and point.offset == 0.0:
        raw = value  # exact: a 64-bit count must not pass through a float
    else:
        raw = (value - point.offset) / point.scale
    if point.type in _INT_TYPES:
        if not math.isfinite(raw):
            raise CodecError(f"{point.name}: {value!r} is not finite")
        raw = round(raw)
    try:
        data = struct.pack(_STRUCT[point.type], raw)
    except (struct.error, OverflowError) as exc:
        raise CodecError(f"{point.name}: {value!r} does not fit {point.type}") from exc
    return raw_to_registers(data, point.word_order, point.byte_order)


def active_bits(point: Point, value: int) -> frozenset[str]:
    """Names of the fault and status bits set in a bitfield point's value."""
    return frozenset(
        name
        for bit, name in (*point.fault_bits.items(), *point.status_bits.items())
        if value >> bit & 1
    )


def decode_point(
    point: Point,
    regs: Sequence[int | bool],
    faults: Mapping[str, frozenset[str]] | None = None,
) -> tuple[Value, Quality]:
    """Decode a point and judge it.

    ``faults`` maps bitfield point names to their set bit names (``active_bits``) from the
    same poll. The point is ``FAULT`` when its ``fault_point`` has one of its ``fault_on``
    bits set, ``OUT_OF_RANGE`` when a number is outside ``valid_range`` or not finite,
    ``GOOD`` otherwise (``STALE`` is the bus runner's to set). Raises ``CodecError``.
    """
    value = decode_registers(point, regs)
    if point.fault_point is not None and faults:
        active = faults.get(point.fault_point, frozenset())
        if active.intersection(point.fault_on):
            return value, Quality.FAULT
    if isinstance(value, float) and not math.isfinite(value):
        return value, Quality.OUT_OF_RANGE
    if point.valid_range is not None and not isinstance(value, str | bool):
        lo, hi = point.valid_range
        if not lo <= value <= hi:
            return value, Quality.OUT_OF_RANGE
    return value, Quality.GOOD


def all_orders(regs: Sequence[int]) -> dict[str, dict[str, Value]]:
    """Every reading of ``regs`` as one value: order label -> type -> value.

    For 1, 2 or 4 registers: the integer and float types of that width in each word / byte
    order (AB, BA; ABCD, CDAB, BADC, DCBA; and the 64-bit four). Always also ``string`` under
    the labels ``text`` (as sent) and ``text-swapped`` (bytes swapped per register).
    Raises ``CodecError`` for a value that is not a 16-bit register.
    """
    for r in regs:
        if isinstance(r, bool) or not 0 <= r <= 0xFFFF:
            raise CodecError(f"{r!r} is not a 16-bit register value")
    out: dict[str, dict[str, Value]] = {}
    width = len(regs)
    for label, (word, byte) in _ORDER_LABELS.get(width, {}).items():
        out[label] = {t: _decode_raw(t, regs, word, byte) for t in _TYPES_BY_WIDTH[width]}
    if regs:
        out["text"] = {"string": _decode_raw("string", regs, "big", "big")}
        out["text-swapped"] = {"string": _decode_raw("string", regs, "big", "little")}
    return out
