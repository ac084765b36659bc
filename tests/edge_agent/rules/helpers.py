"""Shared bits for rule tests: readings at an injected time, the shipped profiles."""

from __future__ import annotations

from drivers.model import Quality, Reading
from drivers.profile import ProfileRegistry

PROFILES = ProfileRegistry()


def reading(device, point, value, ts, quality=Quality.GOOD, unit=""):
    return Reading(device=device, point=point, value=value, unit=unit, quality=quality, ts=ts)


def kinds(events):
    return [e.kind for e in events]


def feed(handler, device, point, values, *, step=60.0, start=0.0):
    """Feed values ``step`` seconds apart; return (ts, kind) of every event."""
    out = []
    for i, value in enumerate(values):
        ts = start + i * step
        out.extend((ts, e.kind) for e in handler(reading(device, point, value, ts)))
    return out
