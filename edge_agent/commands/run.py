"""``edge-agent run``: the gateway daemon, in the foreground (what systemd starts)."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drivers.profile import ProfileRegistry
    from edge_agent.config.model import GatewayConfig

DESCRIPTION = """\
Run the gateway daemon in the foreground: poll the configured buses, apply the rules, record
and analyse the noise loggers, keep every event in the outbox (SQLite, in the state directory)
and forward it to the MQTT broker.

Signals: SIGTERM/SIGINT stop cleanly (flush, publish the retained `offline` state, exit 0);
SIGHUP re-reads the config and applies it when valid, otherwise keeps running on the old one
and logs why (also shown by `edge-agent status`); SIGUSR1 records every noise logger now.

Under systemd (Type=notify) it sends READY=1 once every device has been polled once (the
DSP kernels load beside the first polls; compiled on the very first start), STATUS=
with devices online / outbox depth / uplink state, and WATCHDOG=1 only while every poll loop,
the leak pipeline and the uplink make progress. See docs/operations.md.

examples:
  edge-agent run --config /etc/edge-agent/gateway.yaml
  edge-agent run --config seeds/gateway.yaml --state-dir .cache/state --mqtt mqtt://127.0.0.1:1883

A state directory that is read-only or full (from the start or later) does not stop it:
polling goes on, alarms are held in memory (up to 1000 events; telemetry is dropped and
counted), STATUS= and the log say "outbox degraded: <reason>", and everything held is written
and forwarded once the disk takes writes again.

One daemon per state directory: a second `run` on a state directory another edge-agent
holds exits 1 at once, naming that one's pid.

exit codes: 0 clean stop, 1 runtime failure (state directory cannot be created or is in
use by another edge-agent, ...), 2 bad config
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        required=True,
        metavar="FILE",
        help="gateway config (YAML); see docs/config.md",
    )
    parser.add_argument(
        "--mqtt",
        metavar="URL",
        default=None,
        help="broker URL overriding uplink.url, e.g. mqtt://127.0.0.1:1883",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        default=None,
        help="outbox and status directory overriding storage.state_dir",
    )


def check(args: argparse.Namespace) -> tuple[GatewayConfig, ProfileRegistry]:
    """What ``run`` refuses before anything starts: the config (with its profiles; a bad one
    is exit 2 with its problems), then the broker URL (``--mqtt`` or ``uplink.url``, by the
    rule ``check-config`` applies) and the password source. Returns the config and the
    profile registry; raises ``UsageError``."""
    from edge_agent.daemon.loading import load_config
    from edge_agent.uplink import UplinkSettings

    config, profiles = load_config(args.config)
    UplinkSettings.from_config(config, mqtt_url=args.mqtt)
    return config, profiles


def run(args: argparse.Namespace) -> int:
    from edge_agent.daemon.footprint import refuse_test_only_imports

    refuse_test_only_imports()  # before anything imports numba: see that module
    from edge_agent.daemon.loading import state_dir_for
    from edge_agent.kernel_cache import ensure_numba_cache_dir
    from edge_agent.logs import configure_logging

    config, profiles = check(args)  # before the outbox is opened or any connection is tried
    # Whatever umask we were started with, everything the daemon creates (outbox, status file,
    # numba cache under the state directory) is for its own user only (the unit: UMask=0077).
    os.umask(os.umask(0o077) | 0o077)
    ensure_numba_cache_dir(state_dir_for(config, args.state_dir) / "numba-cache")
    configure_logging(config.logging.level, config.logging.format)
    from edge_agent.daemon.app import Daemon, DaemonOptions

    options = DaemonOptions(
        config_path=args.config,
        config=config,
        profiles=profiles,
        state_dir=args.state_dir,
        mqtt_url=args.mqtt,
    )
    return asyncio.run(Daemon(options).run())
