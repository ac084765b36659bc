"""A small catalog of real profiles for the integrations' tests, and helpers to read what the
integrations publish (decoded JSON by topic, checked against the shipped schemas)."""

from __future__ import annotations

import json

from drivers.profile import ProfileRegistry
from edge_agent import payload
from edge_agent.config.loader import parse_config
from edge_agent.events import Event, Severity
from edge_agent.integrations.catalog import Catalog, build_catalog
from edge_agent.integrations.link import Message
from edge_agent.rules import DeviceInfo, RulesEngine
from edge_agent.uplink.topics import Topics

T0 = 1_800_000_000.0
BASE = "lifeline/v1/riverside/gw-01"
TOPICS = Topics("lifeline/v1", "riverside", "gw-01")
REGISTRY = ProfileRegistry()

CONFIG = """\
version: 1
gateway: {site: riverside, id: gw-01}
buses: [{name: sewer, type: tcp, host: 127.0.0.1, port: 15022}]
devices:
  - {name: lv-01, bus: sewer, unit_id: 1, profile: level-radar-lr10, asset_id: CIM-LV-1,
     location: {lat: 31.23, lon: 121.47, description: manhole M1},
     rules: {points: {level: {high: 1000, high_high: 2000}}}}
  - {name: gd-01, bus: sewer, unit_id: 2, profile: gas-detector-mg4}
  - {name: nl-01, bus: sewer, unit_id: 3, profile: noise-logger-nl200}
  - {name: ps-01, bus: sewer, unit_id: 4, profile: pump-controller-ps2}
"""


def config(text: str = CONFIG):
    return parse_config(text, file="gateway.yaml")


def catalog_and_engine(text: str = CONFIG) -> tuple[Catalog, RulesEngine]:
    cfg = config(text)
    profiles = {
        d.name: REGISTRY.get(d.profile).with_overrides(d.overrides.points) for d in cfg.devices
    }
    engine = RulesEngine(
        cfg.rules, [DeviceInfo(d.name, profiles[d.name], rules=d.rules) for d in cfg.devices]
    )
    catalog = build_catalog(
        cfg, profiles, None, agent="edge-agent 9.9", conditions=engine.conditions
    )
    return catalog, engine


def event(seq: int, dev: str, kind: str, ts: float, sev: int = 2, **data) -> Event:
    return Event("gw-01", seq, dev, kind, Severity(sev), ts, json.dumps(data))


def telemetry(seq: int, dev: str, ts: float, **values) -> Event:
    return Event(
        "gw-01", seq, dev, "telemetry", Severity.INFO, ts, json.dumps(values), stream="telemetry"
    )


SCHEMA_OF = {
    "devices": "device",
    "availability": "availability",
    "alarms": "alarms",
    "values": "values",
    "cmd-result": "command-result",
}


def checked(messages: list[Message]) -> dict[str, dict | None]:
    """topic -> decoded payload (None: a cleared retained topic), each checked against the
    schema of its topic; the last message of a topic wins."""
    out: dict[str, dict | None] = {}
    for m in messages:
        if not m.payload:
            out[m.topic] = None
            continue
        body = json.loads(m.payload)
        kind = m.topic.removeprefix(BASE + "/").split("/")[0]
        if kind in SCHEMA_OF:
            payload.validate(body, SCHEMA_OF[kind])
        out[m.topic] = body
    return out
