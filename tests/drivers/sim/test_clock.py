"""The sim clock: speed compresses wall time; the manual clock moves only when told."""

from __future__ import annotations

import asyncio

import pytest

from drivers.sim.clock import ManualClock, SimClock


class FakeWall:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_speed_compresses_wall_time():
    """At speed 60 one wall second is a sim minute, in elapsed() and in time()."""
    wall = FakeWall()
    clock = SimClock(60, epoch_start=1_000_000.0, wall=wall)
    assert clock.elapsed() == 0.0
    wall.now += 1.5
    assert clock.elapsed() == pytest.approx(90.0)
    assert clock.time() == pytest.approx(1_000_090.0)
    assert clock.monotonic() == clock.elapsed()
    assert clock.to_wall(120.0) == pytest.approx(2.0)


@pytest.mark.parametrize("speed", [0, -1, float("nan"), float("inf"), "fast"])
def test_bad_speed_is_refused(speed):
    with pytest.raises(ValueError, match="speed"):
        SimClock(speed)


def test_manual_clock_moves_only_when_advanced():
    clock = ManualClock(speed=10)
    assert clock.elapsed() == 0.0
    assert clock.advance(30) == pytest.approx(30.0)
    assert clock.time() == pytest.approx(clock.epoch_start + 30.0)
    with pytest.raises(ValueError):
        clock.advance(-1)
    asyncio.run(clock.sleep(3600))  # returns at once
    assert clock.elapsed() == pytest.approx(30.0)


def test_sleep_waits_wall_seconds_scaled():
    """sleep(sim) waits sim/speed wall seconds (checked on the wall clock, not timed)."""
    clock = SimClock(1000)

    async def scenario():
        before = clock.elapsed()
        await clock.sleep(50)  # 0.05 s of wall time
        return clock.elapsed() - before

    assert asyncio.run(scenario()) >= 50.0
