"""dsp.tracker.LeakTracker: the documented state machine, night window, learned baseline and
persistence, driven by injected times and table-driven night sequences."""

import json

import pytest

from dsp.features import Features
from dsp.leak import DEFAULT_PROMINENCE_DB, DEFAULT_PROMINENCE_WIDTH_DB, LeakThresholds
from dsp.tracker import LeakState, LeakTracker, TrackerConfig

HOUR = 3600.0
DAY = 86400.0
# (quiet level dB, prominence dB) of a recording
P, W = DEFAULT_PROMINENCE_DB, DEFAULT_PROMINENCE_WIDTH_DB  # where the shape is neutral, its scale
HUMP = P + 3.0 * W  # a clear hump
LEAK = (10.0, P + 4.0 * W)  # a clear hump: score ~1 in any mode
QUIET = (0.0, 0.0)  # smooth spectrum: score ~0
GREY = (0.0, P - 0.8 * W)  # relative score ~0.38: between clear_score and threshold


def feat(
    quiet_db: float,
    prominence_db: float = 0.0,
    unsteadiness_db: float = 0.0,
    quiet_frames: int = 120,  # enough for all its evidence to count (dsp.leak.evidence_weight)
) -> Features:
    return Features(
        fs=4096.0,
        n_samples=65536,
        nperseg=1024,
        n_frames=127,
        band_hz=(200.0, 1500.0),
        level_db=quiet_db,
        l10_db=quiet_db + 0.3,
        l90_db=quiet_db - 0.3,
        spread_db=0.6,
        quiet_level_db=quiet_db,
        quiet_frames=quiet_frames,
        peak_hz=400.0,
        flatness=0.8,
        tonality_db=0.0,
        tone_hz=0.0,
        band_levels=(),
        prominence_db=prominence_db,
        unsteadiness_db=unsteadiness_db,
    )


def run_nights(tracker, nights, start_day=0, quiet_frames=120):
    """Each night is a list of (quiet level, prominence) recorded at 02:10, 02:40, ... UTC."""
    kinds = []
    for i, recordings in enumerate(nights):
        for j, (level, prominence) in enumerate(recordings):
            ts = (start_day + i) * DAY + 2 * HOUR + 600 + j * 1800
            update = tracker.observe(ts, feat(level, prominence, quiet_frames=quiet_frames))
            kinds.append([t.kind for t in update.transitions])
    return kinds


def flat(kinds):
    return [k for ks in kinds for k in ks]


# learn_nights is large here so the configured floor is what is judged against
CFG = TrackerConfig(learn_nights=30, baseline_nights=30)


@pytest.mark.parametrize(
    ("nights", "expected", "state"),
    [
        ([[QUIET, QUIET]] * 4, [], LeakState.NORMAL),
        ([[LEAK, QUIET]], ["leak.warning"], LeakState.WARNING),
        ([[LEAK, LEAK]], ["leak.warning", "leak.suspected"], LeakState.SUSPECTED),
        (
            [[LEAK], [LEAK]],
            ["leak.warning", "leak.suspected", "leak.confirmed"],
            LeakState.CONFIRMED,
        ),
        (
            [[LEAK, LEAK], [QUIET], [LEAK]],
            ["leak.warning", "leak.suspected", "leak.confirmed"],
            LeakState.CONFIRMED,
        ),
        # K=2 of M=3: positives on nights 0 and 3 are too far apart to confirm
        (
            [[LEAK, LEAK], [GREY], [GREY], [LEAK]],
            ["leak.warning", "leak.suspected"],
            LeakState.SUSPECTED,
        ),
        (
            [[LEAK, LEAK], [LEAK], [QUIET], [QUIET]],
            ["leak.warning", "leak.suspected", "leak.confirmed", "leak.cleared"],
            LeakState.NORMAL,
        ),
        # hysteresis: grey nights neither confirm nor clear
        (
            [[LEAK, LEAK], [LEAK], [GREY], [GREY], [QUIET]],
            ["leak.warning", "leak.suspected", "leak.confirmed"],
            LeakState.CONFIRMED,
        ),
        (
            [[LEAK], [QUIET], [QUIET], [LEAK]],
            ["leak.warning", "leak.cleared", "leak.warning"],
            LeakState.WARNING,
        ),
    ],
)
def test_state_machine(nights, expected, state):
    tracker = LeakTracker(CFG)
    kinds = flat(run_nights(tracker, nights))
    # the last night's window is over
    kinds += [t.kind for t in tracker.tick((len(nights) - 1) * DAY + 5 * HOUR)]
    assert kinds == expected
    assert tracker.state is state


def test_clear_is_reported_when_the_night_is_over():
    """tick() after the window finishes the night: clearing needs no further recording."""
    tracker = LeakTracker(CFG)
    run_nights(tracker, [[LEAK, LEAK], [LEAK], [QUIET], [QUIET]])
    assert tracker.state is LeakState.CONFIRMED
    assert [t.kind for t in tracker.tick(3 * DAY + 3.5 * HOUR)] == []  # still inside night 3
    cleared = tracker.tick(3 * DAY + 4 * HOUR)
    assert [t.kind for t in cleared] == ["leak.cleared"]
    assert tracker.state is LeakState.NORMAL


@pytest.mark.parametrize(
    ("window", "offset_h", "utc_hour", "counted"),
    [
        ((2.0, 4.0), 0, 3.0, True),
        ((2.0, 4.0), 0, 4.0, False),
        ((2.0, 4.0), 0, 1.99, False),
        ((2.0, 4.0), 8, 19.0, True),  # 03:00 at UTC+8
        ((2.0, 4.0), 8, 3.0, False),
        ((23.0, 3.0), 0, 23.5, True),  # a window across midnight
        ((23.0, 3.0), 0, 2.5, True),
        ((23.0, 3.0), 0, 12.0, False),
        ((0.0, 24.0), 0, 12.0, True),  # the whole day
        ((22.0, 24.0), 0, 23.9, True),
    ],
)
def test_only_the_night_window_counts(window, offset_h, utc_hour, counted):
    cfg = TrackerConfig(night_window=window, utc_offset_s=offset_h * HOUR)
    tracker = LeakTracker(cfg)
    update = tracker.observe(10 * DAY + utc_hour * HOUR, feat(*LEAK))
    assert update.counted is counted
    assert update.score.verdict == "leak"
    assert [t.kind for t in update.transitions] == (["leak.warning"] if counted else [])


def test_window_across_midnight_is_one_night():
    """23:30 and 02:30 the next day are the same night: two positives suspect, not confirm."""
    tracker = LeakTracker(TrackerConfig(night_window=(23.0, 3.0)))
    a = tracker.observe(10 * DAY + 23.5 * HOUR, feat(*LEAK))
    b = tracker.observe(11 * DAY + 2.5 * HOUR, feat(*LEAK))
    assert [t.kind for t in a.transitions + b.transitions] == ["leak.warning", "leak.suspected"]
    assert b.transitions[0].positive_nights == 1


SITE = LeakThresholds(floor_db=0.0)  # the site file's noise floor: units known


def test_loud_but_normal_site_does_not_alarm_and_is_learnt():
    """8 dB over the floor but a smooth spectrum: level alone (bounded) does not make a leak;
    the site's own level becomes its baseline."""
    tracker = LeakTracker(TrackerConfig(thresholds=SITE, learn_nights=5, baseline_nights=14))
    assert flat(run_nights(tracker, [[(8.0, 0.0), (8.2, 0.0)]] * 12)) == []
    assert tracker.baseline_db == pytest.approx(8.0)
    assert tracker.state is LeakState.NORMAL


def test_new_leak_on_a_quiet_site_stands_out():
    """A site 10 dB under the floor: a faint leak (a small hump, -4 dB) that neither its
    shape nor the configured floor would call is found against the learnt baseline."""
    tracker = LeakTracker(TrackerConfig(thresholds=SITE, learn_nights=5))
    assert flat(run_nights(tracker, [[(-10.0, 0.0), (-10.2, 0.0)]] * 6)) == []
    assert tracker.baseline_db == pytest.approx(-10.2)  # each night's quietest recording
    kinds = flat(run_nights(tracker, [[(-4.0, P - W), (-4.0, P - W)]] * 2, start_day=6))
    assert kinds == ["leak.warning", "leak.suspected", "leak.confirmed"]


def test_a_leak_is_not_learnt_into_the_baseline():
    tracker = LeakTracker(TrackerConfig(thresholds=SITE, learn_nights=3))
    run_nights(tracker, [[QUIET]] * 3)
    run_nights(tracker, [[LEAK, LEAK]] * 10, start_day=3)
    assert tracker.baseline_db == pytest.approx(0.0)
    assert tracker.state is LeakState.CONFIRMED


def test_a_leak_running_since_installation_is_never_learnt_nor_cleared():
    """The demo's case (issue 10): the leak runs from the first night. Learning nights do not
    learn it, so the floor never climbs to it and it never clears while it runs; it clears
    two nights after the repair, and learning goes on from there."""
    tracker = LeakTracker(TrackerConfig(thresholds=SITE, learn_nights=5))
    kinds = flat(run_nights(tracker, [[(9.0, HUMP), (8.9, HUMP)]] * 12))
    assert kinds == ["leak.warning", "leak.suspected", "leak.confirmed"]
    assert tracker.baseline_db is None and tracker.state is LeakState.CONFIRMED
    repaired = flat(run_nights(tracker, [[QUIET, QUIET]] * 3, start_day=12))
    assert repaired == ["leak.cleared"]
    run_nights(tracker, [[QUIET]] * 3, start_day=15)
    assert tracker.baseline_db == pytest.approx(0.0)


@pytest.mark.parametrize("quiet_frames", [8, 16, 40])
def test_short_recordings_alarm_and_clear_like_long_ones(quiet_frames):
    """Recordings with few quiet frames count less of their evidence (dsp.leak.evidence_weight):
    their scores move towards 0.5, never across, so a running leak still warns, is suspected
    and confirmed, and its repair still clears it."""
    tracker = LeakTracker(TrackerConfig(thresholds=SITE, learn_nights=5))
    nights = [[(9.0, HUMP), (8.9, HUMP)]] * 4 + [[QUIET, QUIET]] * 3
    kinds = flat(run_nights(tracker, nights, quiet_frames=quiet_frames))
    assert kinds == ["leak.warning", "leak.suspected", "leak.confirmed", "leak.cleared"]


def test_a_calibration_error_does_not_silence_the_tracker():
    """A logger reading 30 dB low against the site floor still alarms on a leak's hump."""
    tracker = LeakTracker(TrackerConfig(thresholds=SITE, learn_nights=30, baseline_nights=30))
    kinds = flat(run_nights(tracker, [[(-30.0, HUMP), (-30.0, HUMP)]]))
    assert kinds == ["leak.warning", "leak.suspected"]


def test_state_survives_a_restart_through_json():
    tracker = LeakTracker(CFG)
    run_nights(tracker, [[LEAK, LEAK]])
    restored = LeakTracker.from_dict(json.loads(json.dumps(tracker.to_dict())), CFG)
    assert restored.state is LeakState.SUSPECTED
    kinds = flat(run_nights(restored, [[LEAK]], start_day=1))
    assert kinds == ["leak.confirmed"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"version": 9}, "version"),
        ({"version": 2}, "bad leak tracker state"),
        ({**LeakTracker().to_dict(), "state": "panic"}, "bad leak tracker state"),
    ],
)
def test_bad_state_raises(data, message):
    with pytest.raises(ValueError, match=message):
        LeakTracker.from_dict(data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confirm_k": 4, "confirm_m": 3}, "confirm_k"),
        ({"clear_score": 0.9}, "clear_score"),
        ({"night_window": (2.0, 2.0)}, "night_window"),
        ({"night_window": (25.0, 2.0)}, "night_window"),
        ({"learn_nights": 20, "baseline_nights": 10}, "baseline_nights"),
    ],
)
def test_bad_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrackerConfig(**kwargs)


def test_version_1_state_is_read_and_its_positive_nights_stay_unlearnt():
    old = {
        "version": 1,
        "state": "warning",
        "current": 3,
        "finished": 3,
        "clear_streak": 0,
        "baseline": [0.0, 0.1, 0.2],
        "nights": {"3": [True, 0.9, 9.0, 0.9, 9.0]},
    }
    tracker = LeakTracker.from_dict(old, TrackerConfig(thresholds=SITE, learn_nights=5))
    assert tracker.state is LeakState.WARNING
    tracker.tick(3 * DAY + 5 * HOUR)
    assert tracker.to_dict()["baseline"] == [0.0, 0.1, 0.2]
