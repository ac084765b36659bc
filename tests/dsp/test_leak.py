"""dsp.leak: the per-recording score as a sum of evidence, its modes, verdict, reasons and the
material presets."""

import math

import pytest

from dsp.leak import (
    DEFAULT_PROMINENCE_DB,
    DEFAULT_PROMINENCE_WIDTH_DB,
    FULL_EVIDENCE_QUIET_FRAMES,
    GROUP_MAX_FOR,
    LEVEL_MAX_AGAINST,
    LEVEL_MAX_FOR,
    LeakThresholds,
    model_for,
    score_recording,
)
from tests.dsp.test_tracker import feat


def logistic(z):
    return 1 / (1 + math.exp(-z))


def test_thresholds_validate():
    with pytest.raises(ValueError, match="threshold"):
        LeakThresholds(threshold=1.5)
    with pytest.raises(ValueError, match="width_db"):
        LeakThresholds(width_db=0.0)
    with pytest.raises(ValueError, match="prominence_width_db"):
        LeakThresholds(prominence_width_db=-1.0)
    with pytest.raises(ValueError, match="floor_db"):
        LeakThresholds(floor_db=math.inf)
    assert LeakThresholds().floor_db is None  # units unknown unless told


def test_without_a_floor_the_score_is_relative_and_the_sum_of_its_evidence():
    prominence = DEFAULT_PROMINENCE_DB + 1.0
    s = score_recording(feat(5.0, prominence_db=prominence, unsteadiness_db=2.5))
    assert s.mode == "relative" and s.floor_db is None and s.level_logit is None
    assert s.shape_logit == pytest.approx(
        (prominence - DEFAULT_PROMINENCE_DB) / DEFAULT_PROMINENCE_WIDTH_DB
    )
    assert s.steadiness_logit == pytest.approx(-(2.5 - 1.0) / 3.0)
    assert s.score == pytest.approx(logistic(s.shape_logit + s.steadiness_logit))
    assert s.relative_score == s.score
    assert s.evidence_weight == 1.0


@pytest.mark.parametrize("quiet_frames", [1, 4, 16, 40, 63])
@pytest.mark.parametrize(
    ("prominence", "quiet_db", "floor"),
    [(8.0, 0.0, None), (2.0, 0.0, None), (5.2, 0.0, None), (0.0, 20.0, 0.0), (7.0, -9.0, 0.0)],
)
def test_few_quiet_frames_weigh_the_evidence_not_the_verdict(
    quiet_frames, prominence, quiet_db, floor
):
    """A recording with few quiet frames counts (frames / 64) ** 0.25 of its evidence: its
    score moves towards 0.5 and never crosses it, so the verdict stays; the logits stay as
    measured and a reason says so."""
    from dataclasses import replace

    thresholds = LeakThresholds(floor_db=floor)
    full = score_recording(feat(quiet_db, prominence_db=prominence), thresholds)
    short = score_recording(
        replace(feat(quiet_db, prominence_db=prominence), quiet_frames=quiet_frames), thresholds
    )
    weight = (quiet_frames / FULL_EVIDENCE_QUIET_FRAMES) ** 0.25
    assert short.evidence_weight == pytest.approx(weight)
    total = full.shape_logit + full.steadiness_logit + (full.level_logit or 0.0)
    assert short.score == pytest.approx(logistic(weight * total))
    assert short.relative_score == pytest.approx(
        logistic(weight * (full.shape_logit + full.steadiness_logit))
    )
    assert (short.shape_logit, short.steadiness_logit) == (full.shape_logit, full.steadiness_logit)
    assert short.verdict == full.verdict
    assert abs(short.score - 0.5) <= abs(full.score - 0.5)
    assert any("weighted x" in r for r in short.reasons)
    assert not any("weighted x" in r for r in full.reasons)


@pytest.mark.parametrize(
    ("prominence", "quiet", "floor", "verdict", "mode", "needle"),
    [
        (6.0, 0.0, None, "leak", "relative", "+6.0 dB over its own background"),
        (0.0, 0.0, None, "no_leak", "relative", "+0.0 dB over its own background"),
        (6.0, 10.0, 0.0, "leak", "absolute", "+10.0 dB over the floor 0.0"),
        (0.3, 1.0, 0.0, "no_leak", "absolute", "+1.0 dB over the floor"),
        (0.0, -3000.0, 0.0, "no_leak", "absolute", "digital silence"),
    ],
)
def test_score_table(prominence, quiet, floor, verdict, mode, needle):
    s = score_recording(feat(quiet, prominence_db=prominence), LeakThresholds(floor_db=floor))
    assert (s.verdict, s.mode) == (verdict, mode)
    assert any(needle in r for r in s.reasons), s.reasons


def test_level_evidence_is_bounded_both_ways():
    """A loud-but-normal site (no hump) does not alarm on level alone; a logger whose
    calibration is 30 dB off (floor far above its readings) still alarms on a clear hump."""
    loud = score_recording(feat(40.0, prominence_db=0.0), LeakThresholds(floor_db=0.0))
    assert loud.level_logit == LEVEL_MAX_FOR and loud.verdict == "no_leak"
    clear_hump = DEFAULT_PROMINENCE_DB + 3.0 * DEFAULT_PROMINENCE_WIDTH_DB
    miscalibrated = score_recording(
        feat(-30.0, prominence_db=clear_hump), LeakThresholds(floor_db=0.0)
    )
    assert miscalibrated.level_logit == -LEVEL_MAX_AGAINST and miscalibrated.verdict == "leak"
    # in between the level tips a borderline shape
    borderline = feat(8.0, prominence_db=DEFAULT_PROMINENCE_DB - 0.5 * DEFAULT_PROMINENCE_WIDTH_DB)
    assert score_recording(borderline).verdict == "no_leak"
    assert score_recording(borderline, LeakThresholds(floor_db=0.0)).verdict == "leak"


def test_group_evidence_only_counts_for_a_leak():
    f = feat(5.0, prominence_db=DEFAULT_PROMINENCE_DB - 2.5 * DEFAULT_PROMINENCE_WIDTH_DB)
    alone = score_recording(f)
    like_peers = score_recording(f, group_excess_db=-4.0)
    standing_out = score_recording(f, group_excess_db=20.0)
    assert like_peers.group_logit == 0.0 and like_peers.score == pytest.approx(alone.score)
    assert standing_out.group_logit == GROUP_MAX_FOR and standing_out.verdict == "leak"
    assert alone.verdict == "no_leak" and alone.group_logit is None


def test_floor_argument_overrides_thresholds():
    s = score_recording(feat(10.0), LeakThresholds(floor_db=0.0), floor_db=9.0)
    assert s.floor_db == 9.0 and s.excess_db == pytest.approx(1.0)


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


def test_levels_that_are_not_finite_score_zero_with_a_reason():
    """Overflowing samples make NaN levels: no evidence, a finite score (was NaN in JSON)."""
    s = score_recording(feat(math.nan, prominence_db=math.nan, unsteadiness_db=math.nan))
    assert s.score == 0.0 and s.relative_score == 0.0 and s.verdict == "no_leak"
    assert any("not finite" in r for r in s.reasons)


def test_hump_fit_evidence_is_bounded_and_absent_without_a_fit():
    """ln(1 + hump_fit) at HUMP_FIT_NEUTRAL is neutral, each HUMP_FIT_WIDTH more one logit,
    bounded at HUMP_FIT_MAX either way; NaN (no context to fit) is no evidence either way."""
    from dataclasses import replace

    from dsp.leak import HUMP_FIT_MAX, HUMP_FIT_NEUTRAL, HUMP_FIT_WIDTH

    base = feat(5.0, prominence_db=DEFAULT_PROMINENCE_DB)
    at = lambda x: score_recording(replace(base, hump_fit=math.expm1(x)))  # noqa: E731
    assert at(HUMP_FIT_NEUTRAL).hump_logit == pytest.approx(0.0, abs=1e-12)
    assert at(HUMP_FIT_NEUTRAL + HUMP_FIT_WIDTH).hump_logit == pytest.approx(1.0)
    assert at(HUMP_FIT_NEUTRAL + 100.0).hump_logit == HUMP_FIT_MAX
    assert score_recording(replace(base, hump_fit=0.0)).hump_logit == -HUMP_FIT_MAX
    none = score_recording(replace(base, hump_fit=math.nan))
    assert none.hump_logit == 0.0 and not any("hump fits" in r for r in none.reasons)
    strong = at(HUMP_FIT_NEUTRAL + 2.0)
    assert strong.score == pytest.approx(
        logistic(strong.shape_logit + strong.steadiness_logit + strong.hump_logit)
    )
    assert any("a background plus a hump fits it" in r for r in strong.reasons)


@pytest.mark.parametrize("prominence", [-2.0, 0.0, 3.0, DEFAULT_PROMINENCE_DB, 12.0])
def test_the_hull_counts_a_third_where_the_hump_fit_reads_the_spectrum_too(prominence):
    """The hull and the hump's fit read one hump: with a fit the hull's prominence counts
    HULL_SHARE_WITH_FIT of its logit, both ways; without one (too little context) it is the
    only reading of the shape and counts fully."""
    from dataclasses import replace

    from dsp.leak import HULL_SHARE_WITH_FIT

    alone = score_recording(feat(5.0, prominence_db=prominence))
    with_fit = score_recording(replace(feat(5.0, prominence_db=prominence), hump_fit=50.0))
    full = (prominence - DEFAULT_PROMINENCE_DB) / DEFAULT_PROMINENCE_WIDTH_DB
    assert alone.shape_logit == pytest.approx(full)
    assert with_fit.shape_logit == pytest.approx(HULL_SHARE_WITH_FIT * full)


@pytest.mark.parametrize("hump_fit", [0.0, 5.0, math.nan])
def test_a_loud_smooth_site_does_not_alarm_on_level_alone_with_or_without_a_fit(hump_fit):
    """A smooth spectrum (no hull prominence; a fit that finds no hump, or no fit at all) at the
    level cap over its floor stays "no leak": with a fit, the fit speaks against the hump; without
    one, the hull at full weight does."""
    from dataclasses import replace

    f = replace(feat(40.0, prominence_db=0.0), hump_fit=hump_fit)
    loud = score_recording(f, LeakThresholds(floor_db=0.0))
    assert loud.level_logit == LEVEL_MAX_FOR and loud.verdict == "no_leak"
