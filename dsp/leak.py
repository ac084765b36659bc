"""Per-recording leak decision: ``leak_score`` in 0..1 and a verdict, with presets per material.

What the score measures (the field facts it rests on): leak noise is continuous and broadband in
the material's band (metal ~200-1500 Hz, plastic mostly below 300 Hz); traffic and draw-off are
intermittent, pumps are tonal. So the score is built on ``Features.quiet_level_db``: the in-band
level of the quiet frames (within 2 dB of L90) with steady tones left out. Intermittent noise
and hum do not reach that level; a leak does. The score is a logistic function of how far that
level stands above the floor, the ambient in-band level expected at the logger:

    score = 1 / (1 + exp(-(quiet_level_db - floor_db - excess_db) / width_db))

so ``score = 0.5`` exactly ``excess_db`` above the floor. The floor is a site property (the
site file's ``noise_floor_db``, in the same units as the samples); ``dsp.tracker.LeakTracker``
replaces it by each logger's learned quiet-night baseline once it has one. Spread and tonality
are reported as reasons, not scored: they explain why a loud recording was not a leak.

Nothing here depends on how ``dsp.synth`` makes its signals beyond those field facts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from dsp.features import Features, compute_features
from dsp.pipes import Material, get_material

__all__ = [
    "DEFAULT_EXCESS_DB",
    "DEFAULT_FLOOR_DB",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WIDTH_DB",
    "FAMILY_THRESHOLDS",
    "LeakModel",
    "LeakScore",
    "LeakThresholds",
    "Verdict",
    "analyze_samples",
    "model_for",
    "score_recording",
    "with_floor",
]

DEFAULT_FLOOR_DB = 0.0  # ambient in-band level at the logger, dB re 1 unit (site noise_floor_db)
DEFAULT_EXCESS_DB = 3.0  # quiet level this far over the floor scores 0.5 (a leak at 0 dB SNR)
DEFAULT_WIDTH_DB = 0.75  # score 0.12 .. 0.88 over excess -1.5 .. +1.5 dB
DEFAULT_THRESHOLD = 0.5
INTERMITTENT_SPREAD_DB = 6.0  # L10 - L90 above this: intermittent noise present (a reason)
TONAL_DB = 3.0  # tonality above this: a steady tone carries the level (a reason)
SILENCE_DB = -250.0  # below any real sensor: the band holds only zeros

Verdict = Literal["leak", "no_leak"]


@dataclass(frozen=True, slots=True)
class LeakThresholds:
    """How a quiet level becomes a score and a verdict (see the module docstring)."""

    floor_db: float = DEFAULT_FLOOR_DB
    excess_db: float = DEFAULT_EXCESS_DB
    width_db: float = DEFAULT_WIDTH_DB
    threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        if not math.isfinite(self.floor_db) or not math.isfinite(self.excess_db):
            raise ValueError("floor_db and excess_db must be finite")
        if not (self.width_db > 0 and math.isfinite(self.width_db)):
            raise ValueError(f"width_db must be > 0, got {self.width_db}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")


# Plastic carries leak noise worse, so what reaches a logger is weaker; the same excess over
# the floor is asked of every family by default, the presets exist so a utility can tune one.
FAMILY_THRESHOLDS: dict[str, LeakThresholds] = {
    "metal": LeakThresholds(),
    "cement": LeakThresholds(),
    "plastic": LeakThresholds(),
}


@dataclass(frozen=True, slots=True)
class LeakModel:
    """Band and thresholds for one material; ``nperseg=None`` = ``default_nperseg(fs)``."""

    material: str
    band_hz: tuple[float, float]
    thresholds: LeakThresholds
    nperseg: int | None = None


def model_for(material: str | Material, thresholds: LeakThresholds | None = None) -> LeakModel:
    """The preset for ``material``: its band and its family's thresholds (or ``thresholds``).

    Raises ``ValueError`` naming the known materials for an unknown one.
    """
    m = material if isinstance(material, Material) else get_material(material)
    return LeakModel(
        material=m.name,
        band_hz=m.band_hz,
        thresholds=thresholds if thresholds is not None else FAMILY_THRESHOLDS[m.family],
    )


@dataclass(frozen=True, slots=True)
class LeakScore:
    """``score`` in 0..1, ``verdict``, the quiet level's excess over the floor, and reasons."""

    score: float
    verdict: Verdict
    excess_db: float
    floor_db: float
    reasons: tuple[str, ...]


def score_recording(
    features: Features,
    thresholds: LeakThresholds | None = None,
    *,
    floor_db: float | None = None,
) -> LeakScore:
    """Score one recording's features; ``floor_db`` overrides ``thresholds.floor_db`` (the
    tracker passes a logger's learned baseline)."""
    t = thresholds if thresholds is not None else LeakThresholds()
    floor = t.floor_db if floor_db is None else float(floor_db)
    excess = features.quiet_level_db - floor
    z = (excess - t.excess_db) / t.width_db
    score = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
    verdict: Verdict = "leak" if score >= t.threshold else "no_leak"
    reasons = [
        f"quiet tone-free level {features.quiet_level_db:.1f} dB is {excess:+.1f} dB "
        f"over the floor {floor:.1f} dB (leak-like from {t.excess_db:+.1f} dB)"
    ]
    if features.level_db < SILENCE_DB:
        reasons.append("the recording is digital silence in the band (sensor or cable fault?)")
    if features.spread_db > INTERMITTENT_SPREAD_DB:
        reasons.append(
            f"intermittent noise (L10-L90 spread {features.spread_db:.1f} dB) left out: "
            f"judged on {features.quiet_frames} quiet frames of {features.n_frames}"
        )
    if features.tonality_db > TONAL_DB:
        reasons.append(
            f"steady tone at {features.tone_hz:.0f} Hz ({features.tonality_db:.1f} dB of the "
            "band) left out: a pump or motor, not a leak"
        )
    return LeakScore(
        score=score, verdict=verdict, excess_db=excess, floor_db=floor, reasons=tuple(reasons)
    )


def analyze_samples(
    samples: np.ndarray,
    fs: float,
    *,
    material: str | Material = "ductile_iron",
    thresholds: LeakThresholds | None = None,
) -> tuple[Features, LeakScore]:
    """Features and score of one recording with the material's preset (``thresholds``
    replaces the family's). Raises ``ValueError`` like ``compute_features`` and for an unknown
    material."""
    model = model_for(material, thresholds)
    feats = compute_features(samples, fs, band_hz=model.band_hz, nperseg=model.nperseg)
    return feats, score_recording(feats, model.thresholds)


def with_floor(thresholds: LeakThresholds, floor_db: float) -> LeakThresholds:
    """``thresholds`` with another floor (e.g. a site's ``noise_floor_db``)."""
    return replace(thresholds, floor_db=float(floor_db))
