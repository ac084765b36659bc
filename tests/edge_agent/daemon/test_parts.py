"""Small pieces of the daemon's wiring that hold logic of their own: the shared bus view's
progress callback, telemetry values JSON can carry, the reload check."""

from __future__ import annotations

import asyncio
import math

import pytest

from drivers.bus import BusRunner
from drivers.errors import DriverTimeout
from edge_agent.daemon.loading import check_reloadable
from edge_agent.errors import UsageError
from edge_agent.rules.telemetry import plain


class FakeTransport:
    where = "tcp 127.0.0.1:1"
    timeout_s = 1.0
    kind = "tcp"
    serial = False

    def __init__(self) -> None:
        self.fail = False

    async def read(self, function, unit, address, count, *, timeout_s=None):
        if self.fail:
            raise DriverTimeout("no answer")
        return [0] * count

    async def write_registers(self, unit, address, values, *, timeout_s=None):
        return None

    async def broadcast_registers(self, address, values):
        return None


def test_progressing_counts_completed_requests_only():
    """Each answered request is progress; a timeout is not; other attributes pass through."""
    beats: list[int] = []
    inner = FakeTransport()
    t = BusRunner("b", inner, []).shared_transport(on_request=lambda: beats.append(1))

    async def main():
        await t.read(3, 1, 100, 2)
        await t.write_registers(1, 110, [4])
        await t.broadcast_registers(100, [1])
        inner.fail = True
        with pytest.raises(DriverTimeout):
            await t.read(3, 1, 100, 2)

    asyncio.run(main())
    assert len(beats) == 3
    assert t.where == "tcp 127.0.0.1:1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.5, 1.5), (math.nan, None), (math.inf, None), (True, True), ("ok", "ok"), (3, 3)],
)
def test_plain_telemetry_values(value, expected):
    """JSON has no NaN or infinity: they go upstream as null."""
    assert plain(value) == expected


class Cfg:
    def __init__(self, gateway, storage, source_path="gw.yaml"):
        self.gateway, self.storage, self.source_path = gateway, storage, source_path


@pytest.mark.parametrize(
    ("old", "new", "refused"),
    [
        (Cfg("g1", "s1"), Cfg("g1", "s1"), None),
        (Cfg("g1", "s1"), Cfg("g2", "s1"), "gateway"),
        (Cfg("g1", "s1"), Cfg("g1", "s2"), "storage"),
        (None, Cfg("g1", "s1"), None),
    ],
)
def test_reload_refuses_identity_and_storage_changes(old, new, refused):
    if refused is None:
        check_reloadable(old, new)
        return
    with pytest.raises(UsageError, match=f"{refused} changed: needs a restart"):
        check_reloadable(old, new)
