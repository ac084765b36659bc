"""dsp.coherence: Welch cross-spectra against scipy, the coherent band, the HT weighting and the
coherence-guided delay (the band found where both loggers hear the leak, tones left out,
never worse than full-band PHAT when that one is sure)."""

import numpy as np
import pytest
import scipy.signal

from dsp.coherence import (
    choose_band,
    coherence_nperseg,
    plausible_band,
    tonal_bins,
    welch_cross_spectra,
)
from dsp.correlate import gcc_tdoa, limit_transients, locate_on_path, locate_tdoa
from dsp.pipes import get_material, wave_speed
from dsp.synth import ambient, leak_at_loggers, scale_to_snr, traffic_bursts

FS = 4096.0


@pytest.mark.parametrize("nperseg", [256, 1024, 777])
def test_cross_spectra_equal_scipy(nperseg):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(20000) + 3.0
    b = np.roll(a, 7) * 0.5 + rng.standard_normal(20000)
    freqs, saa, sbb, sab, nseg = welch_cross_spectra(a, b, FS, nperseg)
    kw = {"window": "hann", "nperseg": nperseg, "noverlap": nperseg // 2, "detrend": "constant"}
    f_ref, paa = scipy.signal.welch(a, FS, **kw)
    _, pbb = scipy.signal.welch(b, FS, **kw)
    _, pba = scipy.signal.csd(b, a, FS, **kw)  # scipy: conj(B) A = our A conj(B)
    _, msc = scipy.signal.coherence(a, b, FS, **kw)
    np.testing.assert_allclose(freqs, f_ref)
    np.testing.assert_allclose(saa, paa, rtol=1e-6)
    np.testing.assert_allclose(sbb, pbb, rtol=1e-6)
    np.testing.assert_allclose(sab, pba, rtol=1e-6, atol=1e-12 * np.max(np.abs(pba)))
    np.testing.assert_allclose(np.abs(sab) ** 2 / (saa * sbb), msc, rtol=1e-6, atol=1e-12)
    assert nseg == (20000 - nperseg) // (nperseg - nperseg // 2) + 1


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="equally long"):
        welch_cross_spectra(np.ones(100), np.ones(99), FS, 32)
    with pytest.raises(ValueError, match="one segment"):
        welch_cross_spectra(np.ones(10), np.ones(10), FS, 32)
    with pytest.raises(ValueError, match="NaN"):
        welch_cross_spectra(np.full(100, np.nan), np.ones(100), FS, 32)
    with pytest.raises(ValueError, match="above what"):
        plausible_band((5000.0, 6000.0), 4096.0)


def test_segments_follow_the_lag_and_keep_enough_of_them():
    assert coherence_nperseg(40960, FS, 0.1) == 2048  # >= 4 x 0.1 s = 1638 samples
    assert coherence_nperseg(8192, FS, 0.1) == 1024  # shortened: 8 segments at least
    assert coherence_nperseg(10**6, FS, 0.001) == 512  # at least fs / 8 Hz
    assert plausible_band((200.0, 1500.0), 4096.0) == (100.0, 1945.6)
    assert plausible_band(None, 8000.0) == (0.0, 3800.0)


def pair(material, spacing, leak_m, snr_db, seed, seconds=10.0, traffic_db=None):
    m = get_material(material)
    ss = np.random.SeedSequence(seed).spawn(5)
    at = leak_at_loggers(
        FS, seconds, material=m, distances_m=[leak_m, spacing - leak_m], seed=ss[0]
    )
    out = []
    for i, leak in enumerate(at):
        amb = ambient(FS, seconds, seed=ss[1 + i], slope=1.0)
        x = amb + scale_to_snr(leak, amb, FS, m.band_hz, snr_db)
        if traffic_db is not None:  # rumble at each logger, its own, in the plastic band
            x = x + traffic_bursts(FS, seconds, seed=ss[3 + i], level_db=traffic_db, count=6)
        out.append(x)
    return out


def test_the_coherent_band_is_where_both_hear_the_leak():
    a, b = pair("cast_iron", 120.0, 40.0, 6.0, seed=3)
    freqs, saa, sbb, sab, nseg = welch_cross_spectra(a, b, FS, 1024)
    band = choose_band(freqs, saa, sbb, sab, nseg, plausible_band((200.0, 1500.0), FS))
    assert band.band_hz is not None
    lo, hi = band.band_hz
    assert 100.0 <= lo < 400.0 and 800.0 < hi <= 1945.6
    assert band.mean_coherence > 3 * band.threshold / 2
    unrelated = choose_band(*welch_cross_spectra(a, np.roll(b, 9000), FS, 1024), (100.0, 1900.0))
    assert unrelated.band_hz is None


def test_a_tone_both_loggers_hear_is_left_out():
    t = np.arange(40960) / FS
    a, b = pair("pe", 40.0, 10.0, 0.0, seed=4)
    hum = 20 * np.sin(2 * np.pi * 50.0 * t)
    freqs, saa, sbb, sab, nseg = welch_cross_spectra(a + hum, b + hum, FS, 1024)
    lines = tonal_bins(saa)
    assert lines[np.argmin(np.abs(freqs - 50.0))]
    band = choose_band(freqs, saa, sbb, sab, nseg, (10.0, 600.0))
    assert band.weight[np.argmin(np.abs(freqs - 50.0))] == 0.0


def test_holds_where_traffic_rumble_fills_the_plastic_band():
    """Rumble 10 dB over the ambient at each logger (its own at each) in a PE band, the leak
    at -3 dB: the coherence-guided delay holds within half a metre, with confidence."""
    c = wave_speed("pe")
    spacing, leak_m = 50.0, 18.0
    a, b = pair("pe", spacing, leak_m, -3.0, seed=8, seconds=20.0, traffic_db=10.0)
    travel = spacing / c
    ours = locate_tdoa(a, b, FS, max_lag_s=travel, band_hz=(20.0, 300.0))
    assert abs(locate_on_path(ours.tdoa_s, spacing, c) - leak_m) < 0.5
    assert ours.confidence >= 0.5 and ours.band_hz is not None
    assert ours.mean_coherence is not None


def test_confidence_is_low_on_noise_and_high_on_a_leak():
    rng = np.random.default_rng(5)
    noise = [rng.standard_normal(40960) for _ in range(2)]
    on_noise = locate_tdoa(*noise, FS, max_lag_s=0.1, band_hz=(200.0, 1500.0))
    assert on_noise.confidence < 0.5
    a, b = pair("steel", 100.0, 30.0, 0.0, seed=6)
    on_leak = locate_tdoa(a, b, FS, max_lag_s=100.0 / wave_speed("steel"), band_hz=(200.0, 1500.0))
    assert on_leak.confidence > 0.9 and on_leak.significance > 3


def test_ht_weighting_through_gcc_tdoa_reports_its_band():
    a, b = pair("ductile_iron", 150.0, 100.0, 3.0, seed=7)
    c = wave_speed("ductile_iron")
    res = gcc_tdoa(a, b, FS, max_lag_s=150.0 / c, band_hz=(200.0, 1500.0), weighting="ht")
    assert res.weighting == "ht" and res.band_hz is not None and res.mean_coherence > 0
    assert abs(locate_on_path(res.tdoa_s, 150.0, c) - 100.0) < 0.3


def test_clicks_in_each_recording_do_not_make_a_false_peak():
    """A few knocks in each recording (their own, at random times): whitened, two impulses
    correlate as sharply as a leak would. The limiter flattens them (and leaves steady noise
    exactly as it was, mean removed); the leak's delay is found."""
    rng = np.random.default_rng(12)
    spacing, leak_m = 60.0, 45.0
    c = wave_speed("pvc")
    a, b = pair("pvc", spacing, leak_m, -3.0, seed=12, seconds=20.0)
    t = np.arange(96) / FS
    knock = np.exp(-t / 0.004) * np.sin(2 * np.pi * 900.0 * t)
    for x in (a, b):
        for at in rng.integers(0, x.size - 96, 4):
            x[at : at + 96] += 60.0 * knock
    res = locate_tdoa(a, b, FS, max_lag_s=spacing / c, band_hz=(20.0, 300.0))
    assert abs(locate_on_path(res.tdoa_s, spacing, c) - leak_m) < 0.5
    limited = limit_transients(a, FS)
    assert np.max(np.abs(limited)) < 0.5 * np.max(np.abs(a))
    steady = rng.standard_normal(40960)
    np.testing.assert_allclose(limit_transients(steady, FS), steady - steady.mean())
