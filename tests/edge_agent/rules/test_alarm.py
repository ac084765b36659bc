"""Alarm (hysteresis, K-of-N, on-delay) and RateOfChange: the blocks every rule uses."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.model import Quality, Reading
from edge_agent.rules.alarm import (
    Alarm,
    Latch,
    RateAlarm,
    RateOfChange,
    Transition,
    good_number,
)

R, C = Transition.RAISE, Transition.CLEAR


def run(alarm: Alarm, values, step=10.0):
    """Feed values at ``step`` seconds apart; return the transitions (None when none)."""
    return [alarm.update(v, i * step) for i, v in enumerate(values)]


class TestAlarm:
    """One threshold, table-driven."""

    @pytest.mark.parametrize(
        ("kwargs", "values", "expected"),
        [
            # plain threshold, raise at >=, clear below
            ({}, [5, 10, 11, 9, 9], [None, R, None, C, None]),
            # hysteresis 2: 9 stays raised (inside the band), 7 clears
            ({"hysteresis": 2}, [10, 9, 8, 7.9], [R, None, None, C]),
            # chattering around the threshold with hysteresis: one raise, no clear
            ({"hysteresis": 2}, [10, 9.5, 10.5, 9.1, 10, 9], [R, None, None, None, None, None]),
            # below: mirror image
            ({"direction": "below", "hysteresis": 1}, [12, 10, 10.5, 11.1], [None, R, None, C]),
            # 3 of 5: two spikes do not raise, the third does
            ({"k": 3, "n": 5}, [10, 0, 10, 0, 10], [None, None, None, None, R]),
            # 3 of 5: spikes spread wider than 5 samples never raise
            ({"k": 3, "n": 5}, [10, 0, 0, 10, 0, 0, 10, 0], [None] * 8),
            # after a raise the window restarts: clearing needs k of n fresh samples inside
            ({"k": 2, "n": 3}, [10, 10, 0, 10, 0, 0], [None, R, None, None, C, None]),
        ],
    )
    def test_sequences(self, kwargs, values, expected):
        """Each sequence gives exactly these transitions."""
        assert run(Alarm(10, **kwargs), values) == expected

    def test_on_delay(self):
        """Beyond the threshold for 30 s (samples every 10 s) before it raises."""
        alarm = Alarm(10, on_delay_s=30)
        assert run(alarm, [10, 10, 10, 10, 0]) == [None, None, None, R, C]

    def test_on_delay_restarts_when_interrupted(self):
        """A dip back inside restarts the delay."""
        alarm = Alarm(10, on_delay_s=20)
        assert run(alarm, [10, 10, 0, 10, 10, 10]) == [None, None, None, None, None, R]

    @pytest.mark.parametrize(
        "kwargs", [{"k": 3, "n": 2}, {"k": 0, "n": 1}, {"hysteresis": -1}, {"on_delay_s": -1}]
    )
    def test_bad_settings(self, kwargs):
        with pytest.raises(ValueError):
            Alarm(1, **kwargs)

    @given(
        st.lists(st.floats(-5, 25, allow_nan=False), max_size=80),
        st.integers(1, 4),
        st.integers(0, 3),
        st.floats(0, 3),
        st.sampled_from(["above", "below"]),
        st.floats(0, 40),
    )
    def test_raise_and_clear_alternate(self, values, k, extra, hysteresis, direction, delay):
        """Property: whatever the input, raises and clears strictly alternate, starting with
        a raise, and ``active`` agrees with the last transition."""
        alarm = Alarm(
            10, direction=direction, hysteresis=hysteresis, k=k, n=k + extra, on_delay_s=delay
        )
        transitions = [t for t in run(alarm, values) if t is not None]
        assert all(a != b for a, b in itertools.pairwise(transitions))
        if transitions:
            assert transitions[0] is R
            assert alarm.active == (transitions[-1] is R)
        else:
            assert not alarm.active


class TestLatch:
    """Yes/no alarms: raise at once, clear after staying false for clear_after_s."""

    @pytest.mark.parametrize(
        ("clear_after_s", "conditions", "expected"),
        [
            (0, [False, True, True, False, False], [None, R, None, C, None]),
            # samples 10 s apart: false at 20, 30, 40 -> 20 s false at 40
            (20, [True, True, False, False, False, True], [R, None, None, None, C, R]),
            # flapping: never false for 20 s, so one raise and no clear
            (20, [True, False, True, False, True, False], [R, None, None, None, None, None]),
        ],
    )
    def test_sequences(self, clear_after_s, conditions, expected):
        latch = Latch(clear_after_s)
        assert [latch.update(c, 10.0 * i) for i, c in enumerate(conditions)] == expected

    @given(st.lists(st.booleans(), max_size=60), st.floats(0, 50))
    def test_alternates(self, conditions, delay):
        latch = Latch(delay)
        out = [t for i, c in enumerate(conditions) if (t := latch.update(c, 10.0 * i))]
        assert all(a != b for a, b in itertools.pairwise(out))
        assert not out or out[0] is R

    def test_negative_delay(self):
        with pytest.raises(ValueError):
            Latch(-1)


class TestRateOfChange:
    """Least-squares slope per minute over a time window."""

    def test_steady_rise(self):
        """10 mm every 60 s is 10 mm/min once the window is half full."""
        rate = RateOfChange(300)
        out = [rate.update(100 + 10 * i, 60.0 * i) for i in range(8)]
        assert out[:2] == [None, None]  # fewer than three samples
        assert out[3:] == pytest.approx([10.0] * 5)

    def test_noise_spike_is_damped(self):
        """One wild sample moves a five-point slope far less than first-minus-last would."""
        rate = RateOfChange(240)
        values = [100, 100, 100, 100, 160]
        out = [rate.update(v, 60.0 * i) for i, v in enumerate(values)]
        assert out[-1] == pytest.approx(12.0)  # first-minus-last would say 15 mm/min

    def test_old_samples_leave_the_window(self):
        """A rise long ago does not count now."""
        rate = RateOfChange(120)
        for i, v in enumerate([0, 50, 100, 100, 100, 100]):
            last = rate.update(v, 60.0 * i)
        assert last == pytest.approx(0.0)

    def test_repeated_timestamp_is_ignored(self):
        rate = RateOfChange(120)
        for i in range(3):
            rate.update(i, 60.0 * i)
        assert rate.update(99, 120.0) is None


class TestRateAlarm:
    """A slope beyond the limit raises; below half of it clears."""

    def test_drop_raises_and_settling_clears(self):
        """Falling 1 bar/min against a 0.5 bar/min drop limit; then flat."""
        alarm = RateAlarm(120, 0.5, direction="down")
        values = [5.0, 4.0, 3.0, 2.0, 2.0, 2.0, 2.0, 2.0]
        out = [alarm.update(v, 60.0 * i) for i, v in enumerate(values)]
        assert out[:2] == [(None, None), (None, None)]  # no rate yet
        assert [t for _, t in out[2:]] == [R, None, None, C, None, None]
        assert out[2][0] == pytest.approx(-1.0)  # the rate keeps its sign
        assert not alarm.active

    def test_a_rise_does_not_raise_a_drop_alarm(self):
        alarm = RateAlarm(120, 0.5, direction="down")
        out = [alarm.update(float(i), 60.0 * i) for i in range(6)]
        assert all(t is None for _, t in out)
        assert not alarm.active


@pytest.mark.parametrize(
    ("value", "quality", "expected"),
    [
        (12, Quality.GOOD, 12.0),
        (1.5, Quality.GOOD, 1.5),
        (1.5, Quality.FAULT, None),
        (1.5, Quality.OUT_OF_RANGE, None),
        (1.5, Quality.STALE, None),
        (True, Quality.GOOD, None),  # a bool is not a level
        ("OK", Quality.GOOD, None),
        (None, Quality.GOOD, None),
    ],
)
def test_good_number_feeds_only_good_numbers(value, quality, expected):
    reading = Reading("lv-01", "level", value, "mm", quality, 0.0)
    assert good_number(reading) == expected
