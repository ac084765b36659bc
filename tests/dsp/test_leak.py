"""dsp.leak: the per-recording score, verdict, reasons and material presets."""

import pytest

from dsp.leak import LeakThresholds, model_for, score_recording
from tests.dsp.test_tracker import feat


def test_thresholds_validate():
    with pytest.raises(ValueError, match="threshold"):
        LeakThresholds(threshold=1.5)
    with pytest.raises(ValueError, match="width_db"):
        LeakThresholds(width_db=0.0)


@pytest.mark.parametrize(
    ("quiet_db", "floor_db", "verdict", "needle"),
    [
        (10.0, 0.0, "leak", "+10.0 dB over the floor"),
        (1.0, 0.0, "no_leak", "+1.0 dB over the floor"),
        (-30.0, -40.0, "leak", "+10.0 dB over the floor -40.0"),
        (-3000.0, 0.0, "no_leak", "digital silence"),
    ],
)
def test_score_recording_table(quiet_db, floor_db, verdict, needle):
    """score = 0.5 exactly excess_db over the floor; reasons say why."""
    f = feat(quiet_db)
    score = score_recording(f, LeakThresholds(floor_db=floor_db))
    assert score.verdict == verdict
    assert any(needle in r for r in score.reasons), score.reasons
    at_half = score_recording(feat(floor_db + 3.0), LeakThresholds(floor_db=floor_db))
    assert at_half.score == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("material", "band", "family"),
    [
        ("cast_iron", (200.0, 1500.0), "metal"),
        ("pe", (20.0, 300.0), "plastic"),
        ("asbestos_cement", (100.0, 800.0), "cement"),
    ],
)
def test_presets_follow_the_material(material, band, family):
    from dsp.pipes import get_material

    model = model_for(material)
    assert model.band_hz == band and get_material(material).family == family
    assert model_for(material, LeakThresholds(threshold=0.7)).thresholds.threshold == 0.7


def test_unknown_material_names_the_known_ones():
    with pytest.raises(ValueError, match="known: asbestos_cement"):
        model_for("wood")
