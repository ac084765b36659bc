"""``edge-agent check-config FILE``: validate a gateway config and list every problem.

Valid: one line on stdout (``FILE: ok (N buses, M devices)``), exit 0. Invalid: one line per
problem on stderr (``FILE:LINE:COL: PATH: MESSAGE``), exit 2. ``--json`` prints the same as one
JSON object on stdout. Device profiles are checked against the shipped ones plus the config's
``profiles_dir``; the ``site_file`` is loaded as the daemon loads it at start (which refuses
to start on any problem in it), and its ``scenarios:`` as the simulator reads them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from edge_agent.config.loader import (
    ConfigError,
    Problem,
    load_config,
    registry_profiles,
    resolve_uplink_password,
)
from edge_agent.errors import EXIT_OK, EXIT_USAGE

DESCRIPTION = """\
Validate a gateway config file: types, ranges, unknown keys, names that would break MQTT
topics, bus and device cross references, unit ids, device profiles, uplink URL and TLS,
and the site file it names (its simulator scenarios too). Every problem is listed, one line
each, as FILE:LINE:COL: PATH: MESSAGE.

examples:
  edge-agent check-config /etc/edge-agent/gateway.yaml
      /etc/edge-agent/gateway.yaml: ok (2 buses, 14 devices)
  edge-agent check-config gateway.yaml
      gateway.yaml:23:14: devices[2].unit_id: 300 is not in 1..247
      gateway.yaml:24:5: devices[2].unti_id: unknown key (did you mean 'unit_id'?)
  edge-agent check-config --json gateway.yaml
      {"ok": false, "file": "gateway.yaml", "problems": [{"file": ..., "line": 23, ...}]}
  sudo -E edge-agent check-config --secrets /etc/edge-agent/gateway.yaml
      also reads the MQTT password (password_env / password_file) as the daemon would

Exit codes: 0 valid, 2 invalid or unreadable.
Reference of every field: docs/config.md; JSON Schema for editors: edge-agent config-schema.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="gateway config (YAML)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--secrets",
        action="store_true",
        help="also resolve the MQTT password from its variable or file (never printed)",
    )


def _site_problems(path: str) -> list[Problem]:
    """Every problem of the site file as the daemon reads it, and of the scenarios in it the
    simulator plays."""
    from drivers.sim.scenarios import read_scenarios
    from sitemodel import SiteError, load_site

    try:
        read_scenarios(load_site(path))
    except SiteError as exc:
        return exc.problems or [Problem(path, None, None, "", str(exc))]
    return []


def run(args: argparse.Namespace) -> int:
    problems: list[Problem] = []
    cfg = None
    try:
        cfg = load_config(args.file, profiles=registry_profiles)
        if args.secrets:
            resolve_uplink_password(cfg)
    except ConfigError as exc:
        problems = exc.problems
    if cfg is not None and not problems and cfg.site_file is not None:
        problems = _site_problems(cfg.site_file)
    if args.json:
        out: dict[str, Any] = {
            "ok": not problems,
            "file": args.file,
            "problems": [p.as_dict() for p in problems],
        }
        if cfg is not None and not problems:
            out["buses"] = len(cfg.buses)
            out["devices"] = len(cfg.devices)
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
    elif problems or cfg is None:
        for p in problems:
            print(p, file=sys.stderr)
    else:
        buses, devices = _count(len(cfg.buses), "bus"), _count(len(cfg.devices), "device")
        print(f"{args.file}: ok ({buses}, {devices})")
    return EXIT_USAGE if problems else EXIT_OK


def _count(n: int, noun: str) -> str:
    plural = "es" if noun.endswith("s") else "s"
    return f"{n} {noun}" if n == 1 else f"{n} {noun}{plural}"
