"""dsp.shape: the band's prominence over its own background, against a scipy/numpy reference
and against the physics it stands for (any tilt is no hump, a leak is one, short recordings
fade to no evidence)."""

import numpy as np
import pytest
import scipy.signal

from dsp.features import compute_features
from dsp.leak import DEFAULT_PROMINENCE_DB, DEFAULT_PROMINENCE_WIDTH_DB
from dsp.shape import shape_kernel
from tests.helpers.dsp_reference import shape_reference

FS = 4096.0
METAL = (200.0, 1500.0)
PLASTIC = (20.0, 300.0)


def power_law(slope: float, n: int = 4097, df: float = 1.0) -> np.ndarray:
    f = np.maximum(np.arange(n) * df, df)
    return f**-slope


@pytest.mark.parametrize("slope", [0.0, 0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("band", [METAL, PLASTIC, (100.0, 800.0)])
def test_any_power_law_has_no_prominence(slope, band):
    """A smooth background of any tilt: the quiet spectrum lies on its hull (minus the noise
    allowance), so the prominence is at most 0 dB."""
    spectrum = power_law(slope, 4097, 1.0)
    prominence, measured_slope = shape_kernel(spectrum, 1.0, band[0], band[1], 8192.0, 1000)
    assert prominence <= 0.0
    assert measured_slope == pytest.approx(-3.0103 * slope, abs=0.2)


@pytest.mark.parametrize("snr_db", [0.0, 6.0, 12.0])
def test_a_hump_in_band_stands_out_by_about_its_snr(snr_db):
    """A band-limited leak at in-band SNR s over a pink background: the band's power over the
    background is 10*log10(1 + s); its highest third-octave stands out more (a white hump over
    a falling background is strongest at the top of the band), the prominence is their mean."""
    f = np.arange(4097) * 1.0
    background = power_law(1.0, 4097, 1.0)
    band = (f >= METAL[0]) & (f <= METAL[1])
    hump = np.where(band, 1.0, 0.0)
    hump *= 10 ** (snr_db / 10) * background[band].sum() / hump.sum()
    prominence, _ = shape_kernel(background + hump, 1.0, *METAL, 8192.0, 1000)
    power_db = 10 * np.log10(1 + 10 ** (snr_db / 10))
    top_db = 10 * np.log10(1 + hump[1400] / background[1400])  # the top third-octave
    assert power_db - 1.0 <= prominence <= 0.5 * (power_db + top_db) + 1.0


def test_prominence_grows_with_the_leak():
    f = np.arange(4097) * 1.0
    background = power_law(1.0, 4097, 1.0)
    hump = np.exp(-0.5 * (np.log2(np.maximum(f, 1.0) / 500.0) / 0.8) ** 2)
    band = (f >= METAL[0]) & (f <= METAL[1])
    hump *= background[band].sum() / hump[band].sum()
    got = [
        shape_kernel(background + 10 ** (s / 10) * hump, 1.0, *METAL, 8192.0, 1000)[0]
        for s in (-6.0, 0.0, 6.0, 12.0)
    ]
    assert got == sorted(got) and got[0] > 0.0 and got[-1] > 8.0


@pytest.mark.parametrize(
    ("band", "fs", "n_averages"),
    [
        (METAL, 4096.0, 40),
        (PLASTIC, 8000.0, 3),
        (PLASTIC, 4096.0, 30),
        ((100.0, 800.0), 2000.0, 1),
        (METAL, 1000.0, 9),
    ],
)
@pytest.mark.parametrize("high_pass_hz", [0.0, 25.0])
def test_equals_the_reference(band, fs, n_averages, high_pass_hz):
    """Also with a sensor high-pass under a plastic band (the peak's hull starts above it)."""
    rng = np.random.default_rng(5)
    df = fs / 1024
    f = np.arange(513) * df
    spectrum = power_law(1.3, 513, df) * np.exp(rng.normal(0, 0.3, 513))
    spectrum *= (f / max(high_pass_hz, 1e-9)) ** 4 / (1 + (f / max(high_pass_hz, 1e-9)) ** 4)
    spectrum[40:60] *= 6.0
    ours = shape_kernel(spectrum, df, band[0], band[1], fs, n_averages)
    ref = shape_reference(spectrum, df, band, fs, n_averages)
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_a_band_above_the_context_gives_no_evidence():
    """A band at the top of a 1 kHz recording leaves too little to judge: 0, not a guess."""
    spectrum = power_law(1.0, 129, 3.9)
    assert shape_kernel(spectrum, 3.9, 450.0, 500.0, 1000.0, 10) == (0.0, 0.0)


def test_sensor_high_pass_below_a_plastic_band_is_not_a_leak():
    """Ambient through a 2nd-order 15 Hz high-pass: the roll-off below the spectrum's low
    maximum is the sensor's, not a hump in the band. It lifts the band's power over the whole
    context's hull a little, never its peak over the hull from the low maximum: the shape
    speaks clearly against a leak."""
    rng = np.random.default_rng(2)
    x = np.cumsum(rng.standard_normal(int(FS * 20)))  # brown noise
    x = scipy.signal.sosfilt(scipy.signal.butter(2, 15.0, "highpass", fs=FS, output="sos"), x)
    feats = compute_features(x, FS, band_hz=PLASTIC)
    assert feats.prominence_db < DEFAULT_PROMINENCE_DB - 2.0 * DEFAULT_PROMINENCE_WIDTH_DB


def test_short_recordings_fade_to_no_evidence():
    """Two seconds of noise: wide allowances, so no hump is claimed; the same leak stands out
    less in 2 s than in 20 s but does not swing wildly."""
    rng = np.random.default_rng(8)
    sos = scipy.signal.butter(2, (300.0, 1000.0), "bandpass", fs=FS, output="sos")
    long_leak = np.cumsum(rng.standard_normal(int(FS * 20))) * 0.02
    long_leak += scipy.signal.sosfilt(sos, rng.standard_normal(long_leak.size))
    short = compute_features(long_leak[: int(2 * FS)], FS, band_hz=METAL)
    full = compute_features(long_leak, FS, band_hz=METAL)
    noise = compute_features(np.cumsum(rng.standard_normal(int(2 * FS))), FS, band_hz=METAL)
    assert noise.prominence_db < 1.0
    assert full.prominence_db > 3.0
    assert 0.0 < short.prominence_db <= full.prominence_db + 1.0
