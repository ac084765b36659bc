"""The hub: what goes out on a connect, what a restart finds to clear (a device removed while
the gateway was down, Home Assistant turned off), Home Assistant's birth, command routing,
and that protobuf is never imported while Sparkplug is off."""

from __future__ import annotations

import subprocess
import sys

from edge_agent.config.model import CommandsConfig, HomeAssistantConfig
from edge_agent.integrations.catalog import Catalog
from edge_agent.integrations.hub import Integrations, IntegrationSettings
from tests.edge_agent.integrations.fixtures import BASE, T0, TOPICS, catalog_and_engine, event
from tests.edge_agent.integrations.test_commands import Target

NOTHING = lambda _dev: frozenset()  # noqa: E731


class Broker:
    """What a connection would carry: (topic, payload, retain) in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bool]] = []

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        self.sent.append((topic, payload, retain))
        return True

    def retained(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for topic, body, retain in self.sent:
            if retain:
                out[topic] = body
        return {t: b for t, b in out.items() if b}


def hub(settings=None, saved=None, kept=None):
    return Integrations(
        settings or IntegrationSettings(),
        TOPICS,
        Catalog("riverside", "gw-01", "edge-agent 9"),
        now=lambda: T0,
        wall=lambda: T0,
        target=Target(),
        persist=(kept.append if kept is not None else None),
        saved=saved,
    )


def test_nothing_goes_out_before_a_catalog_then_everything_on_connect():
    h = hub()
    broker = Broker()
    h.connected(broker.publish)
    assert broker.sent == []
    catalog, _ = catalog_and_engine()
    h.set_catalog(catalog, NOTHING)
    topics = {t for t, _, _ in broker.sent}
    assert f"{BASE}/devices/lv-01" in topics and f"{BASE}/alarms/ps-01" in topics


def test_a_device_removed_while_down_is_cleared_at_the_next_start():
    catalog, _ = catalog_and_engine()
    kept: list[dict] = []
    first = hub(kept=kept)
    first.set_catalog(catalog, NOTHING)
    first.on_event(event(3, "gd-01", "gas.alarm1", T0, point="lel"))
    saved = kept[-1]
    assert saved["alarms"]["gd-01"][0]["seq"] == 3
    smaller, _ = catalog_and_engine(
        "version: 1\ngateway: {site: riverside, id: gw-01}\n"
        "buses: [{name: sewer, type: tcp, host: 127.0.0.1, port: 15022}]\n"
        "devices:\n  - {name: lv-01, bus: sewer, unit_id: 1, profile: level-radar-lr10}\n"
    )
    second = hub(saved=saved)
    broker = Broker()
    second.connected(broker.publish)
    second.set_catalog(smaller, NOTHING)
    cleared = {t for t, body, retain in broker.sent if retain and not body}
    assert {f"{BASE}/devices/gd-01", f"{BASE}/alarms/gd-01", f"{BASE}/values/nl-01"} <= cleared
    assert f"{BASE}/devices/lv-01" in broker.retained()


def test_a_raised_leak_survives_a_restart():
    catalog, _engine = catalog_and_engine()
    kept: list[dict] = []
    first = hub(kept=kept)
    first.set_catalog(catalog, NOTHING)
    first.on_event(event(8, "nl-01", "leak.confirmed", T0, 3))
    second = hub(saved=kept[-1])
    broker = Broker()
    second.connected(broker.publish)
    second.set_catalog(catalog, lambda dev: frozenset({"leak"}) if dev == "nl-01" else frozenset())
    assert b'"seq":8' in broker.retained()[f"{BASE}/alarms/nl-01"]


def test_turning_discovery_off_removes_every_entity_and_ha_online_republishes():
    catalog, _ = catalog_and_engine()
    kept: list[dict] = []
    on = IntegrationSettings(home_assistant=HomeAssistantConfig(enabled=True))
    h = hub(on, kept=kept)
    broker = Broker()
    h.connected(broker.publish)
    h.set_catalog(catalog, NOTHING)
    configs = {t for t in broker.retained() if t.startswith("homeassistant/")}
    assert len(configs) > 40
    assert "homeassistant/status" in h.subscriptions()
    broker.sent.clear()
    h.on_message("homeassistant/status", b"online")
    assert {t for t, _, _ in broker.sent} == configs
    off = hub(saved=kept[-1])  # the next start, discovery off
    broker2 = Broker()
    off.connected(broker2.publish)
    off.set_catalog(catalog, NOTHING)
    assert {t for t, body, _ in broker2.sent if not body} >= configs


def test_commands_are_routed_and_answered():
    h = hub(IntegrationSettings(commands=CommandsConfig(enabled=True)))
    broker = Broker()
    h.connected(broker.publish)
    catalog, _ = catalog_and_engine()
    h.set_catalog(catalog, NOTHING)
    assert h.subscriptions() == [f"{BASE}/cmd/#"]
    broker.sent.clear()
    h.on_message(f"{BASE}/cmd/ping", b'{"id":"x1","ts":%d}' % int(T0 * 1000))
    ((topic, body, retain),) = broker.sent
    assert topic == f"{BASE}/cmd-result/x1" and b'"ok":true' in body and not retain


def test_protobuf_is_not_imported_while_sparkplug_is_off():
    code = (
        "import sys\n"
        "import edge_agent.daemon.app, edge_agent.daemon.integration, edge_agent.integrations.hub\n"
        "assert not [m for m in sys.modules if m.startswith('google.protobuf')], 'protobuf'\n"
        "import edge_agent.integrations.sparkplug.node\n"
        "assert 'google.protobuf' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
