"""Leak analysis per logger for the analysis worker process: features, one ``LeakTracker`` each.

Each logger is judged with its pipe's material preset (band and family thresholds from
``dsp.leak``), the config's threshold and per-material overrides, and the site's noise floor
(the level evidence's floor until a logger's baseline is learnt; without a site file the
score is gain-free until then). Loggers recorded together are also compared with each other
(``dsp.group``, per material band): a logger whose steady level stands well over its peers'
counts that as evidence, and its leak events carry the comparison in ``group``.
Trackers get the recording job's time from the schedule's clock (the wall clock in production;
in the demo a clock whose nights last seconds) so nights are counted on the schedule's time.
Transitions become ``leak.*`` events carrying the score, levels and positive-night count.
``to_json``/``restore`` carry the trackers between the worker and the daemon, which keeps
their state (``<state_dir>/leak-trackers.json``: a restart must not forget last night's
positive; a reload carries it over for the loggers it left as they were) and sends it with
every job.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from drivers.model import Recording
from dsp.features import Features, compute_features
from dsp.group import GroupComparison, compare_group
from dsp.leak import model_for, with_floor
from dsp.tracker import LeakTracker, TrackerConfig
from edge_agent.daemon.analysis_jobs import DEFAULT_MATERIAL, TRACKER_STATE_VERSION
from edge_agent.daemon.analysis_runner import JobScores
from edge_agent.daemon.schedule import RecordingJob, local_utc_offset_s
from edge_agent.events import EventDraft

__all__ = ["DEFAULT_MATERIAL", "STATE_VERSION", "TrackerAnalysis", "warm_up"]

STATE_VERSION = TRACKER_STATE_VERSION


class TrackerAnalysis:
    """One job's analysis in the worker: ``score_job`` (pure), then ``track`` per logger."""

    def __init__(
        self,
        leak_config: Any,
        loggers: dict[str, tuple[str, str | None]],
        *,
        noise_floor_db: float | None = None,
        now: float,
    ) -> None:
        """``loggers``: name -> (material, pipe segment or None). ``noise_floor_db``: the
        site's (None without a site: gain-free until a baseline is learnt). ``now`` fixes the
        UTC offset the trackers count local nights with."""
        start_min, end_min = leak_config.night_window_minutes()
        self.models = {}
        self.pipes: dict[str, str | None] = {}
        self.trackers: dict[str, LeakTracker] = {}
        for name, (material, pipe) in loggers.items():
            model = model_for(material)
            thresholds = with_floor(model.thresholds, noise_floor_db)
            thresholds = replace(thresholds, threshold=leak_config.threshold)
            override = leak_config.materials.get(material)
            if override is not None:
                if override.band_hz is not None:
                    model = replace(model, band_hz=tuple(override.band_hz))
                if override.threshold is not None:
                    thresholds = replace(thresholds, threshold=override.threshold)
            self.models[name] = replace(model, thresholds=thresholds)
            self.pipes[name] = pipe
            self.trackers[name] = LeakTracker(
                TrackerConfig(
                    thresholds=thresholds,
                    night_window=(start_min / 60.0, end_min / 60.0),
                    utc_offset_s=local_utc_offset_s(now),
                    confirm_k=leak_config.confirm_nights.k,
                    confirm_m=leak_config.confirm_nights.m,
                )
            )

    def features(self, recording: Recording) -> Features:
        """Raises ValueError for a recording dsp refuses (too short, not finite)."""
        model = self.models[recording.device]
        return compute_features(
            recording.samples, recording.fs, band_hz=model.band_hz, nperseg=model.nperseg
        )

    def score_job(self, recordings: Mapping[str, Recording]) -> JobScores:
        """Every recording's features, then each logger against the others (``compare``).
        Pure: safe in any thread (and picklable in, picklable out)."""
        features: dict[str, Features] = {}
        refused: dict[str, str] = {}
        for name, recording in recordings.items():
            try:
                features[name] = self.features(recording)
            except ValueError as exc:  # a recording dsp refuses (too short, not finite)
                refused[name] = str(exc)
        return JobScores(features, self.compare(features), refused)

    def compare(self, features: Mapping[str, Features]) -> dict[str, GroupComparison]:
        """Each logger against the others recorded with it that listen in the same band."""
        by_band: dict[tuple[float, float], dict[str, float]] = {}
        for name, feats in features.items():
            by_band.setdefault(feats.band_hz, {})[name] = feats.quiet_level_db
        out: dict[str, GroupComparison] = {}
        for levels in by_band.values():
            out.update(compare_group(levels))
        return out

    def track(
        self,
        device: str,
        features: Features,
        job: RecordingJob,
        group: GroupComparison | None = None,
    ) -> tuple[float, list[EventDraft]]:
        update = self.trackers[device].observe(
            job.due_at, features, group_excess_db=None if group is None else group.excess_db
        )
        drafts = [
            EventDraft.of(
                device,
                t.kind,
                t.ts,
                state=t.state.value,
                score=round(t.score, 3),
                quiet_level_db=round(t.quiet_level_db, 1),
                floor_db=None if t.floor_db is None else round(t.floor_db, 1),
                positive_nights=t.positive_nights,
                pipe_segment=self.pipes.get(device),
                material=self.models[device].material,
                mode=t.mode,
                prominence_db=round(t.prominence_db, 1),
                group=None if group is None else group.to_dict(),
            )
            for t in update.transitions
        ]
        return update.score.score, drafts

    def state(self, device: str) -> str:
        return self.trackers[device].state.value

    def to_json(self) -> dict[str, Any]:
        """Every tracker's state (nights, baseline, persistence count) as plain data."""
        return {
            "version": STATE_VERSION,
            "trackers": {name: tracker.to_dict() for name, tracker in self.trackers.items()},
        }

    def restore(self, data: Any, only: Collection[str] | None = None) -> list[str]:
        """Restore trackers saved by ``to_json`` for loggers still configured (and in
        ``only``, when given); returns the names restored. Raises ValueError for a malformed
        document."""
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError("not a leak tracker state file of this version")
        saved = data.get("trackers")
        if not isinstance(saved, dict):
            raise ValueError("no trackers in the leak tracker state file")
        restored = []
        for name, tracker in list(self.trackers.items()):
            if name in saved and (only is None or name in only):
                self.trackers[name] = LeakTracker.from_dict(saved[name], tracker.config)
                restored.append(name)
        return restored


def warm_up() -> None:
    """Compile (cold cache) or load (warm cache) every numba kernel a job runs: the analysis
    worker does it before it says ready, so no job compiles and its silence is bounded."""
    import numpy as np

    from dsp.correlate import locate_tdoa

    x = np.random.default_rng(0).standard_normal(8192)
    compute_features(x, 4096.0, band_hz=(200.0, 1500.0))
    # what the locators run: coherence, transient limiter, HT and PHAT correlations, peak stats
    locate_tdoa(x, np.roll(x, 7), 4096.0, max_lag_s=0.1, band_hz=(200.0, 1500.0))
