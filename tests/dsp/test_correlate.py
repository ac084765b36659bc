"""GCC time delay and leak position: accuracy on synthetic leak pairs, parity with scipy."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import fft, signal

from dsp.correlate import (
    gcc_tdoa,
    locate_on_legs,
    locate_on_path,
    next_fast_len,
)
from dsp.pipes import get_material, wave_speed
from dsp.synth import ambient, leak_at_loggers, leak_source, propagate, scale_to_snr

FS = 4096.0
DURATION_S = 8.0


def leak_pair(material: str, spacing_m: float, leak_m: float, snr_db: float, seed: int):
    """Recordings at A (leak_m from the leak) and B (spacing - leak_m), each with its own
    pink ambient, the leak scaled to ``snr_db`` in the material band at each logger."""
    m = get_material(material)
    ss = np.random.SeedSequence(seed)
    s_leak, s_a, s_b = ss.spawn(3)
    at_a, at_b = leak_at_loggers(
        FS, DURATION_S, material=m, distances_m=[leak_m, spacing_m - leak_m], seed=s_leak
    )
    out = []
    for leak, s in ((at_a, s_a), (at_b, s_b)):
        amb = ambient(FS, DURATION_S, seed=s, slope=1.0)
        out.append(amb + scale_to_snr(leak, amb, FS, m.band_hz, snr_db))
    return out


def position_errors(family: list[tuple[str, float]], weighting: str, snr_db: float, n: int):
    rng = np.random.default_rng(20261125)
    errors = []
    for i in range(n):
        material, spacing = family[i % len(family)]
        c = wave_speed(material)
        leak = float(rng.uniform(0.1, 0.9)) * spacing
        a, b = leak_pair(material, spacing, leak, snr_db, seed=1000 + i)
        res = gcc_tdoa(
            a,
            b,
            FS,
            max_lag_s=spacing / c,
            band_hz=get_material(material).band_hz,
            weighting=weighting,
        )
        errors.append(abs(locate_on_path(res.tdoa_s, spacing, c) - leak))
    return np.array(errors)


METAL = [("cast_iron", 150.0), ("ductile_iron", 120.0), ("steel", 100.0)]
PLASTIC = [("pvc", 60.0), ("pe", 40.0)]


@pytest.mark.parametrize("weighting", ["phat", "scot"])
@pytest.mark.parametrize(("name", "family"), [("metal", METAL), ("plastic", PLASTIC)])
def test_position_error_at_0_db_in_band_snr(name, family, weighting):
    errors = position_errors(family, weighting, snr_db=0.0, n=24)
    assert np.median(errors) <= 0.2, (name, errors)
    assert np.percentile(errors, 90) <= 0.5, (name, errors)


def test_plain_weighting_also_meets_the_bound_on_metal():
    errors = position_errors(METAL, "none", snr_db=0.0, n=12)
    assert np.median(errors) <= 0.2
    assert np.percentile(errors, 90) <= 0.5


def test_sign_convention_leak_near_a_gives_negative_tdoa():
    c = wave_speed("ductile_iron")
    a, b = leak_pair("ductile_iron", 100.0, 20.0, 10.0, seed=7)
    res = gcc_tdoa(a, b, FS, max_lag_s=100.0 / c, band_hz=(200.0, 1500.0))
    assert res.tdoa_s == pytest.approx((20.0 - 80.0) / c, abs=0.5e-3)
    assert locate_on_path(res.tdoa_s, 100.0, c) == pytest.approx(20.0, abs=0.5)
    assert res.confidence > 0.7
    assert not res.at_window_edge


def test_swapping_the_recordings_negates_the_delay():
    c = wave_speed("pvc")
    a, b = leak_pair("pvc", 50.0, 35.0, 5.0, seed=8)
    ab = gcc_tdoa(a, b, FS, max_lag_s=50.0 / c, band_hz=(20.0, 300.0))
    ba = gcc_tdoa(b, a, FS, max_lag_s=50.0 / c, band_hz=(20.0, 300.0))
    assert ab.tdoa_s == pytest.approx(-ba.tdoa_s, abs=1e-5)


def test_unrelated_noise_gets_low_confidence():
    rng = np.random.default_rng(3)
    a = rng.standard_normal(int(FS * DURATION_S))
    b = rng.standard_normal(int(FS * DURATION_S))
    leak_a, leak_b = leak_pair("cast_iron", 150.0, 60.0, 0.0, seed=9)
    c = wave_speed("cast_iron")
    noise = gcc_tdoa(a, b, FS, max_lag_s=150.0 / c, band_hz=(200.0, 1500.0))
    leak = gcc_tdoa(leak_a, leak_b, FS, max_lag_s=150.0 / c, band_hz=(200.0, 1500.0))
    assert noise.confidence < 0.35
    assert leak.confidence > noise.confidence + 0.4


def test_source_outside_the_loggers_is_flagged():
    # Both loggers on the same side: B hears it 60 m later than A, but they are only 40 m apart.
    c = wave_speed("steel")
    src_a, src_b = leak_at_loggers(
        FS, DURATION_S, material="steel", distances_m=[20.0, 80.0], seed=11
    )
    res = gcc_tdoa(src_a, src_b, FS, max_lag_s=40.0 / c, band_hz=(200.0, 1500.0))
    assert res.outside_peak
    inside = gcc_tdoa(src_a, src_b, FS, max_lag_s=80.0 / c, band_hz=(200.0, 1500.0))
    assert not inside.outside_peak


@pytest.mark.parametrize("max_lag", [1, 37, 400, 999])
def test_unweighted_gcc_matches_scipy_over_any_lag_window(max_lag):
    """The N + max_lag FFT gives the linear correlation (no wrap-around) up to lag N - 1."""
    rng = np.random.default_rng(max_lag)
    a = rng.standard_normal(1000)
    b = rng.standard_normal(1000)
    res = gcc_tdoa(a, b, FS, max_lag_s=max_lag / FS, weighting="none")
    a0, b0 = a - a.mean(), b - b.mean()
    full = signal.correlate(a0, b0, mode="full", method="fft") / math.sqrt(a0 @ a0 * (b0 @ b0))
    centre = a.size - 1
    np.testing.assert_allclose(
        res.correlation, full[centre - max_lag : centre + max_lag + 1], atol=1e-9
    )


def test_unweighted_full_band_gcc_is_the_normalised_correlation():
    rng = np.random.default_rng(5)
    a = rng.standard_normal(4096)
    b = np.roll(a, 17) + 0.5 * rng.standard_normal(4096)
    res = gcc_tdoa(a, b, FS, max_lag_s=100 / FS, weighting="none")
    a0, b0 = a - a.mean(), b - b.mean()
    ref = signal.correlate(a0, b0, mode="full", method="fft") / math.sqrt(a0 @ a0 * (b0 @ b0))
    centre = a.size - 1
    np.testing.assert_allclose(res.correlation, ref[centre - 100 : centre + 101], atol=1e-9)
    assert res.lag_samples == pytest.approx(-17, abs=0.05)


def test_subsample_delay_is_recovered():
    # A band-limited source delayed by a fraction of a sample (exact, in the frequency domain).
    src = leak_source(FS, DURATION_S, material="steel", seed=21)
    for frac in (0.0, 0.25, 0.5, 0.8):
        delayed = propagate(src, FS, material="steel", distance_m=frac / FS * wave_speed("steel"))
        res = gcc_tdoa(delayed, src, FS, max_lag_s=0.01, band_hz=(200.0, 1500.0))
        # propagate also attenuates; the delay is what matters here.
        assert res.lag_samples == pytest.approx(frac, abs=0.02)


def test_mixed_material_path_locates_by_travel_time():
    # A --30 m cast iron-- leak --20 m cast iron-- joint --25 m PE-- B.
    src = leak_source(FS, 10.0, material="cast_iron", seed=31)
    margin = 2048
    n = src.size - margin
    c_iron, c_pe = wave_speed("cast_iron"), wave_speed("pe")
    at_a = propagate(src, FS, material="cast_iron", distance_m=30.0)
    at_b = propagate(
        propagate(src, FS, material="cast_iron", distance_m=20.0),
        FS,
        material="pe",
        distance_m=25.0,
    )
    a, b = at_a[margin:], at_b[margin:]
    assert a.size == n
    legs = [(50.0, c_iron), (25.0, c_pe)]
    total = 50.0 / c_iron + 25.0 / c_pe
    res = gcc_tdoa(a, b, FS, max_lag_s=total, band_hz=(20.0, 1500.0))
    assert locate_on_legs(res.tdoa_s, legs) == pytest.approx(30.0, abs=0.3)
    # One averaged speed would put it metres away: the per-segment walk matters.
    mean_speed = 75.0 / total
    assert abs(locate_on_path(res.tdoa_s, 75.0, mean_speed) - 30.0) > 3.0


@pytest.mark.parametrize(
    ("tdoa", "spacing", "c", "expected"),
    [(0.0, 100.0, 1300.0, 50.0), (-0.05, 100.0, 1000.0, 25.0), (0.1, 100.0, 1000.0, 100.0)],
)
def test_locate_on_path(tdoa, spacing, c, expected):
    assert locate_on_path(tdoa, spacing, c) == pytest.approx(expected)


def test_locate_rejects_impossible_delays():
    with pytest.raises(ValueError, match="not between"):
        locate_on_path(0.2, 100.0, 1000.0)
    with pytest.raises(ValueError, match="not between"):
        locate_on_legs(1.0, [(10.0, 1000.0)])
    with pytest.raises(ValueError, match="no segments"):
        locate_on_legs(0.0, [])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"b": np.zeros(10)}, "differ in length"),
        ({"band_hz": (300.0, 3000.0)}, "must lie within"),
        ({"weighting": "roth"}, "unknown weighting"),
        ({"max_lag_s": 0.0}, "max_lag_s"),
        ({"fs": -1.0}, "sample rate"),
        ({"a": np.array([1.0, np.nan] * 50)}, "NaN"),
    ],
)
def test_gcc_rejects_bad_input(kwargs, match):
    args = {"a": np.ones(100), "b": np.ones(100), "fs": 4096.0, "max_lag_s": 0.01}
    args.update(kwargs)
    fs = args.pop("fs")
    a = args.pop("a")
    b = args.pop("b")
    with pytest.raises(ValueError, match=match):
        gcc_tdoa(a, b, fs, **args)


@pytest.mark.parametrize("n", [1, 2, 7, 97, 1000, 81000, 160001])
def test_next_fast_len_is_the_smallest_5_smooth_at_least_n(n):
    m = next_fast_len(n)
    assert m >= n
    assert m == fft.next_fast_len(n, real=True)


@given(
    st.lists(st.tuples(st.floats(1.0, 300.0), st.floats(200.0, 1500.0)), min_size=1, max_size=5),
    st.floats(0.0, 1.0),
)
def test_locate_on_legs_inverts_the_travel_times(legs, fraction):
    total_m = sum(length for length, _ in legs)
    x = fraction * total_m
    # Travel time from A to x, and from x to B, walking the legs.
    t_a, walked = 0.0, 0.0
    for length, speed in legs:
        part = min(max(x - walked, 0.0), length)
        t_a += part / speed
        walked += length
    t_total = sum(length / speed for length, speed in legs)
    tdoa = t_a - (t_total - t_a)
    assert locate_on_legs(tdoa, legs) == pytest.approx(x, abs=1e-6 * total_m + 1e-9)


@pytest.mark.parametrize(("material", "spacing"), [("ductile_iron", 150.0), ("pe", 40.0)])
def test_phat_is_not_pulled_by_a_pump_tone_both_loggers_hear(material, spacing):
    # A 50 Hz pump hum with harmonics 10 dB over the ambient at both loggers: the plain
    # correlation locks onto it on plastic; PHAT gives each tonal bin no more weight than any.
    from dsp.synth import pump_tone

    m = get_material(material)
    c = wave_speed(material)
    errors = []
    for i in range(6):
        leak = spacing * (0.2 + 0.1 * i)
        at_a, at_b = leak_at_loggers(
            FS, DURATION_S, material=m, distances_m=[leak, spacing - leak], seed=100 + i
        )
        rec = []
        for j, x in enumerate((at_a, at_b)):
            amb = ambient(FS, DURATION_S, seed=200 + 10 * i + j)
            hum = pump_tone(FS, DURATION_S, seed=300 + 10 * i + j, f0_hz=50.0, level_db=10.0)
            rec.append(amb + hum + scale_to_snr(x, amb, FS, m.band_hz, 0.0))
        res = gcc_tdoa(rec[0], rec[1], FS, max_lag_s=spacing / c, band_hz=m.band_hz)
        errors.append(abs(locate_on_path(res.tdoa_s, spacing, c) - leak))
    assert np.median(errors) <= 0.2
    assert max(errors) <= 0.5
