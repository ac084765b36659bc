"""Wire time: the reference site on RS-485 lines paced at their baud rate, during a night's
recordings. Is an alarm poll ever late, is the line kept busy, how close do the recording
transfers come to the line's physical limit?

The reference site's devices are served by ``edge-agent simulate --transport pty``; every bus
goes through ``drivers.sim.paced_line`` (a relay in a process of its own that lets bytes
through one character time each, 11 bits per character, half duplex, and logs every frame);
``edge-agent run`` polls the relay's ptys as Modbus RTU at 8N2 (11 bits, the spec's framing
without parity: Linux ptys refuse a parity setting) and records its 8 noise loggers
when the night window opens (one synchronised job: a broadcast start, then every logger's
transfer, block by block). The figures come from the relay's log alone (the instrument shares
no code with the gateway's wire model), with the Modbus frame layout written out here:

- ``alarm_poll_late_p99_s``: of the alarm points (gas, level, pressure, covers; pump station
  on its own line), how much longer than its interval each gap between two answered polls
  was, from the first recording request to the end of the last transfer (floor: 1 s);
- ``bus_utilisation``: wire time used / wall time, while a logger's transfer was running
  (work was queued all that time; floor: 0.9). Wire time is the characters on the wire and
  the silence the RTU framing puts before each frame (3.5 characters, 1.75 ms above 19200
  baud: the spec's frame starts and ends with it, and the gateway's wire model prices it as
  part of every request): each frame's silence counts as the relay saw it, at most that
  minimum. A longer silence (a turnaround, a stall, a timeout) is idle beyond it.
  ``bus_utilisation_chars_only`` counts the characters alone (its ceiling, with no
  turnaround at all, is 0.92 at 38400 baud for a two-request block);
- ``recording_s_vs_wire_limit``: the transfers' time (their own requests, from one request to
  the next; polls in between not counted) over the physical minimum for the bytes they moved
  (bytes x 11 bits / baud; floor: 1.15).

Also: where a transfer's time goes (the 3.5-character silences, the device's and the
gateway's turnarounds; of the line's idle time in the transfers' windows, how much was spent
waiting out a device that did not answer, and how much in gateway silences over 10 ms, its
CPU taken by other work), the first request after the daemon starts, requests in its first
30 s, collisions on the line (the gateway talking over a device: must be 0).

Layout (``--layout``): ``shared`` (default) puts the gas chamber's and the sewer's alarm points
on the loggers' line, where a transfer competes with them (the pump station keeps its own);
``reference`` keeps the site's four buses.

    .venv/bin/python benchmarks/bus_time.py [--baud 9600,38400] [--duration-s 8] [--json]
    .venv/bin/python benchmarks/bus_time.py --tree /work/main --json   # the baseline daemon

A night at 9600 baud (8 loggers x 8 s at 4096 Hz, 274 blocks each) takes about 13 minutes of
wall time, at 38400 about 4; ``--duration-s 2`` cuts both by four.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ENTRY = [sys.executable, "-m", "edge_agent"]
BITS_PER_CHAR = 11  # 8N2, as the gateway is configured and the relay paces
FLOORS = {"alarm_poll_late_p99_s": 1.0, "bus_utilisation": 0.9, "recording_s_vs_wire_limit": 1.15}
ALARM_KINDS = {"gas", "level", "pressure", "cover", "pump_controller"}
POLL_INTERVAL_S = {  # seeds/gateway.yaml's field rates, per device kind
    "noise_logger": 300,
    "pump_controller": 5,
    "level": 10,
    "rain": 30,
    "gas": 5,
    "pressure": 10,
    "cover": 15,
}
LOGGER_UNITS = range(1, 9)
BLOCK_INDEX, BLOCK_WINDOW = 110, 200  # the noise-logger-nl200 recording registers
RECORDING_REGISTERS = range(100, 320)
MIN_GAP_ABOVE_19200_S = 0.00175  # the Modbus serial line spec's fixed 3.5-character silence
STALL_S = 0.010  # a silence of the gateway's this long is a stall (its CPU), not a turnaround
SETTLE_S = 30.0  # at least this much polling before the night window opens
DEVICE_PRIORITY = 5  # the simulator's real-time priority, under the relay's


# -- the site and the gateway --------------------------------------------------------------


def bench_site(tmp: Path, layout: str) -> tuple[Path, dict[str, dict[int, tuple[str, str]]]]:
    """The reference site for ``layout``; and per bus, unit -> (device, kind)."""
    doc = yaml.safe_load((REPO / "seeds" / "site.yaml").read_text())
    if layout == "shared":
        moved = {"gaschamber": 100, "sewer": 200}  # unit offsets on the loggers' line
        for d in doc["devices"]:
            if d["bus"] in moved:
                d["unit_id"] += moved[d["bus"]]
                d["bus"] = "water"
        doc["sim_buses"] = [b for b in doc["sim_buses"] if b["name"] not in moved]
    buses: dict[str, dict[int, tuple[str, str]]] = {}
    for d in doc["devices"]:
        buses.setdefault(d["bus"], {})[d["unit_id"]] = (d["name"], d["kind"])
    path = tmp / "bench-site.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path, buses


def gateway_config(
    tmp: Path, buses: dict[str, dict[int, tuple[str, str]]], baud: int, duration_s: int
) -> tuple[Path, float]:
    """The gateway's config, and the epoch second its night window opens."""
    opens = math.ceil((time.time() + SETTLE_S + 60.0) / 60.0) * 60.0  # the settle, then a minute
    start = time.localtime(opens)
    end = time.localtime(opens + 3600)
    window = f"{start.tm_hour:02d}:{start.tm_min:02d}-{end.tm_hour:02d}:{end.tm_min:02d}"
    lines = ["version: 1", "gateway: {site: riverside, id: gw-bench}", "buses:"]
    for bus in buses:
        lines.append(
            f"  - {{name: {bus}, type: rtu, port: {tmp / ('gw-' + bus)}, baudrate: {baud},"
            " parity: N, stopbits: 2, timeout_s: 0.5, retries: 1}"
        )
    lines.append("devices:")
    for bus, units in buses.items():
        for unit, (name, kind) in units.items():
            profile = _profile_of(name)
            lines.append(
                f"  - {{name: {name}, bus: {bus}, unit_id: {unit}, profile: {profile},"
                f" poll_interval_s: {POLL_INTERVAL_S[kind]}}}"
            )
    lines += [
        f"storage: {{state_dir: {tmp / 'state'}}}",
        # One slot a night (interval: a day): every logger records once, when the window opens.
        f"leak_detection: {{recording_interval_s: 86400, night_window: '{window}',"
        f" duration_s: {duration_s}}}",
        "logging: {level: info, format: json}",
    ]
    path = tmp / "gateway.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path, opens


_PROFILES: dict[str, str] = {}


def _profile_of(name: str) -> str:
    if not _PROFILES:
        doc = yaml.safe_load((REPO / "seeds" / "site.yaml").read_text())
        _PROFILES.update({d["name"]: d["profile"] for d in doc["devices"]})
    return _PROFILES[name]


# -- the run -------------------------------------------------------------------------------


def _env(tree: Path = REPO) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba"))
    env["PYTHONPATH"] = str(tree)
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
        env.pop(key, None)
    return env


def _device_priority() -> None:
    """The simulated devices answer like dedicated hardware, not like one more process on a
    busy 2-core machine: a higher priority where allowed (the gateway keeps the normal one)."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(DEVICE_PRIORITY))
    except OSError:
        pass


def _wait_line(proc: subprocess.Popen, what: str) -> str:
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{what} exited before it was ready (code {proc.poll()})")
    return line


def run_night(baud: int, layout: str, duration_s: int, keep: Path | None, tree: Path) -> dict:
    """One night at ``baud``: the daemon of ``tree`` (this one, or a baseline checkout) on
    this tree's simulator and paced line."""
    tmp = Path(tempfile.mkdtemp(prefix=f"bus-time-{baud}-", dir=keep))
    site_path, buses = bench_site(tmp, layout)
    sim = subprocess.Popen(
        [*ENTRY, "simulate", "--site", str(site_path), "--transport", "pty",
         "--pty-dir", str(tmp), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(),
        preexec_fn=_device_priority,
    )  # fmt: skip
    procs: list[subprocess.Popen] = [sim]
    try:
        _wait_line(sim, "the simulator")
        relay = subprocess.Popen(
            [sys.executable, "-m", "drivers.sim.paced_line", "--baudrate", str(baud),
             "--bits", str(BITS_PER_CHAR), "--log", str(tmp / "wire.jsonl"),
             *(f"{tmp / bus}={tmp / ('gw-' + bus)}" for bus in buses)],
            stdout=subprocess.PIPE, text=True, env=_env(),
        )  # fmt: skip
        procs.append(relay)
        _wait_line(relay, "the paced line")
        config, opens = gateway_config(tmp, buses, baud, duration_s)
        log = (tmp / "daemon.log").open("w")
        spawned = time.monotonic()
        daemon = subprocess.Popen(
            [*ENTRY, "run", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT,
            env=_env(tree), cwd=tree,
        )  # fmt: skip
        procs.append(daemon)
        loggers = sum(
            1 for units in buses.values() for _n, k in units.values() if k == "noise_logger"
        )
        blocks = math.ceil(duration_s * 4096 / 120)
        deadline = opens + 120.0 + loggers * blocks * 3.0 * (9600 / baud) * 0.4
        recorded = _wait_for_recordings(tmp / "state", loggers, deadline, daemon)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        relay.send_signal(signal.SIGTERM)
        relay.wait(30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        if sim.stdin is not None:
            sim.stdin.close()
    figures = analyse(tmp / "wire.jsonl", buses, baud, spawned)
    figures["loggers_recorded"] = recorded
    figures["daemon_tree"] = str(tree)
    figures["daemon_errors"] = sum(
        1 for line in (tmp / "daemon.log").read_text().splitlines() if '"level": "error"' in line
    )
    figures["files"] = str(tmp) if keep is not None else None
    return figures


def _wait_for_recordings(state: Path, loggers: int, deadline: float, daemon) -> int:
    """Until every logger has a recording (status.json), the deadline, or the daemon ends."""
    from edge_agent.daemon.state import read_status

    done = 0
    while time.time() < deadline and daemon.poll() is None:
        time.sleep(2.0)
        try:
            snapshot = read_status(state)
        except Exception:  # not written yet
            continue
        done = sum(1 for lg in snapshot.loggers if lg.recordings >= 1)
        if done >= loggers:
            break
    return done


# -- what the relay saw ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tx:
    """A request frame, and the answer that followed it (None: a broadcast or no answer)."""

    start: float
    end: float  # of the answer if any, else of the request
    unit: int
    function: int
    address: int
    nbytes: int  # request and answer
    answered: bool
    request_end: float
    answer_start: float | None


def transactions(frames: list[dict]) -> list[Tx]:
    out: list[Tx] = []
    request = None
    for f in frames:
        if f["side"] == "master":
            if request is not None:
                out.append(_tx(request, None))
            request = f
        elif request is not None:
            out.append(_tx(request, f))
            request = None
    if request is not None:
        out.append(_tx(request, None))
    return out


def _tx(request: dict, answer: dict | None) -> Tx:
    head = bytes.fromhex(request["head"])
    address = int.from_bytes(head[2:4], "big") if len(head) >= 4 else -1
    return Tx(
        start=request["start"],
        end=answer["end"] if answer else request["end"],
        unit=head[0] if head else -1,
        function=head[1] if len(head) > 1 else -1,
        address=address,
        nbytes=request["nbytes"] + (answer["nbytes"] if answer else 0),
        answered=answer is not None,
        request_end=request["end"],
        answer_start=answer["start"] if answer else None,
    )


def _block(tx: Tx) -> bool:
    """A request of a recording transfer: a block index write or a block read."""
    return tx.unit in LOGGER_UNITS and (
        (tx.function == 6 and tx.address == BLOCK_INDEX)
        or (tx.function == 3 and tx.address == BLOCK_WINDOW)
    )


def _recording(tx: Tx) -> bool:
    return (tx.unit in LOGGER_UNITS or tx.unit == 0) and tx.address in RECORDING_REGISTERS


def _framing_silence_s(txs: list[Tx], gap: float) -> float:
    """The silences RTU framing requires before each frame of ``txs`` after the first, as
    the relay saw them, each at most ``gap`` (the rest of a longer one is idle)."""
    total = 0.0
    for previous, tx in itertools.pairwise(txs):
        total += min(gap, max(0.0, tx.start - previous.end))
    for tx in txs:
        if tx.answer_start is not None:
            total += min(gap, max(0.0, tx.answer_start - tx.request_end))
    return total


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def analyse(log: Path, buses: dict, baud: int, spawned: float) -> dict:
    char = BITS_PER_CHAR / baud
    lines: dict[int, list[dict]] = {}
    summaries: dict[int, dict] = {}
    for text in log.read_text().splitlines():
        entry = json.loads(text)
        if "side" in entry:
            lines.setdefault(entry["line"], []).append(entry)
        else:
            summaries[entry["line"]] = entry
    late: list[float] = []
    alarm_polls = 0
    gap = MIN_GAP_ABOVE_19200_S if baud > 19200 else 3.5 * char
    recording_s = wire_limit_s = busy_s = window_s = timeout_s = stall_s = silence_s = 0.0
    device_turn, master_turn = [], []
    first_request = math.inf
    early_requests = txs_seen = 0
    for index, bus in enumerate(buses):
        frames = sorted(lines.get(index, []), key=lambda f: f["start"])
        txs = transactions(frames)
        txs_seen += len(txs)
        for tx in txs:
            first_request = min(first_request, tx.start)
            early_requests += tx.start - spawned <= 30.0
        records = [tx for tx in txs if _recording(tx)]
        span = (records[0].start, max(tx.end for tx in records)) if records else (0.0, 0.0)
        # Transfers: per logger, from its first block request to its last block answer.
        for unit in LOGGER_UNITS:
            blocks = [i for i, tx in enumerate(txs) if _block(tx) and tx.unit == unit]
            if not blocks:
                continue
            first, last = blocks[0], blocks[-1]
            window_s += txs[last].end - txs[first].start
            busy_s += sum(tx.nbytes for tx in txs[first : last + 1]) * char
            silence_s += _framing_silence_s(txs[first : last + 1], gap)
            for tx, nxt in itertools.pairwise(txs[first : last + 1]):
                silent = nxt.start - tx.end  # the gateway's turn: it sends nothing
                if not tx.answered and tx.unit != 0:
                    timeout_s += silent  # waiting out a device that did not answer
                elif silent > STALL_S:
                    stall_s += silent
            for i in blocks:
                tx = txs[i]
                after = txs[i + 1].start if i < last else tx.end
                recording_s += after - tx.start
                wire_limit_s += tx.nbytes * char
                if tx.answer_start is not None:
                    device_turn.append(tx.answer_start - tx.request_end)
                if i < last and _block(txs[i + 1]):
                    master_turn.append(txs[i + 1].start - tx.end)
        # Alarm polls: gaps between answered polls, against the device's interval.
        for unit, (_name, kind) in buses[bus].items():
            if kind not in ALARM_KINDS:
                continue
            interval = POLL_INTERVAL_S[kind]
            starts, previous = [], -math.inf
            for tx in txs:
                if tx.unit == unit:
                    if tx.start - previous > interval / 2:
                        starts.append((tx.start, tx.answered))
                    previous = tx.start
            for (a, ok_a), (b, ok_b) in itertools.pairwise(starts):
                if ok_a and ok_b and span[0] <= b <= span[1] + interval:
                    late.append(max(0.0, b - a - interval))
                    alarm_polls += 1
    return {
        "baud": baud,
        "bits_per_char": BITS_PER_CHAR,
        "alarm_poll_late_p99_s": round(_percentile(late, 0.99), 3),
        "alarm_poll_late_max_s": round(max(late, default=0.0), 3),
        "alarm_polls_during_recordings": alarm_polls,
        "bus_utilisation": round((busy_s + silence_s) / window_s, 3) if window_s else None,
        "bus_utilisation_chars_only": round(busy_s / window_s, 3) if window_s else None,
        "recording_s_vs_wire_limit": round(recording_s / wire_limit_s, 3) if wire_limit_s else None,
        "transfer_s": round(recording_s, 1),
        "transfer_wire_limit_s": round(wire_limit_s, 1),
        "transfer_idle_s": round(window_s - busy_s - silence_s, 1),
        "transfer_framing_silence_s": round(silence_s, 1),
        "idle_waiting_on_timeouts_s": round(timeout_s, 1),
        "idle_stalls_over_10_ms_s": round(stall_s, 1),
        "gap_ms": round(gap * 1000, 2),
        "device_turnaround_ms_mean": round(1000 * _mean(device_turn), 2),
        "gateway_turnaround_ms_mean": round(1000 * _mean(master_turn), 2),
        "gateway_turnaround_ms_p99": round(1000 * _percentile(master_turn, 0.99), 2),
        "first_request_s": round(first_request - spawned, 2) if txs_seen else None,
        "requests_first_30_s": early_requests,
        "collisions": sum(s.get("collisions", 0) for s in summaries.values()),
        "relay_max_lag_ms": round(
            1000 * max((s.get("max_lag_s", 0) for s in summaries.values()), default=0), 2
        ),
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baud", default="9600,38400", help="comma-separated (default 9600,38400)")
    parser.add_argument("--duration-s", type=int, default=8, help="recording length (default 8)")
    parser.add_argument("--layout", choices=("shared", "reference"), default="shared")
    parser.add_argument("--keep", type=Path, help="keep each run's files (logs, wire log) here")
    parser.add_argument(
        "--tree",
        type=Path,
        default=REPO,
        help="run the daemon of this checkout (a baseline, e.g. the main branch's worktree)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        bauds = [int(b) for b in args.baud.split(",")]
    except ValueError:
        parser.error(f"--baud {args.baud!r}: give baud rates like 9600,38400")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    tree = args.tree.resolve()
    if not (tree / "edge_agent" / "__main__.py").exists():
        parser.error(f"--tree {args.tree}: not an edge-agent checkout")
    runs = [run_night(baud, args.layout, args.duration_s, args.keep, tree) for baud in bauds]
    verdicts = {
        name: all(
            r[name] is not None
            and (r[name] <= floor if "late" in name or "vs" in name else r[name] >= floor)
            for r in runs
        )
        for name, floor in FLOORS.items()
    }
    result = {"layout": args.layout, "duration_s": args.duration_s, "floors": FLOORS,
              "pass": verdicts, "runs": runs}  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"bus_time: layout {args.layout}, {args.duration_s} s recordings, 8N2 (11 bits)")
    for r in runs:
        print(
            f"  {r['baud']:>6} baud: alarm late p99 {r['alarm_poll_late_p99_s']} s (max "
            f"{r['alarm_poll_late_max_s']}, {r['alarm_polls_during_recordings']} polls), "
            f"utilisation {r['bus_utilisation']} (characters alone "
            f"{r['bus_utilisation_chars_only']}), transfer {r['transfer_s']} s vs wire limit "
            f"{r['transfer_wire_limit_s']} s = {r['recording_s_vs_wire_limit']}x"
        )
        print(
            f"          gap {r['gap_ms']} ms, device turnaround {r['device_turnaround_ms_mean']} "
            f"ms, gateway turnaround {r['gateway_turnaround_ms_mean']} ms (p99 "
            f"{r['gateway_turnaround_ms_p99']}), framing silences "
            f"{r['transfer_framing_silence_s']} s, idle beyond them {r['transfer_idle_s']} s "
            f"(timeouts {r['idle_waiting_on_timeouts_s']}, "
            f"stalls {r['idle_stalls_over_10_ms_s']}), "
            f"first request {r['first_request_s']} s, "
            f"{r['requests_first_30_s']} requests in 30 s, {r['collisions']} collisions, "
            f"{r['loggers_recorded']} loggers recorded"
        )
    print(
        "  floors: "
        + ", ".join(f"{k} {v} ({'ok' if verdicts[k] else 'FAIL'})" for k, v in FLOORS.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
