"""The relative (gain-free) score does not move with the recording's gain (issue 10, item 1).

For any recording, any gain from -40 to +40 dB (short of clipping or quantisation: float
samples), the score and the verdict of ``analyze_samples`` with no floor are the same; with a
floor (units known) only the level evidence moves, and never past its bounds.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp import synth
from dsp.leak import LEVEL_MAX_AGAINST, LEVEL_MAX_FOR, LeakThresholds, analyze_samples

MATERIALS = ["ductile_iron", "pvc", "pe", "asbestos_cement"]


def scene_samples(seed: int, material: str, leak: bool, fs: float, seconds: float):
    rng = np.random.default_rng(seed)
    scene = synth.Scene(
        material=material,
        leak_distance_m=float(rng.uniform(2, 40)) if leak else None,
        leak_snr_db=float(rng.uniform(-3, 15)),
        ambient_slope=float(rng.uniform(0.0, 2.5)),
        traffic_db=float(rng.uniform(5, 20)) if rng.random() < 0.4 else None,
        pump_db=float(rng.uniform(0, 15)) if rng.random() < 0.3 else None,
        pump_hz=float(rng.uniform(20, 60)),
    )
    return synth.recording(fs, seconds, scene=scene, seed=seed)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    material=st.sampled_from(MATERIALS),
    leak=st.booleans(),
    fs=st.sampled_from([2000.0, 4096.0, 8000.0, 22050.0]),
    seconds=st.floats(2.0, 8.0),
    gain_db=st.floats(-40.0, 40.0),
)
def test_relative_score_and_verdict_ignore_gain(seed, material, leak, fs, seconds, gain_db):
    x = scene_samples(seed, material, leak, fs, seconds)
    _, base = analyze_samples(x, fs, material=material)
    _, scaled = analyze_samples(x * 10 ** (gain_db / 20), fs, material=material)
    assert base.mode == scaled.mode == "relative"
    assert scaled.score == pytest.approx(base.score, abs=1e-6)
    assert scaled.verdict == base.verdict


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), gain_db=st.floats(-40.0, 40.0))
def test_absolute_mode_moves_only_by_the_bounded_level_evidence(seed, gain_db):
    fs = 4096.0
    x = scene_samples(seed, "ductile_iron", True, fs, 4.0)
    floor = LeakThresholds(floor_db=0.0)
    _, base = analyze_samples(x, fs, thresholds=floor)
    _, scaled = analyze_samples(x * 10 ** (gain_db / 20), fs, thresholds=floor)
    assert scaled.mode == "absolute"
    assert scaled.shape_logit == pytest.approx(base.shape_logit, abs=1e-6)
    assert scaled.steadiness_logit == pytest.approx(base.steadiness_logit, abs=1e-6)
    assert -LEVEL_MAX_AGAINST <= scaled.level_logit <= LEVEL_MAX_FOR
