"""One exception root for device I/O, in python-can's shape.

``DriverError`` -> ``DriverInitError`` (cannot open / configure), ``DriverIOError`` (an
operation failed) -> ``DriverTimeout`` (no answer; also a ``TimeoutError``) and
``ModbusExceptionResponse`` (the device answered with an exception code).
``ProfileError`` is a bad profile file (a user mistake: one line per problem naming file, line
and field, a ``yamlread.ReadError``) or an unknown profile or point.
Foreign errors (pymodbus, pyserial, OSError) are wrapped at the boundary with ``from``.
"""

from __future__ import annotations

from yamlread import ReadError

__all__ = [
    "MODBUS_EXCEPTION_NAMES",
    "DriverError",
    "DriverIOError",
    "DriverInitError",
    "DriverTimeout",
    "ModbusExceptionResponse",
    "ProfileError",
]

MODBUS_EXCEPTION_NAMES: dict[int, str] = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class DriverError(Exception):
    """Root of every error the drivers raise."""


class DriverInitError(DriverError):
    """A transport or device could not be opened or configured."""


class DriverIOError(DriverError):
    """An operation on an open transport failed."""


class DriverTimeout(DriverIOError, TimeoutError):
    """The device did not answer in time (an absent unit on a real bus looks exactly so)."""


class ModbusExceptionResponse(DriverIOError):
    """The device answered with a Modbus exception code."""

    def __init__(self, code: int, *, function: int | None = None, unit_id: int | None = None):
        self.code = code
        self.function = function
        self.unit_id = unit_id
        self.name = MODBUS_EXCEPTION_NAMES.get(code, f"exception {code}")
        where = f"unit {unit_id}: " if unit_id is not None else ""
        super().__init__(f"{where}{self.name} (code {code})")

    @property
    def means_absent(self) -> bool:
        """Gateway codes 10/11 say the unit is not there, not that it refused."""
        return self.code in (10, 11)


class ProfileError(ReadError, DriverError):
    """A device profile file is invalid (``problems``: one per line, each naming file, line and
    field), or a profile or point is unknown (a plain message)."""
