"""``WetWellRule``: a pump station judged by its cycles, never by the rise its pumps answer.

A small volume balance drives it (written here, apart from drivers/sim): inflow in l/s, pumps
of a rated l/s each with a health factor, start / assist / stop levels, the duty rotating
every cycle; the gauge and the pump states are read every 20 s, with gauge noise."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edge_agent.rules.config import WetWellConfig
from edge_agent.rules.network import WetWell
from edge_agent.rules.sewer import DryWeather
from edge_agent.rules.stuck import STUCK_READINGS
from edge_agent.rules.wet_well import WetWellRule
from tests.edge_agent.rules.helpers import reading

PUMPS = ("pump1_running", "pump2_running", "pump3_running")
AREA_M2 = 6.0
PUMP_L_S = 30.0
STEP_S = 20.0


def station(
    hours: float,
    *,
    inflow=lambda t: 6.0,
    health=lambda t, pump: 1.0,
    rain=lambda t: 0.0,
    well: WetWell | None = None,
    config: WetWellConfig | None = None,
    seed: int = 3,
    upstream_blocked=None,
    echo=lambda t: 0.0,
    silent=lambda t: False,
    stuck=lambda t: False,
    inflows: list | None = None,
    noise: float = 4.0,
    resolution: float | None = None,
    levels: list | None = None,
):
    """Run a 3-pump station (duty / assist / standby) for ``hours``; (t, event) list. The
    gauge's scatter is ``noise`` (mm), its readings rounded to ``resolution`` if given and
    appended to ``levels``."""
    rng = np.random.default_rng(seed)
    well = well or WetWell("ps-01", "lv-01", overflow_mm=4000, assist_mm=2200)
    rule = WetWellRule(well, PUMPS, DryWeather(("rg-01",), 0.5, 3600.0), config or WetWellConfig())
    if upstream_blocked is not None:
        rule.upstream_blocked = upstream_blocked
    if inflows is not None:  # the fill rates handed to the reaches above: (t, mm/min)
        rule.inflow_listeners.append(lambda ts, rate: inflows.append((ts, rate)) or [])
    level, running, duty = 900.0, [False, False, False], 0
    value = level
    out = []
    t = 0.0
    while t < hours * 3600:
        pumped = sum(PUMP_L_S * health(t, i) for i in range(3) if running[i])
        level = max(level + (inflow(t) - pumped) * STEP_S / AREA_M2, 0.0)
        want = 0
        if level >= 1600:
            want = 1
        if level >= 2200:
            want = 2
        if level <= 500:
            running = [False] * 3
        elif sum(running) < want:
            if not any(running):
                duty = (duty + 1) % 3
            for i in (duty, (duty + 1) % 3, (duty + 2) % 3):
                if sum(running) < want and not running[i]:
                    running[i] = True
        t += STEP_S
        readings = [reading("rg-01", "rain_rate", rain(t), t)]
        readings += [reading("ps-01", p, running[i], t) for i, p in enumerate(PUMPS)]
        if not silent(t):
            noisy = level + rng.normal(0, noise) + echo(t)
            if resolution is not None:
                noisy = round(noisy / resolution) * resolution
            value = value if stuck(t) else noisy  # stuck: the last reading over again
            if levels is not None:
                levels.append(value)
            readings.append(reading("lv-01", "level", value, t + 0.5))
        for r in readings:
            if r.device == "rg-01":
                rule.rain.on_rain(r)
            elif r.device == "ps-01":
                out += [(t, e) for e in rule.on_pump(r)]
            else:
                out += [(t, e) for e in rule.on_level(r)]
    return out, rule


def diurnal_inflow(t: float) -> float:
    hour = (t / 3600.0) % 24
    return 6.0 * (
        0.5
        + 0.9 * np.exp(-(((hour - 8.5) / 2.5) ** 2))
        + 0.4 * np.exp(-(((hour - 19.5) / 2.5) ** 2))
    )


class TestNormalCycling:
    """The most ordinary thing a wet well does raises nothing."""

    @pytest.mark.parametrize(
        ("name", "inflow", "rain"),
        [
            ("two dry days, diurnal inflow", diurnal_inflow, lambda t: 0.0),
            (
                "a storm: the duty pump cannot keep up, the assist pump joins",
                lambda t: 45.0 if 10 * 3600 < t < 14 * 3600 else diurnal_inflow(t),
                lambda t: 20.0 if 10 * 3600 < t < 14 * 3600 else 0.0,
            ),
        ],
    )
    def test_no_events(self, name, inflow, rain):
        events, rule = station(48, inflow=inflow, rain=rain)
        assert events == [], name
        assert len(rule.runs) >= 10  # it did learn its cycles
        assert rule.expected_drawdown() == pytest.approx(PUMP_L_S / AREA_M2 * 60, rel=0.25)

    def test_stray_echoes_tilt_no_slope(self):
        """A stray echo (+1.5 m: a ladder, foam) every 24 1/3 minutes, a little off the
        cycle, so that over a day some fall in the few readings a start's slopes are fitted
        to: a median of three takes them out (fitted raw, three tilted a start by more than
        a pump moves: a false no_drawdown, as one did on a generated site of the benchmark)."""
        events, _ = station(24, echo=lambda t: 1500.0 if t % 1460 == 0 else 0.0)
        assert events == []

    def test_a_gauge_silent_up_to_a_start(self):
        """The gauge's echo is lost for 8 minutes in every 25 1/3 (a little off the cycle, so
        that over a day some silences end just after a start): a start with no readings
        just before it has no slope before it, and no level is a median across a silence.
        (The benchmark's case, a 30 s gauge whose echo came back a minute after a start and
        whose first levels were medians with readings from before the silence, measured a
        healthy start at 52 of 247 mm/min; at this 20 s poll the old mix stayed under the
        threshold: this guards the silences, it does not reproduce that case.)"""
        events, rule = station(24, silent=lambda t: t % 1520 < 480)
        assert events == []
        assert len(rule.effects) >= 3  # the starts it could see were judged


class TestStuckGauge:
    """A stuck gauge reads its last value over and over while the pumps keep cycling."""

    @pytest.mark.parametrize(
        ("name", "stuck_from_h", "stuck_to_h"),
        [
            ("stuck for two hours", 6.0, 8.0),
            ("stuck for half an hour", 6.0, 6.5),
            ("stuck for six hours", 3.0, 9.0),
        ],
    )
    def test_no_fill_rate_from_a_stuck_gauge(self, name, stuck_from_h, stuck_to_h):
        """Its slope, 0, is no inflow: a reach ending at this station took it for a starved
        bottom (a false blockage on a generated site of the benchmark). None is handed on
        once it has read one value ``STUCK_READINGS`` times over, nor for ``check_s`` after it
        moves again; before and after, the fill rates are."""
        inflows: list = []
        config = WetWellConfig()
        stuck = lambda t: stuck_from_h * 3600 <= t < stuck_to_h * 3600  # noqa: E731
        events, _ = station(12, stuck=stuck, inflows=inflows, config=config)
        assert events == [], name
        seen = stuck_from_h * 3600 + (STUCK_READINGS + 1) * STEP_S
        free = stuck_to_h * 3600 + config.check_s
        assert [r for t, r in inflows if seen <= t <= free] == [], name
        rates = [r for t, r in inflows if not stuck_from_h * 3600 <= t <= free]
        assert len(rates) > 20 and min(rates) > 0.5 * 60.0, name  # 6 l/s over 6 m2

    @pytest.mark.parametrize("moves_at_s", [3000.0, 3080.0, 3160.0])
    def test_a_start_while_stuck_is_not_judged_once_the_gauge_moves(self, moves_at_s):
        """A pump starts while the gauge is stuck and the gauge moves again before the check:
        the slope before the start is the stuck gauge's 0, the one after mixes its stuck
        value with the truth. Judged, the start at 3080 s drew down "41.6 mm/min" where the
        pump moved 228, as seed 13 riverside's did in the benchmark (its gauge stuck for
        hours)."""
        stuck = lambda t: 6 * 3600 <= t < 6 * 3600 + moves_at_s  # noqa: E731
        events, rule = station(9, stuck=stuck)
        assert events == []
        assert len(rule.effects) >= 3  # the starts before and after were judged

    @pytest.mark.parametrize("seed", [3, 4, 5])
    def test_equal_readings_by_chance_are_no_stuck_gauge(self, seed):
        """A well filling 5 mm a minute at night (0.5 l/s over 6 m2), read every 20 s to the
        mm with 2 mm of scatter, repeats a reading about one time in eight, and four equal
        readings in a row a few times a day, which the old rule (three repeats) took for a
        stuck gauge: it withheld the fill rate for ``check_s``. Rounded, the gauge hands on
        its fill rate at every reading the unrounded one does, and every start is judged."""

        def play(resolution: float | None):
            inflows: list = []
            levels: list = []
            events, rule = station(
                24,
                inflow=lambda t: 0.5,
                noise=2.0,
                resolution=resolution,
                inflows=inflows,
                levels=levels,
                seed=seed,
            )
            return events, rule, [t for t, _ in inflows], levels

        events, rule, rated, levels = play(1.0)
        _, unrounded, unrounded_rated, _ = play(None)
        runs = [len(list(run)) for _, run in itertools.groupby(levels)]
        assert max(runs) >= 4  # the chance runs are there
        assert events == []
        assert rated == unrounded_rated
        assert len(rule.effects) == len(unrounded.effects) >= 5

    @pytest.mark.parametrize("seed", [3, 4, 5])
    @pytest.mark.parametrize("stuck_from_h", [6.0, 7.0, 9.5])
    def test_a_stuck_gauge_read_to_the_mm_is_still_caught(self, seed, stuck_from_h):
        """The same slowly filling well, its gauge stuck for two hours: at one equal step in
        eight, seven in a row (eight equal readings) come by chance under once in a million
        readings; it is caught after eight or nine (the reading before it stuck among them),
        within ten (four before). No fill rate from then until ``check_s`` after it moves."""
        inflows: list = []
        config = WetWellConfig()
        start, end = stuck_from_h * 3600, stuck_from_h * 3600 + 7200
        events, _ = station(
            12,
            inflow=lambda t: 0.5,
            noise=2.0,
            resolution=1.0,
            inflows=inflows,
            seed=seed,
            stuck=lambda t: start <= t < end,
            config=config,
        )
        assert events == []
        # the reading at ``start + k * STEP_S`` is the run's (k + 2)th
        caught = start + (10 - 2) * STEP_S
        assert [t for t, _ in inflows if caught <= t <= end + config.check_s] == []
        assert any(t > end + config.check_s for t, _ in inflows)


class TestFaults:
    def test_a_pump_that_runs_but_does_not_pump(self):
        """Pump 2 air-locks at hour 6: its next start does not draw down; it clears once
        pump 2 pumps again (repaired at hour 12) and starts."""
        broken = lambda t, pump: 0.0 if pump == 1 and 6 * 3600 <= t < 12 * 3600 else 1.0  # noqa: E731
        events, _ = station(24, health=broken)
        kinds = [(t, e.kind) for t, e in events]
        assert [k for _, k in kinds] == ["wet_well.fault", "wet_well.fault.cleared"]
        raised = events[0][1]
        assert raised.dev == "ps-01"
        assert raised.data["faults"] == ["no_drawdown:pump2_running"]
        assert raised.data["drawdown_mm_per_min"] < 0.3 * raised.data["expected_mm_per_min"]
        assert 6 * 3600 < kinds[0][0] < 9 * 3600  # pump 2's next duty turn, plus the check
        assert kinds[1][0] > 12 * 3600

    def test_rated_drawdown_before_any_cycle_is_known(self):
        """A pump that never pumped, from the first start: the rated flow says so."""
        well = WetWell("ps-01", "lv-01", area_m2=AREA_M2, pump_l_s=PUMP_L_S)
        events, _ = station(2, health=lambda t, pump: 0.0 if pump == 1 else 1.0, well=well)
        assert events and events[0][1].data["expected_mm_per_min"] == pytest.approx(300.0)

    def test_a_worn_pump_runs_far_over_normal_in_dry_weather(self):
        """From hour 20 every pump moves 40 % of its rated flow: each start still draws down
        (40 % of a normal start), but a run takes over three times as long."""
        worn = lambda t, pump: 0.4 if t >= 20 * 3600 else 1.0  # noqa: E731
        events, _ = station(26, inflow=lambda t: 5.0, health=worn)
        faults = [e for _, e in events if e.kind == "wet_well.fault"]
        assert faults and "long_run" in faults[0].data["faults"]
        assert faults[0].data["run_s"] >= 3 * faults[0].data["normal_run_s"]

    def test_long_runs_in_the_rain_are_the_rain(self):
        worn = lambda t, pump: 0.4 if t >= 20 * 3600 else 1.0  # noqa: E731
        events, _ = station(
            26, inflow=lambda t: 5.0, health=worn, rain=lambda t: 3.0 if t > 19 * 3600 else 0.0
        )
        assert all("long_run" not in e.data.get("faults", []) for _, e in events)


def emptying_after_a_blockage(start_s: float, climb_l_s_per_min: float):
    """6 l/s; from hour 6 a blockage upstream holds all but 0.3 l/s back; cleared at hour 7,
    the backed-up sewer empties from ``start_s`` after: the inflow climbs by
    ``climb_l_s_per_min`` to 56 l/s, holds eight minutes, then ebbs over a quarter hour."""

    def inflow(t: float) -> float:
        if 6 * 3600 <= t < 7 * 3600:
            return 0.3
        surge_at = 7 * 3600 + start_s
        if t < surge_at:
            return 6.0
        minutes = (t - surge_at) / 60.0
        return 6.0 + min(minutes * climb_l_s_per_min, 50.0) * np.exp(-max(minutes - 8, 0) / 15)

    return inflow


class TestSurges:
    """A sewer emptying into the well after a blockage upstream is cleared: the inflow grows
    between the slopes a start is judged by, by more than a pump moves."""

    @pytest.mark.parametrize(
        ("start_s", "climb"),
        [(720, 10.0), (720, 6.0), (1080, 6.0), (2160, 6.0)],
    )
    def test_a_start_into_the_surge_is_no_pump_fault(self, start_s, climb):
        """(Judged like any other start, each of these raised a false ``no_drawdown`` or
        ``long_run``.)"""
        events, rule = station(10, inflow=emptying_after_a_blockage(start_s, climb))
        assert events == []
        assert rule.normal_fill() == pytest.approx(60.0, rel=0.1)  # 6 l/s over 6 m2

    @pytest.mark.parametrize(
        ("start_s", "climb"),
        [(640, 6.0), (760, 10.0), (800, 10.0), (2080, 6.0), (2160, 10.0), (2200, 10.0)],
    )
    def test_a_surge_that_began_within_the_slope_before_a_start(self, start_s, climb):
        """The surge starts a minute or two before a start: the slope before it mixes the
        normal inflow with the surge's (under twice the normal fill), and the inflow grows on
        through the slope after it, by more than the pump moves. The slope's last half,
        steeper than the whole by more than the share asked, tells of the growth: the start
        is not judged. (Each of these raised a false ``no_drawdown``, as a cleared blockage's
        surge did on generated-2 of the benchmark's seed 12: 33.6 mm/min measured where the
        pump moved 245.)"""
        events, rule = station(10, inflow=emptying_after_a_blockage(start_s, climb))
        assert events == []
        assert rule.normal_fill() == pytest.approx(60.0, rel=0.1)

    def test_a_steady_inflow_is_no_growth(self):
        """A dead pump under the steady inflow is still judged at its first start: the
        slope's last half is no steeper than the whole by more than noise."""
        dead = lambda t, pump: 0.0 if pump == 1 else 1.0  # noqa: E731
        events, _ = station(4, health=dead)
        assert [e.data["faults"] for _, e in events][:1] == [["no_drawdown:pump2_running"]]

    def test_no_start_judged_while_the_sewer_upstream_is_blocked_or_just_cleared(self):
        """A surge so steep that the start before it cannot tell it from a dead pump: the
        blockage rule of a reach draining here was raised until hour 7, so the inflow is no
        normal one for an hour after."""
        inflow = emptying_after_a_blockage(840, 10.0)
        events, _ = station(10, inflow=inflow)
        assert [e.kind for _, e in events][:1] == ["wet_well.fault"]  # on its own: fooled
        blocked_until = lambda: 7 * 3600.0  # noqa: E731
        events, _ = station(10, inflow=inflow, upstream_blocked=blocked_until)
        assert events == []

    def test_a_dead_pump_is_still_caught_at_its_next_start(self):
        """Pump 3 air-locks as the surge comes: its start into the surge is not judged, its
        next start in the normal inflow is."""
        dead = lambda t, pump: 0.0 if pump == 2 and t >= 7 * 3600 else 1.0  # noqa: E731
        events, _ = station(12, inflow=emptying_after_a_blockage(720, 10.0), health=dead)
        faults = [(t, e) for t, e in events if e.kind == "wet_well.fault"]
        assert faults and faults[0][1].data["faults"] == ["no_drawdown:pump3_running"]
