"""Pipe physics: Korteweg wave speeds against the field figures, attenuation and reach ranges."""

import math

import pytest

from dsp.pipes import (
    MATERIALS,
    WATER_BULK_MODULUS_PA,
    WATER_DENSITY_KG_M3,
    attenuation_db_per_m,
    common_band_hz,
    get_material,
    listening_attenuation_db_per_m,
    wave_speed,
)

REQUIRED = ("cast_iron", "ductile_iron", "steel", "pvc", "pe", "asbestos_cement")


def korteweg(e_pa: float, d_m: float, wall_m: float) -> float:
    """Reference formula written out independently of dsp.pipes."""
    k, rho = 2.19e9, 1000.0
    return math.sqrt(k / rho) / math.sqrt(1.0 + k * d_m / (e_pa * wall_m))


@pytest.mark.parametrize(
    ("material", "diameter_mm", "wall_mm", "low", "high"),
    [
        ("steel", 150, 6.0, 1250, 1330),
        ("ductile_iron", 150, 6.0, 1250, 1330),
        ("cast_iron", 150, 9.0, 1250, 1330),
        ("pvc", 150, 7.0, 385 * 0.95, 385 * 1.05),
        ("pe", 110, 10.0, 250, 300),
    ],
)
def test_wave_speed_matches_field_figures(material, diameter_mm, wall_mm, low, high):
    assert low <= wave_speed(material, diameter_mm, wall_mm) <= high


@pytest.mark.parametrize("name", REQUIRED)
def test_wave_speed_is_korteweg_within_5_percent(name):
    m = get_material(name)
    for d_mm, wall in ((100, 5.0), (150, m.default_wall_mm), (300, 10.0)):
        expected = korteweg(m.youngs_modulus_pa, d_mm / 1000, wall / 1000)
        assert wave_speed(name, d_mm, wall) == pytest.approx(expected, rel=0.05)


def test_wave_speed_tends_to_free_water_speed_for_a_rigid_wall():
    c0 = math.sqrt(WATER_BULK_MODULUS_PA / WATER_DENSITY_KG_M3)
    assert wave_speed("steel", 10, 100) == pytest.approx(c0, rel=0.001)


def test_every_required_material_is_known():
    assert set(REQUIRED) <= set(MATERIALS)


@pytest.mark.parametrize(("bad", "match"), [("copper", "known: "), ("", "unknown pipe")])
def test_unknown_material_names_the_known_ones(bad, match):
    with pytest.raises(ValueError, match=match):
        get_material(bad)


@pytest.mark.parametrize(("d", "e"), [(0, 5), (150, 0), (-1, 5)])
def test_wave_speed_rejects_non_positive_geometry(d, e):
    with pytest.raises(ValueError):
        wave_speed("steel", d, e)


def test_attenuation_grows_with_frequency_and_diameter():
    for name in REQUIRED:
        assert attenuation_db_per_m(name, 400) > attenuation_db_per_m(name, 200)
        assert attenuation_db_per_m(name, 300, 300) > attenuation_db_per_m(name, 300, 100)


def test_mdpe_loses_0_6_to_0_9_db_per_metre_below_400_hz():
    for f in (150, 200):
        assert 0.55 <= attenuation_db_per_m("pe", f, 110) <= 0.95


@pytest.mark.parametrize(
    ("name", "low_m", "high_m"),
    [
        ("ductile_iron", 130, 170),
        ("cast_iron", 120, 170),
        ("steel", 130, 180),
        ("pvc", 20, 80),
        ("pe", 15, 40),
    ],
)
def test_fifteen_db_budget_gives_the_field_reach(name, low_m, high_m):
    # 150 m on metal, tens of metres on plastic: the rule of thumb the model is calibrated to.
    assert low_m <= 15.0 / listening_attenuation_db_per_m(name) <= high_m


def test_attenuation_rejects_bad_input():
    with pytest.raises(ValueError):
        attenuation_db_per_m("pe", 0)
    with pytest.raises(ValueError):
        attenuation_db_per_m("pe", 100, 0)


@pytest.mark.parametrize(
    ("materials", "band"),
    [
        (["cast_iron"], (200.0, 1500.0)),
        (["cast_iron", "ductile_iron"], (200.0, 1500.0)),
        (["cast_iron", "pe"], (200.0, 300.0)),
        (["asbestos_cement", "steel"], (200.0, 800.0)),
        (["pvc", "asbestos_cement"], (100.0, 300.0)),
    ],
)
def test_common_band_of_a_path(materials, band):
    assert common_band_hz(materials) == band


def test_common_band_without_overlap_takes_the_plastic_band(monkeypatch):
    from dataclasses import replace

    import dsp.pipes as pipes

    low = replace(pipes.MATERIALS["pe"], name="low", band_hz=(10.0, 100.0))
    assert common_band_hz([low, "steel"]) == (10.0, 100.0)
    with pytest.raises(ValueError):
        common_band_hz([])
