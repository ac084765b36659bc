"""``edge-agent probe``: read one configured device once and show its points (or raw words)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import sys
from collections.abc import Sequence

from edge_agent.errors import EXIT_OK, RuntimeFailure, UsageError

DESCRIPTION = """\
Read one device of a gateway config once, exactly as the daemon polls it (same bus settings,
profile and overrides), and print every point with its unit and quality. With --raw, read
registers directly and show them decoded in every word and byte order: a float read in the
wrong order is the most common field mistake, and the right order is the row that makes sense.

examples:
  edge-agent probe --config /etc/edge-agent/gateway.yaml nl-01
      point         value   unit  quality
      battery       87      %     good
      leak_level    31.5    dB    good
  edge-agent probe --config gateway.yaml lv-02 --json
      {"device": "lv-02", "unit_id": 2, "bus": "pumpstation", "points": [...]}
  edge-agent probe --config gateway.yaml nl-01 --raw 2 2 --function input
      addr  order  f32           u32         i32
      2-3   ABCD   31.5          1107034112  1107034112
      2-3   CDAB   2.36707e-41   16892       16892      (one row per word/byte order)

Exit codes: 0 read, 1 the device or port did not answer, 2 bad config, device or arguments.
"""

FUNCTIONS = {"holding": 3, "input": 4}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="gateway config")
    parser.add_argument("device", metavar="DEVICE", help="device name from the config")
    parser.add_argument(
        "--raw",
        nargs=2,
        type=int,
        metavar=("ADDRESS", "COUNT"),
        help="read COUNT registers (1..125) at ADDRESS and decode them in every order",
    )
    parser.add_argument(
        "--function",
        choices=tuple(FUNCTIONS),
        default="holding",
        help="register table for --raw (default holding)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _load(args: argparse.Namespace):
    from edge_agent.bus_setup import build_bus_setup, load_config_with_profiles
    from edge_agent.config.loader import ConfigError

    try:  # the config check's profile registry serves the bus setup: no second parse
        cfg, registry = load_config_with_profiles(args.config)
    except ConfigError as exc:
        first = exc.problems[0] if exc.problems else exc
        more = len(exc.problems) - 1
        tail = f" (and {more} more: run edge-agent check-config {args.config})" if more else ""
        raise UsageError(f"{first}{tail}") from None
    names = [d.name for d in cfg.devices]
    if args.device not in names:
        known = ", ".join(names) or "none"
        raise UsageError(f"{args.config}: no device {args.device!r} (devices: {known})")
    setup = build_bus_setup(cfg, registry=registry, only_devices={args.device})
    return cfg, setup


def run(args: argparse.Namespace) -> int:
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    if args.raw is not None:
        address, count = args.raw
        if not 0 <= address <= 65535 or not 1 <= count <= 125 or address + count > 65536:
            raise UsageError(f"--raw {address} {count}: ADDRESS 0..65535, COUNT 1..125")
    _cfg, setup = _load(args)
    device = setup.devices[args.device]
    bus = setup.bus_of[args.device]
    runner = setup.runners[bus]
    who = f"{device.name} (unit {device.unit_id} on bus {bus}, {runner.transport.where})"
    if args.raw is not None:
        return _raw(args, runner, device, who)
    from drivers.errors import DriverError

    async def poll():
        try:
            return await runner.poll_once(device.name)
        finally:
            runner.transport.close()

    try:
        readings = asyncio.run(poll())
    except DriverError as exc:
        raise RuntimeFailure(f"{who}: {exc}") from None
    coordinator = runner.coordinators[device.name]
    if args.json:
        json.dump(
            {
                "device": device.name,
                "unit_id": device.unit_id,
                "bus": bus,
                "profile": setup.profiles[device.name].name,
                "warning": coordinator.last_error,
                "points": [
                    {
                        "point": r.point,
                        "value": _jsonable(r.value),
                        "unit": r.unit,
                        "quality": str(r.quality),
                    }
                    for r in readings
                ],
            },
            sys.stdout,
        )
        sys.stdout.write("\n")
        return EXIT_OK
    print(f"{who}, profile {setup.profiles[device.name].name}")
    rows: list[tuple[str, ...]] = [("point", "value", "unit", "quality")]
    rows += [(r.point, _shown(r.value), r.unit, str(r.quality)) for r in readings]
    _table(rows)
    if coordinator.last_error:
        print(f"warning: {coordinator.last_error}", file=sys.stderr)
    return EXIT_OK


def _raw(args, runner, device, who) -> int:
    from drivers.codec import all_orders
    from drivers.errors import DriverError

    address, count = args.raw
    function = FUNCTIONS[args.function]

    async def read():
        try:
            return await runner.transport.read(function, device.unit_id, address, count)
        finally:
            runner.transport.close()

    try:
        regs = asyncio.run(read())
    except DriverError as exc:
        raise RuntimeFailure(f"{who}: {exc}") from None
    words = {a: regs[a - address] for a in range(address, address + count)}
    pairs = {
        f"{a}-{a + 1}": all_orders(regs[a - address : a - address + 2])
        for a in range(address, address + count - 1)
    }
    quads = {
        f"{a}-{a + 3}": all_orders(regs[a - address : a - address + 4])
        for a in range(address, address + count - 3)
    }
    if args.json:
        json.dump(
            {
                "device": device.name,
                "unit_id": device.unit_id,
                "function": args.function,
                "address": address,
                "registers": regs,
                "words": {str(a): all_orders([w]) for a, w in words.items()},
                "pairs": _jsonable(pairs),
                "quads": _jsonable(quads),
                "text": all_orders(regs)["text"]["string"],
            },
            sys.stdout,
        )
        sys.stdout.write("\n")
        return EXIT_OK
    print(f"{who}: {args.function} {address}+{count}")
    rows: list[tuple[str, ...]] = [("addr", "hex", "u16", "i16", "AB text")]
    for a, w in words.items():
        orders = all_orders([w])
        text = orders["text"]["string"]
        rows.append((str(a), f"0x{w:04X}", str(w), str(orders["AB"]["i16"]), _printable(str(text))))
    _table(rows)
    if pairs:
        print("\n32-bit values (ABCD = big-endian; the sensible row is the device's order):")
        rows = [("addr", "order", "f32", "u32", "i32")]
        for span, orders in pairs.items():
            for order in ("ABCD", "CDAB", "BADC", "DCBA"):
                v = orders[order]
                rows.append((span, order, _shown(v["f32"]), str(v["u32"]), str(v["i32"])))
        _table(rows)
    if quads:
        print("\n64-bit values:")
        rows = [("addr", "order", "f64", "u64", "i64")]
        for span, orders in quads.items():
            for order, v in orders.items():
                if "f64" in v:
                    rows.append((span, order, _shown(v["f64"]), str(v["u64"]), str(v["i64"])))
        _table(rows)
    print(f"\ntext: {all_orders(regs)['text']['string']!r}")
    return EXIT_OK


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "." for c in text)


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _jsonable(value):
    """NaN and infinity are not JSON: show them as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
