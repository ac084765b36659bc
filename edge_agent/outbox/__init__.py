"""The durable outbox, split the way Telegraf splits buffer and output: ``outbox`` (the
``Outbox`` that accepts, bounds and delivers), ``store`` (SQLite: add, begin, end, seq),
``eviction`` (what goes when over the bounds, and the dropped-event account) and ``held``
(the in-memory buffer of degraded mode). Imports ``edge_agent.events``, ``payload``,
``clock`` and ``errors`` only."""

from edge_agent.outbox.eviction import DROPPED_KIND
from edge_agent.outbox.held import MAX_HELD
from edge_agent.outbox.outbox import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_BYTES,
    Outbox,
    OutboxSettings,
    OutboxStatus,
)
from edge_agent.outbox.store import DB_NAME, Batch, OutboxError

__all__ = [
    "DB_NAME",
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_MAX_BYTES",
    "DROPPED_KIND",
    "MAX_HELD",
    "Batch",
    "Outbox",
    "OutboxError",
    "OutboxSettings",
    "OutboxStatus",
]
