"""What a simulated noise logger hears, and its recording protocol, without a bus."""

from __future__ import annotations

import asyncio
import dataclasses
import zlib

import numpy as np
import pytest

from drivers.sim.clock import ManualClock
from drivers.sim.noise_logger import (
    STATUS_IDLE,
    STATUS_READY,
    STATUS_RECORDING,
    leak_path,
    path_delay_s,
    quantise,
    render_recording,
)
from drivers.sim.scenarios import read_scenarios
from drivers.sim.site_sim import SiteSimulator
from dsp.leak import analyze_samples, model_for, score_recording
from dsp.synth import band_power
from sitemodel import parse_site
from tests.drivers.sim.site_support import gcc_phat_lag, read_point, seed_site

FS = 4096.0


@pytest.fixture(scope="module")
def site():
    return seed_site()


@pytest.fixture(scope="module")
def leaks(site):
    return read_scenarios(site).leaks


@pytest.mark.parametrize(
    ("logger", "expected"),
    [
        ("nl-02", [("P-02", 63.0)]),
        ("nl-03", [("P-02", 93.0)]),
        ("nl-04", [("P-02", 75.0), ("P-04", 140.0)]),
        ("nl-07", [("P-02", 75.0), ("P-04", 160.0), ("P-07", 40.0)]),
    ],
)
def test_leak_path_follows_the_pipes(site, leaks, logger, expected):
    """Sound takes the shortest way along the network, segment by segment."""
    leak = leaks[0]
    d = site.device(logger)
    got = leak_path(site, leak.pipe, leak.offset_m, d.pipe, d.offset_m)
    assert [(p, pytest.approx(m)) for p, m in expected] == got


def test_disconnected_pipes_have_no_path():
    text = """\
site: two
origin: {lat: 0, lon: 0}
nodes: [{id: A, x: 0, y: 0}, {id: B, x: 50, y: 0}, {id: C, x: 0, y: 90}, {id: D, x: 50, y: 90}]
pipes:
  - {id: P1, from: A, to: B, material: steel}
  - {id: P2, from: C, to: D, material: steel}
devices: []
sim_buses: []
"""
    s = parse_site(text)
    assert leak_path(s, "P1", 10, "P2", 10) == []
    assert leak_path(s, "P1", 10, "P1", 30) == [("P1", 20.0)]


def _leak_only(site):
    """Only the leak: no ambient, traffic or pumps (the ambient is set far below)."""
    quiet = [dataclasses.replace(d, sim=dataclasses.replace(d.sim, ambient_db=-200.0,
             traffic_per_min=0.0, pump_tone_hz=None)) if d.kind == "noise_logger" else d
             for d in site.devices]  # fmt: skip
    return dataclasses.replace(site, devices=tuple(quiet))


def test_two_loggers_hear_one_leak_with_the_path_delay(site, leaks):
    """Broadcast start (same t0): the GCC-PHAT lag is the path-delay difference, to a sample."""
    leak = leaks[0]
    a, b = site.device("nl-02"), site.device("nl-03")
    ra = render_recording(site, a, leaks=leaks, t0=120.0, duration_s=8.0, fs=FS, seed=5)
    rb = render_recording(site, b, leaks=leaks, t0=120.0, duration_s=8.0, fs=FS, seed=5)
    da = path_delay_s(site, leak_path(site, leak.pipe, leak.offset_m, a.pipe, a.offset_m))
    db = path_delay_s(site, leak_path(site, leak.pipe, leak.offset_m, b.pipe, b.offset_m))
    expected = (da - db) * FS  # about -103 samples: nl-02 is 30 m nearer
    assert expected < -50
    assert abs(gcc_phat_lag(ra, rb) - expected) <= 1.0


def test_late_start_shifts_the_lag_by_the_late_time(site, leaks):
    """The leak is one signal in absolute time: a logger started 0.25 s late sees it 0.25 s
    'earlier' in its recording, as a real one would (why the gateway broadcasts the start)."""
    quiet = _leak_only(site)
    a, b = quiet.device("nl-02"), quiet.device("nl-03")
    ra = render_recording(quiet, a, leaks=leaks, t0=50.0, duration_s=4.0, fs=FS, seed=9)
    rb_on_time = render_recording(quiet, b, leaks=leaks, t0=50.0, duration_s=4.0, fs=FS, seed=9)
    rb_late = render_recording(quiet, b, leaks=leaks, t0=50.25, duration_s=4.0, fs=FS, seed=9)
    lag = gcc_phat_lag(ra, rb_on_time)
    assert gcc_phat_lag(ra, rb_late) == pytest.approx(lag + 0.25 * FS, abs=1)
    # and the overlapping stretch is the same signal shifted by 1024 samples (to within
    # the windows' frequency sampling of the pipe filters: > 60 dB below the signal)
    diff = rb_late[:-1024] - rb_on_time[1024:]
    assert np.std(diff) < 1e-3 * np.std(rb_on_time)


def test_leak_is_loud_near_it_and_faint_far_along_plastic(site, leaks):
    """In-band power gain from the leak: large at the nearest logger, under 1 dB far away on PE."""

    def gain_db(name):
        d = site.device(name)
        band = (200.0, 1500.0)
        with_leak = render_recording(site, d, leaks=leaks, t0=10.0, duration_s=4.0, fs=FS, seed=2)
        without = render_recording(site, d, leaks=(), t0=10.0, duration_s=4.0, fs=FS, seed=2)
        return 10 * np.log10(band_power(with_leak, FS, band) / band_power(without, FS, band))

    near, far = gain_db("nl-02"), gain_db("nl-07")
    assert near > 6.0
    assert far < 1.0
    assert gain_db("nl-03") > far + 5


def test_seed_leak_scores_positive_at_the_bracketing_loggers_only(site, leaks):
    """With dsp.leak's scoring against the site floor (as the daemon scores): a night
    recording at the two loggers bracketing the leak is a leak, at every other logger it is
    not, and without the leak no logger scores (the ambient's in-band level is the site's noise
    floor). Gain-free (no floor), the bracketing loggers outscore every other recording."""
    leak = leaks[0]
    bracketing = {d.name for d in site.devices_of("noise_logger") if d.pipe == leak.pipe}
    with_leak, without = [], []
    for d in site.devices_of("noise_logger"):
        material = site.pipe(d.pipe).material
        for running, expect_leak in ((leaks, d.name in bracketing), ((), False)):
            x = render_recording(site, d, leaks=running, t0=3600.0, duration_s=4.0, fs=FS, seed=7)
            features, relative = analyze_samples(x, FS, material=material)
            score = score_recording(
                features, model_for(material).thresholds, floor_db=site.noise_floor_db
            )
            assert abs(features.quiet_level_db - site.noise_floor_db) < 1.5 or running
            assert (score.verdict == "leak") == expect_leak, (d.name, score)
            (with_leak if expect_leak else without).append(relative.score)
    assert min(with_leak) > 2 * max(without), (with_leak, without)


def test_leak_starts_at_its_start_time(site, leaks):
    late = (dataclasses.replace(leaks[0], start_s=600.0),)
    d = site.device("nl-02")
    before = render_recording(site, d, leaks=late, t0=100.0, duration_s=2.0, fs=FS, seed=1)
    none = render_recording(site, d, leaks=(), t0=100.0, duration_s=2.0, fs=FS, seed=1)
    np.testing.assert_array_equal(before, none)


def test_quantised_blocks_and_crc():
    """CRC-32 over big-endian int16; the last block is zero-padded; full scale clips."""
    q = quantise(np.array([0.0, 1.0, -1.0, 1e9, -1e9]), 0.5)
    assert q.counts.tolist() == [0, 2, -2, 32767, -32768]
    assert q.crc32 == zlib.crc32(np.array([0, 2, -2, 32767, -32768], dtype=">i2").tobytes())
    assert q.blocks(3) == 2
    assert q.block(1, 3) == [32767, 32768, 0]  # -32768 as an unsigned register


def test_protocol_states_on_the_model():
    """Start -> recording; after the duration in sim time -> ready; bad values -> exception 3."""
    clock = ManualClock()
    sim = SiteSimulator(seed_site(), clock=clock)
    try:
        logger = sim.models["nl-02"]
        rec = logger.profile.recording
        assert logger.on_write(6, rec.block_index, [0]) == 3  # nothing recorded yet
        assert logger.on_write(6, rec.duration_s, [0]) == 3
        assert logger.store.holding[rec.duration_s] == rec.default_duration_s
        logger.store.holding[rec.duration_s] = 2
        assert logger.on_write(6, rec.duration_s, [2]) is None
        assert logger.on_write(16, rec.control, [1]) is None
        assert logger.store.holding[rec.status] == STATUS_RECORDING
        clock.advance(1.0)
        sim.step()
        assert logger.store.holding[rec.status] == STATUS_RECORDING
        for _ in range(200):  # the render runs in a worker thread; bounded wait for it
            clock.advance(1.0)
            sim.step()
            if logger.store.holding[rec.status] == STATUS_READY:
                break
            asyncio.run(asyncio.sleep(0.01))
        assert logger.store.holding[rec.status] == STATUS_READY
        count = (
            logger.store.holding[rec.sample_count] << 16
            | logger.store.holding[rec.sample_count + 1]
        )
        assert count == 2 * 4096
        assert logger.on_write(6, rec.block_index, [count // rec.block_size + 1]) == 3
        assert logger.on_write(6, rec.control, [7]) == 3
        assert logger.on_write(6, rec.control, [0]) is None
        assert logger.store.holding[rec.status] == STATUS_IDLE
    finally:
        asyncio.run(sim.stop())


def test_summary_registers_hold_last_nights_figures():
    """Each logger summarises a quiet-window take at start-up (and nightly): the logger
    hearing the leak shows a higher L90 level than one far along plastic."""
    clock = ManualClock()
    sim = SiteSimulator(seed_site(), clock=clock)
    try:
        near, far = sim.models["nl-02"], sim.models["nl-07"]
        for _ in range(200):  # renders run in worker threads: bounded wait
            clock.advance(1.0)
            sim.step()
            if near.summary_ts and far.summary_ts:
                break
            asyncio.run(asyncio.sleep(0.01))
        assert read_point(near, "summary_time") == near.summary_ts > 0
        assert read_point(near, "leak_level") > read_point(far, "leak_level") + 3
        assert 0 < read_point(near, "leak_peak") <= 2048
        before = near.summary_ts
        clock.advance(86_400.0)  # a day later the listening window has closed again
        sim.step()
        for _ in range(200):
            clock.advance(1.0)
            sim.step()
            if near.summary_ts != before:
                break
            asyncio.run(asyncio.sleep(0.01))
        assert near.summary_ts > before
    finally:
        asyncio.run(sim.stop())
