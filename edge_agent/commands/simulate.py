"""``edge-agent simulate``: serve every device of a site file as Modbus simulators."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import signal
import sys
from pathlib import Path

from edge_agent.errors import EXIT_OK, RuntimeFailure, UsageError

DESCRIPTION = """\
Serve every device of a site file (seeds/site.yaml) with its profile's register map, so a
gateway, `edge-agent scan` or `probe` can talk to them as to the field: loopback TCP on the
site's sim_buses ports, RTU over TCP, or RTU on serial ptys made by socat (--transport pty).
The devices move: sewer levels follow the site's storms, the pump station cycles, gas
detectors see their episodes, covers open, noise loggers record what the scenario leaks
sound like at their spot on the pipe network; scheduled dropouts make a unit go silent.

--speed compresses time: at --speed 60 an hour of scenarios plays in a minute.

examples:
  edge-agent simulate --site seeds/site.yaml
  edge-agent simulate --site seeds/site.yaml --speed 60
  edge-agent simulate --site seeds/site.yaml --port-base 16020        # ports 16020, 16021, ...
  edge-agent simulate --site seeds/site.yaml --transport pty --pty-dir /tmp/sim
  edge-agent simulate --site seeds/site.yaml --json --for 30          # endpoints as JSON

then, in another terminal: edge-agent run --config seeds/gateway.yaml

with --control, type commands while it runs (one per line; each answers one line):
  fault gd-01 0x1          set gd-01's status fault bits (0 clears)
  offline lv-02            lv-02 goes silent, like an unplugged device
  online lv-02             and comes back
  force ps-01 pump2_fault true     lay a value over a point's dynamics
  release ps-01 pump2_fault        give the point back to the dynamics
  status                   print the status line now

Stop with Ctrl-C (or SIGTERM).
exit codes: 0 stopped cleanly, 1 a port is in use or socat is missing, 2 bad site file
"""

STATUS_EVERY_TTY_S = 1.0
STATUS_EVERY_PIPE_S = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", type=Path, required=True, metavar="FILE", help="site file")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="N",
        help="sim seconds per wall second (default 1; 60 plays an hour in a minute)",
    )
    parser.add_argument(
        "--transport",
        choices=("tcp", "rtu_over_tcp", "pty"),
        default="tcp",
        help="tcp (default), RTU frames over TCP, or RTU on socat serial ptys",
    )
    parser.add_argument(
        "--port-base",
        type=int,
        metavar="PORT",
        help="serve bus i on PORT+i instead of the site's ports (0: any free ports)",
    )
    parser.add_argument(
        "--pty-dir",
        type=Path,
        metavar="DIR",
        help="with --transport pty: where the pty links go (default: a temporary directory)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of noise and recordings")
    parser.add_argument(
        "--for",
        dest="run_for",
        type=float,
        metavar="SECONDS",
        help="stop by itself after this many wall seconds",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the endpoints as one JSON line, no status"
    )
    parser.add_argument("--quiet", action="store_true", help="no live status line")
    parser.add_argument(
        "--control",
        action="store_true",
        help="read commands from stdin: fault DEV BITS | offline DEV | online DEV | "
        "force DEV POINT VALUE | release DEV POINT | status",
    )


def _check_args(args: argparse.Namespace) -> None:
    if not args.speed > 0 or args.speed != args.speed or args.speed == float("inf"):
        raise UsageError(f"--speed: {args.speed} is not a positive number")
    if args.port_base is not None and not (args.port_base == 0 or 1 <= args.port_base <= 65000):
        raise UsageError(f"--port-base: {args.port_base} is not 0 or in 1..65000")
    if args.run_for is not None and not args.run_for > 0:
        raise UsageError(f"--for: {args.run_for} is not a positive number of seconds")
    if args.pty_dir is not None and args.transport != "pty":
        raise UsageError("--pty-dir needs --transport pty")


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    from drivers.errors import ProfileError
    from drivers.profile import ProfileRegistry
    from drivers.sim.scenarios import read_scenarios
    from sitemodel import SiteError, load_site

    try:
        profiles = ProfileRegistry()
    except ProfileError as exc:
        raise RuntimeFailure(f"shipped profiles: {exc}") from exc
    try:
        site = load_site(args.site, profiles=profiles)
        scenarios = read_scenarios(site)
    except SiteError as exc:
        raise UsageError(str(exc)) from exc
    try:
        return asyncio.run(_serve(site, scenarios, profiles, args))
    except KeyboardInterrupt:
        return EXIT_OK


async def _serve(site, scenarios, profiles, args: argparse.Namespace) -> int:
    from drivers.sim.site_sim import SiteSimulator

    # pymodbus logs a failed bind and every silent (dropped-out) unit on its own; what matters
    # reaches the person as our one-line errors and the status line.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    sim = SiteSimulator(
        site,
        speed=args.speed,
        transport=args.transport,
        seed=args.seed,
        port_base=args.port_base,
        pty_dir=args.pty_dir,
        profiles=profiles,
        scenarios=scenarios,
    )
    try:
        await sim.start()
    except OSError as exc:
        raise RuntimeFailure(
            f"cannot serve site {site.site!r}: {exc} (port in use? try --port-base)"
        ) from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.control:
        _read_commands(loop, sim)
    try:
        _print_endpoints(sim, args)
        tty = sys.stdout.isatty()
        every = STATUS_EVERY_TTY_S if tty else STATUS_EVERY_PIPE_S
        deadline = None if args.run_for is None else loop.time() + args.run_for
        while not stop.is_set():
            timeout = every if deadline is None else max(0.0, min(every, deadline - loop.time()))
            try:
                await asyncio.wait_for(stop.wait(), timeout)
            except TimeoutError:
                pass
            if sim.error is not None:
                raise RuntimeFailure(f"simulator stopped: {sim.error!r}") from sim.error
            if deadline is not None and loop.time() >= deadline:
                break
            if not (args.quiet or args.json):
                line = sim.status_line()
                if tty:  # one line rewritten in place: it must not wrap
                    width = shutil.get_terminal_size().columns - 1
                    line = line if len(line) <= width else line[: max(0, width - 3)] + "..."
                print(f"\r{line}\x1b[K" if tty else line, end="" if tty else "\n", flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if args.control:
            loop.remove_reader(sys.stdin.fileno())
        await sim.stop()
    if not args.json and sys.stdout.isatty():
        print()
    return EXIT_OK


def _read_commands(loop: asyncio.AbstractEventLoop, sim) -> None:
    """Apply one ``--control`` command per stdin line; stop listening at end of input."""
    fd = sys.stdin.fileno()

    def on_line() -> None:
        line = sys.stdin.readline()
        if not line:
            loop.remove_reader(fd)
            return
        if line.strip():
            print(control_command(sim, line), flush=True)

    loop.add_reader(fd, on_line)


_TRUE = {"true", "on", "1", "yes"}
_FALSE = {"false", "off", "0", "no"}


def _value(text: str) -> bool | int | float:
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    try:
        return int(text, 0)
    except ValueError:
        return float(text)


def control_command(sim, line: str) -> str:
    """Apply one control command to a running ``SiteSimulator``; the answer is one line
    (``ok: ...`` or ``error: ...``), a mistake never stops the simulator."""
    from drivers.errors import ProfileError

    words = line.split()
    try:
        match words:
            case ["fault", device, bits]:
                sim.set_fault(device, int(bits, 0))
                return f"ok: {device} fault bits 0x{int(bits, 0):04x}"
            case ["offline" | "online" as what, device]:
                sim.set_offline(device, what == "offline")
                return f"ok: {device} {what}"
            case ["force", device, point, value]:
                sim.force(device, point, _value(value))
                return f"ok: {device}.{point} forced to {value}"
            case ["release", device, point]:
                sim.force(device, point, None)
                return f"ok: {device}.{point} follows its dynamics"
            case ["status"]:
                return sim.status_line()
            case _:
                return (
                    f"error: {line.strip()!r}: commands are fault DEV BITS | offline DEV | "
                    "online DEV | force DEV POINT VALUE | release DEV POINT | status"
                )
    except KeyError as exc:
        return f"error: {exc.args[0]}"
    except (ValueError, ProfileError) as exc:
        return f"error: {exc}"


def _print_endpoints(sim, args: argparse.Namespace) -> None:
    site = sim.site
    if args.json:
        out = {
            "site": site.site,
            "speed": sim.clock.speed,
            "epoch_start": sim.clock.epoch_start,
            "transport": sim.transport,
            "endpoints": {
                name: {
                    "kind": ep.kind,
                    "host": ep.host,
                    "port": ep.port,
                    "path": ep.path,
                    "baudrate": ep.baudrate,
                    "units": {d.name: d.unit_id for d in site.devices_on(name)},
                }
                for name, ep in sim.endpoints.items()
            },
        }
        print(json.dumps(out), flush=True)
        return
    print(f"site {site.site} ({site.name}): {len(site.devices)} devices, speed x{args.speed:g}")
    for name, ep in sim.endpoints.items():
        units = ", ".join(f"{d.name}={d.unit_id}" for d in site.devices_on(name))
        print(f"  {name:<12} {ep}   units: {units}")
    print("Ctrl-C stops.", flush=True)
