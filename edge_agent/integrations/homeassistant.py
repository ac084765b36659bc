"""Home Assistant MQTT discovery: the retained ``<prefix>/<component>/<node_id>/<object_id>/config``
messages that make every field device an HA device, with no YAML written by hand.

One HA device for the gateway (a connectivity sensor on the retained ``state``) and one per
field device, linked to it by ``via_device``. Per field device: a ``sensor`` per numeric,
bitfield or text point and a ``binary_sensor`` per boolean point, reading the retained
``values/{device}``; a ``binary_sensor`` per alarm slot reading the retained
``alarms/{device}`` (its kind, since and seq as attributes). Every entity of a field device is
available while both the gateway (``state``) and the device (``availability/{device}``) are
online. ``unique_id``s are built from site, gateway, device and point names only, so they are
stable across restarts and reloads. Configs use HA's full key names and only plain Jinja2 in
templates. docs/mqtt.md, Home Assistant, shows what HA makes of them.
"""

from __future__ import annotations

import re

from edge_agent.config.model import HomeAssistantConfig
from edge_agent.events import JsonValue
from edge_agent.integrations.catalog import Catalog, FieldDevice, PointInfo
from edge_agent.integrations.link import Message, json_bytes
from edge_agent.rules.conditions import OFFLINE, Condition
from edge_agent.uplink.topics import Topics

__all__ = ["HomeAssistant", "discovery_id"]

ORIGIN = "edge-agent"
AVAILABILITY_TEMPLATE = "{{ value_json.state }}"

# Our profile units as Home Assistant spells them.
UNITS = {"degC": "°C", "deg": "°", "l/s": "L/s"}

# (device_class, state_class) by point role; where a role is not listed, by unit.
ROLE_CLASSES: dict[str, tuple[str | None, str | None]] = {
    "level_mm": ("distance", "measurement"),
    "distance_mm": ("distance", "measurement"),
    "signal_db": ("signal_strength", "measurement"),
    "battery_pct": ("battery", "measurement"),
    "battery_v": ("voltage", "measurement"),
    "temperature_c": ("temperature", "measurement"),
    "pressure_bar": ("pressure", "measurement"),
    "pressure_min_bar": ("pressure", "measurement"),
    "pressure_max_bar": ("pressure", "measurement"),
    "leak_level_db": ("sound_pressure", "measurement"),
    "leak_spread_db": (None, "measurement"),
    "leak_peak_hz": ("frequency", "measurement"),
    "gas_co_ppm": ("carbon_monoxide", "measurement"),
    "rain_rate_mm_h": ("precipitation_intensity", "measurement"),
    "rain_mm_total": ("precipitation", "total_increasing"),
    "rain_mm_hour": ("precipitation", "measurement"),
    "rain_mm_day": ("precipitation", "total_increasing"),
    "rain_tips": (None, "total_increasing"),
    "pump_current_a": ("current", "measurement"),
    "pump_run_hours": ("duration", "total_increasing"),
    "pump_starts": (None, "total_increasing"),
    "cover_open_count": (None, "total_increasing"),
    "transient_count": (None, "total_increasing"),
    "uptime_s": ("duration", "total_increasing"),
    "summary_ts": (None, None),  # an epoch time in seconds: a number, not a measurement
}
UNIT_CLASSES: dict[str, str] = {
    "°C": "temperature", "V": "voltage", "A": "current", "bar": "pressure", "Hz": "frequency",
}  # fmt: skip

# Boolean points: binary_sensor device_class by role.
BOOL_CLASSES: dict[str, str] = {
    "pump_running": "running",
    "pump_fault": "problem",
    "float_high_high": "problem",
    "power_fail": "problem",
    "door_open": "door",
    "cover_open": "opening",
    "water_detected": "moisture",
}

# Alarm slots: (name, binary_sensor device_class) by family.
ALARM_CLASSES: dict[str, tuple[str, str]] = {
    "leak": ("Leak", "moisture"),
    "level": ("Level alarm", "problem"),
    "level.rising": ("Level rising", "problem"),
    "gas": ("Gas alarm", "gas"),
    "pressure": ("Pressure alarm", "problem"),
    "pressure.drop": ("Pressure drop", "problem"),
    "threshold": ("Threshold alarm", "problem"),
    "device.fault": ("Fault", "problem"),
    "cover": ("Cover open", "opening"),
    "sewer.blockage_suspected": ("Blockage suspected", "problem"),
    "overflow.risk": ("Overflow risk", "safety"),
}
_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")


def discovery_id(*parts: str) -> str:
    """A node or object id HA accepts (``[A-Za-z0-9_-]``): our names may hold '.'."""
    return _NOT_ID.sub("_", "_".join(parts))


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _item(key: str) -> str:
    """``value_json.data['key']``: subscript, so any point name is a valid template."""
    return f"value_json.data[{key!r}]"


class HomeAssistant:
    """Discovery configs of one gateway (pure: catalogs in, messages out)."""

    def __init__(self, settings: HomeAssistantConfig, topics: Topics) -> None:
        self.settings = settings
        self.topics = topics
        self.node_id = discovery_id(topics.site, topics.gateway)
        self.gateway_identifier = f"lifeline_{self.node_id}"

    def is_birth(self, topic: str, payload: bytes) -> bool:
        """Home Assistant (re)started: ``online`` on its status topic."""
        return topic == self.settings.status_topic and payload.strip() == b"online"

    def configs(self, catalog: Catalog) -> dict[str, bytes]:
        """Every discovery topic of ``catalog`` with its config payload."""
        out: dict[str, bytes] = {}
        out.update(self._gateway(catalog))
        for fd in catalog.devices:
            for point in fd.points:
                out.update(self._point(catalog, fd, point))
            for slot in fd.conditions:
                if slot is not OFFLINE:  # the device's availability says that
                    out.update(self._alarm(catalog, fd, slot))
        return out

    def messages(self, configs: dict[str, bytes]) -> list[Message]:
        return [Message(topic, body, retain=True) for topic, body in configs.items()]

    # -- entities --------------------------------------------------------------------------

    def _topic(self, component: str, object_id: str) -> str:
        return f"{self.settings.discovery_prefix}/{component}/{self.node_id}/{object_id}/config"

    def _origin(self, catalog: Catalog) -> dict[str, JsonValue]:
        return {"name": ORIGIN, "sw_version": catalog.agent.rpartition(" ")[2]}

    def _gateway(self, catalog: Catalog) -> dict[str, bytes]:
        object_id = "uplink"
        config: dict[str, JsonValue] = {
            "name": "Uplink",
            "unique_id": f"{self.gateway_identifier}_{object_id}",
            "device": {
                "identifiers": [self.gateway_identifier],
                "name": f"{catalog.gateway} ({catalog.site})",
                "manufacturer": ORIGIN,
                "model": "edge-agent gateway",
                "sw_version": catalog.agent.rpartition(" ")[2],
            },
            "origin": self._origin(catalog),
            "state_topic": self.topics.state,
            "value_template": "{{ 'ON' if value_json.state == 'online' else 'OFF' }}",
            "device_class": "connectivity",
            "entity_category": "diagnostic",
        }
        return {self._topic("binary_sensor", object_id): json_bytes(config)}

    def _common(self, catalog: Catalog, fd: FieldDevice, object_id: str) -> dict[str, JsonValue]:
        return {
            "unique_id": f"{self.gateway_identifier}_{object_id}",
            "device": {
                "identifiers": [f"{self.gateway_identifier}_{discovery_id(fd.name)}"],
                "name": fd.name,
                "manufacturer": fd.vendor or fd.profile,
                "model": fd.model or fd.profile,
                "via_device": self.gateway_identifier,
            },
            "origin": self._origin(catalog),
            "availability": [
                {"topic": self.topics.state, "value_template": AVAILABILITY_TEMPLATE},
                {
                    "topic": self.topics.availability(fd.name),
                    "value_template": AVAILABILITY_TEMPLATE,
                },
            ],
            "availability_mode": "all",
        }

    def _point(self, catalog: Catalog, fd: FieldDevice, point: PointInfo) -> dict[str, bytes]:
        object_id = discovery_id(fd.name, point.name)
        config = self._common(catalog, fd, object_id)
        config["name"] = _label(point.name)
        config["state_topic"] = self.topics.values(fd.name)
        value = _item(point.name)
        if point.type == "bool":
            config["value_template"] = (
                f"{{{{ none if {value} is none else ('ON' if {value} else 'OFF') }}}}"
            )
            device_class = BOOL_CLASSES.get(point.role or "")
            if device_class is not None:
                config["device_class"] = device_class
            if point.writable or device_class is None:
                config["entity_category"] = "diagnostic"
            return {self._topic("binary_sensor", object_id): json_bytes(config)}
        config["value_template"] = f"{{{{ {value} }}}}"
        if point.numeric:
            unit = UNITS.get(point.unit, point.unit)
            device_class, state_class = ROLE_CLASSES.get(
                point.role or "", (UNIT_CLASSES.get(unit), "measurement")
            )
            if unit:
                config["unit_of_measurement"] = unit
            if device_class is not None:
                config["device_class"] = device_class
            if state_class is not None and not point.writable:
                config["state_class"] = state_class
            if point.decimals is not None:
                config["suggested_display_precision"] = point.decimals
        if point.writable or not point.numeric or point.role in (None, "summary_ts"):
            config["entity_category"] = "diagnostic"  # settings, status words, counters
        return {self._topic("sensor", object_id): json_bytes(config)}

    def _alarm(self, catalog: Catalog, fd: FieldDevice, slot: Condition) -> dict[str, bytes]:
        object_id = discovery_id(fd.name, "alarm", slot.id.replace(":", "_").replace(".", "_"))
        name, device_class = ALARM_CLASSES.get(slot.family, (_label(slot.family), "problem"))
        if slot.point is not None:
            name = f"{name} {slot.point}"
        if slot.family == "gas" and slot.point == "o2":
            device_class = "safety"  # too little or too much oxygen is no "gas detected"
        config = self._common(catalog, fd, object_id)
        match = f"value_json.active | selectattr('id', 'equalto', {slot.id!r}) | list"
        config.update(
            {
                "name": name,
                "state_topic": self.topics.alarms(fd.name),
                "value_template": f"{{{{ 'ON' if ({match}) else 'OFF' }}}}",
                "json_attributes_topic": self.topics.alarms(fd.name),
                "json_attributes_template": (
                    f"{{{{ (({match}) | first | default({{}}, true)) | tojson }}}}"
                ),
                "device_class": device_class,
            }
        )
        return {self._topic("binary_sensor", object_id): json_bytes(config)}
