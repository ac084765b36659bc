"""Home Assistant discovery configs: HA's documented topic layout and keys, one HA device per
field device linked to the gateway's, stable unique ids, device classes with units HA accepts
for them, and templates that resolve, from the retained state alone, to a value (rendered
with Jinja2, the engine HA's templates run on)."""

from __future__ import annotations

import json
import re

import jinja2.sandbox
import pytest

from drivers.model import PollResult
from edge_agent.config.model import HomeAssistantConfig
from edge_agent.integrations.homeassistant import HomeAssistant
from edge_agent.integrations.state import CurrentState
from tests.edge_agent.integrations.fixtures import (
    REGISTRY,
    T0,
    TOPICS,
    catalog_and_engine,
    event,
    telemetry,
)

# HA's MQTT discovery, as documented (sensor.mqtt, binary_sensor.mqtt, "MQTT discovery").
TOPIC = re.compile(r"^homeassistant/(sensor|binary_sensor)/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+/config$")
COMMON_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "device", "device_class", "enabled_by_default", "encoding", "entity_category", "expire_after",
    "force_update", "icon", "json_attributes_template", "json_attributes_topic", "name",
    "object_id", "origin", "payload_available", "payload_not_available", "qos", "state_topic",
    "unique_id", "value_template",
}  # fmt: skip
KEYS = {
    "sensor": COMMON_KEYS | {"state_class", "suggested_display_precision", "unit_of_measurement"},
    "binary_sensor": COMMON_KEYS | {"off_delay", "payload_off", "payload_on"},
}
DEVICE_KEYS = {
    "configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
    "name", "serial_number", "suggested_area", "sw_version", "via_device",
}  # fmt: skip
AVAILABILITY_KEYS = {"topic", "payload_available", "payload_not_available", "value_template"}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
# Sensor device classes used here and the units HA accepts for each.
SENSOR_UNITS = {
    "battery": {"%"},
    "carbon_monoxide": {"ppm"},
    "current": {"A", "mA"},
    "distance": {"km", "m", "cm", "mm", "in", "ft", "yd", "mi"},
    "duration": {"d", "h", "min", "s", "ms"},
    "frequency": {"Hz", "kHz", "MHz", "GHz"},
    "precipitation": {"cm", "in", "mm"},
    "precipitation_intensity": {"in/d", "in/h", "mm/d", "mm/h"},
    "pressure": {"Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg", "psi"},
    "signal_strength": {"dB", "dBm"},
    "sound_pressure": {"dB", "dBA"},
    "temperature": {"°C", "°F", "K"},
    "voltage": {"V", "mV", "µV", "kV", "MV"},
}
BINARY_CLASSES = {
    "battery", "cold", "connectivity", "door", "gas", "moisture", "opening", "problem",
    "running", "safety", "smoke",
}  # fmt: skip

CONFIG = """\
version: 1
gateway: {site: riverside, id: gw-01}
buses: [{name: b, type: tcp, host: 127.0.0.1, port: 15022}]
devices:
""" + "".join(
    f"  - {{name: d-{p.name}, bus: b, unit_id: {i + 1}, profile: {p.name}}}\n"
    for i, p in enumerate(REGISTRY.all())
)


def build():
    catalog, _ = catalog_and_engine(CONFIG)
    ha = HomeAssistant(HomeAssistantConfig(enabled=True), TOPICS)
    return catalog, ha, {t: json.loads(b) for t, b in ha.configs(catalog).items()}


def test_topics_keys_and_devices_follow_the_documented_schema():
    catalog, ha, configs = build()
    gateway_ids = set()
    for topic, config in configs.items():
        m = TOPIC.match(topic)
        assert m, topic
        assert set(config) <= KEYS[m.group(1)], (topic, set(config) - KEYS[m.group(1)])
        assert set(config["device"]) <= DEVICE_KEYS
        for entry in config.get("availability", []):
            assert set(entry) <= AVAILABILITY_KEYS and entry["topic"].startswith("lifeline/")
        if "via_device" not in config["device"]:
            gateway_ids.update(config["device"]["identifiers"])
    assert gateway_ids == {ha.gateway_identifier}
    devices = {c["device"]["identifiers"][0] for c in configs.values()} - gateway_ids
    assert len(devices) == len(catalog.devices)  # one HA device per field device
    assert all(
        c["device"]["via_device"] == ha.gateway_identifier
        for c in configs.values()
        if c["device"]["identifiers"][0] in devices
    )


def test_unique_ids_are_unique_and_stable():
    _, _, configs = build()
    ids = [c["unique_id"] for c in configs.values()]
    assert len(ids) == len(set(ids))
    assert [c["unique_id"] for c in build()[2].values()] == ids


def test_device_and_state_classes_are_ones_ha_accepts_with_their_units():
    _, _, configs = build()
    classes = set()
    for topic, c in configs.items():
        if "state_class" in c:
            assert c["state_class"] in STATE_CLASSES
            assert "unit_of_measurement" in c or c.get("device_class") is None
        dc = c.get("device_class")
        if dc is None:
            continue
        classes.add(dc)
        if topic.startswith("homeassistant/sensor/"):
            assert c.get("unit_of_measurement") in SENSOR_UNITS[dc], (topic, dc)
        else:
            assert dc in BINARY_CLASSES
    # the point families of the shipped profiles get their classes
    assert {"distance", "temperature", "battery", "pressure", "gas", "moisture"} <= classes


def render(template: str, body: bytes | None) -> str:
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    value_json = json.loads(body) if body else None
    return env.from_string(template).render(value_json=value_json, value=body).strip()


def assert_every_entity_resolves(configs: dict[str, dict], retained: dict[str, bytes]) -> list[str]:
    """Every entity's value and attribute templates resolve from ``retained`` (topic ->
    payload) alone, and every availability to online; returns the binary sensors that are on."""
    on = []
    for topic, c in configs.items():
        got = render(c["value_template"], retained[c["state_topic"]])
        if topic.startswith("homeassistant/binary_sensor/"):
            assert got in ("ON", "OFF"), (topic, got)
            if got == "ON":
                on.append(topic)
        else:
            assert got not in ("", "None"), topic
            if "unit_of_measurement" in c:
                float(got)
        for entry in c.get("availability", []):
            assert render(entry["value_template"], retained[entry["topic"]]) == "online"
        if "json_attributes_template" in c:
            attrs = json.loads(render(c["json_attributes_template"], retained[c["state_topic"]]))
            assert isinstance(attrs, dict)
    return on


def test_every_entity_resolves_to_a_value_from_the_retained_state():
    catalog, _, configs = build()
    state = CurrentState(TOPICS, catalog)
    for fd in catalog.devices:
        state.on_poll(PollResult("b", fd.name, T0))
        values = {p.name: (True if p.type == "bool" else 1) for p in fd.points}
        state.on_event(telemetry(1, fd.name, T0, **values))
    state.on_event(event(9, "d-gas-detector-mg4", "gas.alarm1", T0, point="lel"))
    retained = {"lifeline/v1/riverside/gw-01/state": b'{"v":1,"state":"online"}'}
    retained.update({m.topic: m.payload for m in state.messages()})
    on = assert_every_entity_resolves(configs, retained)
    gas = "homeassistant/binary_sensor/riverside_gw-01/d-gas-detector-mg4_alarm_gas_lel/config"
    assert gas in on
    attrs = json.loads(
        render(configs[gas]["json_attributes_template"], retained[configs[gas]["state_topic"]])
    )
    assert (attrs["kind"], attrs["seq"]) == ("gas.alarm1", 9)


@pytest.mark.parametrize(("value", "expected"), [(None, "None"), (False, "OFF"), (True, "ON")])
def test_a_boolean_point_unknown_is_none_not_off(value, expected):
    """HA takes a rendered ``None`` as unknown; an unread boolean is not "off"."""
    _, _, configs = build()
    config = next(c for t, c in configs.items() if t.endswith("_cover_open/config"))
    body = json.dumps({"data": {"cover_open": value}}).encode()
    assert render(config["value_template"], body) == expected


def test_birth_is_ha_online_on_its_status_topic():
    ha = HomeAssistant(HomeAssistantConfig(enabled=True), TOPICS)
    assert ha.is_birth("homeassistant/status", b"online")
    assert not ha.is_birth("homeassistant/status", b"offline")
    assert not ha.is_birth("other/status", b"online")
