"""``stuck``: a run of equal readings against how often the gauge repeats a reading."""

from __future__ import annotations

import pytest

from edge_agent.rules.stuck import STUCK_MIN_STEPS, STUCK_READINGS, stuck


def first_stuck(steps_before: int, equal_before: int) -> int:
    """The fewest equal readings in a row taken for a stuck gauge after this history."""
    readings = 1
    while not stuck(readings, steps_before + readings - 1, equal_before + readings - 1):
        readings += 1
    return readings


@pytest.mark.parametrize(
    ("name", "steps_before", "equal_before", "readings"),
    [
        ("scatter unknown yet", STUCK_MIN_STEPS - 1, 0, STUCK_READINGS),
        ("scatter well over the resolution: no equal steps", 70, 0, STUCK_READINGS),
        ("1 mm and 2 mm of scatter: one step in seven equal", 70, 10, 9),
        ("a slow wet well: one step in eight equal", 180, 22, 8),
    ],
)
def test_how_many_equal_readings_make_a_stuck_gauge(name, steps_before, equal_before, readings):
    """(At 11/71 equal, 8 steps in a row come by chance 3e-7, 7 2e-6; at 23/181, 7 and 6.)"""
    assert first_stuck(steps_before, equal_before) == readings, name


def test_fewer_than_the_minimum_never_suffice():
    """Even a gauge that never repeated a reading in hours is not stuck at four."""
    assert not stuck(STUCK_READINGS - 1, 1000 + STUCK_READINGS - 2, STUCK_READINGS - 2)
