"""dsp.leak with the pipe's material unknown: every family's band is read, the most leak-like
is reported, less the cost of the looks (issue 10: a user who runs ``analyze`` with no
``--material`` on metal and plastic pipes alike)."""

import math
from dataclasses import replace

import pytest

from dsp import synth
from dsp.features import compute_features
from dsp.leak import (
    DEFAULT_PROMINENCE_DB,
    FAMILY_THRESHOLDS,
    analyze_samples,
    family_bands,
    features_by_family,
    judge_unknown_material,
    looks_cost,
    model_for,
    score_recording,
)
from dsp.pipes import MATERIALS
from tests.dsp.test_tracker import feat


def logit(p):
    return math.log(p / (1 - p))


def test_every_family_has_one_band_and_every_material_its_familys():
    bands = family_bands()
    assert set(bands) == {m.family for m in MATERIALS.values()}
    for m in MATERIALS.values():
        assert bands[m.family] == m.band_hz


def test_the_looks_cost_nothing_for_one_band_and_more_for_more():
    assert looks_cost(1) == 0.0
    assert 0.0 < looks_cost(2) < looks_cost(3)


# (prominence in dB over the neutral point, per family) -> the family judged
@pytest.mark.parametrize(
    ("prominence", "judged"),
    [
        ({"metal": 6.0, "cement": 2.0, "plastic": -1.0}, "metal"),
        ({"metal": -1.0, "cement": 2.0, "plastic": 6.0}, "plastic"),
        ({"metal": 0.5, "cement": 4.0, "plastic": 1.0}, "cement"),
        ({"metal": -3.0, "cement": -3.0, "plastic": -3.0}, "metal"),  # a tie: the first named
        ({"plastic": 3.0}, "plastic"),  # a rate that holds one band: no looks to pay for
    ],
)
def test_the_most_leak_like_band_is_reported_less_the_cost_of_the_looks(prominence, judged):
    by_family = {
        f: replace(feat(-10.0, prominence_db=DEFAULT_PROMINENCE_DB + p), band_hz=family_bands()[f])
        for f, p in prominence.items()
    }
    result = judge_unknown_material(by_family)
    each = {f: score_recording(x, FAMILY_THRESHOLDS[f]).score for f, x in by_family.items()}
    assert result.family == judged and result.features is by_family[judged]
    assert result.family_scores == pytest.approx(each)
    expected = logit(each[judged]) - looks_cost(len(by_family))
    assert logit(result.score.score) == pytest.approx(expected, abs=1e-9)
    assert result.score.verdict == ("leak" if result.score.score >= 0.5 else "no_leak")
    assert result.score.reasons[0].startswith(f"material unknown: judged in the {judged} band")


def test_no_band_to_judge_is_an_error():
    with pytest.raises(ValueError, match="no band"):
        judge_unknown_material({})


def _recording(material, leak, seed, traffic_db=None, fs=8000.0):
    scene = synth.Scene(
        material=material,
        leak_distance_m=10.0 if leak else None,
        leak_snr_db=12.0,
        traffic_db=traffic_db,
    )
    return synth.recording(fs, 10.0, scene=scene, seed=seed)


# A recording made on a pipe of this material, analysed with the material unknown: the family
# its leak is judged in and the verdict.
@pytest.mark.parametrize(
    ("material", "leak", "traffic_db", "judged", "verdict"),
    [
        ("pvc", True, None, "plastic", "leak"),
        ("pe", True, None, "plastic", "leak"),
        ("ductile_iron", True, None, "metal", "leak"),
        ("cast_iron", True, 10.0, "metal", "leak"),
        ("asbestos_cement", True, None, "cement", "leak"),
        ("pvc", False, None, None, "no_leak"),
        ("ductile_iron", False, 10.0, None, "no_leak"),
    ],
)
@pytest.mark.parametrize("seed", [1, 2])
def test_a_recording_of_unknown_material_is_judged_in_its_familys_band(
    material, leak, traffic_db, judged, verdict, seed
):
    x = _recording(material, leak, seed, traffic_db)
    result = judge_unknown_material(features_by_family(x, 8000.0))
    assert result.score.verdict == verdict, result.family_scores
    if judged is not None:
        assert result.family == judged, result.family_scores
    feats, score = analyze_samples(x, 8000.0, material=None)
    assert score.score == result.score.score and feats.band_hz == family_bands()[result.family]


@pytest.mark.parametrize("material", ["ductile_iron", "pvc", "asbestos_cement"])
def test_a_given_material_is_judged_in_its_band_alone_as_before(material):
    x = _recording(material, True, 3)
    model = model_for(material)
    expected = score_recording(compute_features(x, 8000.0, band_hz=model.band_hz))
    feats, score = analyze_samples(x, 8000.0, material=material)
    assert feats.band_hz == model.band_hz and score == expected


def test_a_rate_too_low_for_a_band_judges_the_others():
    x = _recording("pvc", True, 4, fs=500.0)
    by_family = features_by_family(x, 500.0)
    assert "metal" not in by_family and "plastic" in by_family
    with pytest.raises(ValueError, match="above Nyquist"):  # no band fits: the last says so
        features_by_family(x[:2000], 40.0)
