"""Leak location on the seed site: synthetic simultaneous recordings -> pipe and offset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drivers.model import Recording
from dsp.synth import ambient, leak_at_loggers
from edge_agent.daemon.locate import SiteLocator
from sitemodel import load_site

SITE = Path(__file__).resolve().parents[3] / "seeds" / "site.yaml"
FS = 4096.0


@pytest.fixture(scope="module")
def site():
    return load_site(SITE)


def _pair(d_a: float, d_b: float, *, snr_noise_db: float = -10.0, seed: int = 7):
    a, b = leak_at_loggers(
        FS,
        8.0,
        material="ductile_iron",
        distances_m=(d_a, d_b),
        seed=seed,
        diameter_mm=300,
        wall_mm=7.2,
        level_db=20.0,
    )
    noise_a = ambient(FS, 8.0, seed=seed + 1, level_db=20.0 + snr_noise_db)
    noise_b = ambient(FS, 8.0, seed=seed + 2, level_db=20.0 + snr_noise_db)
    return a + noise_a[: a.size], b + noise_b[: b.size]


@pytest.mark.parametrize(("leak_offset", "start_skew_s"), [(75.0, 0.0), (40.0, 0.0), (120.0, 0.0)])
def test_locates_a_leak_between_nl02_and_nl03(site, leak_offset, start_skew_s):
    """nl-02 sits at 12 m and nl-03 at 168 m on P-02: the leak is found within 2 m."""
    xa, xb = _pair(leak_offset - 12.0, 168.0 - leak_offset)
    t0 = 1_767_225_600.0
    where = SiteLocator(site).locate(
        Recording.from_samples("nl-02", FS, xa, t0),
        Recording.from_samples("nl-03", FS, xb, t0 + start_skew_s),
    )
    assert where is not None
    assert where.pipe == "P-02"
    assert where.offset_m == pytest.approx(leak_offset, abs=2.0)
    assert where.distance_m == pytest.approx(leak_offset - 12.0, abs=2.0)
    assert where.spacing_m == pytest.approx(156.0)


def test_uncorrelated_noise_gives_no_location(site):
    """Two loggers hearing unrelated noise: no position rather than a wrong one."""
    rng = np.random.default_rng(3)
    xa, xb = rng.standard_normal(int(FS * 8)), rng.standard_normal(int(FS * 8))
    where = SiteLocator(site, min_confidence=0.5).locate(
        Recording.from_samples("nl-02", FS, xa, 0.0), Recording.from_samples("nl-03", FS, xb, 0.0)
    )
    assert where is None


def test_different_sample_rates_are_refused(site):
    x = np.zeros(4096)
    with pytest.raises(ValueError, match="sample rates differ"):
        SiteLocator(site).locate(
            Recording.from_samples("nl-02", FS, x, 0.0),
            Recording.from_samples("nl-03", 8000.0, x, 0.0),
        )


def test_unknown_logger_is_a_value_error(site):
    x = np.zeros(4096)
    with pytest.raises(ValueError, match="no pipe path"):
        SiteLocator(site).locate(
            Recording.from_samples("nl-02", FS, x, 0.0), Recording.from_samples("zz-99", FS, x, 0.0)
        )
