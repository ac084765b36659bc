"""What a check across fields or records sees where conversion failed.

A value that could not be read is ``INVALID`` (its problem already recorded); using it in a
comparison, a test or a format raises ``Unknown``, so a check that needs it stops instead of
reporting a second, made-up problem. A list with bad items is a ``PartialTuple``, a record with
bad fields a ``PartialRecord`` whose good fields still read as attributes: checks look at what
could be read, so one run lists every problem.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["INVALID", "PartialRecord", "PartialTuple", "Unknown", "is_bad", "readable", "whole"]


class Unknown(Exception):
    """Internal: a check touched a value that failed conversion."""


class _InvalidType:
    """Marker for a value that failed conversion (its problem is already recorded). Using it
    in a comparison, a test or a format raises ``Unknown``, so checks run on a partly
    invalid record skip the checks that depend on the bad value."""

    def __repr__(self) -> str:
        return "<invalid>"

    def _unknown(self, *args: object) -> Any:
        raise Unknown

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _unknown  # type: ignore[assignment]
    __bool__ = __format__ = __hash__ = __iter__ = __len__ = __getitem__ = _unknown  # type: ignore[assignment]
    __contains__ = __float__ = __int__ = __index__ = __neg__ = __abs__ = _unknown  # type: ignore[assignment]
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _unknown  # type: ignore[assignment]
    __truediv__ = __rtruediv__ = __mod__ = __pow__ = _unknown  # type: ignore[assignment]


INVALID: Any = _InvalidType()


class PartialTuple(list[Any]):
    """A list some of whose items are invalid: checks across records still look at the good
    ones."""


class PartialRecord:
    """A record with some invalid fields (already reported). Checks read its good fields
    through attributes; a bad or missing required one reads as ``INVALID``."""

    def __init__(self, cls: type, values: dict[str, Any]) -> None:
        self._cls = cls
        self._values = values

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__["_values"]
        if name in values:
            return values[name]
        for f in dataclasses.fields(self.__dict__["_cls"]):
            if f.name == name:
                if f.default is not dataclasses.MISSING:
                    return f.default
                if f.default_factory is not dataclasses.MISSING:
                    return f.default_factory()
                return INVALID
        attr = getattr(self.__dict__["_cls"], name, None)
        if isinstance(attr, property) and attr.fget is not None:  # on the partial values
            return attr.fget(self)
        if callable(attr):  # a method of the record: run it on the partial values
            return attr.__get__(self)
        raise AttributeError(name)


def is_bad(value: Any) -> bool:
    """Invalid, or a list / record with something invalid inside."""
    return value is INVALID or isinstance(value, PartialTuple | PartialRecord)


def readable(value: Any) -> bool:
    """Something a check can read: not itself invalid (a record may be partial)."""
    return value is not INVALID


def whole(items: Any) -> list[tuple[int, Any]]:
    """(index, item) of the items of a list that were read without a problem (none when the
    list itself could not be read): what checks across records look at."""
    if not isinstance(items, tuple | list):
        return []
    return [(i, item) for i, item in enumerate(items) if not is_bad(item)]
