"""The gateway config: one YAML file per gateway, parsed and validated once into frozen
dataclasses (``model``) with file:line:col problems (``loader``), a JSON Schema for editors
(``schema``) and secrets that never print (``secrets``). See docs/config.md.

Typical use::

    from edge_agent.config import load_config
    cfg = load_config("/etc/edge-agent/gateway.yaml", profile_exists=registry.__contains__)

It may import ``yamlread`` (the reader), ``drivers`` (profiles, ``PointOverride``), ``dsp``
(pipe materials) and ``edge_agent.rules.config`` (the rules sections). The names below are
imported lazily: importing this package must not import ``model`` and everything it reads.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Bus",
    "ConfigError",
    "Device",
    "GatewayConfig",
    "LeakDetectionConfig",
    "LoggingConfig",
    "Problem",
    "RtuBus",
    "RtuOverTcpBus",
    "Secret",
    "StorageConfig",
    "TcpBus",
    "UplinkConfig",
    "load_config",
    "parse_config",
    "resolve_uplink_password",
]

_HOME = {
    "ConfigError": "loader",
    "Problem": "loader",
    "load_config": "loader",
    "parse_config": "loader",
    "resolve_uplink_password": "loader",
    "Secret": "secrets",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_HOME.get(name, 'model')}")
    return getattr(module, name)
