"""Rules across a config reload: a new engine continues from the old one (``carry_over``).

What consumers were told (an alarm raised, a device offline) always carries over, so no
reload repeats an event or leaves one uncleared; the evidence behind the next event (K-of-N
windows, on-delays, rate windows, last values sent) carries over only for a device polled as
before, and for a window only while its threshold is the same.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.bus import DeviceCoordinator, DeviceSpec, PollPolicy
from drivers.model import PollResult, Quality
from edge_agent.rules import DeviceInfo, DeviceRulesConfig, RulesConfig, RulesEngine
from edge_agent.rules.alarm import Alarm, Latch, RateAlarm, Transition
from edge_agent.rules.telemetry import TelemetryFilter
from tests.edge_agent.rules.helpers import PROFILES, kinds, reading
from tests.edge_agent.rules.test_engine import (
    POINTS,
    History,
    _NoRequests,
    assert_no_storm,
    record,
    site,
)


class TestAlarm:
    """The building blocks: state always, evidence only where it still means something."""

    def test_state_always_window_only_with_the_same_settings(self):
        old = Alarm(100.0, hysteresis=10.0, k=2, n=3)
        assert old.update(150.0, 0) is None  # 1 of the 2 needed
        same = Alarm(100.0, hysteresis=10.0, k=2, n=3)
        same.carry_over(old)
        assert same.update(150.0, 1) is Transition.RAISE  # the window went on
        other = Alarm(120.0, hysteresis=10.0, k=2, n=3)
        other.carry_over(old)
        assert other.update(150.0, 1) is None  # classified against 100: not evidence for 120

    def test_a_raised_alarm_stays_raised_and_clears_by_its_new_threshold(self):
        old = Alarm(100.0, hysteresis=10.0)
        assert old.update(150.0, 0) is Transition.RAISE
        raised = Alarm(200.0, hysteresis=10.0)
        raised.carry_over(old, evidence=False)
        assert raised.active
        assert raised.update(150.0, 1) is Transition.CLEAR  # below 200 - 10: cleared once

    def test_on_delay_under_way_carries_over_for_the_same_device_only(self):
        old = Alarm(100.0, on_delay_s=60.0)
        old.update(150.0, 0.0)
        same, fresh = Alarm(100.0, on_delay_s=60.0), Alarm(100.0, on_delay_s=60.0)
        same.carry_over(old)
        fresh.carry_over(old, evidence=False)
        assert same.update(150.0, 60.0) is Transition.RAISE
        assert fresh.update(150.0, 60.0) is None  # its delay starts now

    def test_latch_and_rate(self):
        latch = Latch(clear_after_s=60.0)
        latch.update(True, 0.0)
        latch.update(False, 10.0)
        again = Latch(clear_after_s=60.0)
        again.carry_over(latch)
        assert again.active and again.update(False, 70.0) is Transition.CLEAR
        rate = RateAlarm(60.0, per_min=10.0)
        for t in range(0, 60, 10):
            rate.update(float(t) * 1.0, float(t))
        kept = RateAlarm(60.0, per_min=10.0)
        kept.carry_over(rate)
        assert kept.update(60.0, 60.0)[0] is not None  # the window had its samples


def _lv(rules: DeviceRulesConfig | None = None) -> list[DeviceInfo]:
    return [
        DeviceInfo(
            "lv-01",
            PROFILES.get("level-radar-lr10"),
            rules=rules or DeviceRulesConfig(level_high_mm=1000, level_high_high_mm=1500),
        )
    ]


class TestEngine:
    def test_a_raised_level_is_not_raised_again_by_a_reload(self):
        old = RulesEngine(RulesConfig(), _lv())
        out = []
        for ts in range(5):
            out += old.on_reading(reading("lv-01", "level", 1200.0, ts * 60.0))
        assert kinds(out) == ["level.high"]
        for same in (True, False):
            new = RulesEngine(RulesConfig(), _lv())
            new.carry_over(old, {"lv-01"} if same else set())
            events = []
            for ts in range(5, 10):
                events += new.on_reading(reading("lv-01", "level", 1200.0, ts * 60.0))
            assert events == [], same

    def test_a_threshold_raised_past_the_level_clears_the_alarm_once(self):
        old = RulesEngine(RulesConfig(), _lv())
        for ts in range(5):
            old.on_reading(reading("lv-01", "level", 1200.0, ts * 60.0))
        new = RulesEngine(
            RulesConfig(), _lv(DeviceRulesConfig(level_high_mm=1400, level_high_high_mm=1500))
        )
        new.carry_over(old, {"lv-01"})
        out = []
        for ts in range(5, 12):
            out += new.on_reading(reading("lv-01", "level", 1200.0, ts * 60.0))
        # 3 of 5 below 1400 - 50 (the level default) clear it: once.
        assert kinds(out) == ["level.normal"]

    def test_a_fault_still_present_is_not_announced_again(self):
        old = site()
        assert kinds(old.on_reading(reading("gd-01", "faults", 0b1, 0))) == ["device.fault"]
        new = site()
        new.carry_over(old, set())  # even a changed device: what was told carries
        assert new.on_reading(reading("gd-01", "faults", 0b1, 10)) == []
        assert new.on_reading(reading("gd-01", "faults", 0, 20)) == []
        assert kinds(new.on_reading(reading("gd-01", "faults", 0, 200))) == ["device.fault.cleared"]

    def test_telemetry_resends_only_what_a_changed_device_reports(self):
        info = _lv()
        old = TelemetryFilter(RulesConfig(), info)
        assert old.should_send(reading("lv-01", "level", 500.0, 0.0))
        same, changed = TelemetryFilter(RulesConfig(), info), TelemetryFilter(RulesConfig(), info)
        same.carry_over(old, {"lv-01"})
        changed.carry_over(old, set())
        assert not same.should_send(reading("lv-01", "level", 500.0, 1.0))
        assert changed.should_send(reading("lv-01", "level", 500.0, 1.0))


# -- the no-storm property, with reloads in the stream --------------------------------------

LEVELS = [(1000, 1500), (1200, 2000), (800, 1200)]  # lv-01's (high, high_high) per config


def _site_engine(config: int) -> RulesEngine:
    high, high_high = LEVELS[config]
    engine = site()
    devices = list(engine.devices.values())
    devices[0] = DeviceInfo(
        "lv-01",
        devices[0].profile,
        rules=DeviceRulesConfig(level_high_mm=high, level_high_high_mm=high_high),
    )
    return RulesEngine(RulesConfig(), devices)


@st.composite
def inputs_with_reloads(draw):
    steps = []
    for _ in range(draw(st.integers(1, 150))):
        i = draw(st.integers(0, len(POINTS) + 1))
        if i == len(POINTS):
            steps.append(("poll", draw(st.sampled_from(["lv-01", "gd-01"])), draw(st.booleans())))
        elif i == len(POINTS) + 1:
            same = draw(st.sets(st.sampled_from(["lv-01", "gd-01", "mc-01", "ps-01", "pt-01"])))
            steps.append(("reload", draw(st.integers(0, len(LEVELS) - 1)), frozenset(same)))
        else:
            dev, point, values = POINTS[i]
            quality = draw(st.sampled_from([Quality.GOOD] * 4 + [Quality.FAULT, Quality.STALE]))
            steps.append((dev, point, draw(values), quality))
    return steps


class TestNoStormsAcrossReloads:
    """Property: random readings, poll outcomes and reloads (thresholds moved, any device
    counted as changed) never raise an alarm or take a device offline twice without the
    clear between, and a clear never comes without its raise."""

    @settings(max_examples=150, deadline=None)
    @given(inputs_with_reloads())
    def test_alternation(self, steps):
        engine = _site_engine(0)
        coordinators: dict[str, DeviceCoordinator] = {}
        history: History = {}
        for ts, step in enumerate(steps):
            if step[0] == "reload":
                _, config, same = step
                new = _site_engine(config)
                new.carry_over(engine, same)
                engine = new
                for dev, old in list(coordinators.items()):
                    if dev not in same:  # polled differently: fresh, from its availability
                        coordinators[dev] = DeviceCoordinator(old.spec, float(ts))
                        coordinators[dev].carry_availability(old)
                continue
            if step[0] == "poll":
                _, dev, ok = step
                spec = DeviceSpec(dev, 1, _NoRequests(), 60.0, PollPolicy(jitter_s=0.0))
                c = coordinators.setdefault(dev, DeviceCoordinator(spec, 0.0))
                t = float(ts)
                change = c.poll_ok(t, t) if ok else c.poll_failed("timeout", t, t)
                events = engine.on_poll(PollResult("bus", dev, t, (), None if ok else "x", change))
            else:
                dev, point, value, quality = step
                events = engine.on_reading(reading(dev, point, value, float(ts) * 30, quality))
            record(history, events)
        assert_no_storm(history)
