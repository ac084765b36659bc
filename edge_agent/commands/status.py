"""``edge-agent status``: what the running daemon sees, read from its state directory."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from edge_agent.daemon.state import StatusSnapshot, offline_reason, pid_alive, read_status
from edge_agent.errors import EXIT_OK, EXIT_RUNTIME

DEFAULT_STATE_DIR = Path("/var/lib/edge-agent")

DESCRIPTION = """\
Show the running daemon's devices (online, last reading, error counts), the latest leak score
per noise logger, the outbox (depth, oldest event) and the uplink state.

The daemon rewrites <state-dir>/status.json every few seconds; this command reads it. Under
systemd (DynamicUser) the state directory is readable by root only: use sudo.

examples:
  sudo edge-agent status
  edge-agent status --state-dir .cache/demo-state --json
  edge-agent status --config /etc/edge-agent/gateway.yaml

exit codes: 0 the daemon is running, 1 it is not (the last state is still shown), 2 bad input
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help=f"the daemon's state directory (default: {DEFAULT_STATE_DIR})",
    )
    where.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="take the state directory from this gateway config (storage.state_dir)",
    )
    parser.add_argument("--json", action="store_true", help="print the snapshot as JSON")


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state_dir is not None:
        return args.state_dir
    if args.config is not None:
        from edge_agent.config import load_config  # only when asked: it pulls in the schema

        return Path(load_config(args.config).storage.state_dir)
    return DEFAULT_STATE_DIR


def run(args: argparse.Namespace) -> int:
    snapshot = read_status(_state_dir(args))
    now = time.time()
    running = pid_alive(snapshot.pid) and not snapshot.is_stale(now)
    if args.json:
        doc = snapshot.to_json()
        doc["running"] = running
        doc["age_s"] = round(now - snapshot.updated_at, 3)
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(snapshot, running=running, now=now))
    return EXIT_OK if running else EXIT_RUNTIME


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def render(snapshot: StatusSnapshot, *, running: bool, now: float) -> str:
    """The human-readable report (pure: tested without a daemon)."""
    lines: list[str] = []
    age = now - snapshot.updated_at
    if running:
        state = f"running (pid {snapshot.pid}, up {_age(now - snapshot.started_at)})"
        if not snapshot.ready:
            state += ", starting: first poll cycle not finished"
    else:
        state = f"NOT RUNNING (last state written {_age(age)} ago by pid {snapshot.pid})"
    lines.append(f"edge-agent {snapshot.site}/{snapshot.gateway}: {state}")
    if snapshot.stalled:
        lines.append(f"  stalled loops: {', '.join(snapshot.stalled)}")
    if snapshot.config_error:
        lines.append(f"  last reload refused: {snapshot.config_error}")
    up = snapshot.uplink
    uplink = up.state + (f" to {up.url}" if up.url else "")
    uplink += f", {up.published} published"
    if up.last_error:
        uplink += f" (last error: {up.last_error})"
    lines.append(f"uplink: {uplink}")
    ob = snapshot.outbox
    outbox = f"{ob.depth} waiting"
    if ob.depth and ob.oldest_age_s is not None:
        outbox += f", oldest {_age(ob.oldest_age_s)}"
    if ob.degraded:
        outbox += (
            f" (DEGRADED: {ob.reason or 'disk failing'}: {ob.held_in_memory} events held in"
            " memory only)"
        )
    if ob.dropped_total:
        outbox += f", {ob.dropped_total} dropped since start"
    lines.append(f"outbox: {outbox}")
    online = sum(1 for d in snapshot.devices if d.online)
    why = offline_reason(snapshot.devices)
    lines.append(f"devices: {online}/{len(snapshot.devices)} online" + (f" ({why})" if why else ""))
    if snapshot.devices:
        rows: list[tuple[str, ...]] = [
            ("DEVICE", "BUS", "STATE", "LAST READING", "OK", "FAILED", "LAST ERROR")
        ]
        for d in snapshot.devices:
            if d.online is None:  # not online yet: waiting for a first poll, or for an answer
                status = "NO ANSWER" if d.last_error else "waiting"
            else:
                status = "online" if d.online else "OFFLINE"
            last = _age(now - d.last_reading_ts) + " ago" if d.last_reading_ts else "-"
            rows.append(
                (
                    d.name,
                    d.bus,
                    status,
                    last,
                    str(d.polls_ok),
                    str(d.polls_failed),
                    d.last_error or "",
                )
            )
        lines.extend(_table(rows))
    if snapshot.loggers:
        lines.append("leak detection:")
        rows = [("LOGGER", "SCORE", "STATE", "RECORDED", "RECORDINGS")]
        for lg in snapshot.loggers:
            score = f"{lg.score:.2f}" if lg.score is not None else "-"
            recorded = _age(now - lg.recorded_at) + " ago" if lg.recorded_at else "-"
            rows.append((lg.name, score, lg.state, recorded, str(lg.recordings)))
        lines.extend(_table(rows))
    return "\n".join(lines) + "\n"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
