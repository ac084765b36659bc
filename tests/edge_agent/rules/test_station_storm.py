"""The station's storm forecast: the gain it learns from its own storms, the dry-weather base,
and when the well spills (the learnt gain and its upper bound), time from the readings."""

from __future__ import annotations

import math

import pytest

from edge_agent.rules.station_storm import PRIOR_SAMPLES, StationStormForecast


def storm(forecast: StationStormForecast, gain: float, rain_mm_h: float, minutes: int, t0=0.0):
    """Rain at ``rain_mm_h`` for ``minutes``, the well taking 5 l/s plus ``gain`` times the
    run-off (the catchment as the model has it), measured every 30 s; returns the last ts."""
    ts = t0
    for _ in range(minutes * 2):
        forecast.rain(rain_mm_h, ts)
        forecast.observe(ts, 5.0 + gain * forecast.runoff.inflow_l_s, 1000.0, 4000.0)
        ts += 30.0
    return ts


class TestLearning:
    def test_the_dry_weather_base_is_the_inflow_without_rain(self):
        forecast = StationStormForecast(2.5)
        ts = storm(forecast, gain=0.0, rain_mm_h=0.0, minutes=600)
        assert forecast.base_l_s == pytest.approx(5.0)
        assert ts > 0

    def test_the_gain_moves_from_the_design_figure_to_the_station_s_own(self):
        """The site file says 2.5 l/s per mm/h; the station takes 5 (a storm cell over the
        catchment heavier than at the gauge): after two storms the forecast uses about 5."""
        forecast = StationStormForecast(2.5)
        assert forecast.gain == pytest.approx(2.5)
        ts = storm(forecast, 0.0, 0.0, 120)
        ts = storm(forecast, 5.0, 20.0, 120, ts)
        ts = storm(forecast, 0.0, 0.0, 600, ts)
        storm(forecast, 5.0, 30.0, 120, ts)
        assert forecast.gain == pytest.approx(5.0, rel=0.05)

    def test_without_a_design_figure_nothing_is_foretold_until_a_storm_is_seen(self):
        forecast = StationStormForecast(None)
        assert forecast.gain == 0.0
        ts = storm(forecast, 0.0, 0.0, 120)
        storm(forecast, 4.0, 20.0, 60, ts)
        assert forecast.gain == pytest.approx(4.0, rel=0.05)

    def test_a_spilling_well_is_not_learnt_from(self):
        """At its overflow level the well measures its pumps, not its inflow."""
        forecast = StationStormForecast(2.5)
        ts = 0.0
        for _ in range(240):
            forecast.rain(40.0, ts)
            forecast.observe(ts, 60.0, 3950.0, 4000.0)  # capped at the pumps' 60 l/s
            ts += 30.0
        assert forecast.gain == pytest.approx(2.5)

    def test_scatter_widens_the_upper_bound(self):
        forecast = StationStormForecast(3.0)
        assert forecast.spread == 0.0
        ts = storm(forecast, 0.0, 0.0, 60)
        ts = storm(forecast, 2.0, 20.0, 60, ts)
        storm(forecast, 6.0, 20.0, 60, ts + 36000.0)
        assert 0.2 < forecast.spread <= 1.0
        assert forecast._n > PRIOR_SAMPLES


class TestEta:
    def test_no_rain_is_the_inflow_now_held(self):
        """80 l/s against 60 of pumps into 12 m3 left: 10 minutes, both bounds alike."""
        forecast = StationStormForecast(2.5)
        eta = forecast.eta_min(0.0, 80.0, 60.0, 12_000.0, 1800.0)
        assert eta.central == pytest.approx(10.0)
        assert eta.earliest == pytest.approx(10.0)
        assert eta.peak_l_s == pytest.approx(80.0)

    def test_the_pumps_passing_it_is_no_spill(self):
        forecast = StationStormForecast(2.5)
        eta = forecast.eta_min(0.0, 50.0, 60.0, 1_000.0, 1800.0)
        assert eta.central is None and eta.earliest is None

    def test_the_run_off_still_to_come_brings_the_spill_nearer(self):
        """Ten minutes into 40 mm/h, the run-off at about 63 % of it: the inflow now (55 l/s)
        is under the pumps, the rest of the storm's run-off puts it over them."""
        forecast = StationStormForecast(2.5)
        ts = 0.0
        for _ in range(20):
            forecast.rain(40.0, ts)
            ts += 30.0
        forecast.runoff.advance(ts)
        assert 0.5 < forecast.runoff.inflow_l_s / 40.0 < 0.7
        eta = forecast.eta_min(ts, 55.0, 60.0, 6_000.0, 1800.0)
        assert eta.central is not None and eta.central < 30.0
        assert eta.peak_l_s > 60.0

    def test_rain_easing_foretells_the_inflow_falling(self):
        """After an hour of 40 mm/h the rain stops: the run-off heads down, and a well rising
        now at 70 l/s against 60 is foretold no spill; held steady it spilled in 20 min."""
        forecast = StationStormForecast(2.5)
        ts = 0.0
        for _ in range(120):
            forecast.rain(40.0, ts)
            ts += 30.0
        for _ in range(10):
            forecast.rain(0.0, ts)
            ts += 30.0
        eta = forecast.eta_min(ts, 70.0, 60.0, 12_000.0, 1800.0)
        assert eta.central is None
        steady = 12_000.0 / (70.0 - 60.0) / 60.0
        assert math.isclose(steady, 20.0)

    def test_the_earliest_is_never_later_than_the_central(self):
        forecast = StationStormForecast(3.0)
        ts = storm(forecast, 0.0, 0.0, 60)
        ts = storm(forecast, 2.0, 20.0, 60, ts)
        ts = storm(forecast, 6.0, 30.0, 10, ts + 36000.0)
        eta = forecast.eta_min(ts, 58.0, 60.0, 2_000.0, 1800.0)
        assert eta.earliest is not None
        assert eta.central is None or eta.earliest <= eta.central
