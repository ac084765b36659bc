"""Register codec: every type in every word and byte order, scaling, quality."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codec import (
    CodecError,
    active_bits,
    all_orders,
    decode_point,
    decode_registers,
    encode_value,
    round_to_step,
)
from drivers.model import Quality
from drivers.profile import FaultRef, Point

ORDERS = [("big", "big"), ("little", "big"), ("big", "little"), ("little", "little")]


def point(type_="u16", **kw) -> Point:
    kw.setdefault("function", "coil" if type_ == "bool" else "holding")
    return Point(name="p", address=0, type=type_, **kw)


# Known byte layouts, written out by hand: 12.5 as f32 is 0x41480000.
VECTORS = [
    ("f32", "big", "big", [0x4148, 0x0000], 12.5),  # ABCD
    ("f32", "little", "big", [0x0000, 0x4148], 12.5),  # CDAB
    ("f32", "big", "little", [0x4841, 0x0000], 12.5),  # BADC
    ("f32", "little", "little", [0x0000, 0x4841], 12.5),  # DCBA
    ("u32", "big", "big", [0x0001, 0x0002], 65538),
    ("u32", "little", "big", [0x0002, 0x0001], 65538),
    ("i32", "big", "big", [0xFFFF, 0xFFFE], -2),
    ("i16", "big", "big", [0xFFFF], -1),
    ("i16", "big", "little", [0x00FF], -256),
    ("u16", "big", "little", [0x3412], 0x1234),
    ("u64", "big", "big", [0, 0, 0, 7], 7),
    ("u64", "little", "big", [7, 0, 0, 0], 7),
    ("i64", "big", "big", [0xFFFF] * 4, -1),
    ("f64", "big", "big", [0x3FF0, 0, 0, 0], 1.0),  # 1.0 = 0x3FF0000000000000
    ("f64", "little", "little", [0, 0, 0, 0xF03F], 1.0),
    ("bitfield32", "big", "big", [0x8000, 0x0001], 0x80000001),
]


class TestKnownLayouts:
    """Hand-written register layouts decode and encode as the field names say."""

    @pytest.mark.parametrize(("type_", "word", "byte", "regs", "value"), VECTORS)
    def test_decode_and_encode(self, type_, word, byte, regs, value):
        """Decoding gives the value; encoding gives the same registers back."""
        p = point(type_, word_order=word, byte_order=byte)
        assert decode_registers(p, regs) == value
        assert encode_value(p, value) == regs

    @pytest.mark.parametrize(
        ("byte", "regs", "text"),
        [
            ("big", [0x4E4C, 0x3230, 0x3000, 0], "NL200"),
            ("little", [0x4C4E, 0x3032, 0x30], "NL200"),
        ],
    )
    def test_strings(self, byte, regs, text):
        """Two characters per register, NUL padding stripped, byte order swaps pairs."""
        p = point("string", count=len(regs), byte_order=byte)
        assert decode_registers(p, regs) == text
        assert encode_value(p, text) == regs

    def test_bits(self):
        """Coils and discrete inputs are bools."""
        p = point("bool")
        assert decode_registers(p, [True]) is True
        assert decode_registers(p, [0]) is False
        assert encode_value(p, True) == [1]


class TestScaling:
    """raw * scale + offset, with integer counts rounded to the scale's decimals."""

    @pytest.mark.parametrize(
        ("type_", "scale", "offset", "regs", "value"),
        [
            ("u16", 0.1, 0.0, [209], 20.9),
            ("i16", 0.1, 0.0, [0xFF9C], -10.0),
            ("u16", 0.01, -40.0, [6000], 20.0),
            ("u16", 1.0, 0.0, [5], 5),
            ("f32", 1000.0, 0.0, [0x3FC0, 0], 1500.0),  # 1.5 m as mm
        ],
    )
    def test_scaled(self, type_, scale, offset, regs, value):
        """Values come out in engineering units and encode back to the same counts."""
        p = point(type_, scale=scale, offset=offset)
        decoded = decode_registers(p, regs)
        assert decoded == value
        assert type(decoded) is type(value)
        assert encode_value(p, value) == regs


class TestResolution:
    """Values carry the digits the point resolves, not float noise (issue 12)."""

    def f32(self, metres: float) -> list[int]:
        hi, lo = struct.unpack(">HH", struct.pack(">f", metres))
        return [hi, lo]

    def test_f32_is_its_shortest_decimal(self):
        """1.6542879 m as f32 is 1.6542879343032837 in float64, and x 1000 it is
        1654.2879343032837: the f32 carries 1.6542879, so 1654.2879."""
        assert repr(decode_registers(point("f32"), self.f32(1.6542879))) == "1.6542879"
        scaled = decode_registers(point("f32", scale=1000.0), self.f32(1.6542879))
        assert repr(scaled) == "1654.2879"

    @pytest.mark.parametrize(
        ("type_", "scale", "resolution", "regs", "value"),
        [
            ("f32", 1000.0, 1.0, None, 1654.0),
            ("f32", 1.0, 0.1, None, 1.7),
            ("u16", 1.0, 5.0, [1234], 1235.0),
            ("u16", 0.01, 0.1, [2093], 20.9),
        ],
    )
    def test_resolution_rounds_to_its_step(self, type_, scale, resolution, regs, value):
        """A point's ``resolution`` rounds to its step and prints with its decimals."""
        p = point(type_, scale=scale, resolution=resolution)
        decoded = decode_registers(p, regs if regs is not None else self.f32(1.6542879))
        assert decoded == value
        assert repr(decoded) == repr(value)

    @pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
    def test_non_finite_passes_through(self, value):
        assert repr(round_to_step(value, 0.1)) == repr(value)

    def test_step_defaults(self):
        """The step: the resolution, else an integer type's scale; none for a bare float."""
        assert point("u16", scale=0.1).step == 0.1
        assert point("f32").step is None
        assert point("f32", resolution=0.5).step == 0.5
        assert point("bool").step is None


class TestQuality:
    """Range, fault bits and non-finite floats decide the quality."""

    status = Point(
        name="status",
        function="input",
        address=1,
        type="bitfield",
        fault_bits={0: "sensor_fault", 1: "over_range"},
        status_bits={4: "battery_low"},
    )

    def level(self, **kw) -> Point:
        return Point(
            name="level",
            function="input",
            address=0,
            type="u16",
            valid_range=(0.0, 5000.0),
            fault=FaultRef("status", ("sensor_fault",)),
            **kw,
        )

    @pytest.mark.parametrize(
        ("raw", "status_bits", "quality"),
        [
            (100, 0, Quality.GOOD),
            (5000, 0, Quality.GOOD),
            (5001, 0, Quality.OUT_OF_RANGE),
            (100, 0b1, Quality.FAULT),
            (9999, 0b1, Quality.FAULT),
            (100, 0b10, Quality.GOOD),  # over_range is not one of this point's fault bits
            (100, 0b10000, Quality.GOOD),  # a status bit is not a fault
        ],
    )
    def test_quality(self, raw, status_bits, quality):
        """Fault beats range; bits not named for the point do not matter."""
        faults = {"status": active_bits(self.status, status_bits)}
        assert decode_point(self.level(), [raw], faults) == (raw, quality)

    def test_no_fault_information(self):
        """Without the fault register's value only the range is judged."""
        assert decode_point(self.level(), [100], None) == (100, Quality.GOOD)

    def test_nan_is_out_of_range(self):
        """A NaN float (a common 'no reading' marker) is never GOOD."""
        value, quality = decode_point(point("f32"), [0x7FC0, 0])
        assert math.isnan(value)
        assert quality is Quality.OUT_OF_RANGE

    def test_active_bits(self):
        """Set bits come back by name, unnamed bits are ignored."""
        assert active_bits(self.status, 0b10011 | 0x100) == {
            "sensor_fault",
            "over_range",
            "battery_low",
        }


class TestErrors:
    """Registers or values that do not fit raise CodecError naming the point."""

    @pytest.mark.parametrize(
        ("p", "regs"),
        [
            (point("u32"), [1]),
            (point("u16"), [0x10000]),
            (point("u16"), [-1]),
            (point("bool"), [1, 0]),
        ],
    )
    def test_bad_registers(self, p, regs):
        with pytest.raises(CodecError, match=r"^p: "):
            decode_registers(p, regs)

    @pytest.mark.parametrize(
        ("p", "value"),
        [
            (point("u16"), 70000),
            (point("u16"), -1),
            (point("i16"), 40000),
            (point("u16"), "x"),
            (point("u16"), math.inf),
            (point("string", count=1), "abc"),
            (point("string", count=2), "Ω€"),
            (point("bool"), 2),
            (point("bitfield"), 1.5),
        ],
    )
    def test_bad_values(self, p, value):
        with pytest.raises(CodecError, match=r"^p: "):
            encode_value(p, value)


INT_RANGES = {
    "u16": (0, 2**16 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "u32": (0, 2**32 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "u64": (0, 2**64 - 1),
    "i64": (-(2**63), 2**63 - 1),
    "bitfield": (0, 2**16 - 1),
    "bitfield32": (0, 2**32 - 1),
}


@st.composite
def typed_values(draw):
    type_ = draw(st.sampled_from([*INT_RANGES, "f32", "f64", "string", "bool"]))
    word, byte = draw(st.sampled_from(ORDERS))
    if type_ in INT_RANGES:
        value = draw(st.integers(*INT_RANGES[type_]))
    elif type_ == "f32":
        value = draw(st.floats(width=32, allow_nan=False))
    elif type_ == "f64":
        value = draw(st.floats(allow_nan=False))
    elif type_ == "bool":
        value = draw(st.booleans())
    else:
        value = draw(st.text(st.characters(min_codepoint=33, max_codepoint=255), max_size=20))
    count = max(1, (len(value) + 1) // 2) if type_ == "string" else 1
    return point(type_, word_order=word, byte_order=byte, count=count), value


class TestRoundTrip:
    """Property: every type in every order decodes what it encoded."""

    @given(typed_values())
    def test_round_trip(self, case):
        p, value = case
        regs = encode_value(p, value)
        assert len(regs) == p.register_count
        assert all(0 <= r <= 0xFFFF for r in regs)
        decoded = decode_registers(p, regs)
        if p.type == "f32":  # the shortest decimal of the same f32 (TestResolution)
            assert struct.pack(">f", decoded) == struct.pack(">f", value)
            assert encode_value(p, decoded) == regs
        else:
            assert decoded == value

    @given(st.sampled_from(ORDERS), st.floats(width=32, allow_nan=False))
    def test_all_orders_finds_the_value(self, orders, value):
        """probe --raw shows the true value under the label of the order it was sent in."""
        word, byte = orders
        regs = encode_value(point("f32", word_order=word, byte_order=byte), value)
        label = {
            ("big", "big"): "ABCD",
            ("little", "big"): "CDAB",
            ("big", "little"): "BADC",
            ("little", "little"): "DCBA",
        }[orders]
        assert all_orders(regs)[label]["f32"] == value


class TestAllOrders:
    """Every width shows the interpretations an installer needs to pick an order."""

    def test_labels_per_width(self):
        assert set(all_orders([1])) == {"AB", "BA", "text", "text-swapped"}
        assert set(all_orders([1, 2])) >= {"ABCD", "CDAB", "BADC", "DCBA"}
        assert set(all_orders([1, 2, 3, 4])) >= {"ABCDEFGH", "GHEFCDAB", "BADCFEHG", "HGFEDCBA"}
        assert set(all_orders([1, 2, 3])) == {"text", "text-swapped"}

    def test_values(self):
        out = all_orders([0x4148, 0x0000])
        assert out["ABCD"]["f32"] == 12.5
        assert out["CDAB"]["u32"] == 0x4148
        assert out["ABCD"]["i32"] == struct.unpack(">i", bytes.fromhex("41480000"))[0]
        assert out["text"]["string"] == "AH"

    def test_bad_register(self):
        with pytest.raises(CodecError):
            all_orders([0x1FFFF])
