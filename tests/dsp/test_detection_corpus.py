"""The leak detector on seeded corpora: ROC AUC >= 0.97 on audible leaks (in-band SNR >= 0 dB)
vs no-leak recordings, and <= 2 % false alarms at the default threshold.

Two corpora: one from ``dsp.synth`` (all materials, 4096 Hz and 8 kHz, traffic, draw-off and
pumps, pump-only and draw-off-only recordings), and a smaller one built here from scipy filters
and plain numpy (Butterworth-band leaks, gated noise, sine hums), so the detector is shown not
to depend on how ``dsp.synth`` happens to make its signals.

Each site's ambient in-band level sits within +-2 dB of a 0 dB floor (the site file's
``noise_floor_db``). Both modes are checked: *absolute* (the floor given: level evidence added
to the gain-free evidence, as the daemon scores) and *relative* (no floor: the gain-free score
alone, as ``edge-agent analyze`` scores a WAV of unknown gain). The detector is never told
which recording is which or what is in it. The benchmark on a corpus built apart from all this
is ``benchmarks/detection.py`` (docs/leak-detection.md).
"""

import math

import numpy as np
import pytest
import scipy.signal

from dsp import synth
from dsp.leak import DEFAULT_THRESHOLD, LeakThresholds, analyze_samples
from dsp.pipes import MATERIALS

DURATION_S = 4.0
AMBIENT_SPREAD_DB = 2.0


def roc_auc(pos, neg):
    """Mann-Whitney AUC: probability a leak outscores a no-leak recording (ties count half)."""
    pos = np.asarray(pos)[:, None]
    neg = np.asarray(neg)[None, :]
    return float(np.mean(pos > neg) + 0.5 * np.mean(pos == neg))


def _in_band_db(x, fs, band):
    return 10 * math.log10(synth.band_power(x, fs, band))


def synth_case(i):
    """Recording i of the synth corpus: (samples, fs, material, is_leak, kind)."""
    rng = np.random.default_rng([2026, i])
    materials = sorted(MATERIALS)
    material = materials[i % len(materials)]
    m = MATERIALS[material]
    fs = 4096.0 if (i // len(materials)) % 3 else 8000.0
    seeds = np.random.SeedSequence([2026, i]).spawn(5)
    amb = synth.ambient(fs, DURATION_S, seed=seeds[0], slope=float(rng.uniform(0.5, 2.0)))
    target = float(rng.uniform(-AMBIENT_SPREAD_DB, AMBIENT_SPREAD_DB))
    amb *= 10 ** ((target - _in_band_db(amb, fs, m.band_hz)) / 20)
    inband = _in_band_db(amb, fs, m.band_hz)
    is_leak = i % 2 == 0
    kind = ["quiet", "traffic", "draw_off", "pump", "pump+traffic"][(i // 2) % 5]
    parts = [amb]
    if is_leak:
        reach = 150.0 if m.family == "metal" else (60.0 if m.family == "cement" else 30.0)
        (leak,) = synth.leak_at_loggers(
            fs,
            DURATION_S,
            material=material,
            distances_m=[float(rng.uniform(2.0, reach))],
            seed=seeds[1],
        )
        parts.append(synth.scale_to_snr(leak, amb, fs, m.band_hz, float(rng.uniform(0, 20))))
    if "traffic" in kind:
        level = inband + float(rng.uniform(6, 25))
        parts.append(synth.traffic_bursts(fs, DURATION_S, seed=seeds[2], level_db=level))
    if kind == "draw_off":
        level = inband + float(rng.uniform(3, 20))
        parts.append(synth.draw_off(fs, DURATION_S, seed=seeds[3], level_db=level))
    if "pump" in kind:
        parts.append(
            synth.pump_tone(
                fs,
                DURATION_S,
                seed=seeds[4],
                f0_hz=float(rng.uniform(24, 60)),
                level_db=inband + float(rng.uniform(0, 20)),
            )
        )
    return synth.mix(*parts), fs, material, is_leak, kind


MODES = {"absolute": LeakThresholds(floor_db=0.0), "relative": LeakThresholds()}


def _score_corpus(cases, mode="absolute"):
    rows = []
    for x, fs, material, is_leak, kind in cases:
        _, score = analyze_samples(x, fs, material=material, thresholds=MODES[mode])
        assert score.mode == mode
        rows.append((is_leak, kind, material, score.score))
    return rows


def _check(rows, min_auc=0.97, max_false_alarms=0.02):
    pos = [r[3] for r in rows if r[0]]
    neg = [r[3] for r in rows if not r[0]]
    auc = roc_auc(pos, neg)
    false_alarms = float(np.mean(np.asarray(neg) >= DEFAULT_THRESHOLD))
    detected = float(np.mean(np.asarray(pos) >= DEFAULT_THRESHOLD))
    worst = sorted((r for r in rows if not r[0]), key=lambda r: -r[3])[:3]
    summary = (
        f"AUC {auc:.4f}, false alarms {false_alarms:.3f}, detected {detected:.3f}, "
        f"worst no-leak {worst}"
    )
    assert auc >= min_auc, summary
    assert false_alarms <= max_false_alarms, summary
    return auc, false_alarms, detected


@pytest.mark.parametrize(("mode", "min_detected"), [("absolute", 0.85), ("relative", 0.6)])
def test_synth_corpus_auc_and_false_alarms(mode, min_detected):
    """240 recordings, 6 materials, 2 rates; every interferer alone and with leaks. Without
    the floor fewer of the faint leaks are called (4 s recordings: few frames; the shape
    evidence asks for a hump clear of what recording chains make, to keep false alarms at
    2 % on recordings the detector was not built from)."""
    rows = _score_corpus((synth_case(i) for i in range(240)), mode)
    assert {r[2] for r in rows} == set(MATERIALS)
    kinds = {(r[0], r[1]) for r in rows}
    assert (False, "pump") in kinds and (False, "draw_off") in kinds
    assert (False, "traffic") in kinds and (True, "pump+traffic") in kinds
    _, _, detected = _check(rows)
    assert detected >= min_detected  # most audible leaks are called at the default threshold


def _butter_noise(rng, n, fs, band, order=2):
    sos = scipy.signal.butter(order, band, btype="bandpass", fs=fs, output="sos")
    return scipy.signal.sosfilt(sos, rng.standard_normal(n))


def independent_case(i):
    """Signals made without dsp.synth: scipy Butterworth leaks, 1/f via cumulative sums,
    gated bursts, pure-sine hums."""
    rng = np.random.default_rng([77, i])
    material = ["cast_iron", "pvc", "asbestos_cement", "pe", "steel", "ductile_iron"][i % 6]
    band = MATERIALS[material].band_hz
    fs = 4096.0
    n = int(fs * DURATION_S)
    # background: white noise integrated with a leak (brownish) plus white: a smooth spectrum
    white = rng.standard_normal(n)
    brown = scipy.signal.lfilter([1.0], [1.0, -0.98], rng.standard_normal(n))
    amb = brown + white * float(rng.uniform(0.05, 0.5))
    amb *= 10 ** ((float(rng.uniform(-2, 2)) - _in_band_db(amb, fs, band)) / 20)
    parts = [amb]
    is_leak = i % 2 == 0
    if is_leak:
        lo, hi = band
        leak = _butter_noise(rng, n, fs, (lo * rng.uniform(0.8, 1.5), hi * rng.uniform(0.5, 1.0)))
        snr = float(rng.uniform(0, 20))
        leak *= 10 ** ((snr + _in_band_db(amb, fs, band) - _in_band_db(leak, fs, band)) / 20)
        parts.append(leak)
    kind = i // 2 % 3
    t = np.arange(n) / fs
    if kind == 1:  # a passing lorry: gated low-passed noise for 0.5-1.5 s
        gate = (t > rng.uniform(0, 2)) & (t < rng.uniform(2.5, 3.5))
        lorry = scipy.signal.sosfilt(
            scipy.signal.butter(2, 150, fs=fs, output="sos"), rng.standard_normal(n)
        )
        parts.append(lorry * gate * 10 ** (rng.uniform(10, 25) / 20) * np.std(amb) / np.std(lorry))
    if kind == 2:  # mains hum and its second harmonic
        f0 = float(rng.choice([50.0, 60.0, 100.0]))
        hum = np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(2 * np.pi * 2 * f0 * t + 1.0)
        parts.append(hum * np.std(amb) * 10 ** (rng.uniform(0, 20) / 20))
    return sum(parts), fs, material, is_leak, str(kind)


@pytest.mark.parametrize(("mode", "max_false_alarms"), [("absolute", 0.02), ("relative", 0.05)])
def test_independent_corpus_auc_and_false_alarms(mode, max_false_alarms):
    """The same bar on 72 recordings that dsp.synth did not make. Relative: one of the 36
    no-leak recordings (brown noise whose AR pole makes a knee at 13 Hz, under a PVC band)
    is called a leak by its shape alone, hence 5 %."""
    rows = _score_corpus((independent_case(i) for i in range(72)), mode)
    _check(rows, max_false_alarms=max_false_alarms)


@pytest.mark.parametrize(
    ("pos", "neg", "auc"),
    [([1, 2, 3], [0, 0], 1.0), ([0], [1], 0.0), ([1, 1], [1, 1], 0.5), ([2, 0], [1], 0.5)],
)
def test_roc_auc_helper(pos, neg, auc):
    assert roc_auc(pos, neg) == auc
