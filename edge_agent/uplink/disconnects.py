"""Why an MQTT connection ended, in words an operator can act on.

paho reports every end of a connection as a DISCONNECT reason code: the broker's own when an
MQTT 5 broker sent a DISCONNECT packet, else one paho makes up ("Unspecified error" for a
socket that closed or failed, "Keep alive timeout"). On its own that says little:
``connection lost: Unspecified error`` is what two gateways sharing a client id looked like.

The case that matters most on a fleet is a session taken over: another client connects with
our client id (a second edge-agent on the same state, two gateways flashed from one image
with one gateway id) and the broker drops the older connection, every few seconds, both
ways. An MQTT 5 broker says so (reason 0x8E, "Session taken over"); MQTT 3.1.1 has no
reasons and some MQTT 5 brokers (mosquitto 2.0) just close the socket. So a connection the
broker closes without a reason and without a socket error is named as such, with the likely
cause; when it keeps happening right after each connect, the cause is said to be most likely
a takeover.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

__all__ = ["QUICK_CLOSE_S", "SESSION_TAKEN_OVER", "Disconnect", "QuickCloses", "SocketErrors"]

SESSION_TAKEN_OVER = 0x8E
KEEPALIVE_TIMEOUT = 0x8D
# A connection the broker closes within this long of its CONNACK, without a reason: the
# pattern of two clients taking a session from each other (about every 1.5 s in the field).
QUICK_CLOSE_S = 30.0


@dataclass(frozen=True, slots=True)
class Disconnect:
    """How one connection ended, as paho told it (``describe`` words it)."""

    code: int  # the DISCONNECT reason code: the broker's (from_broker), else paho's own
    name: str  # paho's name for it
    from_broker: bool  # an MQTT 5 DISCONNECT packet came from the broker
    socket_error: str | None = None  # what the socket said when it failed (reset, timeout)
    lasted_s: float | None = None  # since the CONNACK (None: it never came)

    @property
    def closed_without_reason(self) -> bool:
        """The broker (or something on the way) closed the connection and said nothing."""
        return not self.from_broker and self.socket_error is None and self.code == 0x80

    def describe(self, client_id: str, *, mqtt5: bool, again: bool = False) -> str:
        """One line. ``again``: the previous connection ended the same way, as quickly."""
        if self.from_broker and self.code == SESSION_TAKEN_OVER:
            return (
                f"session taken over: another client connected with client id {client_id!r} "
                "(MQTT 5 reason 0x8E); a second edge-agent or a second gateway uses this id "
                "(give each gateway its own gateway.id or uplink.client_id)"
            )
        if self.from_broker:
            return f"disconnected by the broker: {self.name} (MQTT 5 reason 0x{self.code:02X})"
        if self.socket_error is not None:
            return f"connection lost: {self.socket_error}"
        if self.code == KEEPALIVE_TIMEOUT:
            return "connection lost: nothing from the broker within the keepalive (link down?)"
        if not self.closed_without_reason:
            return f"connection lost: {self.name}"
        none = "MQTT 3.1.1 gives no reason" if not mqtt5 else "no reason given"
        if again:
            return (
                f"connection closed by the broker right after connecting, again ({none}): "
                f"most likely another client with client id {client_id!r} takes the session "
                "over (a second edge-agent, or a second gateway with this id)"
            )
        return (
            f"connection closed by the broker ({none}): if this repeats right after each "
            f"connect, another client likely uses client id {client_id!r} (session taken over)"
        )


class QuickCloses:
    """Counts connections in a row the broker closed without a reason within
    ``QUICK_CLOSE_S`` of their CONNACK."""

    def __init__(self) -> None:
        self.in_a_row = 0

    def note(self, ended: Disconnect) -> int:
        quick = ended.lasted_s is not None and ended.lasted_s < QUICK_CLOSE_S
        self.in_a_row = self.in_a_row + 1 if ended.closed_without_reason and quick else 0
        return self.in_a_row


class SocketErrors(logging.Handler):
    """Keeps the last socket error paho logs for one connection (``failed to receive on
    socket: [Errno 104] Connection reset by peer``): paho reports the connection's end as
    "Unspecified error" either way, and only this tells a reset from a broker's close.
    ``logger`` is a private stdlib logger at ERROR for ``Client.enable_logger`` (paho
    formats nothing below it)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: str | None = None
        self.logger = logging.Logger("edge_agent.uplink.paho")  # in no hierarchy: no output
        self.logger.setLevel(logging.ERROR)
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "socket" in message:
            self.last = message
