"""The one shape integrations hand to a broker connection: a ``Message`` (topic, payload,
retain, QoS), and the compact JSON every payload of the contract is written in."""

from __future__ import annotations

import json
from dataclasses import dataclass

from edge_agent.events import JsonValue
from edge_agent.uplink.client import Publish

__all__ = ["CLEAR", "Message", "Publish", "json_bytes"]

CLEAR = b""  # an empty retained payload: the broker forgets the topic's retained message


@dataclass(frozen=True, slots=True)
class Message:
    """One publish. Retained messages are the gateway's current state: republished whole on
    every connect, so a message lost with a connection costs nothing."""

    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1

    @classmethod
    def clear(cls, topic: str) -> Message:
        """Remove ``topic``'s retained message (and so, for Home Assistant, its entity)."""
        return cls(topic, CLEAR, retain=True)


def json_bytes(obj: JsonValue) -> bytes:
    """Compact JSON (no spaces, UTF-8), as every JSON payload of docs/mqtt.md."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
