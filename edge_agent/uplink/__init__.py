"""The MQTT uplink: settings and broker URLs (``settings``), the topic tree (``topics``) and
the client that drains the outbox (``client``). docs/mqtt.md is the contract it implements.
It may import the config (secrets, the broker URL rule), the outbox, events and their payload
codec."""

from edge_agent.uplink.client import (
    Derived,
    Publish,
    Uplink,
    UplinkError,
    UplinkStatus,
    backoff_delay,
)
from edge_agent.uplink.settings import BrokerAddress, TlsFiles, UplinkSettings, parse_broker_url
from edge_agent.uplink.topics import Topics

__all__ = [
    "BrokerAddress",
    "Derived",
    "Publish",
    "TlsFiles",
    "Topics",
    "Uplink",
    "UplinkError",
    "UplinkSettings",
    "UplinkStatus",
    "backoff_delay",
    "parse_broker_url",
]
