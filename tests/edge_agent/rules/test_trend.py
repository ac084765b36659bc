"""``LineFit`` and ``Trend``: the running-sum slope equals numpy's least squares over the
same window (parity on random data), its standard error is the textbook one, and a single
stray sample does not tilt a ``Trend``."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.rules.trend import LineFit, Trend


def reference(samples, now, window_s):
    """numpy's line through the samples of the window ending at ``now``."""
    t = np.array([ts for ts, _ in samples if ts >= now - window_s])
    v = np.array([val for ts, val in samples if ts >= now - window_s])
    slope, intercept = np.polyfit(t - t[0], v, 1)
    resid = v - (slope * (t - t[0]) + intercept)
    stderr = np.sqrt(resid @ resid / (len(t) - 2) / np.sum((t - t.mean()) ** 2))
    return slope * 60.0, stderr * 60.0


@pytest.mark.parametrize("seed", range(3))
def test_parity_with_numpy_over_a_sliding_window(seed):
    rng = np.random.default_rng(seed)
    fit = LineFit(600.0)
    samples = []
    ts = 1.7e9  # epoch seconds: the running sums must not lose the slope to them
    for _ in range(1000):
        ts += rng.uniform(5.0, 90.0)
        value = 300 + 0.01 * (ts - 1.7e9) + rng.normal(0, 5)
        samples.append((ts, value))
        fit.update(value, ts)
        slope = fit.slope()
        if slope is None:
            continue
        want_slope, want_err = reference(samples[-40:], ts, 600.0)
        assert slope == pytest.approx(want_slope, rel=1e-6, abs=1e-9)
        assert fit.stderr() == pytest.approx(want_err, rel=1e-6, abs=1e-9)


def test_needs_three_samples_over_half_the_window():
    fit = LineFit(600.0)
    for i, ts in enumerate((0.0, 100.0, 200.0)):
        fit.update(float(i), ts)
    assert fit.slope() is None  # 200 s span < 300 s
    fit.update(3.0, 400.0)
    assert fit.slope() == pytest.approx(0.45, rel=0.05)


def test_a_step_back_in_time_starts_a_new_window():
    fit = LineFit(600.0)
    for ts in range(0, 600, 60):
        fit.update(ts / 60.0, float(ts))
    fit.update(100.0, 10.0)  # the clock stepped back
    assert len(fit) == 1 and fit.slope() is None


def test_trend_ignores_one_stray_echo():
    trend = Trend(600.0)
    for m in range(30):
        trend.update(200.0 + (700.0 if m == 25 else 0.0), 60.0 * m)
        assert trend.slope() is None or abs(trend.slope()) < 1e-9


def test_trend_restarts_after_a_gap_longer_than_its_window():
    trend = Trend(600.0)
    for m in range(20):
        trend.update(200.0, 60.0 * m)
    trend.update(900.0, 60.0 * 60)  # back after a 40-minute dropout, much higher
    assert trend.value == 900.0 and trend.slope() is None
