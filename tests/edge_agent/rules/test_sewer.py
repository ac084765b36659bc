"""The sewer network rules, table-driven: a reach's blockage from its two ends, a manhole's
time to the rim, and the rain gauges' dry weather. Levels are written as functions of the
minute, sampled once a minute with seeded gauge noise (no sleeps, time from the readings)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_agent.rules.config import BlockageConfig, OverflowConfig
from edge_agent.rules.network import Manhole, SewerReach
from edge_agent.rules.runoff import DEFAULT_LAG_S, RunoffModel
from edge_agent.rules.sewer import (
    ZERO_DAY_S,
    ZERO_DAYS,
    DryWeather,
    ManholeOverflowRule,
    ReachBlockageRule,
    _End,
    _Zero,
)
from tests.edge_agent.rules.helpers import reading

DAY_MIN = 24 * 60
ONSET = 180  # minutes: every blockage case starts here, after three dry hours
DAY = 1440  # minutes: a dry day first, where a case needs the ends' day learnt


def diurnal(m: float, mean: float = 60.0, swing: float = 25.0) -> float:
    """A dry day's depth in a small sewer: lowest at 04:00, highest mid-morning."""
    return mean - swing * math.cos(2 * math.pi * (m / 60.0 - 4.0) / 24.0)


def ramp(m: float, rate: float, start: float = ONSET, top: float = 1e9) -> float:
    return min(max(m - start, 0.0) * rate, top)


def step(m: float, height: float, at: float, minutes: float = 2.0) -> float:
    return height * min(max(m - at, 0.0) / minutes, 1.0)


def run_reach(
    up,
    down,
    minutes: int,
    *,
    rain=lambda m: 0.0,
    noise: float = 2.0,
    trouble=lambda m: False,
    reach: SewerReach | None = None,
    down_silent=lambda m: False,
    shared: bool = False,
    seed: int = 1,
    config: BlockageConfig | None = None,
    each_minute=lambda m, rule: None,
    down_stuck=lambda m: False,
    above_blocked=lambda m: False,
    up_stuck=lambda m: False,
    resolution: float | None = None,
):
    """Feed a reach rule a level per end and a rain reading each minute; (minute, event).
    ``each_minute(m, rule)`` looks at the rule after each minute's readings; ``*_stuck(m)``:
    that end reads its last value again; ``resolution``: readings rounded to it (mm), as a
    gauge's profile rounds them."""
    rng = np.random.default_rng(seed)
    reach = reach or SewerReach("R1", "lv-up", "lv-down", station="ps-01", length_m=120.0)
    cfg = config or BlockageConfig()
    last_trouble: dict[str, float | None] = {"ts": None, "above": None}  # as the wiring keeps
    rule = ReachBlockageRule(
        reach,
        DryWeather(("rg-01",), cfg.dry_rain_mm_h, cfg.dry_for_s),
        cfg,
        backed_up_below=lambda: last_trouble["ts"],
        blocked_above=lambda: last_trouble["above"],
        downstream_shared=shared,
    )
    out = []
    value_up = value_down = 0.0  # each end's last reading (what a stuck gauge reads again)

    def read(level: float) -> float:
        value = max(level + rng.normal(0, noise), 0.0)
        return value if resolution is None else round(value / resolution) * resolution

    for m in range(minutes):
        ts = 60.0 * m
        if trouble(m):
            last_trouble["ts"] = ts
        if above_blocked(m):
            last_trouble["above"] = ts
        rule.rain.on_rain(reading("rg-01", "rain_rate", rain(m), ts))
        noisy = read(up(m))
        value = value_up = value_up if up_stuck(m) else noisy
        out += [(m, e) for e in rule.on_upstream(reading("lv-up", "level", value, ts))]
        if down is not None and not down_silent(m):
            noisy = read(down(m))
            value = value_down = value_down if down_stuck(m) else noisy
            out += [(m, e) for e in rule.on_downstream(reading("lv-down", "level", value, ts + 1))]
        each_minute(m, rule)
    return out


def kinds_at(events):
    return [(m, e.kind) for m, e in events]


class TestReachBlockage:
    """The two ends pulling apart in dry weather, and what must not look like it. Depths are
    a small sewer's in dry weather (tens of mm); a blockage backs it up by mm per minute."""

    @pytest.mark.parametrize(
        ("name", "up", "down"),
        [
            (
                "backs up at the top, the bottom starved",
                lambda m: 60 + ramp(m, 6),
                lambda m: 80 - ramp(m, 3, top=35),
            ),
            (
                "backs up at the top, a lateral keeps the bottom fed",
                lambda m: 60 + ramp(m, 5),
                lambda m: 80.0,
            ),
            (
                "blocked near the bottom: the top has not felt it yet",
                lambda m: 60.0,
                lambda m: 80 - ramp(m, 4, top=45),
            ),
            (
                "in a trunk: 400 mm backing up 15 mm/min",
                lambda m: 400 + ramp(m, 15),
                lambda m: 450 - ramp(m, 8, top=200),
            ),
        ],
    )
    def test_raised_within_fifteen_minutes_and_names_the_reach(self, name, up, down):
        events = run_reach(up, down, ONSET + 60)
        raised = [(m, e) for m, e in events if e.kind == "sewer.blockage_suspected"]
        assert raised, name
        minute, event = raised[0]
        assert ONSET < minute <= ONSET + 15, name
        assert event.dev == "lv-up"
        assert event.data["reach"] == "R1"
        assert event.data["downstream"] == "lv-down"
        assert event.data["station"] == "ps-01"
        assert event.data["rain_mm_h"] == [0.0]
        assert len(raised) == 1

    def test_slow_gravel_build_up(self):
        """2 mm/min: slower to tell from a dry day, raised within half an hour."""
        events = run_reach(
            lambda m: 60 + ramp(m, 2), lambda m: 80 - ramp(m, 0.5, top=20), ONSET + 60
        )
        (minute, event), *_ = events
        assert event.kind == "sewer.blockage_suspected" and ONSET < minute <= ONSET + 30

    @pytest.mark.parametrize(
        ("name", "up", "down", "rain"),
        [
            (
                "a dry day: both ends follow the diurnal swing",
                diurnal,
                lambda m: diurnal(m, 80, 30),
                lambda m: 0.0,
            ),
            (
                "the morning peak reaches the bottom later",
                lambda m: diurnal(m, 40, 30),
                lambda m: diurnal(m - 20, 90, 25),
                lambda m: 0.0,
            ),
            (
                "a storm raises both ends",
                lambda m: 60 + ramp(m, 15, top=900),
                lambda m: 80 + ramp(m, 12, top=900),
                lambda m: 25.0 if m > ONSET - 10 else 0.0,
            ),
            (
                "a blockage in the rain (run-off explains a rise)",
                lambda m: 60 + ramp(m, 6),
                lambda m: 80.0,
                lambda m: 6.0,
            ),
            (
                "rain stopped ten minutes ago",
                lambda m: 60 + ramp(m, 6),
                lambda m: 80.0,
                lambda m: 6.0 if m < ONSET - 10 else 0.0,
            ),
            (
                "both ends fall in the evening",
                lambda m: 90 - ramp(m, 1.0, top=50),
                lambda m: 110 - ramp(m, 0.8, top=50),
                lambda m: 0.0,
            ),
            (
                "a flow wave passes down the reach",
                lambda m: 60 + step(m, 40, ONSET),
                lambda m: 80 + step(m, 30, ONSET + 4, 4),
                lambda m: 0.0,
            ),
            (
                # 120 m at 0.5 m/s or more: the bottom feels it within four minutes
                "an upstream station pumps for 8 minutes",
                lambda m: 60 + step(m, 30, ONSET) - step(m, 30, ONSET + 8),
                lambda m: 80 + step(m, 20, ONSET + 3, 3) - step(m, 20, ONSET + 11, 3),
                lambda m: 0.0,
            ),
        ],
    )
    def test_no_blockage(self, name, up, down, rain):
        events = run_reach(up, down, ONSET + 45, rain=rain)
        assert kinds_at(events) == [], name

    def test_one_stray_echo(self):
        events = run_reach(lambda m: 60 + (600 if m == ONSET else 0), lambda m: 80.0, ONSET + 30)
        assert kinds_at(events) == []

    def test_noisy_gauges_a_whole_dry_day(self):
        """8 mm of radar noise on 60 mm of flow at both ends for a day: nothing (the
        divergence is not beyond its standard error)."""
        events = run_reach(diurnal, lambda m: diurnal(m, 80, 30), DAY_MIN + ONSET, noise=8.0)
        assert kinds_at(events) == []

    def test_the_sewer_below_backing_the_reach_up(self):
        """The station's wet well over its assist level (or the reach below blocked)."""
        events = run_reach(
            lambda m: 60 + ramp(m, 6), lambda m: 80.0, ONSET + 60, trouble=lambda m: m >= ONSET
        )
        assert kinds_at(events) == []

    def test_quiet_while_a_backwater_from_below_drains(self):
        """The wet well below stood high for three hours, backing both ends up (the bottom
        more); it came down at END: the bottom drains in minutes, the top holds for hours
        (a flat pipe), the ends pull apart as a blockage's would. Quiet until the backwater
        has drained and the baseline hour has forgotten it (a baseline hour alone was not
        enough: raised 48 minutes after)."""
        end = ONSET + 180

        def up(m):
            if m < end:
                return 60 + ramp(m, 3, top=240)
            return 60 + max(240 - 0.3 * (m - end), 0)

        def down(m):
            if m < end:
                return 80 + ramp(m, 8, top=700)
            return 80 + max(700 - 20 * (m - end), 0)

        trouble = lambda m: ONSET <= m < end  # noqa: E731
        events = run_reach(up, down, end + 300, trouble=trouble)
        assert kinds_at(events) == []

    def test_a_blockage_left_standing_clears_once_settled(self):
        """Nobody cleared it: once the ends have pulled apart no further for three hours the
        event clears (a crew has long been sent), and not before."""
        events = kinds_at(
            run_reach(
                lambda m: 60 + ramp(m, 6, top=360), lambda m: 80 - ramp(m, 3, top=35), ONSET + 600
            )
        )
        assert [k for _, k in events] == [
            "sewer.blockage_suspected",
            "sewer.blockage_suspected.cleared",
        ]
        assert events[0][0] <= ONSET + 15
        assert ONSET + 60 + 180 <= events[1][0] <= ONSET + 60 + 300

    def test_a_blockage_cleared_as_settled_still_counts_as_blocked_until_its_ends_are_back(self):
        """Cleared as settled after three quiet hours, the reach may still be blocked: its
        ``last_active`` (what the reach above and the station below are kept quiet by) follows
        on while its ends stay apart, and stops once they are back where they stood."""
        fixed = ONSET + 600  # the crew clears it; the backwater drains in 12 minutes

        def up(m):
            return 60 + ramp(m, 6, top=360) if m < fixed else 60 + max(360 - 30 * (m - fixed), 0)

        def down(m):
            return 80 - ramp(m, 3, top=35) if m < fixed else 80.0

        last: dict[int, float | None] = {}
        events = kinds_at(
            run_reach(
                up, down, fixed + 120, each_minute=lambda m, r: last.update({m: r.last_active})
            )
        )
        cleared = events[1][0]
        assert [k for _, k in events] == [
            "sewer.blockage_suspected",
            "sewer.blockage_suspected.cleared",
        ]
        assert cleared < fixed - 60
        assert last[fixed - 1] >= 60.0 * (fixed - 1)  # cleared hours ago, still blocked
        assert last[fixed + 60] is not None and last[fixed + 60] < 60.0 * (fixed + 30)

    def test_a_shared_downstream_gauge_cannot_tell_which_branch(self):
        """Two reaches end at lv-down: it loses a branch's share, this branch's top holds:
        not enough to name this one; losing most of its flow (the trunk both share) is."""
        branch = run_reach(
            lambda m: 60.0, lambda m: 80 - ramp(m, 3, top=18), ONSET + 60, shared=True
        )
        assert kinds_at(branch) == []
        trunk = run_reach(
            lambda m: 60.0, lambda m: 80 - ramp(m, 6, top=60), ONSET + 60, shared=True
        )
        (minute, event), *_ = trunk
        assert event.data["evidence"] == "starved" and minute <= ONSET + 15

    def test_a_long_reach_waits_for_a_flow_wave_unless_the_bottom_starves(self):
        """600 m at 0.5 m/s: a rise at the top with the bottom steady waits 20 minutes (a flow
        wave would have arrived by then); a starved bottom is no wave and raises as fast."""
        long = SewerReach("R1", "lv-up", "lv-down", station="ps-01", length_m=600.0)
        fed = run_reach(lambda m: 60 + ramp(m, 5), lambda m: 80.0, ONSET + 60, reach=long)
        starved = run_reach(
            lambda m: 60 + ramp(m, 6), lambda m: 80 - ramp(m, 3, top=35), ONSET + 60, reach=long
        )
        assert ONSET + 20 <= fed[0][0] <= ONSET + 30
        assert fed[0][1].data["evidence"] == "backing up"
        assert starved[0][0] <= ONSET + 15 and starved[0][1].data["evidence"] == "starved"

    @pytest.mark.parametrize("length_m", [250.0, 333.0, 470.0])
    def test_a_flow_wave_time_off_the_poll_grid(self, length_m):
        """A wave's travel that is no whole number of polls: confirmed all the same (the
        confirmation starts from the last evaluation at or before its start)."""
        reach = SewerReach("R1", "lv-up", "lv-down", station="ps-01", length_m=length_m)
        events = run_reach(lambda m: 60 + ramp(m, 5), lambda m: 80.0, ONSET + 40, reach=reach)
        (minute, event), *_ = events
        assert event.data["evidence"] == "backing up"
        assert length_m / 0.5 / 60 <= minute - ONSET <= length_m / 0.5 / 60 + 8

    def test_reach_ending_at_a_station_uses_the_upstream_end_alone(self):
        reach = SewerReach("R2", "lv-up", None, station="ps-01", length_m=120.0)
        events = run_reach(lambda m: 60 + ramp(m, 5), None, ONSET + 30, reach=reach)
        (minute, event), *_ = events
        assert event.kind == "sewer.blockage_suspected" and ONSET < minute <= ONSET + 15
        assert event.data["downstream"] is None and event.data["reach"] == "R2"

    @staticmethod
    def station_reach(up, inflow, minutes, seed=3):
        """A reach ending at its station: the top's level each minute, the wet well's fill
        rate (mm/min, the fill segment's average so far) while it fills: 20 min filling,
        20 min pumping."""
        rng = np.random.default_rng(seed)
        reach = SewerReach("R2", "lv-up", None, station="ps-01", length_m=250.0)
        cfg = BlockageConfig()
        rule = ReachBlockageRule(reach, DryWeather(("rg-01",), 0.5, 3600.0), cfg)
        out, segment = [], []
        for m in range(minutes):
            ts = 60.0 * m
            rule.rain.on_rain(reading("rg-01", "rain_rate", 0.0, ts))
            value = max(up(m) + rng.normal(0, 3.0), 0.0)
            out += [(m, e) for e in rule.on_upstream(reading("lv-up", "level", value, ts))]
            if m % 40 < 20:
                segment.append(inflow(m) + rng.normal(0, 1.0))
                if len(segment) >= 3:
                    out += [(m, e) for e in rule.on_inflow(ts + 1, float(np.mean(segment)))]
            else:
                segment = []
        return out

    @pytest.mark.parametrize("lag", [0, 10, 18])
    def test_a_station_inflow_alone_never_says_starved(self, lag):
        """A satellite station's pulses, 31 min apart, reach the top and the wet well: the
        fill segments' averages catch them out of step with the top (with the inflow as
        "starved" evidence: raised 28 to 35 times in two days), which is no blockage."""

        def pulse(m):
            return 1.0 if (m % 31) < 10 else 0.0

        events = self.station_reach(
            lambda m: 80 + 20 * pulse(m), lambda m: 30 + 25 * pulse(m - lag), 2 * DAY_MIN
        )
        assert kinds_at(events) == []

    def test_a_station_reach_backing_up_with_the_inflow_falling(self):
        """The pumps run from ONSET to ONSET + 20 (no inflow is measured then): the top's
        rise is confirmed once the inflow is seen again, falling."""
        events = self.station_reach(
            lambda m: 80 + ramp(m, 5), lambda m: 30 - ramp(m, 1.5, top=25), ONSET + 60
        )
        (minute, event), *_ = events
        assert event.data["evidence"] == "backing up" and event.data["reach"] == "R2"
        assert ONSET + 20 < minute <= ONSET + 26

    @pytest.mark.parametrize(("start", "rate"), [(209, 1.5), (211, 2.0)])
    def test_a_pulse_at_the_top_while_the_pumps_run_is_no_blockage(self, start, rate):
        """A satellite's pulse rises at the top for a quarter of an hour and reaches the wet
        well as its pumps start (minute 220): the inflow was last measured before the wave
        could have reached it (raised on a dev year at generated-3's station reach, four
        times), so the bottom is unseen, not steady, and the pulse passes within the half
        hour asked."""

        def pulse(m, at):
            k = m - at
            return 0.0 if k < 0 else max(rate * min(k, 15) - rate * max(k - 15, 0), 0.0)

        events = self.station_reach(
            lambda m: 65 + pulse(m, start), lambda m: 30 + 0.8 * pulse(m, start + 4), 300
        )
        assert kinds_at(events) == []

    def test_downstream_gauge_silent_falls_back_to_upstream_after_half_an_hour(self):
        """With the bottom's gauge silent, the top's rise alone is a blockage only once it
        has held half an hour (longer than a satellite's pulse takes to pass the top)."""
        events = run_reach(
            lambda m: 60 + ramp(m, 5), lambda m: 80.0, ONSET + 60, down_silent=lambda m: m > 100
        )
        (minute, event), *_ = events
        assert event.kind == "sewer.blockage_suspected" and ONSET + 30 < minute <= ONSET + 40
        assert event.data["downstream_level"] is None

    @pytest.mark.parametrize(("stuck", "resolution"), [(False, None), (True, None), (True, 1.0)])
    def test_a_stuck_bottom_gauge_is_unseen_not_steady(self, stuck, resolution):
        """The top rises 40 mm over 25 minutes and stops. With the bottom's gauge measuring
        and its level steady, that is a blockage; with the gauge stuck (the same value over
        and over, since before the rise) the bottom is unseen, not steady: the morning's rise
        passing the top may be on its way down, and a rise that stops climbing within the half
        hour a top alone must hold is no blockage. (Read to the mm, the gauge repeats a
        reading by chance one time in seven: it is taken for stuck after nine, not five,
        still long before the rise.)"""

        def up(m):
            return 60.0 + 40.0 * min(max(m - ONSET, 0) / 25.0, 1.0)

        events = run_reach(
            up,
            lambda m: 80.0,
            ONSET + 120,
            down_stuck=lambda m: stuck and m >= ONSET - 30,
            reach=SewerReach("R1", "lv-up", "lv-down", station="ps-01", length_m=300.0),
            resolution=resolution,
        )
        if stuck:
            assert kinds_at(events) == []
        else:
            (minute, event), *_ = events
            assert event.kind == "sewer.blockage_suspected" and minute <= ONSET + 25

    @pytest.mark.parametrize("cleared_above", [False, True])
    def test_the_surge_of_a_blockage_cleared_above(self, cleared_above):
        """The top rises 5 mm/min with the bottom unseen: a blockage (raised after half an
        hour), unless a reach above was suspected blocked until just before: its backwater
        comes down as a surge when the crew clears it, at the top first."""
        events = run_reach(
            lambda m: 60 + ramp(m, 5),
            lambda m: 80.0,
            ONSET + 60,
            down_silent=lambda m: m > 100,
            above_blocked=lambda m: cleared_above and m < ONSET,
        )
        if cleared_above:
            assert kinds_at(events) == []
        else:
            (minute, event), *_ = events
            assert event.kind == "sewer.blockage_suspected" and minute <= ONSET + 40

    def test_a_bottom_starved_dry_reads_zero_and_is_not_stuck(self):
        """Blocked near the bottom, the pipe below runs dry: its gauge reads 0 mm over and
        over (clipped at the invert), which is the starved bottom, not a stuck gauge."""
        events = run_reach(lambda m: 60.0, lambda m: 30 - ramp(m, 6, top=40), ONSET + 60)
        (minute, event), *_ = events
        assert event.kind == "sewer.blockage_suspected" and minute <= ONSET + 15
        assert event.data["evidence"] == "starved"

    def test_a_gauge_back_from_being_stuck_starts_afresh(self):
        """The bottom's gauge sticks at 80 mm as the sewer falls to 55 (the top to 45) and
        comes back after two hours reading the truth: no fall at the bottom (against the
        stuck value, "starved" with the top steady), for its windows start afresh."""
        drop = ONSET - 120

        def up(m):
            return 60.0 if m < drop else 45.0

        def down(m):
            return 80.0 if m < drop else 55.0

        events = run_reach(
            up, down, ONSET + 120, down_stuck=lambda m: drop - 1 <= m < ONSET, noise=1.0
        )
        assert kinds_at(events) == []

    @pytest.mark.parametrize(
        ("name", "end", "first", "repeats"),
        [
            ("the top, five in a row 20 min before the onset", "up", ONSET - 20, 5),
            ("the top, six in a row 25 min before", "up", ONSET - 25, 6),
            ("the bottom, five in a row 15 min before", "down", ONSET - 15, 5),
            ("the bottom, six in a row 30 min before", "down", ONSET - 30, 6),
        ],
    )
    def test_equal_readings_by_chance_are_no_stuck_gauge(self, name, end, first, repeats):
        """The demo's case (MH09-MH17, its blockage missed in about one run in thirty, with or
        without sewer12's wet well): a night flow of 350 mm read to the mm with 2 mm of
        scatter repeats a reading one time in seven, so five in a row come by chance about
        once a day. Taken for a stuck gauge, the end's windows started afresh when it moved
        on, and the reach was not ready again for 40 minutes: the blockage went unseen until
        the storm. A few equal readings this gauge gives by chance are kept: raised within a
        quarter of an hour, as with none."""
        stuck = lambda m: first < m < first + repeats  # noqa: E731 (the first is read anew)
        events = run_reach(
            lambda m: 350 + ramp(m, 6),
            lambda m: 352 - ramp(m, 12, top=160),
            ONSET + 30,
            reach=SewerReach("MH09-MH17", "lv-up", "lv-down", station="ps-01", length_m=330.0),
            resolution=1.0,
            up_stuck=stuck if end == "up" else lambda m: False,
            down_stuck=stuck if end == "down" else lambda m: False,
        )
        (minute, event), *_ = events
        assert event.kind == "sewer.blockage_suspected", name
        assert event.data["evidence"] == "starved" and minute <= ONSET + 15, name

    def test_a_pulse_at_the_top_with_the_bottom_silent_is_no_blockage(self):
        """A satellite pump's pulse (15 min, +40 mm) passes the top while the bottom's gauge
        is silent: without the bottom to see it pass on, it is not taken for a blockage."""

        def up(m):
            return 60.0 + (40.0 if ONSET <= m < ONSET + 15 else 0.0)

        events = run_reach(up, lambda m: 80.0, ONSET + 60, down_silent=lambda m: m > 100)
        assert kinds_at(events) == []

    def test_clears_when_both_ends_are_back(self):
        """Cleared by the crew at ONSET + 60: the backed-up water drains, the event clears."""

        def up(m):
            if m < ONSET + 60:
                return 60 + ramp(m, 6)
            return 60 + max(360 - 30 * (m - ONSET - 60), 0)

        def down(m):
            return 80 - ramp(m, 3, top=35) if m < ONSET + 60 else 80.0

        events = kinds_at(run_reach(up, down, ONSET + 120))
        assert [k for _, k in events] == [
            "sewer.blockage_suspected",
            "sewer.blockage_suspected.cleared",
        ]
        cleared = events[1][0]
        assert ONSET + 60 + 15 <= cleared <= ONSET + 60 + 45  # back near the start, held 15 min

    @pytest.mark.parametrize(
        ("name", "top", "bottom", "blocked"),
        [
            (
                "a satellite's pulse meets a blockage: the top surcharges, the bottom sees it",
                lambda m: 20 + step(m, 60, DAY) + ramp(m, 80, start=DAY + 2, top=1200),
                lambda m: 25 + step(m, 25, DAY + 3, minutes=6),
                True,
            ),
            (
                "a pulse spreading on its way: the bottom rises half as much as the top",
                lambda m: 20 + step(m, 60, DAY, minutes=6),
                lambda m: 25 + step(m, 30, DAY + 3, minutes=10),
                False,
            ),
            (
                "a pulse twice the day's highest, the bottom rising a quarter as much",
                lambda m: 20 + step(m, 120, DAY, minutes=8),
                lambda m: 25 + step(m, 15, DAY + 3, minutes=12),
                False,
            ),
        ],
    )
    def test_a_top_outrunning_a_flow_wave(self, name, top, bottom, blocked):
        """A rise at both ends is a flow wave, unless the top climbs to several times the
        bottom's rise and over anything the day brought it: a blockage whose backwater
        outruns the flow wave that met it (a dry blockage missed on a dev seed)."""
        reach = SewerReach("R1", "lv-up", "lv-down", station="ps-01", length_m=166.0)

        def day(f):
            return lambda m: f(m) + (15.0 if m % 240 < 20 else 0.0)  # a satellite's pulses

        events = run_reach(day(top), day(bottom), DAY + 60, reach=reach)
        raised = [m for m, k in kinds_at(events) if k == "sewer.blockage_suspected"]
        if blocked:
            assert raised and DAY < raised[0] <= DAY + 15, name
        else:
            assert [m for m in raised if m >= DAY] == [], name

    @staticmethod
    def storm(peak, lag, tau):
        """A storm's run-off at one end: rising for the hour of rain (to ONSET) and ``lag``
        minutes more, then receding with time constant ``tau`` minutes."""

        def depth(m):
            if m < ONSET - 60:
                return 0.0
            if m < ONSET + lag:
                return peak * (m - (ONSET - 60)) / (60 + lag)
            return peak * math.exp(-(m - ONSET - lag) / tau)

        return depth

    @pytest.mark.parametrize(
        ("top", "bottom"),
        [
            pytest.param((15, 0, 40), (80, 30, 20), id="bottom peaks 30 min late, recedes fast"),
            pytest.param((15, 0, 40), (90, 40, 15), id="bottom peaks 40 min late"),
            pytest.param((20, 10, 30), (80, 35, 25), id="both late, the bottom more"),
        ],
    )
    def test_a_storm_s_tail_receding_at_the_bottom_is_not_starving(self, top, bottom):
        """An hour of rain ends at ONSET; the run-off peaks later and recedes faster at the
        bottom (more catchment above it). An hour after the rain its fall against a baseline
        hour still in the storm's tail is no starved bottom."""
        up, down = self.storm(*top), self.storm(*bottom)
        events = run_reach(
            lambda m: 60 + up(m),
            lambda m: 75 + down(m),
            ONSET + 240,
            rain=lambda m: 8.0 if ONSET - 60 <= m < ONSET else 0.0,
        )
        assert kinds_at(events) == []

    def test_a_starved_bottom_two_hours_after_rain_is_still_raised(self):
        """Blocked 130 min after the rain stopped (dry by the benchmark's count), the storm
        long drained: starved once the baseline hour is all dry weather."""
        onset = ONSET + 130
        events = run_reach(
            lambda m: 60.0,
            lambda m: 80 - ramp(m, 4, start=onset, top=45),
            onset + 60,
            rain=lambda m: 8.0 if ONSET - 60 <= m < ONSET else 0.0,
        )
        raised = [m for m, k in kinds_at(events) if k == "sewer.blockage_suspected"]
        assert raised and onset < raised[0] <= onset + 15


def pulse(m: float, every: float = 180, width: float = 15, lag: float = 0, height: float = 25.0):
    """A satellite pump's pulse every ``every`` minutes."""
    return height if 0 <= (m - lag) % every < width else 0.0


def drifting(rate_mm_per_day: float, after_days: float = 7.0):
    """A gauge's zero, true for a week, then drifting (``rate_mm_per_day``)."""
    return lambda m: rate_mm_per_day * max(m / DAY_MIN - after_days, 0.0)


class TestDriftingZero:
    """A level gauge's zero drifts over months: at dry depths of tens of millimetres, a zero
    drifted low makes every change at that end a larger relative change, and the ends pull
    apart with no blockage between them (the year's false blockages on generated sites). The
    rule learns each end's zero from its dry days' lowest levels."""

    @staticmethod
    def feed(zero: _Zero, lows, calm=lambda day: True, per_day: int = 288):
        """Days whose readings (every five minutes) bottom out at ``lows[day]`` at night."""
        for day, low in enumerate(lows):
            for k in range(per_day):
                m = k * 1440 / per_day
                zero.push(day * ZERO_DAY_S + 60.0 * m, diurnal(m, low + 25.0, 25.0), calm(day))
        zero.push(len(lows) * ZERO_DAY_S, 0.0, True)  # the next day's first reading

    @pytest.mark.parametrize(
        ("name", "lows", "calm", "offset"),
        [
            ("steady nights: no drift", [30.0] * 20, lambda d: True, 0.0),
            (
                "a zero drifting low 0.5 mm a day after its first week",
                [30.0 - 0.5 * max(d - 7, 0) for d in range(28)],
                lambda d: True,
                -0.5 * (27 - 7 - 3),  # the median of the last week: three days behind
            ),
            (
                "blocked or wet days (a starved bottom reading 5 mm) are not learnt",
                [5.0 if d in (9, 10, 11, 12) else 30.0 for d in range(16)],
                lambda d: d not in (9, 10, 11, 12),
                0.0,
            ),
        ],
    )
    def test_the_offset_from_the_dry_days_lows(self, name, lows, calm, offset):
        zero = _Zero()
        self.feed(zero, lows, calm)
        assert zero.reference is not None, name
        assert zero.offset == pytest.approx(offset, abs=0.3), name

    def test_the_windows_do_not_step_when_the_offset_is_learnt(self):
        """The offset changes once a day: the windows' samples go with it, so the recent
        mean against the baseline moves no more than the levels did."""
        end = _End(300.0, 300.0, 3600.0, 10.0, fresh_s=300.0, zero=True)
        before = []
        for k in range(ZERO_DAYS + 2):
            for m in range(1440):
                ts = k * ZERO_DAY_S + 60.0 * m
                offset = end.offset()
                end.update(diurnal(m, 40.0, 15.0) - 2.0 * k, ts, dry=True)
                if end.offset() != offset:
                    before.append((offset, end.offset(), end.shift()))
        learnt = [(old, new, shift) for old, new, shift in before if new != old]
        assert learnt and all(abs(shift) < 0.1 for *_, shift in learnt)

    @pytest.mark.parametrize(
        ("name", "top_drift", "bottom_drift"),
        [
            ("the top's zero drifting low", -2.0, 0.0),
            ("the ends' zeros drifting apart", -2.0, 2.0),
        ],
    )
    def test_a_drifted_zero_is_no_blockage(self, name, top_drift, bottom_drift):
        """Three weeks of dry days with a satellite's pulses passing both ends; one gauge's
        zero 26 mm off by the end (a drifted zero read the pulses' passing as the ends
        pulling apart)."""
        top, bottom = drifting(top_drift), drifting(bottom_drift)
        events = run_reach(
            lambda m: diurnal(m, 40.0, 15.0) + pulse(m) + top(m),
            lambda m: diurnal(m - 3, 45.0, 15.0) + pulse(m, lag=4, width=18, height=18) + bottom(m),
            20 * DAY_MIN,
            noise=3.0,
        )
        assert kinds_at(events) == [], name

    @pytest.mark.parametrize(
        ("name", "settings_changed", "same_reach", "kept"),
        [
            ("a reload with the same settings", False, True, True),
            ("a reload with other settings keeps the gauges' zeros", True, True, True),
            ("another reach's gauges learn their own", False, False, False),
        ],
    )
    def test_a_reload_keeps_the_learnt_zeros(self, name, settings_changed, same_reach, kept):
        """Weeks of dry days go into a zero: a reload that only changes the rule's settings
        must not start them over (the drift belongs to the gauge)."""
        reach = SewerReach("R1", "lv-up", "lv-down", station="ps-01", length_m=120.0)
        top = drifting(-2.0)
        seen = []
        run_reach(
            lambda m: diurnal(m, 40.0, 15.0) + top(m),
            lambda m: diurnal(m - 3, 45.0, 15.0),
            20 * DAY_MIN,
            reach=reach,
            noise=1.0,
            each_minute=lambda m, rule: seen.append(rule) if m == 20 * DAY_MIN - 1 else None,
        )
        old = seen[0]
        assert old.up.offset() < -10.0, name
        config = BlockageConfig(reach_shift_pct=20.0) if settings_changed else BlockageConfig()
        new_reach = reach if same_reach else SewerReach("R2", "lv-a", "lv-b", station="ps-01")
        new = ReachBlockageRule(
            new_reach,
            DryWeather(("rg-01",), config.dry_rain_mm_h, config.dry_for_s),
            config,
            backed_up_below=lambda: None,
            blocked_above=lambda: None,
        )
        new.carry_over(old, same_device=True)
        assert (new.up.offset() == old.up.offset()) is kept, name

    def test_a_blockage_on_a_drifted_reach_is_still_raised(self):
        """The zeros learnt, a blockage is a blockage: raised within 15 minutes."""
        onset = 20 * DAY_MIN
        top, bottom = drifting(-1.0), drifting(1.0)
        events = run_reach(
            lambda m: diurnal(m, 40.0, 15.0) + top(m) + ramp(m, 5, start=onset),
            lambda m: diurnal(m - 3, 45.0, 15.0) + bottom(m) - ramp(m, 2, start=onset, top=25),
            onset + 60,
            noise=3.0,
        )
        raised = [m for m, k in kinds_at(events) if k == "sewer.blockage_suspected"]
        assert raised and onset < raised[0] <= onset + 15


class TestStuckGauge:
    """When a run of equal readings is a gauge that has stopped measuring (``_End.stuck``)."""

    @pytest.mark.parametrize(
        ("name", "noise", "resolution", "not_yet", "by"),
        [
            ("scatter far over the resolution: five are enough", 2.0, None, 4, 5),
            ("1 mm and 2 mm of scatter: a repeat one time in seven", 2.0, 1.0, 6, 12),
            ("1 mm and 4 mm of scatter: one time in fifteen", 4.0, 1.0, 5, 8),
        ],
    )
    def test_a_run_is_stuck_once_chance_would_not_give_it(
        self, name, noise, resolution, not_yet, by
    ):
        """An hour of a flat night flow (350 mm) read with the gauge's scatter, then one
        value over and over: not stuck after ``not_yet`` equal readings (its scatter repeats
        that many by chance now and then), stuck by ``by`` (not by chance in years)."""
        rng = np.random.default_rng(5)
        end = _End(300.0, 300.0, 3600.0, 10.0, fresh_s=300.0)
        value = 0.0
        for m in range(70):
            value = 350.0 + rng.normal(0, noise)
            value = value if resolution is None else round(value / resolution) * resolution
            end.update(value, 60.0 * m)
        stuck_at = {}  # equal readings in a row: taken for stuck?
        m = 70
        while end.gauge.readings < by:
            end.update(value, 60.0 * m)
            stuck_at[end.gauge.readings] = end.stuck
            m += 1
        assert not any(stuck for same, stuck in stuck_at.items() if same <= not_yet), name
        assert stuck_at[by] and not end.fresh(60.0 * (m - 1)), name
        end.update(value + 3.0, 60.0 * m)  # it moves again: its windows start afresh
        assert not end.stuck and not end.ready() and end.fresh(60.0 * m), name


class TestManholeOverflow:
    def run(self, level, minutes, rim=3000.0, rain=None, poll_min=1):
        manhole = Manhole("lv-up", rim, crown_mm=600.0, storm_mm_h=40.0)
        gauges = DryWeather(("rg-01",), 0.5, 3600.0)
        rule = ManholeOverflowRule(manhole, OverflowConfig(), gauges if rain else None)
        out = []
        for m in range(minutes):
            if rain:
                gauges.on_rain(reading("rg-01", "rain_rate", rain(m), 60.0 * m))
            if m % poll_min == 0:
                value = reading("lv-up", "level", level(m), 60.0 * m)
                out += [(m, e) for e in rule.on_level(value)]
        return out

    @pytest.mark.parametrize("poll_min", [1, 2, 3, 5])
    def test_warned_ahead_whatever_the_gauge_s_poll_interval(self, poll_min):
        """Polled every two minutes or more, five minutes never held the four readings a
        slope needs: the ETA never counted and the warning came at 85 % of the depth."""
        events = self.run(lambda m: 1000 + 40 * m, 50, poll_min=poll_min)
        minute, event = events[0]
        assert event.kind == "overflow.risk" and "rising to the rim" in event.data["reasons"][0]
        assert (3000 - 1000) / 40 - minute >= 20

    def test_a_storm_heading_over_the_design_warns_before_the_level_s_rate(self):
        """Rain at 5 design storms on a 6 m manhole: the run-off climbs over the catchment's
        lag, the pipe surcharges (over the 600 mm crown) and the surcharge grows as the
        square of the flow (300 mm at 1.41 design storms, the rim at 4.4): the forecast
        warns while the level is under half the depth, where its own rate counts nothing."""
        runoff = RunoffModel(1.0, DEFAULT_LAG_S)
        levels = {}

        def level(m):  # the steady surcharge at the run-off now
            runoff.rain(200.0, 60.0 * m)
            ratio = runoff.inflow_l_s / 40.0
            levels[m] = 600.0 * ratio if ratio < 1 else 600.0 + 300.0 * (ratio * ratio - 1)
            return levels[m]

        events = self.run(level, 40, rain=lambda m: 200.0, rim=6000.0)
        minute, event = events[0]
        assert event.kind == "overflow.risk"
        (forecast,) = [r for r in event.data["reasons"] if r.startswith("run-off at ")]
        assert "x the sewer's design storm (40 mm/h): at the rim in" in forecast
        rim_at = min(m for m, v in levels.items() if v >= 6000.0)
        assert rim_at - minute >= 5

    def test_a_burst_that_eases_before_the_catchment_sends_it_is_no_reason(self):
        """Six minutes at 3.5 design storms, then light rain: the pipe surcharges a little
        and the run-off heads down before it gets anywhere near the rim's."""
        runoff = RunoffModel(1.0, DEFAULT_LAG_S)

        def rain(m):
            return 140.0 if m < 6 else 20.0

        def level(m):
            runoff.rain(rain(m), 60.0 * m)
            ratio = runoff.inflow_l_s / 40.0
            return 600.0 * ratio if ratio < 1 else 600.0 + 300.0 * (ratio * ratio - 1)

        assert self.run(level, 60, rain=rain) == []

    def test_a_surge_that_levels_off_under_the_rim_is_no_reason(self):
        """A wave from upstream lifts the level 100 mm/min for eight minutes and levels
        off at 60 % of the depth: its eight minutes say nothing of the next twelve. (Before,
        the rate of the surge gave an ETA of 12 minutes and a false warning.)"""
        assert self.run(lambda m: 1000.0 + 100 * min(max(m - 10, 0), 8), 60) == []
        # the same rise going on is warned once it has lasted as long as the time left
        events = self.run(lambda m: 1000.0 + 100 * max(m - 10, 0), 60)
        minute, event = events[0]
        assert event.kind == "overflow.risk" and 18 < minute < 30

    def test_rain_beyond_the_design_storm_with_the_pipe_half_full_is_no_reason(self):
        """What a design storm does: the pipe runs half full, then fuller; the rim of a 3 m
        manhole is hours off at this rate."""
        assert self.run(lambda m: 100 + 5 * min(m, 100), 120, rain=lambda m: 55.0) == []

    def test_rain_within_the_design_storm_is_no_reason(self):
        assert self.run(lambda m: 100 + 20 * min(m, 30), 40, rain=lambda m: 35.0) == []

    def test_warned_before_the_rim_with_the_time_left(self):
        """Surcharged and climbing 40 mm/min for the last 20 min, at 1000 mm: the rim is 50
        min off; the rate is trusted as far ahead as the rise has lasted, so the warning
        comes half an hour before the rim."""
        events = self.run(lambda m: 200 + 40 * m, 80)
        minute, event = events[0]
        assert event.kind == "overflow.risk"
        reach_rim = (3000 - 200) / 40
        assert reach_rim - minute >= 25  # warned at least 25 minutes before the rim
        assert 0 < event.data["eta_min"] <= 30
        assert event.data["surcharged"] is True and event.data["rim_mm"] == 3000.0

    def test_a_fast_rise_low_in_the_manhole_is_not_a_risk(self):
        """A storm's first flush: 60 mm/min, but from 200 to 1200 mm in a 3 m manhole."""
        events = self.run(lambda m: 200 + 60 * min(m, 16) - 5 * max(m - 16, 0), 60)
        assert events == []

    def test_near_the_rim_whatever_the_rate(self):
        events = self.run(lambda m: 2600.0, 5)
        assert [e.kind for _, e in events] == ["overflow.risk"]
        assert events[0][1].data["reasons"] == ["within 400 mm of the rim"]

    def test_clears_when_it_drains(self):
        events = self.run(lambda m: 2600.0 if m < 10 else 800.0, 40)
        # the median of three sees the drop at minute 11; 15 minutes later it clears
        assert [(m, e.kind) for m, e in events] == [
            (0, "overflow.risk"),
            (26, "overflow.risk.cleared"),
        ]


class TestDryWeather:
    def test_dry_after_an_hour_and_rained_within(self):
        rain = DryWeather(("rg-01", "rg-02"), 0.5, 3600.0)
        for m in range(120):
            for gauge in ("rg-01", "rg-02"):
                value = 3.0 if gauge == "rg-02" and m == 10 else 0.0
                rain.on_rain(reading(gauge, "rain_rate", value, 60.0 * m))
        assert rain.rained_within(60.0 * 30, 3600.0)
        assert not rain.dry(60.0 * 60)  # rg-02 saw rain at minute 10
        assert rain.dry(60.0 * 71)
        assert not rain.rained_within(60.0 * 71, 3600.0)

    def test_a_gauge_never_heard_from_is_not_dry(self):
        rain = DryWeather(("rg-01",), 0.5, 0.0)
        assert not rain.dry(1e9)
