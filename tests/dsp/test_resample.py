"""``dsp.resample``: parity with scipy's FFT resampling, and a delay kept in seconds."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample as scipy_resample

from dsp.resample import resample


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 3000), m=st.integers(1, 3000), seed=st.integers(0, 2**16))
def test_matches_scipy_for_any_lengths(n, m, seed):
    """Odd and even lengths both ways (the Nyquist bin is split or folded)."""
    x = np.random.default_rng(seed).standard_normal(n)
    got = resample(x, float(n), float(m))
    assert got.size == m
    np.testing.assert_allclose(got, scipy_resample(x, m), atol=1e-9 * max(1.0, np.abs(x).max()))


def test_a_delay_keeps_its_seconds():
    """A band-limited burst 12.5 ms late at 9.6 kHz is 12.5 ms late at 4.8 kHz and 4.41 kHz."""
    fs = 9600.0
    t = np.arange(int(fs)) / fs
    rng = np.random.default_rng(3)
    noise = np.fft.irfft(
        np.fft.rfft(rng.standard_normal(t.size)) * (np.fft.rfftfreq(t.size, 1 / fs) < 1500)
    )
    late = np.roll(noise, int(0.0125 * fs))
    for to in (4800.0, 4410.0):
        a, b = resample(noise, fs, to), resample(late, fs, to)
        lag = np.argmax(np.fft.irfft(np.fft.rfft(b) * np.conj(np.fft.rfft(a)), a.size))
        assert lag / to == pytest.approx(0.0125, abs=1.0 / to)


def test_bad_rates_are_value_errors():
    with pytest.raises(ValueError, match="positive"):
        resample(np.ones(10), 0.0, 100.0)
    with pytest.raises(ValueError, match="none at"):
        resample(np.ones(3), 48000.0, 1000.0)
