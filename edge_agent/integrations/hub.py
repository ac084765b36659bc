"""``Integrations``: everything that rides on the uplink's connection besides the event stream,
fed by the daemon from two taps and a reload hook:

- ``on_poll(result)``: every finished poll (the runtime's sink) -> availability;
- ``on_event(event)``: every event and telemetry record the outbox accepted -> active alarms
  (with their seq) and latest values;
- ``set_catalog(catalog, held)``: a (re)loaded config -> metadata republished where it
  changed, retained topics of removed devices cleared, alarm slots reconciled.

It implements the uplink's ``Derived``: on every connect it republishes all retained state
(``CurrentState``) and, when on, Home Assistant's discovery configs, and it answers commands
and Home Assistant's ``online`` on the subscriptions it asks for. Sparkplug B has a session of
its own (its Will is the NDEATH) and follows the same taps (``sparkplug``).

What must survive a restart is kept in one small JSON file in the state directory
(``STATE_FILE``): the devices and discovery topics it published (so that a device removed
while the gateway was down is cleared on the next start) and the raised alarm slots with
their seq (a confirmed leak survives a restart: its tracker does too). The daemon writes it
off the loop (``persist``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from drivers.model import PollResult
from edge_agent.config.model import (
    CommandsConfig,
    HomeAssistantConfig,
    SparkplugConfig,
    UplinkConfig,
)
from edge_agent.events import Event, JsonValue
from edge_agent.integrations.catalog import Catalog
from edge_agent.integrations.commands import Commands, CommandTarget
from edge_agent.integrations.homeassistant import HomeAssistant
from edge_agent.integrations.link import Message
from edge_agent.integrations.state import CurrentState, Held
from edge_agent.logs import get_logger
from edge_agent.uplink.client import Publish
from edge_agent.uplink.topics import Topics

__all__ = ["STATE_FILE", "IntegrationSettings", "Integrations", "SparkplugSink"]

STATE_FILE = "integrations-state.json"
STATE_VERSION = 1

log = get_logger("edge_agent.integrations")


@dataclass(frozen=True, slots=True)
class IntegrationSettings:
    """The integration blocks of ``uplink:`` (docs/config.md)."""

    retained_state: bool = True
    home_assistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)
    sparkplug: SparkplugConfig = field(default_factory=SparkplugConfig)
    commands: CommandsConfig = field(default_factory=CommandsConfig)

    @classmethod
    def from_config(cls, uplink: UplinkConfig) -> IntegrationSettings:
        return cls(uplink.retained_state, uplink.home_assistant, uplink.sparkplug, uplink.commands)


class SparkplugSink(Protocol):
    """What the hub tells the Sparkplug edge node (``integrations.sparkplug.node``)."""

    def update(self, state: CurrentState, devices: Sequence[str]) -> None: ...

    def set_catalog(self, state: CurrentState) -> None: ...

    def rebirth(self) -> None: ...


class Integrations:
    """The uplink's ``Derived``. ``now``: the daemon's clock (sim time in the demo) for state
    times; ``wall``: the real clock, for command ages. ``persist``: called with the JSON to
    keep (the daemon writes it off the loop); ``saved``: what the last run kept."""

    def __init__(
        self,
        settings: IntegrationSettings,
        topics: Topics,
        catalog: Catalog,
        *,
        now: Callable[[], float],
        wall: Callable[[], float],
        target: CommandTarget | None = None,
        persist: Callable[[dict[str, JsonValue]], None] | None = None,
        saved: dict[str, JsonValue] | None = None,
    ) -> None:
        self.topics = topics
        self.now = now
        self.wall = wall
        self.target = target
        self._persist = persist
        self.state = CurrentState(topics, catalog, publish_state=settings.retained_state)
        self.settings = settings
        self.home_assistant: HomeAssistant | None = None
        self.commands: Commands | None = None
        self.sparkplug: SparkplugSink | None = None
        self._configure(settings)
        self._publish: Publish | None = None
        self._configured = False  # no catalog yet: nothing is published or cleared
        saved = saved if isinstance(saved, dict) and saved.get("v") == STATE_VERSION else {}
        self._published_devices: set[str] = set(_strings(saved.get("devices")))
        self._ha_configs: dict[str, bytes] = {}
        self._ha_published: set[str] = set(_strings(saved.get("ha_topics")))
        self._saved_alarms = saved.get("alarms")

    def _configure(self, settings: IntegrationSettings) -> None:
        self.settings = settings
        self.state.publish_state = settings.retained_state
        ha = settings.home_assistant
        self.home_assistant = HomeAssistant(ha, self.topics) if ha.enabled else None
        cmd = settings.commands
        if cmd.enabled and self.target is not None:
            self.commands = Commands(self.topics, self.target, self.wall, cmd.max_age_s)
        else:
            self.commands = None

    def reconfigure(self, settings: IntegrationSettings) -> None:
        """Integration settings of a reloaded config (call ``set_catalog`` after it)."""
        if settings != self.settings:
            self._configure(settings)

    # -- the uplink's Derived --------------------------------------------------------------

    def subscriptions(self) -> Sequence[str]:
        filters = []
        if self.commands is not None:
            filters.append(self.commands.subscription)
        if self.home_assistant is not None:
            filters.append(self.home_assistant.settings.status_topic)
        return filters

    def connected(self, publish: Publish) -> None:
        self._publish = publish
        if self._configured:
            self._republish()

    def disconnected(self) -> None:
        self._publish = None

    def on_message(self, topic: str, payload: bytes) -> None:
        if self.commands is not None and self.commands.handles(topic):
            answer = self.commands.on_message(topic, payload)
            log.info("command", topic=topic, answer=answer.payload.decode(errors="replace"))
            self._send([answer])
        elif self.home_assistant is not None and self.home_assistant.is_birth(topic, payload):
            log.info("home assistant started: discovery republished")
            self._send(self.home_assistant.messages(self._ha_configs))

    # -- taps ------------------------------------------------------------------------------

    def on_poll(self, result: PollResult) -> None:
        """The runtime's sink (on the loop, never blocks)."""
        messages = self.state.on_poll(result)
        self._send(messages)
        if messages and self.sparkplug is not None:
            self.sparkplug.update(self.state, (result.device,))
        if messages and any("/alarms/" in m.topic for m in messages):
            self._save()

    def on_event(self, event: Event) -> None:
        """Each record the outbox accepted (on the loop)."""
        messages = self.state.on_event(event)
        self._send(messages)
        if self.sparkplug is not None and (messages or event.stream == "telemetry"):
            self.sparkplug.update(self.state, (event.dev,))
        if event.stream == "event" and messages:
            self._save()

    def set_catalog(self, catalog: Catalog, held: Held) -> None:
        """A config was (re)loaded and its runtime started: see the module docstring."""
        now = self.now()
        if not self._configured:
            self._configured = True
            self._restore_alarms(catalog)
            self.state.catalog = catalog
            for fd in catalog.devices:
                self.state.reconcile(fd, held, now)
            self._ha_configs = self._discovery(catalog)
            self._republish()
        else:
            messages = self.state.set_catalog(catalog, held, now)
            old, self._ha_configs = self._ha_configs, self._discovery(catalog)
            messages += self._ha_changes(old, self._ha_configs)
            self._sent(self._send(messages))
        if self.sparkplug is not None:
            self.sparkplug.set_catalog(self.state)
        self._save()

    def rebirth(self) -> None:
        """Republish everything (the ``rebirth`` command): births, metadata, state, configs."""
        if self._configured:
            self._republish()
        if self.sparkplug is not None:
            self.sparkplug.rebirth()

    # -- what goes out ---------------------------------------------------------------------

    def _republish(self) -> None:
        """On a connect (or a rebirth): what a previous run or config left retained and no
        longer belongs is cleared, then all state and configs go out."""
        if self._publish is None:
            return
        current = set(self.state.catalog.names)
        stale = sorted(self._published_devices - current)
        out = [m for dev in stale for m in self.state.forget(dev)]
        out += [Message.clear(t) for t in sorted(self._ha_published - set(self._ha_configs))]
        out += self.state.messages()
        if self.home_assistant is not None:
            out += self.home_assistant.messages(self._ha_configs)
        self._sent(self._send(out))

    def _sent(self, ok: bool) -> None:
        """What may be retained on the broker: exactly the current set once all went out,
        else everything that may still be there (cleared on the next connect)."""
        current, configs = set(self.state.catalog.names), set(self._ha_configs)
        if ok:
            self._published_devices, self._ha_published = current, configs
        else:
            self._published_devices |= current
            self._ha_published |= configs
        self._save()

    def _discovery(self, catalog: Catalog) -> dict[str, bytes]:
        return self.home_assistant.configs(catalog) if self.home_assistant is not None else {}

    def _ha_changes(self, old: dict[str, bytes], configs: dict[str, bytes]) -> list[Message]:
        """New or changed configs published, vanished ones cleared (their entities removed)."""
        gone = sorted((self._ha_published | set(old)) - set(configs))
        out = [Message.clear(t) for t in gone]
        out += [Message(t, body, retain=True) for t, body in configs.items() if old.get(t) != body]
        return out

    def _send(self, messages: list[Message]) -> bool:
        """Queue ``messages`` on the live connection; False when there is none (what is lost
        is the current state, republished whole on the next connect)."""
        publish = self._publish
        if publish is None:
            return False
        return all(publish(m.topic, m.payload, m.qos, m.retain) for m in messages)

    # -- persistence -----------------------------------------------------------------------

    def _restore_alarms(self, catalog: Catalog) -> None:
        saved, self._saved_alarms = self._saved_alarms, None
        if not isinstance(saved, dict):
            return
        self.state.catalog = catalog
        try:
            self.state.restore_alarms(saved)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("saved alarm state not restored", error=str(exc))

    def _save(self) -> None:
        if self._persist is None or not self._configured:
            return
        self._persist(
            {
                "v": STATE_VERSION,
                "devices": sorted(self._published_devices | set(self.state.catalog.names)),
                "ha_topics": sorted(self._ha_published | set(self._ha_configs)),
                "alarms": self.state.alarms_to_json(),  # type: ignore[dict-item]
            }
        )


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
