"""The topic tree of the MQTT contract (docs/mqtt.md)::

    {root}/{site}/{gateway}/state                   retained, QoS 1: online / offline
    {root}/{site}/{gateway}/devices/{device}        retained, QoS 1: device metadata
    {root}/{site}/{gateway}/event/{device}          QoS 1: events
    {root}/{site}/{gateway}/telemetry/{device}      QoS 1 (or 0): telemetry
    {root}/{site}/{gateway}/availability/{device}   retained, QoS 1: online / offline
    {root}/{site}/{gateway}/alarms/{device}         retained, QoS 1: the active-alarm snapshot
    {root}/{site}/{gateway}/values/{device}         retained, QoS 1: every point's latest value
    {root}/{site}/{gateway}/cmd/{verb}              commands to the gateway (opt-in)
    {root}/{site}/{gateway}/cmd-result/{id}         QoS 1: each command's answer

Every level is ``[A-Za-z0-9_.-]+`` (the config enforces it; checked again here because a
``+``, ``#`` or ``/`` in a level would silently change what subscribers match).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge_agent.errors import UsageError
from edge_agent.events import Event

__all__ = ["Topics"]

_LEVEL = re.compile(r"^[A-Za-z0-9_.-]+\Z")  # \Z: "$" would accept a trailing newline


def _level(value: str, what: str) -> str:
    if not _LEVEL.match(value):
        raise UsageError(f"{what} {value!r}: topic levels allow letters, digits, '_', '.', '-'")
    return value


@dataclass(frozen=True, slots=True)
class Topics:
    root: str
    site: str
    gateway: str

    def __post_init__(self) -> None:
        for part in self.root.split("/"):
            _level(part, "uplink.topic_root level")
        _level(self.site, "gateway.site")
        _level(self.gateway, "gateway.id")

    @property
    def base(self) -> str:
        return f"{self.root}/{self.site}/{self.gateway}"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    def device(self, dev: str) -> str:
        return f"{self.base}/devices/{_level(dev, 'device')}"

    def event(self, dev: str) -> str:
        return f"{self.base}/event/{_level(dev, 'device')}"

    def telemetry(self, dev: str) -> str:
        return f"{self.base}/telemetry/{_level(dev, 'device')}"

    def availability(self, dev: str) -> str:
        return f"{self.base}/availability/{_level(dev, 'device')}"

    def alarms(self, dev: str) -> str:
        return f"{self.base}/alarms/{_level(dev, 'device')}"

    def values(self, dev: str) -> str:
        return f"{self.base}/values/{_level(dev, 'device')}"

    @property
    def commands(self) -> str:
        """The filter the gateway subscribes to when commands are on."""
        return f"{self.base}/cmd/#"

    def command_result(self, command_id: str) -> str:
        return f"{self.base}/cmd-result/{_level(command_id, 'command id')}"

    def for_event(self, ev: Event) -> str:
        """Where an accepted event or telemetry record is published."""
        return self.telemetry(ev.dev) if ev.stream == "telemetry" else self.event(ev.dev)
