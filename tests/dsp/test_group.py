"""dsp.group: each logger against the median of its peers, flagged only when it stands out."""

import math

import pytest

from dsp.group import MIN_MEMBERS, compare_group


def test_a_logger_well_over_its_peers_is_flagged():
    levels = {"nl-01": 2.0, "nl-02": 12.5, "nl-03": 1.0, "nl-04": 2.4, "nl-05": 1.6}
    out = compare_group(levels)
    assert set(out) == set(levels)
    assert out["nl-02"].flagged and out["nl-02"].excess_db == pytest.approx(12.5 - 1.8)
    assert out["nl-02"].peers == 4
    assert not any(g.flagged for name, g in out.items() if name != "nl-02")
    assert out["nl-02"].to_dict() == {
        "excess_db": 10.7,
        "peer_median_db": 1.8,
        "peers": 4,
        "flagged": True,
    }


def test_scattered_peers_need_a_larger_excess():
    """6.5 dB over peers that scatter by +-5 dB is no news."""
    out = compare_group({"a": 6.5, "b": -5.0, "c": 5.0, "d": 0.0, "e": -4.0})
    assert out["a"].excess_db >= 6.0 and not out["a"].flagged


def test_too_few_or_unusable_members_compare_nothing():
    assert compare_group({"a": 1.0, "b": 20.0}) == {}
    assert compare_group({"a": 1.0, "b": 20.0, "c": -math.inf}) == {}
    assert MIN_MEMBERS == 3


def test_bad_threshold_raises():
    with pytest.raises(ValueError, match="min_excess_db"):
        compare_group({"a": 1.0}, min_excess_db=-1.0)
