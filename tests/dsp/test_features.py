"""dsp.features: parity with scipy/numpy references (1e-6 relative) and the physics each feature
is for (tones left out, intermittent noise left out, continuous noise kept)."""

import math
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp import synth
from dsp.features import compute_features
from tests.helpers.dsp_reference import scipy_features

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("fs", "seconds", "band", "scene"),
    [
        (4096.0, 8.0, (200.0, 1500.0), synth.Scene(leak_distance_m=50.0)),
        (8000.0, 4.0, (20.0, 300.0), synth.Scene(material="pvc", pump_db=5.0, traffic_db=10.0)),
        (4096.0, 4.0, (100.0, 800.0), synth.Scene(draw_off_db=8.0)),
        (1000.0, 10.0, (20.0, 300.0), synth.Scene(material="pe", leak_distance_m=5.0)),
        (44100.0, 1.0, (200.0, 1500.0), synth.Scene(pump_db=10.0, pump_hz=50.0)),
    ],
)
def test_features_equal_scipy_reference(fs, seconds, band, scene):
    """Every feature equals its scipy/numpy reference within 1e-6 relative."""
    x = synth.recording(fs, seconds, scene=scene, seed=11) * 3.7
    feat = compute_features(x, fs, band_hz=band)
    ref = scipy_features(x, fs, feat.nperseg, band)
    for name in (
        "level_db",
        "l10_db",
        "l90_db",
        "spread_db",
        "quiet_level_db",
        "tonality_db",
        "prominence_db",
        "slope_db_per_octave",
        "unsteadiness_db",
        "quiet_share",
    ):
        assert getattr(feat, name) == pytest.approx(ref[name], rel=1e-6, abs=1e-9), name
    if math.isnan(ref["envelope_slope"]):
        assert math.isnan(feat.envelope_slope)
    else:
        assert feat.envelope_slope == pytest.approx(ref["envelope_slope"], rel=1e-6, abs=1e-9)
    if math.isnan(ref["hump_fit"]):
        assert math.isnan(feat.hump_fit)
    else:
        assert feat.hump_fit == pytest.approx(ref["hump_fit"], rel=1e-6, abs=1e-6)
    assert feat.peak_hz == pytest.approx(ref["peak_hz"], rel=1e-12)
    assert feat.flatness == pytest.approx(ref["flatness"], rel=1e-6)
    np.testing.assert_allclose([b[2] for b in feat.band_levels], ref["bands"], rtol=1e-6)


def test_pump_tone_is_left_out_of_the_quiet_level():
    """A steady hum raises the level and the tonality, not the quiet tone-free level."""
    fs, band = 4096.0, (20.0, 300.0)
    amb = synth.ambient(fs, 6.0, seed=1)
    pump = synth.pump_tone(fs, 6.0, seed=2, f0_hz=50.0, level_db=10.0)
    quiet = compute_features(amb, fs, band_hz=band)
    hum = compute_features(amb + pump, fs, band_hz=band)
    assert hum.level_db > quiet.level_db + 8
    assert abs(hum.quiet_level_db - quiet.quiet_level_db) < 1.0
    assert hum.tonality_db > 6.0 and quiet.tonality_db < 1.0
    assert hum.tone_hz == pytest.approx(50.0, abs=4.0)
    assert hum.flatness < quiet.flatness


def test_intermittent_noise_is_left_out_of_the_quiet_level():
    """Traffic bursts widen the spread and raise L10, not the quiet level."""
    fs, band = 4096.0, (200.0, 1500.0)
    amb = synth.ambient(fs, 6.0, seed=3)
    cars = synth.traffic_bursts(fs, 6.0, seed=4, level_db=25.0, count=2)
    quiet = compute_features(amb, fs, band_hz=band)
    busy = compute_features(amb + cars, fs, band_hz=band)
    assert busy.spread_db > quiet.spread_db + 10
    assert abs(busy.quiet_level_db - quiet.quiet_level_db) < 1.0
    assert quiet.spread_db < 2.0


def test_continuous_leak_raises_the_quiet_level():
    """A leak at 10 dB in-band SNR lifts the quiet level by about 10 dB."""
    fs = 4096.0
    quiet = compute_features(
        synth.recording(fs, 6.0, scene=synth.Scene(), seed=5), fs, band_hz=(200.0, 1500.0)
    )
    leak = compute_features(
        synth.recording(fs, 6.0, scene=synth.Scene(leak_distance_m=40.0, leak_snr_db=10.0), seed=5),
        fs,
        band_hz=(200.0, 1500.0),
    )
    assert leak.quiet_level_db - quiet.quiet_level_db == pytest.approx(10.4, abs=1.0)
    assert leak.spread_db < 2.0


def _wandering_scene(fs: float, seconds: float, leak_snr_db: float | None, seed: int):
    """White ambient whose level wanders (3 dB, ~1 s), plus optionally steady noise in 200-1500
    Hz at ``leak_snr_db`` against the ambient's mean in-band power."""
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    slow = np.convolve(rng.standard_normal(n // 256 + 8), np.hanning(16), mode="same")
    envelope = 10 ** (3.0 * slow / slow.std() / 20)
    envelope = np.interp(np.arange(n), np.arange(slow.size) * 256, envelope)
    x = rng.standard_normal(n) * envelope
    if leak_snr_db is not None:
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / fs)
        spec[(f < 200) | (f > 1500)] = 0
        leak = np.fft.irfft(spec, n)
        in_band = 1300 / (fs / 2) * np.mean(envelope**2)  # ambient's in-band power share
        leak *= math.sqrt(in_band * 10 ** (leak_snr_db / 10) / np.mean(leak**2))
        x = x + leak
    return x


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_envelope_slope_sees_a_steady_floor_under_a_wandering_band(seed):
    """Ambient that wanders moves the band as much as the octave above it (slope ~1); a
    steady leak 10 dB over it fills the band's troughs (slope ~1/(1+10) = 0.09)."""
    band = (200.0, 1500.0)
    ambient = compute_features(_wandering_scene(8000.0, 30.0, None, seed), 8000.0, band_hz=band)
    leak = compute_features(_wandering_scene(8000.0, 30.0, 10.0, seed), 8000.0, band_hz=band)
    assert 0.8 < ambient.envelope_slope < 1.2
    assert 0.0 < leak.envelope_slope < 0.3


def test_envelope_slope_is_nan_without_a_swing_or_reference_bands():
    rng = np.random.default_rng(5)
    steady = compute_features(rng.standard_normal(8000 * 20), 8000.0, band_hz=(200.0, 1500.0))
    assert math.isnan(steady.envelope_slope)  # nothing swings: nothing to read
    x = _wandering_scene(4000.0, 20.0, None, 5)
    # 10-1500 Hz at 4 kHz leaves no third-octave outside the band (0.75 x Nyquist = 1500)
    no_room = compute_features(x, 4000.0, band_hz=(10.0, 1500.0))
    assert math.isnan(no_room.envelope_slope)
    assert not math.isnan(compute_features(x, 4000.0, band_hz=(200.0, 1500.0)).envelope_slope)


@settings(max_examples=20, deadline=None)
@given(
    fs=st.sampled_from([1000.0, 4096.0, 8000.0, 22050.0]),
    band=st.sampled_from([(20.0, 300.0), (200.0, 1500.0), (100.0, 800.0)]),
    frames=st.integers(4, 80),
    wander_db=st.floats(0.0, 6.0),
    leak=st.floats(0.0, 10.0),
    tonal_share=st.floats(0.0, 0.9),
    seed=st.integers(0, 2**32 - 1),
)
def test_envelope_slope_kernel_equals_numpy_reference(
    fs, band, frames, wander_db, leak, tonal_share, seed
):
    """The kernel's slope (reference bands, their free bins, the quiet frames of the common
    mode, the noise taken out) equals the numpy reference on periodograms of wandering noise
    with a steady share in band and any bins marked tonal, NaN where it is NaN."""
    from dsp.features import (
        ENVELOPE_MIN_VARIANCE_DB2,
        ENVELOPE_QUIET_SHARE,
        _envelope_references,
        _envelope_slope,
    )
    from dsp.spectra import default_nperseg
    from tests.helpers.dsp_reference import envelope_slope_reference

    if band[0] >= 0.75 * fs / 2:
        return
    rng = np.random.default_rng(seed)
    n = default_nperseg(fs)
    f = np.arange(n // 2 + 1) * fs / n
    wander = 10 ** (wander_db * rng.standard_normal(frames)[:, None] / 10)
    steady = np.where((f >= band[0]) & (f <= band[1]), leak, 0.0)
    power = rng.exponential(1.0, (frames, f.size)) * (wander + steady)
    free = rng.uniform(size=f.size) >= tonal_share
    df = fs / n
    klo = math.ceil(band[0] / df - 1e-9)
    khi = min(math.floor(band[1] / df + 1e-9), n // 2, math.floor(0.75 * fs / 2 / df + 1e-9))
    got = _envelope_slope(
        power,
        free,
        klo,
        khi,
        *_envelope_references(fs, n, *band),
        ENVELOPE_QUIET_SHARE,
        ENVELOPE_MIN_VARIANCE_DB2,
    )
    want = envelope_slope_reference(power, f, band, fs, free)
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_silence_gives_finite_levels():
    feat = compute_features(np.zeros(8192), 4096.0, band_hz=(200.0, 1500.0))
    assert feat.level_db < -2000 and math.isfinite(feat.level_db)


@pytest.mark.parametrize(
    ("band", "message"),
    [
        ((300.0, 200.0), "low < high"),
        ((3000.0, 4000.0), "above Nyquist"),
        ((101.0, 102.0), "no frequency bin"),
    ],
)
def test_bad_band_raises(band, message):
    with pytest.raises(ValueError, match=message):
        compute_features(np.ones(8192), 4096.0, band_hz=band)


def test_import_and_run_from_a_read_only_tree(tmp_path):
    """A read-only install works when NUMBA_CACHE_DIR points somewhere writable."""
    tree = tmp_path / "ro"
    shutil.copytree(REPO / "dsp", tree / "dsp", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [tree, *tree.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    cache = tmp_path / "cache"
    code = (
        "import numpy as np, dsp.features as f;"
        f"assert f.__file__.startswith({str(tree)!r});"
        "print(f.compute_features(np.random.default_rng(1).standard_normal(8192), 4096.0,"
        " band_hz=(200.0, 1500.0)).level_db)"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(tree)}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=tree,
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        for path in [tree, *tree.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout)
    assert any(cache.rglob("*.nbi")), "the numba cache was not written to NUMBA_CACHE_DIR"


@settings(max_examples=25, deadline=None)
@given(
    gain_db=st.floats(-120.0, 120.0),
    offset=st.floats(-10.0, 10.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_levels_follow_gain_and_ignore_dc(gain_db, offset, seed):
    """Scaling by g shifts every level by 20*log10(g) and changes no shape feature; a DC offset
    (removed per segment) changes nothing."""
    fs, band = 4096.0, (200.0, 1500.0)
    x = synth.recording(fs, 2.0, scene=synth.Scene(leak_distance_m=30.0, pump_db=3.0), seed=seed)
    a = compute_features(x, fs, band_hz=band)
    b = compute_features(x * 10 ** (gain_db / 20) + offset * 10 ** (gain_db / 20), fs, band_hz=band)
    for name in ("level_db", "l10_db", "l90_db", "quiet_level_db"):
        assert getattr(b, name) - getattr(a, name) == pytest.approx(gain_db, abs=1e-6)
    for name in (
        "spread_db",
        "tonality_db",
        "flatness",
        "peak_hz",
        "prominence_db",
        "slope_db_per_octave",
        "unsteadiness_db",
        "quiet_share",
        "envelope_slope",
        "hump_fit",
    ):
        assert getattr(b, name) == pytest.approx(getattr(a, name), rel=1e-6, abs=1e-6, nan_ok=True)


def _shaped_noise(fs: float, seconds: float, power, seed: int) -> np.ndarray:
    """Gaussian noise whose spectrum follows ``power(f)``."""
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    f = np.fft.rfftfreq(n, 1 / fs)
    spec = (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)) * np.sqrt(power(f))
    spec[0] = 0.0
    return np.fft.irfft(spec, n)


@pytest.mark.parametrize("tilt", [0.0, 1.0, 2.0])
def test_hump_fit_tells_a_hump_from_a_smooth_background(tilt):
    """Ambient of any tilt with a white floor is a smooth background: a hump hardly improves
    its fit (below the score's neutral point). The same ambient with a resonant band-pass
    noise in the metal band, 10 dB over it in band, is fitted far better with a hump (one
    logit of evidence or more)."""
    from dsp.leak import HUMP_FIT_NEUTRAL, HUMP_FIT_WIDTH

    fs, band = 8000.0, (200.0, 1500.0)

    def ambient(f):
        return (np.maximum(f, 5.0) / 100.0) ** -tilt + 1e-3

    def leak(f):  # a second-order resonance at 500 Hz, Q 1: a broad bump, not the corpus's
        r = f / 500.0
        return r**2 / ((1 - r**2) ** 2 + r**2)

    amb = _shaped_noise(fs, 20.0, ambient, seed=7)
    bump = _shaped_noise(fs, 20.0, leak, seed=8)
    f = np.fft.rfftfreq(amb.size, 1 / fs)
    sel = (f >= band[0]) & (f <= band[1])
    ratio = np.sum(np.abs(np.fft.rfft(amb))[sel] ** 2) / np.sum(np.abs(np.fft.rfft(bump))[sel] ** 2)
    smooth = compute_features(amb, fs, band_hz=band)
    humped = compute_features(amb + bump * math.sqrt(10.0 * ratio), fs, band_hz=band)
    assert math.log1p(smooth.hump_fit) < HUMP_FIT_NEUTRAL
    assert math.log1p(humped.hump_fit) > HUMP_FIT_NEUTRAL + HUMP_FIT_WIDTH  # a logit or more


def test_hump_fit_is_nan_without_context_to_fit():
    """A plastic band (20-300 Hz) at 60 Hz: the fit's range is 20 Hz to 0.75 x Nyquist
    (22.5 Hz), less than the six sixth-octave bands a fit needs: no evidence, not 0."""
    rng = np.random.default_rng(3)
    cut = compute_features(rng.standard_normal(60 * 60), 60.0, band_hz=(20.0, 300.0))
    assert math.isnan(cut.hump_fit)


@settings(max_examples=12, deadline=None)
@given(
    n_bands=st.integers(6, 20),
    tilt=st.floats(0.0, 4.0),
    hump_db=st.floats(0.0, 15.0),
    hump_at=st.floats(0.0, 1.0),
    scale_db=st.floats(-2000.0, 100.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_hump_fit_grid_equals_each_pair_solved_alone(
    n_bands, tilt, hump_db, hump_at, scale_db, seed
):
    """The grid search (Gram entries shared across pairs, subsets solved once per tilt or
    hump, pairs that cannot win skipped) gives what solving every (tilt, hump) pair's
    non-negative least squares on its own gives: a tilted background with a white floor, a
    hump of any size anywhere, noisy levels, any gain."""
    from dsp.shape import FIT_TILTS, FIT_WIDTHS_OCTAVES, _fit_grid
    from tests.helpers.dsp_reference import hump_fit_per_pair

    rng = np.random.default_rng(seed)
    u = 7.0 + np.arange(n_bands) / 6.0 + rng.uniform(0.0, 0.01, n_bands)
    u_lo, u_hi = u[0] + 0.5, u[-1] - 0.5
    centre = u[0] + hump_at * (u[-1] - u[0])
    level = 2.0 ** (-tilt * (u - u[0])) + 1e-2
    level += 10 ** (hump_db / 10) * level.min() * np.exp(-0.5 * ((u - centre) / 0.6) ** 2)
    level *= rng.chisquare(40, n_bands) / 40 * 10 ** (scale_db / 10)
    level /= level.max()
    wt = 1.0 / np.sqrt(rng.uniform(0.001, 0.5, n_bands) + 0.15**2)
    ws = wt / level
    fast = _fit_grid(u, wt, ws, u_lo, u_hi, FIT_TILTS, FIT_WIDTHS_OCTAVES)
    slow = hump_fit_per_pair(u, wt, ws, u_lo, u_hi, FIT_TILTS, FIT_WIDTHS_OCTAVES)
    assert fast == pytest.approx(slow, rel=1e-9, abs=1e-9 * float(wt @ wt))


@pytest.mark.parametrize("gain", [1e-100, 1e-120])
def test_features_of_the_smallest_float_samples_are_the_gain_free_same(gain):
    """Samples as small as a float file may hold (``analyze`` takes them down to ~1e-120):
    their powers (~1e-200) square to nothing in a variance, which once made every bin look
    steady (tonal) and the quiet level -3000 dB. Every level moves by the gain alone and every
    gain-free feature stays where it is."""
    x = synth.recording(
        4096.0, 20.0, scene=synth.Scene(leak_distance_m=30.0, traffic_db=15.0), seed=3
    )
    base = compute_features(x, 4096.0, band_hz=(200.0, 1500.0))
    small = compute_features(x * gain, 4096.0, band_hz=(200.0, 1500.0))
    shift = 20.0 * math.log10(gain)
    for name in ("level_db", "quiet_level_db", "l90_db"):
        assert getattr(small, name) == pytest.approx(getattr(base, name) + shift, abs=1e-6), name
    for name in ("tonality_db", "prominence_db", "unsteadiness_db", "quiet_share"):
        assert getattr(small, name) == pytest.approx(getattr(base, name), abs=1e-6), name
    assert small.envelope_slope == pytest.approx(base.envelope_slope, rel=1e-6, nan_ok=True)
    # the envelope's slope needs a wandering ambient (the traffic is left out with the loud
    # frames of the spectrum's common swing)
    wandering = _wandering_scene(4096.0, 20.0, 3.0, 3)
    base_env = compute_features(wandering, 4096.0, band_hz=(200.0, 1500.0)).envelope_slope
    small_env = compute_features(wandering * gain, 4096.0, band_hz=(200.0, 1500.0)).envelope_slope
    assert not math.isnan(base_env)
    assert small_env == pytest.approx(base_env, rel=1e-6)
    assert small.hump_fit == pytest.approx(base.hump_fit, rel=1e-6)
