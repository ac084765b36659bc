"""``edge-agent scan``: find the Modbus units that answer on a port or host, and their profile."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from edge_agent.errors import EXIT_OK, EXIT_RUNTIME, RuntimeFailure, UsageError

if TYPE_CHECKING:
    from drivers.transport import Transport

DESCRIPTION = """\
Find the Modbus units that answer on a serial port or a TCP host and name the device profile
each one matches (read from its identification registers). An absent unit is silence; a
gateway's "no such unit" (exception 10/11) does not count as a device.

examples:
  edge-agent scan --serial /dev/ttyUSB0
      scans units 1-247 at 9600 baud 8N1, with progress
  edge-agent scan --serial /dev/ttyUSB0 --baud 9600,19200 --parity E --ids 1-20
      tries each baud rate in turn (the unit list is per baud rate)
  edge-agent scan --host 192.0.2.10 --tcp-port 502
      a Modbus TCP gateway: 1-247 in a few seconds (parallel connections)
  edge-agent scan --host 192.0.2.20 --tcp-port 4001 --rtu-over-tcp
      a serial device server in transparent mode (one request at a time)
  edge-agent scan --host 127.0.0.1 --tcp-port 15021 --json
      [{"unit_id": 1, "profile": "noise-logger-nl200", "baudrate": null, "note": ""}, ...]

Nothing found? Check the A/B wires (swapped is the classic), baud rate and parity, the
termination resistor, and that no other program holds the port.

Exit codes: 0 units found, 1 none answered or the port/host failed, 2 bad arguments.
"""

DEFAULT_BAUD = "9600"
PROGRESS_EVERY = 25  # units between progress lines when stderr is not a terminal


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--serial", metavar="PORT", help="serial port, e.g. /dev/ttyUSB0")
    where.add_argument("--host", metavar="H", help="Modbus TCP host or device server")
    parser.add_argument(
        "--baud",
        default=DEFAULT_BAUD,
        metavar="B[,B...]",
        help=f"baud rates to try on --serial (default {DEFAULT_BAUD})",
    )
    parser.add_argument("--parity", choices=("N", "E", "O"), default="N", help="default N")
    parser.add_argument("--stopbits", type=int, choices=(1, 2), default=1, help="default 1")
    parser.add_argument("--tcp-port", type=int, default=502, metavar="P", help="default 502")
    parser.add_argument(
        "--rtu-over-tcp", action="store_true", help="RTU frames over TCP (serial device server)"
    )
    parser.add_argument("--ids", default="1-247", metavar="RANGES", help="e.g. 1-20,100")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="answer timeout per request (default: 0.3 s on TCP; on serial the shortest "
        "safe one for the baud rate)",
    )
    parser.add_argument(
        "--workers", type=int, metavar="N", help="parallel TCP connections (default 32)"
    )
    parser.add_argument("--profiles-dir", metavar="DIR", help="extra device profiles")
    parser.add_argument("--json", action="store_true", help="print the units as JSON")


def _parse_bauds(text: str) -> list[int]:
    try:
        bauds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--baud {text!r}: expected numbers like 9600,19200") from None
    if not bauds or any(not 300 <= b <= 921600 for b in bauds):
        raise UsageError(f"--baud {text!r}: baud rates are 300..921600")
    return bauds


class _Progress:
    """Progress on stderr: one rewritten line on a terminal, a line every few units otherwise."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.found = 0

    def __call__(self, done: int, total: int, hit) -> None:
        if hit is not None:
            self.found += 1
        if not self.enabled:
            return
        text = f"{self.label}: {done}/{total} units, {self.found} found"
        if self.tty:
            end = "\n" if done == total else ""
            print(f"\r{text}", end=end, file=sys.stderr, flush=True)
        elif done % PROGRESS_EVERY == 0 or done == total:
            print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from drivers.errors import DriverError, ProfileError
    from drivers.profile import ProfileRegistry
    from drivers.scan import (
        DEFAULT_TCP_SCAN_TIMEOUT_S,
        DEFAULT_TCP_WORKERS,
        parse_unit_ids,
        scan_units,
        serial_scan_timeout_s,
    )
    from drivers.transport import make_transport

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # timeouts are the point here
    try:
        ids = parse_unit_ids(args.ids)
    except ValueError as exc:
        raise UsageError(f"--ids: {exc}") from None
    if args.timeout is not None and not 0 < args.timeout <= 60:
        raise UsageError(f"--timeout {args.timeout:g}: expected 0 < S <= 60")
    if args.workers is not None and not 1 <= args.workers <= 128:
        raise UsageError(f"--workers {args.workers}: expected 1..128")
    if not 1 <= args.tcp_port <= 65535:
        raise UsageError(f"--tcp-port {args.tcp_port}: expected 1..65535")
    try:
        profiles = ProfileRegistry(user_dir=args.profiles_dir).all()
    except ProfileError as exc:
        raise UsageError(str(exc)) from None

    # (label, transport factory, timeout, workers, baud)
    passes: list[tuple[str, Callable[[], Transport], float, int, int | None]] = []
    if args.serial:
        for baud in _parse_bauds(args.baud):
            timeout = args.timeout or serial_scan_timeout_s(baud)
            factory = partial(
                make_transport,
                "rtu",
                port=args.serial,
                baudrate=baud,
                parity=args.parity,
                stopbits=args.stopbits,
                timeout_s=timeout,
            )
            passes.append((f"{args.serial} {baud} {args.parity}", factory, timeout, 1, baud))
    else:
        kind = "rtu_over_tcp" if args.rtu_over_tcp else "tcp"
        timeout = args.timeout or DEFAULT_TCP_SCAN_TIMEOUT_S
        workers = 1 if args.rtu_over_tcp else (args.workers or DEFAULT_TCP_WORKERS)
        factory = partial(
            make_transport, kind, host=args.host, port=args.tcp_port, timeout_s=timeout
        )
        passes.append((f"{kind} {args.host}:{args.tcp_port}", factory, timeout, workers, None))

    started = time.monotonic()
    hits = []
    for label, make, pass_timeout, pass_workers, pass_baud in passes:
        progress = _Progress(label, enabled=not args.json or sys.stderr.isatty())
        try:
            hits += asyncio.run(
                scan_units(
                    make,
                    ids,
                    profiles,
                    timeout_s=pass_timeout,
                    workers=pass_workers,
                    baudrate=pass_baud,
                    on_progress=progress,
                )
            )
        except DriverError as exc:
            raise RuntimeFailure(str(exc)) from None
    elapsed = time.monotonic() - started

    if args.json:
        json.dump([h.as_dict() for h in hits], sys.stdout)
        sys.stdout.write("\n")
    elif hits:
        _print_table(hits, serial=bool(args.serial))
        noun = "unit" if len(hits) == 1 else "units"
        print(f"{len(hits)} {noun} found in {elapsed:.1f} s")
    if not hits:
        where = args.serial or f"{args.host}:{args.tcp_port}"
        print(
            f"edge-agent scan: no unit answered on {where} (ids {args.ids}); check wiring "
            "(A/B), baud rate, parity, termination",
            file=sys.stderr,
        )
        return EXIT_RUNTIME
    return EXIT_OK


def _print_table(hits, *, serial: bool) -> None:
    rows = [("unit", "profile", *(("baud",) if serial else ()), "note")]
    for h in hits:
        rows.append(
            (
                str(h.unit_id),
                h.profile or "(unknown)",
                *((str(h.baudrate),) if serial else ()),
                h.note,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
