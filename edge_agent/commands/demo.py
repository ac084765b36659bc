"""``edge-agent demo``: the reference site end to end in one command, no broker needed."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from edge_agent.errors import EXIT_OK, UsageError

DESCRIPTION = """\
Run the Riverside reference site end to end: every device of seeds/site.yaml is simulated on
loopback Modbus (free ports), the gateway daemon polls them, applies the rules, records and
analyses the noise loggers and keeps every event in its outbox; events are printed live.

Time is compressed: the simulated world runs 60 x (a storm of 25 minutes takes 25 s) and the
leak schedule runs on its own clock where a night passes every 20 s. Within the default 90 s
you see every story of the reference site: a leak suspected, confirmed and located; a device
dropping off the bus and coming back; a gas leak on a valve chamber's line (gas with a
pressure drop) and its gas alarm; a manhole cover opened; a sewer blocked in dry weather,
caught with the reach it is in; then a storm's level, overflow and road-flooding warnings.
At the end a table says how many simulated minutes each story took from onset to event.

With --mqtt the events are also published (docs/mqtt.md) with every integration on: the
retained state per device (availability, active alarms, latest values), Home Assistant MQTT
discovery, a Sparkplug B edge node and commands on cmd/# (record, rebirth, ping). Without it
they stay in the outbox of the demo's state directory (a fresh temporary directory unless
--state-dir is given).

examples:
  edge-agent demo
  edge-agent demo --duration 90
  edge-agent demo --mqtt mqtt://127.0.0.1:1883 --state-dir .cache/demo-state
  mosquitto_sub -t 'lifeline/v1/#' -v          # in another terminal, with --mqtt
  mosquitto_sub -t 'lifeline/v1/+/+/alarms/#' -v   # what is raised now (retained)
  mosquitto_pub -t lifeline/v1/riverside/demo-gw/cmd/ping -m "{\"id\":\"p1\",\"ts\":$(date +%s)000}"

exit codes: 0 the demo ran for --duration, 1 runtime failure, 2 bad arguments
"""

DEFAULT_DURATION_S = 90.0
WORLD_SPEED = 60.0  # sim seconds per wall second for the devices and scenarios
NIGHT_EVERY_S = 20.0  # wall seconds per leak-schedule day
POLL_INTERVAL_S = 1.0
PRESSURE_POLL_INTERVAL_S = 0.25  # 15 sim s
# A wide quiet window: several recordings fit in each compressed night.
DEMO_LEAK_SECTION = (
    "{recording_interval_s: 3600, night_window: '22:00-06:00', duration_s: 4,"
    " confirm_nights: {k: 2, m: 3}}"
)
# `demo --mqtt`: every integration on, so an integrator sees all of it with one command.
DEMO_INTEGRATIONS = (
    ", retained_state: true, home_assistant: {enabled: true},"
    " sparkplug: {enabled: true}, commands: {enabled: true}"
)
LEVEL_HIGH_FRACTION = 0.4  # of the depth to the manhole cover
LEVEL_HIGH_HIGH_FRACTION = 0.7
LEAK_START_LOCAL = "21:59:00"  # the leak clock starts just before the night window opens
WORLD_START_LOCAL = "01:00:00"  # the world's sim time starts in the quiet of the night

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_SITE = REPO_ROOT / "seeds" / "site.yaml"

# What the demo promises (issues 5 and 11): (label, event kinds that show it).
PROMISES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("leak suspected", ("leak.suspected",)),
    ("leak confirmed", ("leak.confirmed",)),
    ("leak located", ("leak.located",)),
    ("blockage caught in dry weather, with its reach", ("sewer.blockage_suspected",)),
    ("level alarm (storm)", ("level.high", "level.high_high")),
    ("overflow warning (storm)", ("overflow.risk",)),
    ("road flooded (storm)", ("flood.ponding",)),
    ("gas alarm raised", ("gas.alarm1", "gas.alarm2")),
    ("gas leak on the line (gas with a pressure drop)", ("gas.leak_suspected",)),
    ("gas alarm cleared", ("gas.normal",)),
    ("manhole cover opened", ("cover.opened",)),
    ("device dropped off the bus", ("device.offline",)),
    ("device came back", ("device.online",)),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION_S,
        metavar="S",
        help=f"seconds to run (default {DEFAULT_DURATION_S:g})",
    )
    parser.add_argument(
        "--mqtt",
        metavar="URL",
        default=None,
        help="also publish to this broker, e.g. mqtt://127.0.0.1:1883",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        default=None,
        help="keep the outbox and status here (default: a fresh temp dir)",
    )
    parser.add_argument(
        "--site",
        type=Path,
        metavar="FILE",
        default=SEED_SITE,
        help="site file to simulate (default: the Riverside reference site)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each event as one JSON line instead of a readable line",
    )


def _local_epoch_at(clock_text: str, now: float) -> float:
    """Epoch seconds of today's ``HH:MM:SS`` local time (yesterday's when that is later)."""
    lt = time.localtime(now)
    h, m, s = (int(x) for x in clock_text.split(":"))
    t = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, h, m, s, 0, 0, -1))
    return t - 86400 if t > now else t


def gateway_yaml(
    site: Any,
    endpoints: dict[str, Any],
    state_dir: Path,
    site_path: Path,
    *,
    logging_section: str = "{level: warning, format: console}",
    uplink_url: str | None = None,
    leak_section: str = DEMO_LEAK_SECTION,
    poll_interval_s: float = POLL_INTERVAL_S,
    integrations: bool = False,
) -> str:
    """The demo gateway's config: every site device on the simulator's endpoints
    (``endpoints``: bus name -> anything with ``host`` and ``port``). ``integrations``: turn
    every integration of the uplink on (Home Assistant discovery, Sparkplug B, commands; the
    retained state is on by default)."""
    lines = [
        "version: 1",
        f"gateway: {{site: {site.site}, id: demo-gw}}",
        f"site_file: {site_path.resolve()}",
        "buses:",
    ]
    for name, ep in endpoints.items():
        lines += [
            f"  - {{name: {name}, type: tcp, host: {ep.host}, port: {ep.port}, timeout_s: 1.0,",
            "     retries: 1, offline_after: 2, backoff: {initial_s: 1.0, max_s: 2.0}}",
        ]
    lines.append("devices:")
    # a wet well is judged by its pump cycles and a road sensor reads water on the road:
    # neither gets a manhole's level thresholds
    not_manholes = site.network.wet_well_gauges() | site.network.ponding_devices()
    for d in site.devices:
        interval = 60.0 if d.kind == "noise_logger" else poll_interval_s
        if d.kind == "pressure":
            # A gas line's pressure is polled every few seconds in the field; at world x60 a
            # once-a-sim-minute poll leaves the drop window (2 min) two samples short of a
            # rate whenever the machine is busy, and the gas leak story unshown.
            interval = min(interval, PRESSURE_POLL_INTERVAL_S)
        place = f", pipe_segment: {d.pipe}" if d.pipe else ""
        desc = d.description.replace('"', "'")
        rules = ""
        cover = getattr(d.sim, "cover_depth_mm", None)
        if d.kind == "level" and cover and d.name not in not_manholes:
            # Alarm at 40 % and 70 % of the depth to the cover (overflow risk at the cover).
            rules = (
                f", rules: {{points: {{level: {{high: {round(cover * LEVEL_HIGH_FRACTION)},"
                f" high_high: {round(cover * LEVEL_HIGH_HIGH_FRACTION)}}}}}}}"
            )
        lines.append(
            f"  - {{name: {d.name}, bus: {d.bus}, unit_id: {d.unit_id}, profile: {d.profile},"
            f" poll_interval_s: {interval:g}, asset_id: {d.asset_id}{place},"
            f' location: {{lat: {d.lat}, lon: {d.lon}, description: "{desc}"}}{rules}}}'
        )
    lines += [
        f"uplink: {{url: {uplink_url or 'null'}{DEMO_INTEGRATIONS if integrations else ''}}}",
        f"storage: {{state_dir: {state_dir.resolve()}}}",
        f"leak_detection: {leak_section}",
        f"logging: {logging_section}",
    ]
    return "\n".join(lines) + "\n"


SEVERITY_MARKS = {0: "", 1: "·", 2: "!", 3: "!!", 4: "!!!"}


class EventPrinter:
    """Prints each accepted event as a line a person reads easily (or JSON)."""

    def __init__(self, out: TextIO, world_clock: Any, started: float, as_json: bool) -> None:
        self.out = out
        self.world = world_clock
        self.started = started
        self.as_json = as_json
        self.kinds: list[str] = []
        self.seen: list[tuple[str, str, float, dict[str, Any]]] = []  # kind, dev, ts, data

    def __call__(self, event: Any) -> None:
        if event.stream != "event":
            return
        self.kinds.append(event.kind)
        self.seen.append((event.kind, event.dev, event.ts, event.data))
        if self.as_json:
            from edge_agent import payload

            self.out.write(payload.encode(event, "json").decode() + "\n")
        else:
            elapsed = time.monotonic() - self.started
            sim = time.strftime("%H:%M", time.localtime(self.world.time()))
            data = " ".join(f"{k}={_short(v)}" for k, v in event.data.items() if v is not None)
            sev = SEVERITY_MARKS.get(int(event.sev), "")
            self.out.write(
                f"{elapsed:5.1f}s  sim {sim}  #{event.seq:<4} {sev:>3} {event.kind:<24}"
                f" {event.dev:<8} {data}\n"
            )
        self.out.flush()


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ",".join(_short(v) for v in value)
    return str(value)


async def _demo(
    args: argparse.Namespace, site: Any, scenarios: Any, state_dir: Path, out: TextIO
) -> int:
    from drivers.sim.clock import SimClock
    from drivers.sim.site_sim import SiteSimulator
    from edge_agent.daemon.app import Daemon, DaemonOptions

    now = time.time()
    world = SimClock(WORLD_SPEED, epoch_start=_local_epoch_at(WORLD_START_LOCAL, now))
    leak_clock = SimClock(
        86400.0 / NIGHT_EVERY_S, epoch_start=_local_epoch_at(LEAK_START_LOCAL, now)
    )
    sim = SiteSimulator(site, clock=world, port_base=0, scenarios=scenarios)
    await sim.start()
    try:
        config_path = state_dir / "gateway.yaml"
        config_path.write_text(
            gateway_yaml(
                site,
                sim.endpoints,
                state_dir,
                args.site,
                uplink_url=args.mqtt,
                integrations=args.mqtt is not None,
            )
        )
        started = time.monotonic()
        printer = EventPrinter(out, world, started, args.json)
        options = DaemonOptions(
            config_path=config_path,
            state_dir=state_dir,
            mqtt_url=args.mqtt,
            clock=world,
            leak_clock=leak_clock,
            on_event=printer,
            site=site,
        )
        daemon = Daemon(options)
        # With --json stdout carries only events, one JSON object a line; the rest is stderr.
        (sys.stderr if args.json else out).write(
            f"edge-agent demo: {len(site.devices)} simulated devices on "
            f"{len(sim.endpoints)} buses, world x{WORLD_SPEED:g}, a night every "
            f"{NIGHT_EVERY_S:g} s, {args.duration:g} s; state in {state_dir}\n"
        )
        out.flush()
        loop = asyncio.get_running_loop()
        loop.call_later(args.duration, daemon.request_stop)
        code = await daemon.run()
    finally:
        await sim.stop()
    if not args.json:
        out.write(_summary(printer.kinds, state_dir, args.mqtt))
        leak_speedup = leak_clock.speed / world.speed
        out.write(story_table(stories(scenarios, world.epoch_start), printer.seen, leak_speedup))
    return code


def _summary(kinds: list[str], state_dir: Path, mqtt: str | None) -> str:
    lines = ["", f"demo finished: {len(kinds)} events"]
    for label, wanted in PROMISES:
        seen = any(k in wanted for k in kinds)
        lines.append(f"  [{'x' if seen else ' '}] {label}")
    where = f"published to {mqtt}" if mqtt else f"kept in the outbox under {state_dir}"
    lines.append(f"events {where}")
    return "\n".join(lines) + "\n"


# (label, the event kinds that tell it, the scenario list it starts with: its first entry's
# start_s on the world clock; "leak": the leak clock's start)
STORIES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("leak located", ("leak.located",), "leak"),
    ("device dropped off the bus", ("device.offline",), "dropouts"),
    ("gas in the chamber", ("gas.alarm1", "gas.alarm2"), "gas"),
    ("gas leak on the line", ("gas.leak_suspected",), "gas"),
    ("manhole cover opened", ("cover.opened",), "covers"),
    ("blockage in dry weather", ("sewer.blockage_suspected",), "blockages"),
    ("storm: level alarm", ("level.high", "level.high_high"), "storms"),
    ("storm: overflow warning", ("overflow.risk",), "storms"),
    ("storm: road flooded", ("flood.ponding",), "storms"),
)


def stories(scenarios: Any, world_start: float) -> list[tuple[str, tuple[str, ...], float]]:
    """(label, kinds, onset on the world clock, epoch seconds) of each story the site's
    ``scenarios`` play (the leak's onset is the start: it runs on its own clock)."""
    out = []
    for label, kinds, scenario in STORIES:
        if scenario == "leak":
            if scenarios.leaks:
                out.append((label, kinds, world_start))
            continue
        episodes = getattr(scenarios, scenario)
        if episodes:
            out.append((label, kinds, world_start + min(e.start_s for e in episodes)))
    return out


def story_table(
    told: list[tuple[str, tuple[str, ...], float]],
    seen: list[tuple[str, str, float, dict[str, Any]]],
    leak_speedup: float,
) -> str:
    """How many simulated minutes each story took from its onset to its first event. Events
    carry world-clock time; the leak's nights pass ``leak_speedup`` times faster than it."""
    lines = ["", "from onset to event, in simulated minutes:"]
    for label, kinds, onset in told:
        first = next(
            ((k, d, ts, data) for k, d, ts, data in seen if k in kinds and ts >= onset), None
        )
        if first is None:
            lines.append(f"  {label:28} not shown in this run")
            continue
        kind, dev, ts, data = first
        where = f" reach {data['reach']}" if data.get("reach") else ""
        took = (ts - onset) / 60.0
        if kind.startswith("leak."):
            text = f"{took * leak_speedup / 60.0:6.1f} h on the leak clock (it listens at night)"
        else:
            text = f"{took:6.1f} min"
        lines.append(f"  {label:28} {text}  {kind} on {dev}{where}")
    return "\n".join(lines) + "\n"


def warm_up_dsp() -> None:
    """Fill the numba cache the daemon's analysis worker loads from (compiled once, in a
    worker process of its own: see ``edge_agent.daemon.worker.warm_up_kernels``), so the
    demo's first night is not spent compiling."""
    from edge_agent.daemon.worker import warm_up_kernels

    warm_up_kernels()


def run(args: argparse.Namespace) -> int:
    if args.duration <= 0:
        raise UsageError(f"--duration {args.duration:g}: must be > 0 seconds")
    if not args.site.is_file():
        raise UsageError(f"--site {args.site}: no such file")
    from drivers.sim.scenarios import read_scenarios
    from sitemodel import SiteError, load_site

    try:  # a broken site file is exit 2 with its problems, before the kernels load
        site = load_site(args.site)
        scenarios = read_scenarios(site)
    except SiteError as exc:
        raise UsageError(str(exc)) from exc
    from edge_agent.kernel_cache import ensure_numba_cache_dir

    ensure_numba_cache_dir(REPO_ROOT / ".cache" / "numba")
    from edge_agent.logs import configure_logging

    configure_logging("warning", "console", stream=sys.stderr)
    # pymodbus repeats at error level what the bus runner reports once per availability
    # change; in a demo on a terminal that is noise (under `run` it is kept, rate-limited).
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    if args.state_dir is not None:
        state_dir = args.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
    else:
        base = REPO_ROOT / ".cache"
        base.mkdir(exist_ok=True)
        state_dir = Path(tempfile.mkdtemp(prefix="demo-", dir=base))
    out = sys.stdout
    info = sys.stderr if args.json else out
    info.write("edge-agent demo: loading the DSP kernels (compiled once, then cached)...\n")
    info.flush()
    warm_up_dsp()
    asyncio.run(_demo(args, site, scenarios, state_dir, out))
    return EXIT_OK
