"""Read planner: fewest requests within the Modbus limits, gaps and unreadable ranges."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.codec import decode_registers, encode_value
from drivers.model import Quality
from drivers.planner import PlanError, ReadRequest, plan_profile, plan_reads
from drivers.profile import REGISTER_WIDTH, FaultRef, Point, ProfileRegistry


def reg(name, address, type_="u16", function="holding", **kw) -> Point:
    return Point(name=name, function=function, address=address, type=type_, **kw)


def spans(plan):
    return [(r.function, r.address, r.count, [p.name for p in r.points]) for r in plan.requests]


class TestPlanTable:
    """Hand-checked maps: what merges, what splits, and why."""

    @pytest.mark.parametrize(
        ("points", "kw", "expected"),
        [
            # adjacent registers merge into one read
            (
                [reg("a", 0), reg("b", 1, "f32"), reg("c", 3)],
                {},
                [("holding", 0, 4, ["a", "b", "c"])],
            ),
            # a gap within max_gap is read through, a wider one splits
            (
                [reg("a", 0), reg("b", 5), reg("c", 30)],
                {"max_gap": 4},
                [("holding", 0, 6, ["a", "b"]), ("holding", 30, 1, ["c"])],
            ),
            # max_gap 0: only adjacent points merge
            (
                [reg("a", 0), reg("b", 2)],
                {"max_gap": 0},
                [("holding", 0, 1, ["a"]), ("holding", 2, 1, ["b"])],
            ),
            # never through an unreadable address, however small the gap
            (
                [reg("a", 0), reg("b", 3)],
                {"unreadable": [("holding", 2, 2)]},
                [("holding", 0, 1, ["a"]), ("holding", 3, 1, ["b"])],
            ),
            # an unreadable range of another function does not matter
            (
                [reg("a", 0), reg("b", 3)],
                {"unreadable": [("input", 2, 2)]},
                [("holding", 0, 4, ["a", "b"])],
            ),
            # functions are separate requests even at equal addresses
            (
                [reg("a", 0, function="input"), reg("b", 0), reg("c", 0, "bool", "coil")],
                {},
                [
                    ("coil", 0, 1, ["c"]),
                    ("input", 0, 1, ["a"]),
                    ("holding", 0, 1, ["b"]),
                ],
            ),
            # the 125-register limit splits a long map
            (
                [reg(f"p{i}", i * 2, "f32") for i in range(70)],
                {},
                [
                    ("holding", 0, 124, [f"p{i}" for i in range(62)]),
                    ("holding", 124, 16, [f"p{i}" for i in range(62, 70)]),
                ],
            ),
            # bits: 2000 per request, wide gaps are cheap
            (
                [reg("a", 0, "bool", "discrete"), reg("b", 200, "bool", "discrete")],
                {},
                [("discrete", 0, 201, ["a", "b"])],
            ),
        ],
    )
    def test_plan(self, points, kw, expected):
        """The plan is exactly the hand-derived one."""
        assert spans(plan_reads(points, **kw)) == expected

    @pytest.mark.parametrize(
        ("points", "kw", "fragment"),
        [
            ([reg("s", 0, "string", count=126)], {}, "more than one request"),
            ([reg("a", 5)], {"unreadable": [("holding", 0, 9)]}, "unreadable range"),
            ([reg("a", 0)], {"max_registers": 200}, "max_registers 200"),
            ([reg("a", 0)], {"max_gap": -1}, "must not be negative"),
        ],
    )
    def test_errors(self, points, kw, fragment):
        with pytest.raises(PlanError, match=fragment):
            plan_reads(points, **kw)


class TestShippedProfiles:
    """Every shipped profile plans cleanly and decodes what a device would send."""

    @pytest.mark.parametrize("name", ProfileRegistry().names())
    def test_plan_and_decode(self, name):
        """Encode a plausible value per point, serve it as responses, decode it back."""
        profile = ProfileRegistry().get(name)
        plan = plan_profile(profile)
        values = {}
        responses = {}
        for request in plan.requests:
            regs = [0] * request.count
            for p in request.points:
                if p.type == "string":
                    value = "X"
                elif p.type == "bool":
                    value = True
                elif p.valid_range is not None:
                    value = p.valid_range[0]
                else:
                    value = 1
                encoded = encode_value(p, value)
                regs[p.address - request.address : p.address - request.address + len(encoded)] = (
                    encoded
                )
                values[p.name] = value
            responses[request] = regs
        decoded = plan.decode(responses)
        assert {p.name for p, _, _ in decoded} == {p.name for p in profile.points}
        for p, value, _quality in decoded:
            assert value == pytest.approx(values[p.name]), p.name

    def test_noise_logger_avoids_its_gap(self):
        """The NL200 refuses holding 111..199: the plan never reads there."""
        plan = plan_profile(ProfileRegistry().get("noise-logger-nl200"), max_gap=125)
        for r in plan.requests:
            if r.function == "holding":
                assert r.end < 111 or r.address > 199


class TestDecode:
    """Fault flags apply across requests; missing responses are skipped."""

    status = reg("status", 50, "bitfield", fault_bits={0: "sensor_fault"})
    level = reg("level", 0, valid_range=(0.0, 100.0), fault=FaultRef("status", ("sensor_fault",)))

    def test_fault_bit_in_another_request(self):
        """The status register is read separately, and still marks the level as a fault."""
        plan = plan_reads([self.level, self.status], max_gap=0)
        assert len(plan.requests) == 2
        responses = {r: [1] if r.address == 50 else [42] for r in plan.requests}
        result = {p.name: (v, q) for p, v, q in plan.decode(responses)}
        assert result["level"] == (42, Quality.FAULT)

    def test_memo_decodes_only_what_changed_and_still_sees_the_fault_flag(self):
        """With a memo, a point whose registers and fault flags are those of the last poll
        comes back as it was decoded; the flag of a fault bit in another request, set while
        the level's own register stays the same, still makes the level a fault (and
        clearing it makes it good again)."""
        plan = plan_reads([self.level, self.status], max_gap=0)
        memo: dict = {}

        def poll(status: int, level: int) -> dict:
            responses = {r: [status] if r.address == 50 else [level] for r in plan.requests}
            with_memo = {p.name: (v, q) for p, v, q in plan.decode(responses, memo)}
            assert with_memo == {p.name: (v, q) for p, v, q in plan.decode(responses)}
            return with_memo

        assert poll(0, 42)["level"] == (42, Quality.GOOD)
        assert poll(0, 42)["level"] == (42, Quality.GOOD)
        assert poll(1, 42)["level"] == (42, Quality.FAULT)
        assert poll(0, 42)["level"] == (42, Quality.GOOD)
        assert poll(0, 101)["level"] == (101, Quality.OUT_OF_RANGE)
        assert set(memo) == {"level", "status"}

    def test_missing_response_is_skipped(self):
        """A failed request drops only its own points."""
        plan = plan_reads([self.level, self.status], max_gap=0)
        first = plan.requests[0]
        result = plan.decode({first: [42]})
        assert [(p.name, v, q) for p, v, q in result] == [("level", 42, Quality.GOOD)]

    def test_padded_bits_and_short_responses(self):
        """Bit responses padded to whole bytes are fine; a short response is an error."""
        points = [reg("a", 0, "bool", "coil"), reg("b", 2, "bool", "coil")]
        plan = plan_reads(points)
        (request,) = plan.requests
        decoded = plan.decode({request: [True, False, True, False, False, False, False, False]})
        assert [v for _, v, _ in decoded] == [True, True]
        with pytest.raises(ValueError, match="response has only 2 values"):
            plan.decode({request: [True, False]})


# ----------------------------------------------------------------- properties


@st.composite
def maps(draw, max_points=7):
    """A random non-overlapping map of one or two functions, plus unreadable ranges that
    avoid the points, plus limits."""
    function = draw(st.sampled_from(["holding", "coil"]))
    types = ["bool"] if function == "coil" else ["u16", "u32", "f64", "string"]
    n = draw(st.integers(1, max_points))
    points, address = [], 0
    for i in range(n):
        address += draw(st.integers(0, 12))
        type_ = draw(st.sampled_from(types))
        count = draw(st.integers(1, 6)) if type_ == "string" else 1
        p = Point(name=f"p{i}", function=function, address=address, type=type_, count=count)
        points.append(p)
        address = p.end + 1
    free = []
    for a, b in zip(
        [-1, *[p.end for p in points]], [*[p.address for p in points], address + 5], strict=True
    ):
        if b - a > 1:
            free.append((a + 1, b - 1))
    unreadable = []
    for start, end in draw(st.lists(st.sampled_from(free), max_size=3)) if free else []:
        s = draw(st.integers(start, end))
        unreadable.append((function, s, draw(st.integers(s, end))))
    limit = draw(st.integers(8, 20))
    gap = draw(st.integers(0, 8))
    kw = {"max_gap": gap, "max_bit_gap": gap, "unreadable": unreadable}
    kw["max_bits" if function == "coil" else "max_registers"] = limit
    return draw(st.permutations(points)), kw, limit


def feasible(block, kw, limit):
    """Whether one request could carry exactly these points (brute-force definition)."""
    block = sorted(block, key=lambda p: p.address)
    start, end = block[0].address, max(p.end for p in block)
    if end - start + 1 > limit:
        return False
    if any(a.end + 1 + kw["max_gap"] < b.address for a, b in itertools.pairwise(block)):
        return False
    function = block[0].function
    return not any(f == function and s <= end and start <= e for f, s, e in kw["unreadable"])


def partitions(items):
    """Every set partition (Bell numbers: 877 for 7 items)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in partitions(rest):
        for i in range(len(part)):
            yield [*part[:i], [first, *part[i]], *part[i + 1 :]]
        yield [[first], *part]


def brute_force_minimum(points, kw, limit):
    return min(
        len(part) for part in partitions(list(points)) if all(feasible(b, kw, limit) for b in part)
    )


class TestPlannerProperties:
    """Properties over random maps."""

    @given(maps())
    def test_covers_everything_within_limits(self, case):
        """Every point read exactly once, inside its request, limits and gaps honoured,
        no unreadable address touched."""
        points, kw, limit = case
        plan = plan_reads(points, **kw)
        seen = [p.name for r in plan.requests for p in r.points]
        assert sorted(seen) == sorted(p.name for p in points)
        for r in plan.requests:
            assert isinstance(r, ReadRequest)
            assert 1 <= r.count <= limit
            assert all(r.address <= p.address and p.end <= r.end for p in r.points)
            assert r.address == r.points[0].address and r.end == max(p.end for p in r.points)
            assert feasible(r.points, kw, limit)
            for f, s, e in kw["unreadable"]:
                assert not (f == r.function and s <= r.end and r.address <= e)

    @given(maps(max_points=7))
    def test_as_few_requests_as_brute_force(self, case):
        """Greedy is optimal: never more requests than the best of all partitions."""
        points, kw, limit = case
        assert len(plan_reads(points, **kw).requests) == brute_force_minimum(points, kw, limit)

    def test_register_widths_cover_every_type(self):
        """The planner knows the width of every type a profile may use."""
        for type_, width in REGISTER_WIDTH.items():
            count = 3 if type_ == "string" else 1
            function = "coil" if type_ == "bool" else "holding"
            p = Point(name="x", function=function, address=0, type=type_, count=count)
            (request,) = plan_reads([p]).requests
            assert request.count == (3 if type_ == "string" else width)


@st.composite
def valued_maps(draw):
    """Random maps of every function and type, each point with a value that fits it."""
    points, values = [], {}
    address = {f: 0 for f in ("coil", "discrete", "input", "holding")}
    for i in range(draw(st.integers(1, 12))):
        function = draw(st.sampled_from(list(address)))
        if function in ("coil", "discrete"):
            type_, value = "bool", draw(st.booleans())
        else:
            type_ = draw(st.sampled_from(["u16", "i16", "u32", "i32", "f32", "f64", "string"]))
            value = {
                "u16": st.integers(0, 2**16 - 1),
                "i16": st.integers(-(2**15), 2**15 - 1),
                "u32": st.integers(0, 2**32 - 1),
                "i32": st.integers(-(2**31), 2**31 - 1),
                "f32": st.floats(width=32, allow_nan=False),
                "f64": st.floats(allow_nan=False),
                "string": st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=6),
            }[type_]
            value = draw(value)
        word, byte = draw(st.sampled_from([("big", "big"), ("little", "big"), ("big", "little")]))
        address[function] += draw(st.integers(0, 20))
        p = Point(
            name=f"p{i}",
            function=function,
            address=address[function],
            type=type_,
            count=3 if type_ == "string" else 1,
            word_order=word,
            byte_order=byte,
        )
        address[function] = p.end + 1
        points.append(p)
        values[p.name] = value
    return points, values


class TestPlanRoundTrip:
    @given(valued_maps(), st.integers(0, 20))
    def test_every_value_comes_back(self, case, gap):
        """Encode each point into its request's registers, decode the plan: same values."""
        points, values = case
        plan = plan_reads(points, max_gap=gap, max_bit_gap=gap)
        responses = {}
        for request in plan.requests:
            regs = [False if request.function in ("coil", "discrete") else 0] * request.count
            for p in request.points:
                at = p.address - request.address
                encoded = encode_value(p, values[p.name])
                regs[at : at + len(encoded)] = encoded
            responses[request] = regs
        decoded = {p.name: v for p, v, _ in plan.decode(responses)}
        # An f32 comes back as the shortest decimal of the same f32 (drivers/codec.py).
        f32 = {p.name for p in points if p.type == "f32"}
        assert {n: struct.pack(">f", v) for n, v in decoded.items() if n in f32} == {
            n: struct.pack(">f", v) for n, v in values.items() if n in f32
        }
        assert {n: v for n, v in decoded.items() if n not in f32} == {
            n: v for n, v in values.items() if n not in f32
        }


class TestOnTheWire:
    """Plans executed by a real pymodbus client against a real server on loopback TCP that
    serves *only* the profile's registers (anything else answers "illegal data address")."""

    @staticmethod
    def strict_spec(profile, values):
        spec: dict[str, dict[int, list]] = {"holding": {}, "input": {}, "coils": {}, "discrete": {}}
        table = {"holding": "holding", "input": "input", "coil": "coils", "discrete": "discrete"}
        for p in profile.points:
            words = encode_value(p, values[p.name])
            spec[table[p.function]][p.address] = [bool(w) for w in words] if p.is_bits else words
        return spec

    @staticmethod
    def plausible(p):
        """A value inside the point's range, exactly representable in its registers."""
        if p.type == "string":
            return "AB"
        if p.type == "bool":
            return p.address % 2 == 0
        if p.type in ("bitfield", "bitfield32"):
            return 0  # no fault bits: every point is GOOD
        target = 7 if p.valid_range is None else sum(p.valid_range) / 2
        return decode_registers(p, encode_value(p, target))

    async def read_all(self, port, plan):
        from pymodbus.client import AsyncModbusTcpClient

        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=1)
        await client.connect()
        try:
            calls = {
                "coil": client.read_coils,
                "discrete": client.read_discrete_inputs,
                "input": client.read_input_registers,
                "holding": client.read_holding_registers,
            }
            responses = {}
            for r in plan.requests:
                rr = await calls[r.function](r.address, count=r.count, device_id=1)
                assert not rr.isError(), (r, rr)
                responses[r] = rr.bits if r.function in ("coil", "discrete") else rr.registers
            return responses
        finally:
            client.close()

    @pytest.mark.parametrize("name", ProfileRegistry().names())
    def test_shipped_profile_over_tcp(self, name):
        """Every request of the plan is answered by a strict device, and every value comes
        back exactly, with GOOD quality (coil replies are padded to whole bytes)."""
        import asyncio

        from tests.helpers.modbus import served_units

        profile = ProfileRegistry().get(name)
        values = {p.name: self.plausible(p) for p in profile.points}
        plan = plan_profile(profile)

        async def scenario():
            async with served_units({1: self.strict_spec(profile, values)}) as server:
                return await self.read_all(server.port, plan)

        decoded = plan.decode(asyncio.run(scenario()))
        assert len(decoded) == len(profile.points)
        for p, value, quality in decoded:
            assert (value, quality) == (values[p.name], Quality.GOOD), p.name
