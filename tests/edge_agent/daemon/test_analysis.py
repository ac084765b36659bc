"""The daemon's leak analysis: material presets per logger, tracker transitions as events,
and tracker state surviving a restart (to_json / restore)."""

from __future__ import annotations

import calendar
import json
import pickle
import time

import pytest

from drivers.model import Recording
from dsp.synth import ambient, leak_at_loggers
from edge_agent.config.model import LeakDetectionConfig
from edge_agent.daemon.analysis import TrackerAnalysis
from edge_agent.daemon.schedule import RecordingJob

FS = 4096.0
NIGHT1 = float(calendar.timegm(time.strptime("2026-01-05 02:30", "%Y-%m-%d %H:%M")))


def _analysis() -> TrackerAnalysis:
    return TrackerAnalysis(
        LeakDetectionConfig(),
        {"nl-02": ("ductile_iron", "P-02"), "nl-07": ("pe", "P-07")},
        noise_floor_db=0.0,
        now=NIGHT1,
    )


def _leaky(device: str, seed: int) -> Recording:
    (leak,) = leak_at_loggers(
        FS,
        4.0,
        material="ductile_iron",
        distances_m=(20.0,),
        seed=seed,
        diameter_mm=300,
        wall_mm=7.2,
        level_db=15.0,
    )
    return Recording.from_samples(
        device, FS, leak + ambient(FS, 4.0, seed=seed + 1, level_db=0.0), NIGHT1
    )


def _job(ts: float) -> RecordingJob:
    return RecordingJob(("nl-02",), "night", ts, night="x", synchronised=True)


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    monkeypatch.setattr("edge_agent.daemon.analysis.local_utc_offset_s", lambda ts: 0.0)


def test_material_presets_per_logger():
    """Each logger is analysed in its pipe material's band: plastic lower than iron."""
    a = _analysis()
    assert a.models["nl-07"].band_hz[1] < a.models["nl-02"].band_hz[1]


def test_two_positive_recordings_give_warning_then_suspected_events():
    a = _analysis()
    score1, first = a.track("nl-02", a.features(_leaky("nl-02", 1)), _job(NIGHT1))
    score2, second = a.track("nl-02", a.features(_leaky("nl-02", 5)), _job(NIGHT1 + 1800))
    assert score1 > 0.5 and score2 > 0.5
    assert [d.kind for d in first + second] == ["leak.warning", "leak.suspected"]
    event = second[0]
    assert event.dev == "nl-02" and event.data["pipe_segment"] == "P-02"
    assert event.data["material"] == "ductile_iron" and event.data["positive_nights"] == 1
    assert event.data["mode"] == "absolute" and event.data["floor_db"] == 0.0
    assert event.data["prominence_db"] > 3.0 and event.data["group"] is None
    assert a.state("nl-02") == "suspected"


def _quiet(device: str, seed: int) -> Recording:
    return Recording.from_samples(device, FS, ambient(FS, 4.0, seed=seed, level_db=0.0), NIGHT1)


def test_loggers_of_one_job_are_compared_and_the_group_is_in_the_events():
    """Four iron loggers recorded together; the leaky one stands out from the three quiet
    ones: its events carry the comparison (excess over the peers' median, flagged)."""
    names = ["nl-01", "nl-02", "nl-03", "nl-04"]
    a = TrackerAnalysis(
        LeakDetectionConfig(),
        {n: ("ductile_iron", "P-02") for n in names} | {"nl-07": ("pe", "P-07")},
        noise_floor_db=None,
        now=NIGHT1,
    )
    recs = {n: _quiet(n, 30 + i) for i, n in enumerate(names)} | {"nl-07": _quiet("nl-07", 9)}
    recs["nl-02"] = _leaky("nl-02", 1)
    scores = a.score_job(recs)  # what the pipeline runs off the loop, one call per job
    assert not scores.refused
    # small frozen values that cross a process boundary (a worker process, later)
    assert pickle.loads(pickle.dumps(scores)).groups == scores.groups
    feats, groups = scores.features, scores.groups
    assert set(groups) == set(names)  # the PE logger listens in another band: not compared
    assert groups["nl-02"].flagged and groups["nl-02"].peers == 3
    _, drafts = a.track("nl-02", feats["nl-02"], _job(NIGHT1), groups["nl-02"])
    assert drafts[0].data["group"]["flagged"] is True
    assert drafts[0].data["mode"] == "relative" and drafts[0].data["floor_db"] is None


def test_a_recording_dsp_refuses_is_named_and_the_others_still_scored():
    a = _analysis()
    short = Recording.from_samples("nl-07", FS, _leaky("nl-07", 3).samples[:16], NIGHT1)
    scores = a.score_job({"nl-02": _leaky("nl-02", 1), "nl-07": short})
    assert set(scores.features) == {"nl-02"} and set(scores.refused) == {"nl-07"}
    assert scores.refused["nl-07"]  # dsp's reason, for the logger's status


def test_state_survives_a_restart():
    """Saved after night 1, restored into a fresh analysis: night 2 confirms."""
    a = _analysis()
    a.track("nl-02", a.features(_leaky("nl-02", 1)), _job(NIGHT1))
    a.track("nl-02", a.features(_leaky("nl-02", 5)), _job(NIGHT1 + 1800))
    saved = json.loads(json.dumps(a.to_json()))
    b = _analysis()
    assert b.restore(saved) == ["nl-02", "nl-07"]
    assert b.state("nl-02") == "suspected"
    _, drafts = b.track("nl-02", b.features(_leaky("nl-02", 9)), _job(NIGHT1 + 86400))
    assert [d.kind for d in drafts] == ["leak.confirmed"]


@pytest.mark.parametrize("bad", [None, [], {"version": 99}, {"version": 1}])
def test_restore_refuses_foreign_documents(bad):
    with pytest.raises(ValueError):
        _analysis().restore(bad)
