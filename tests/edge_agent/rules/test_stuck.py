"""``stuck``: a run of equal readings against how often the gauge repeats a reading;
``StuckGauge``: the run and the latch over it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.rules.stuck import STUCK_MIN_STEPS, STUCK_READINGS, StuckGauge, stuck


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


def feed(
    gauge: StuckGauge, values: list[float], steps_before: int = 0, equal_before: int = 0
) -> list[bool]:
    """Each value through ``gauge`` (a step per reading), after ``steps_before`` steps heard,
    ``equal_before`` of them equal: stuck after each."""
    steps, equal = steps_before, equal_before
    out = []
    for value in values:
        gauge.moved(value)
        equal += gauge.take(value)
        steps += 1
        out.append(gauge.judge(steps, equal))
    return out


class TestStuckGauge:
    def test_the_latch_holds_while_the_reading_repeats_and_lets_go_when_it_moves(self):
        gauge = StuckGauge()
        run = [100.0] * (STUCK_READINGS + 3)
        assert feed(gauge, run) == [False] * (STUCK_READINGS - 1) + [True] * 4
        assert gauge.readings == len(run)
        assert not gauge.moved(100.0) and gauge.stuck  # still the same reading
        assert gauge.moved(101.0) and not gauge.stuck
        assert gauge.take(101.0) is False and gauge.readings == 1

    def test_once_stuck_it_stays_stuck_whatever_the_counts_say(self):
        """The latch is not judged again each reading: a run that was stuck stays stuck
        even when the counts (a gauge that repeats readings often) would not make it so."""
        gauge = StuckGauge()
        assert feed(gauge, [5.0] * STUCK_READINGS)[-1]
        gauge.take(5.0)
        assert gauge.judge(10_000, 9_000)  # a long history, most of it equal
        fresh = StuckGauge()
        for _ in range(STUCK_READINGS + 1):
            fresh.take(5.0)
        assert not fresh.judge(10_000, 9_000)

    @pytest.mark.parametrize(("empty_at_zero", "stuck_at_zero"), [(True, False), (False, True)])
    def test_an_empty_pipe_reading_zero_is_no_run_if_so_told(self, empty_at_zero, stuck_at_zero):
        gauge = StuckGauge(empty_at_zero=empty_at_zero)
        assert feed(gauge, [0.0] * (STUCK_READINGS + 2))[-1] is stuck_at_zero
        assert gauge.readings == (STUCK_READINGS + 2 if stuck_at_zero else 1)

    def test_forget_starts_a_run_afresh(self):
        gauge = StuckGauge()
        feed(gauge, [7.0] * STUCK_READINGS)
        gauge.forget()
        assert not gauge.stuck
        assert gauge.take(7.0) is False and gauge.readings == 1


def old_wet_well_latch(values: list[float], steps_before: int, equal_before: int) -> list[bool]:
    """The wet well's latch as written before ``StuckGauge`` (its ``_count_step`` and its
    unsticking; its steps counted as ``feed`` counts them): the reference."""
    last, same, is_stuck = None, 0, False
    steps, equal_steps = steps_before, equal_before
    out = []
    for value in values:
        if is_stuck and value != last:
            is_stuck = False
        equal = value == last
        steps += 1
        equal_steps += equal
        last = value
        same = same + 1 if equal else 0
        is_stuck = equal and (is_stuck or stuck(same + 1, steps, equal_steps))
        out.append(is_stuck)
    return out


def old_reach_end_latch(values: list[float], steps_before: int, equal_before: int) -> list[bool]:
    """A reach end's latch as written before ``StuckGauge`` (``_End.update``): zero never
    extends a run."""
    last, same, is_stuck = None, 0, False
    steps, equal_steps = steps_before, equal_before
    out = []
    for value in values:
        if is_stuck and value != last:
            is_stuck = False
        steps += 1
        equal_steps += value == last
        same = same + 1 if value == last and value > 0 else 1
        last = value
        is_stuck = same > 1 and (is_stuck or stuck(same, steps, equal_steps))
        out.append(is_stuck)
    return out


# whole millimetres near a few levels, 0 among them: runs come often
READINGS = st.lists(st.sampled_from([0.0, 1.0, 2.0, 350.0]), max_size=60)


HISTORY = st.integers(0, 3 * STUCK_MIN_STEPS).flatmap(
    lambda steps: st.tuples(st.just(steps), st.integers(0, steps))
)


@given(values=READINGS, history=HISTORY)
def test_stuck_gauge_is_the_wet_wells_latch_as_it_was(values, history):
    assert feed(StuckGauge(), values, *history) == old_wet_well_latch(values, *history)


@given(values=READINGS, history=HISTORY)
def test_stuck_gauge_at_zero_is_a_reach_ends_latch_as_it_was(values, history):
    gauge = StuckGauge(empty_at_zero=True)
    assert feed(gauge, values, *history) == old_reach_end_latch(values, *history)
