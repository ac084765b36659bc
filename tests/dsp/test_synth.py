"""dsp.synth: seeded, reproducible, levels as asked, pipe delay exact to a fraction of a sample."""

import math

import numpy as np
import pytest

from dsp import synth
from dsp.pipes import MATERIALS, wave_speed

FS = 4096.0


@pytest.mark.parametrize(
    "make",
    [
        lambda s: synth.leak_source(FS, 2.0, material="pvc", seed=s),
        lambda s: synth.ambient(FS, 2.0, seed=s, slope=1.5, floor_db=-30.0),
        lambda s: synth.traffic_bursts(FS, 2.0, seed=s),
        lambda s: synth.draw_off(FS, 2.0, seed=s),
        lambda s: synth.pump_tone(FS, 2.0, seed=s, f0_hz=47.0),
        lambda s: synth.recording(
            FS, 2.0, scene=synth.Scene(leak_distance_m=30, traffic_db=6, pump_db=0), seed=s
        ),
    ],
)
def test_same_seed_same_samples_other_seed_other_samples(make):
    """A generator is a pure function of its seed."""
    a, b, c = make(7), make(7), make(8)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.dtype == np.float64 and a.size == int(FS * 2.0)


@pytest.mark.parametrize("level_db", [-20.0, 0.0, 13.0])
def test_levels_are_rms_db(level_db):
    """level_db is the RMS level in dB re 1 unit."""
    for x in (
        synth.leak_source(8000.0, 1.0, material="steel", seed=1, level_db=level_db),
        synth.ambient(8000.0, 1.0, seed=1, level_db=level_db),
        synth.pump_tone(8000.0, 1.0, seed=1, level_db=level_db),
    ):
        assert 20 * math.log10(np.sqrt(np.mean(x * x))) == pytest.approx(level_db, abs=1e-9)


@pytest.mark.parametrize("material", sorted(MATERIALS))
def test_propagation_delay_is_exact(material):
    """The cross-spectrum phase of two propagated copies gives (dA - dB)/c to < 1e-3 sample."""
    src = synth.leak_source(FS, 4.0, material=material, seed=3)
    d_a, d_b = 37.3, 11.9
    a = synth.propagate(src, FS, material=material, distance_m=d_a)
    b = synth.propagate(src, FS, material=material, distance_m=d_b)
    cross = np.fft.rfft(a) * np.conj(np.fft.rfft(b))
    f = np.fft.rfftfreq(src.size, 1 / FS)
    lo, hi = MATERIALS[material].band_hz
    sel = (f >= lo) & (f <= min(hi, 400.0)) & (np.abs(cross) > 0)
    phase = np.unwrap(np.angle(cross[sel]))
    slope = np.polyfit(f[sel], phase, 1)[0]
    tdoa = -slope / (2 * np.pi)
    expected = (d_a - d_b) / wave_speed(material)
    assert abs(tdoa - expected) * FS < 1e-3


def test_propagation_loses_more_at_high_frequency_and_on_plastic():
    """Loss grows with frequency and distance; plastic loses far more than metal."""
    src = synth.leak_source(FS, 4.0, material="steel", seed=5)
    for material in ("steel", "pe"):
        near = synth.propagate(src, FS, material=material, distance_m=5)
        far = synth.propagate(src, FS, material=material, distance_m=40)
        lo_loss = synth.band_power(near, FS, (200, 300)) / synth.band_power(far, FS, (200, 300))
        hi_loss = synth.band_power(near, FS, (1000, 1200)) / synth.band_power(far, FS, (1000, 1200))
        assert hi_loss > lo_loss > 1.0
    steel = synth.propagate(src, FS, material="steel", distance_m=40)
    pe = synth.propagate(src, FS, material="pe", distance_m=40)
    assert synth.band_power(pe, FS, (200, 300)) < synth.band_power(steel, FS, (200, 300)) / 100


def test_leak_at_loggers_is_one_source_shifted():
    """Two loggers hear the same leak: sample k at A equals sample k - shift at B."""
    fs = 8000.0
    material = "ductile_iron"
    c = wave_speed(material)
    d_a = 20.0
    d_b = d_a + 25 * c / fs  # exactly 25 samples later
    a, b = synth.leak_at_loggers(fs, 1.0, material=material, distances_m=[d_a, d_b], seed=9)
    src = synth.leak_source(fs, 1.0, material=material, seed=9)
    assert a.size == b.size == src.size
    # b is a copy of a delayed by 25 samples with extra loss: correlation peak at lag 25
    xc = np.correlate(b, a, mode="full")
    assert int(np.argmax(xc)) - (a.size - 1) == 25


def test_snr_scaling_in_band():
    """scale_to_snr sets the in-band power ratio exactly."""
    noise = synth.ambient(FS, 2.0, seed=1)
    sig = synth.leak_source(FS, 2.0, material="pvc", seed=2)
    scaled = synth.scale_to_snr(sig, noise, FS, (20, 300), 6.0)
    ratio = synth.band_power(scaled, FS, (20, 300)) / synth.band_power(noise, FS, (20, 300))
    assert 10 * math.log10(ratio) == pytest.approx(6.0, abs=1e-9)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: synth.leak_source(0, 1.0, material="pvc", seed=1), "sample rate"),
        (lambda: synth.leak_source(FS, -1.0, material="pvc", seed=1), "duration"),
        (lambda: synth.leak_source(FS, 1.0, material="wood", seed=1), "unknown pipe material"),
        (lambda: synth.pump_tone(FS, 1.0, seed=1, f0_hz=3000.0), "pump frequency"),
        (lambda: synth.draw_off(FS, 1.0, seed=1, duty=1.5), "duty"),
        (lambda: synth.propagate(np.ones(8), FS, material="pvc", distance_m=-1), "distance"),
        (lambda: synth.mix(np.ones(3), np.ones(4)), "differ in length"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_intermittent_sources_start_and_stop_inside_the_recording():
    """Traffic and draw-off are silent for part of the recording; a pump never is."""
    for x in (synth.traffic_bursts(FS, 4.0, seed=4), synth.draw_off(FS, 4.0, seed=4)):
        frames = np.sqrt(np.mean(x[: 16 * 1024].reshape(16, 1024) ** 2, axis=1))
        assert frames.min() < 0.05 * frames.max()
    p = synth.pump_tone(FS, 4.0, seed=4)
    frames = np.sqrt(np.mean(p[: 16 * 1024].reshape(16, 1024) ** 2, axis=1))
    assert frames.min() > 0.9 * frames.max()


@pytest.mark.parametrize("material", ["pvc", "steel"])
def test_ambient_in_band_sets_the_band_level(material):
    """With ambient_in_band the ambient's level in the material band is ambient_db."""
    scene = synth.Scene(material=material, ambient_db=-7.0, ambient_in_band=True, ambient_slope=2)
    x = synth.recording(FS, 2.0, scene=scene, seed=3)
    band = MATERIALS[material].band_hz
    assert 10 * math.log10(synth.band_power(x, FS, band)) == pytest.approx(-7.0, abs=1e-9)
