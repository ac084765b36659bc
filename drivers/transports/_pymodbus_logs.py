"""pymodbus's own log lines, made to say which bus and device they are about.

pymodbus logs through one module-level logger (``pymodbus.logging``), and its lines name no
link: ``No response received after 0 retries``, ``request ask for transaction_id=6 but got
id=5, Skipping.`` On a gateway with four buses that is noise nobody can act on. So:

- while a transport opens its link or runs a request, ``LINK`` (a context variable) names it;
  the callbacks that receive answers are registered during the open and keep that context,
  so a line logged when a late answer arrives names the link too;
- ``PymodbusLogContext``, a filter on pymodbus's logger, adds ``bus``, ``link``, ``unit`` and
  ``device`` (the device's name where the link was labelled with them, see
  ``Transport.label``) to every pymodbus record, rewords the lines whose meaning is known
  into what they mean for the operator (a late answer is a device slower than the timeout,
  a WARNING, not an ERROR), and drops the lines the transport already reports as its own
  error with the bus and device (a timeout, a failed open) and pymodbus's "Repeating....".

Installed on pymodbus's logger by ``drivers.transports`` (``install()``, idempotent).
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from typing import Any

__all__ = ["LINK", "PYMODBUS_LOGGER", "PymodbusLogContext", "install"]

PYMODBUS_LOGGER = "pymodbus.logging"

# The transport whose request (or open) is running; ``Any`` to keep this module free of the
# transport classes (they import it).
LINK: ContextVar[Any] = ContextVar("drivers_modbus_link", default=None)

# Reported by the transport itself (DriverTimeout / DriverInitError, with bus and device),
# and by the bus runner once per availability change: the pymodbus copy says nothing more.
_FOLDED = (
    "No response received after",
    "Failed to connect",
    "Repeating....",
)
_LATE_TRANSACTION = re.compile(r"request ask for transaction_id=(\d+) but got id=(\d+)")
_OTHER_UNIT = re.compile(r"request ask for id=(\d+) but got id=(\d+)")
_NO_REQUEST = "received pdu without a corresponding request"
_PROTOCOL_ID = re.compile(r"Invalid Modbus protocol id: (\d+)")


class PymodbusLogContext(logging.Filter):
    """Adds the link, bus, unit and device to pymodbus records; rewords or drops known ones."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        first = text.split("\n", 1)[0].strip()  # pymodbus appends a dump of recent frames
        if first.startswith(_FOLDED):
            return False
        link = LINK.get()
        unit = getattr(link, "unit_in_flight", None)
        message, level = first.removeprefix("ERROR: "), record.levelno
        if match := _LATE_TRANSACTION.search(first):
            waiting, late = int(match[1]), int(match[2])
            late_unit = link.unit_of_transaction(late) if link is not None else None
            late_from = f"unit {late_unit}" if late_unit is not None else "a device"
            message = (
                f"late answer from {late_from} ignored (transaction {late}, while waiting for "
                f"{waiting}): the device answers slower than the bus's timeout_s"
            )
            unit, level = late_unit if late_unit is not None else unit, logging.WARNING
        elif match := _OTHER_UNIT.search(first):
            waiting, other = int(match[1]), int(match[2])
            message = (
                f"answer from unit {other} ignored while waiting for unit {waiting} "
                f"(a late answer, or two devices answering to unit id {other})"
            )
            unit, level = other, logging.WARNING
        elif _NO_REQUEST in first:
            message = "answer ignored: no request was waiting for it (a late answer)"
            level = logging.WARNING
        elif match := _PROTOCOL_ID.search(first):
            message = (
                f"answer ignored: protocol id {match[1]} is not Modbus TCP's 0 (is this port "
                "a Modbus TCP server, or a serial gateway that wants rtu_over_tcp?)"
            )
            level = logging.WARNING
        record.msg, record.args = message, None
        record.levelno, record.levelname = level, logging.getLevelName(level)
        if link is not None:
            record.link = link.where
            record.bus = link.bus_name or link.where
            if unit is not None:
                record.unit = unit
                device = link.unit_names.get(unit)
                if device is not None:
                    record.device = device
        return True


_installed = PymodbusLogContext()


def install() -> None:
    """Put the filter on pymodbus's logger (once)."""
    logger = logging.getLogger(PYMODBUS_LOGGER)
    if _installed not in logger.filters:
        logger.addFilter(_installed)
