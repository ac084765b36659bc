"""What the daemon reads before it starts and on every SIGHUP (the config with its profile
registry, the site file it names) and where it keeps its state. A file a person got wrong is
a ``UsageError`` (exit 2, one line per problem); a state directory that cannot be created a
``RuntimeFailure`` (exit 1)."""

from __future__ import annotations

import os
from pathlib import Path

from edge_agent.bus_setup import load_config_with_profiles as load_config
from edge_agent.config.model import GatewayConfig
from edge_agent.errors import RuntimeFailure, UsageError
from edge_agent.logs import get_logger
from sitemodel import Site, SiteError, load_site

__all__ = ["check_reloadable", "load_config", "load_site_of", "prepare_state_dir"]
__all__ += ["state_dir_for"]

log = get_logger("edge_agent.daemon")


def load_site_of(config: GatewayConfig, override: Site | None = None) -> Site | None:
    """The site the config names (``override`` wins: the demo's), or None. Raises UsageError
    for a site file that cannot be read or is not valid."""
    if override is not None or config.site_file is None:
        return override
    try:
        return load_site(config.site_file)
    except SiteError as exc:  # file:line:col already in the message
        raise UsageError(str(exc)) from exc


def check_reloadable(old: GatewayConfig | None, new: GatewayConfig) -> None:
    """Raises UsageError when ``new`` changes what only a restart may change."""
    changed = [n for n in ("gateway", "storage") if old and getattr(old, n) != getattr(new, n)]
    if changed:
        raise UsageError(
            f"{new.source_path}: {', '.join(changed)} changed: needs a restart "
            "(systemctl restart edge-agent), not a reload"
        )


def state_dir_for(config: GatewayConfig, override: Path | None = None) -> Path:
    """``--state-dir`` if given, else the config's ``storage.state_dir``."""
    return Path(override) if override is not None else Path(config.storage.state_dir)


def prepare_state_dir(config: GatewayConfig, override: Path | None = None) -> Path:
    """Create the state directory (0700) if needed. Raises RuntimeFailure when it cannot be
    created (a wrong path: the usual cause is not running under systemd's StateDirectory=).
    One that exists but refuses writes (read-only, full) is not fatal: polling goes on and
    the outbox holds alarms in memory until it can write (degraded)."""
    path = state_dir_for(config, override)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeFailure(
            f"state directory {path}: cannot create: {exc.strerror or exc} (see --state-dir)"
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        log.error("state directory not writable: outbox degraded until it is", path=str(path))
    return path
