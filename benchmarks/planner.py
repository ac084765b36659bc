"""Read planning and decoding benchmark: what the planner saves on a bus, what decoding costs.

Side by side in this process, for every shipped profile and for a large synthetic map:
- requests per poll: ``drivers.planner`` vs one request per point (the naive baseline);
- estimated RS-485 time per poll at 9600 baud 8N1 (frames at 10 bits per byte, a 3.5
  character gap per frame and ``--latency-ms`` device turnaround per request), both plans;
- decode throughput (points per second): ``ReadPlan.decode`` (values, scale, range and fault
  quality) vs pymodbus's ``convert_from_registers`` per point plus the same scaling (the
  baseline does no quality work, so the ratio shows what the quality costs).

    .venv/bin/python benchmarks/planner.py [--repeat N] [--latency-ms MS] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pymodbus.client import ModbusTcpClient  # noqa: E402

from drivers.codec import encode_value  # noqa: E402
from drivers.planner import ReadPlan, plan_profile, plan_reads  # noqa: E402
from drivers.profile import Point, Profile, ProfileRegistry  # noqa: E402

BAUD = 9600
BITS_PER_CHAR = 10  # 8N1
_DATATYPE = ModbusTcpClient.DATATYPE
_PYMODBUS_TYPES = {
    "u16": _DATATYPE.UINT16,
    "i16": _DATATYPE.INT16,
    "bitfield": _DATATYPE.UINT16,
    "u32": _DATATYPE.UINT32,
    "i32": _DATATYPE.INT32,
    "bitfield32": _DATATYPE.UINT32,
    "u64": _DATATYPE.UINT64,
    "i64": _DATATYPE.INT64,
    "f32": _DATATYPE.FLOAT32,
    "f64": _DATATYPE.FLOAT64,
    "string": _DATATYPE.STRING,
}


def frame_seconds(plan: ReadPlan, latency_s: float) -> float:
    """RTU time of a plan: request 8 bytes, response 5 + payload bytes, gaps, turnaround."""
    char_s = BITS_PER_CHAR / BAUD
    total = 0.0
    for r in plan.requests:
        payload = (r.count + 7) // 8 if r.function in ("coil", "discrete") else 2 * r.count
        total += (8 + 5 + payload + 2 * 3.5) * char_s + latency_s
    return total


def naive_plan(points: list[Point]) -> ReadPlan:
    return ReadPlan(tuple(r for p in points for r in plan_reads([p]).requests))


def responses_for(plan: ReadPlan) -> dict:
    out = {}
    for request in plan.requests:
        regs: list = [0] * request.count
        for p in request.points:
            if p.type == "string":
                value = "X"
            elif p.type == "bool":
                value = True
            elif p.valid_range is not None:
                value = (p.valid_range[0] + p.valid_range[1]) / 2
            else:
                value = 1
            encoded = encode_value(p, value)
            at = p.address - request.address
            regs[at : at + len(encoded)] = encoded
        out[request] = regs
    return out


def pymodbus_decode(plan: ReadPlan, responses: dict) -> list:
    """Baseline: pymodbus conversion per point, then scale/offset; no quality."""
    out = []
    for request, values in responses.items():
        for p in request.points:
            at = p.address - request.address
            regs = values[at : at + p.register_count]
            if p.type == "bool":
                out.append(bool(regs[0]))
                continue
            v = ModbusTcpClient.convert_from_registers(
                regs, _PYMODBUS_TYPES[p.type], word_order=p.word_order
            )
            if p.type not in ("string", "bitfield", "bitfield32"):
                v = v * p.scale + p.offset
            out.append(v)
    return out


def rate(fn, points: int, repeat: int) -> float:
    fn()  # warm
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return points * repeat / (time.perf_counter() - start)


def synthetic(n: int = 400) -> Profile:
    """A large map: n holding points of mixed types with small gaps."""
    points, address = [], 0
    types = ["u16", "i16", "f32", "u32", "bitfield"]
    for i in range(n):
        t = types[i % len(types)]
        points.append(
            Point(
                name=f"p{i}",
                function="holding",
                address=address,
                type=t,
                scale=0.1 if t == "u16" else 1.0,
            )
        )
        address += {"f32": 2, "u32": 2}.get(t, 1) + (3 if i % 7 == 0 else 0)
    return Profile(
        name="synthetic-400", vendor="bench", model="S", kind="level", points=tuple(points)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=2000, help="decode repetitions (default 2000)"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=20.0, help="device turnaround (default 20)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    profiles = [*ProfileRegistry().all(), synthetic()]
    rows = []
    for profile in profiles:
        points = list(profile.enabled_points)
        planned = plan_profile(profile)
        naive = naive_plan(points)
        responses = responses_for(planned)
        repeat = max(1, args.repeat * 10 // len(points))
        ours = rate(
            lambda planned=planned, responses=responses: planned.decode(responses),
            len(points),
            repeat,
        )
        base = rate(
            lambda planned=planned, responses=responses: pymodbus_decode(planned, responses),
            len(points),
            repeat,
        )
        rows.append(
            {
                "profile": profile.name,
                "points": len(points),
                "requests_planned": len(planned.requests),
                "requests_naive": len(naive.requests),
                "bus_ms_planned": round(frame_seconds(planned, latency) * 1000, 1),
                "bus_ms_naive": round(frame_seconds(naive, latency) * 1000, 1),
                "bus_time_ratio_naive_vs_planned": round(
                    frame_seconds(naive, latency) / frame_seconds(planned, latency), 2
                ),
                "decode_points_per_s": round(ours),
                "pymodbus_points_per_s": round(base),
                "decode_ratio_vs_pymodbus": round(ours / base, 2),
            }
        )
    if args.json:
        print(json.dumps({"baud": BAUD, "latency_ms": args.latency_ms, "rows": rows}, indent=2))
        return 0
    print(f"RTU {BAUD} baud 8N1, device turnaround {args.latency_ms:g} ms per request")
    columns = [
        ("profile", "profile", 20),
        ("points", "pts", 4),
        ("requests_planned", "req", 4),
        ("requests_naive", "naive", 5),
        ("bus_ms_planned", "bus ms", 7),
        ("bus_ms_naive", "naive ms", 8),
        ("bus_time_ratio_naive_vs_planned", "x", 5),
        ("decode_points_per_s", "decode/s", 9),
        ("pymodbus_points_per_s", "pymodbus/s", 10),
        ("decode_ratio_vs_pymodbus", "ratio", 5),
    ]
    print(" ".join(f"{title:>{width}}" for _, title, width in columns))
    for r in rows:
        print(" ".join(f"{r[key]!s:>{width}}" for key, _, width in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
