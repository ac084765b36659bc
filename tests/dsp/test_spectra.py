"""dsp.spectra: Welch PSD and per-frame spectra equal to scipy within 1e-6 relative."""

import numpy as np
import pytest
import scipy.signal

from dsp import spectra


@pytest.mark.parametrize(
    ("fs", "n", "nperseg"),
    [
        (4096.0, 32768, 1024),
        (8000.0, 80000, 2048),
        (4096.0, 5000, 256),
        (1000.0, 777, 100),
        (44100.0, 4410, 441),
        (4096.0, 1024, 1024),
    ],
)
def test_welch_matches_scipy(fs, n, nperseg):
    """Periodic Hann, 50 % overlap, constant detrend, density: scipy's numbers."""
    x = np.random.default_rng(n).standard_normal(n) * 3.0 + 0.7
    f_ref, p_ref = scipy.signal.welch(
        x,
        fs,
        window="hann",
        nperseg=nperseg,
        noverlap=nperseg // 2,
        detrend="constant",
        scaling="density",
        average="mean",
    )
    f, p = spectra.welch_psd(x, fs, nperseg)
    np.testing.assert_allclose(f, f_ref, rtol=1e-12)
    np.testing.assert_allclose(p, p_ref, rtol=1e-6, atol=1e-6 * p_ref.max() * 1e-6)


def test_frames_match_scipy_spectrogram():
    """Each row is one segment's periodogram, as scipy.signal.spectrogram computes it."""
    fs, nperseg = 4096.0, 512
    x = np.random.default_rng(1).standard_normal(9000)
    f_ref, _, s_ref = scipy.signal.spectrogram(
        x,
        fs,
        window="hann",
        nperseg=nperseg,
        noverlap=nperseg // 2,
        detrend="constant",
        scaling="density",
        mode="psd",
    )
    f, frames = spectra.frame_psd(x, fs, nperseg)
    assert frames.shape == s_ref.T.shape == (spectra.n_segments(x.size, nperseg), nperseg // 2 + 1)
    np.testing.assert_allclose(f, f_ref, rtol=1e-12)
    np.testing.assert_allclose(frames, s_ref.T, rtol=1e-6)


def test_hann_is_scipys_periodic_window():
    np.testing.assert_allclose(spectra.hann(64), scipy.signal.get_window("hann", 64), atol=1e-15)


@pytest.mark.parametrize(("fs", "expected"), [(4096.0, 1024), (8000.0, 2048), (1000.0, 256)])
def test_default_segment_gives_about_4_hz(fs, expected):
    assert spectra.default_nperseg(fs) == expected


@pytest.mark.parametrize(
    ("x", "fs", "nperseg", "message"),
    [
        (np.zeros((2, 100)), 100.0, 16, "1-D"),
        (np.zeros(100), 0.0, 16, "sample rate"),
        (np.zeros(10), 100.0, 16, "shorter than one segment"),
        (np.array([0.0, np.nan] * 20), 100.0, 16, "NaN"),
        (np.zeros(100), 100.0, 2, "segment length"),
    ],
)
def test_bad_input_raises(x, fs, nperseg, message):
    with pytest.raises(ValueError, match=message):
        spectra.welch_psd(x, fs, nperseg)
