"""Pipe materials and the physics that depends on them: wave speed and attenuation.

Wave speed in a water-filled elastic pipe (Korteweg):
    c = sqrt(K / rho) / sqrt(1 + K * d / (E * e))
with K the bulk modulus of water, rho its density, d the inner diameter, e the wall thickness
and E the wall's Young's modulus. About 1250-1330 m/s for iron/steel DN150, ~385 m/s PVC,
250-300 m/s PE.

Attenuation of leak noise along the pipe grows with frequency and is far larger in plastic
(~0.6-0.9 dB/m below 400 Hz on MDPE) than in metal, which is why a logger hears ~150 m of
metal main but only tens of metres of plastic. The model is empirical, calibrated to those
field figures rather than derived:
    alpha(f, d) = alpha_ref * (f / f_ref) ** n * (d / d_ref) ** 0.5      [dB/m]
Loss grows with frequency (wall damping and radiation into the soil both do) and with
diameter (more water per unit of wall: field practice shortens logger spacing on trunk mains).
``listening_attenuation_db_per_m`` evaluates it at the material's ``listen_hz``, the frequency
where a logger's leak detection on that material mostly lives; that is what sets the reach
(``dsp.network``): with the default 15 dB budget, ~150 m on DN150 iron, ~25 m on DN110 PE.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "MATERIALS",
    "WATER_BULK_MODULUS_PA",
    "WATER_DENSITY_KG_M3",
    "Material",
    "attenuation_db_per_m",
    "common_band_hz",
    "get_material",
    "listening_attenuation_db_per_m",
    "wave_speed",
]

WATER_BULK_MODULUS_PA = 2.19e9
WATER_DENSITY_KG_M3 = 1000.0


@dataclass(frozen=True, slots=True)
class Material:
    """Acoustic properties of a pipe material.

    ``band_hz`` is where leak noise carries on this material (the analysis band preset).
    Attenuation is ``atten_db_per_m`` at ``atten_ref_hz`` for ``atten_ref_diameter_mm``,
    scaled by (f / f_ref) ** ``atten_freq_exponent`` and (d / d_ref) ** 0.5 (larger pipes
    lose more). ``listen_hz`` is the frequency the listening reach is judged at.
    """

    name: str
    family: str  # "metal" | "plastic" | "cement"
    youngs_modulus_pa: float
    default_diameter_mm: float
    default_wall_mm: float
    band_hz: tuple[float, float]
    atten_db_per_m: float
    atten_ref_hz: float
    atten_freq_exponent: float
    atten_ref_diameter_mm: float = 150.0
    listen_hz: float = 500.0


# Attenuation values: metal ~0.1 dB/m at 500 Hz (150 m for a 15 dB budget); MDPE 0.8 dB/m at
# 200 Hz (0.6 dB/m at its 150 Hz listening frequency); PVC and asbestos cement in between.
MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (
        Material("steel", "metal", 200e9, 150, 6.0, (200.0, 1500.0), 0.09, 500.0, 1.0),
        Material("ductile_iron", "metal", 170e9, 150, 6.0, (200.0, 1500.0), 0.10, 500.0, 1.0),
        Material("cast_iron", "metal", 100e9, 150, 9.0, (200.0, 1500.0), 0.11, 500.0, 1.0),
        Material(
            "asbestos_cement",
            "cement",
            24e9,
            150,
            14.0,
            (100.0, 800.0),
            0.25,
            300.0,
            1.0,
            listen_hz=300.0,
        ),
        Material(
            "pvc", "plastic", 3.3e9, 150, 7.0, (20.0, 300.0), 0.40, 200.0, 1.0, listen_hz=150.0
        ),
        Material(
            "pe",
            "plastic",
            0.9e9,
            110,
            10.0,
            (20.0, 300.0),
            0.80,
            200.0,
            1.0,
            110.0,
            listen_hz=150.0,
        ),
    )
}


def get_material(name: str) -> Material:
    """Look a material up by name; raises ``ValueError`` naming the known ones."""
    try:
        return MATERIALS[name]
    except KeyError:
        known = ", ".join(sorted(MATERIALS))
        raise ValueError(f"unknown pipe material {name!r} (known: {known})") from None


def wave_speed(
    material: str | Material,
    diameter_mm: float | None = None,
    wall_mm: float | None = None,
) -> float:
    """Korteweg wave speed in m/s for a water-filled pipe; defaults per material."""
    m = material if isinstance(material, Material) else get_material(material)
    d = (diameter_mm if diameter_mm is not None else m.default_diameter_mm) / 1000.0
    e = (wall_mm if wall_mm is not None else m.default_wall_mm) / 1000.0
    if d <= 0 or e <= 0:
        raise ValueError(f"diameter and wall must be positive, got d={d} m, e={e} m")
    c0 = math.sqrt(WATER_BULK_MODULUS_PA / WATER_DENSITY_KG_M3)
    return c0 / math.sqrt(1.0 + WATER_BULK_MODULUS_PA * d / (m.youngs_modulus_pa * e))


def attenuation_db_per_m(
    material: str | Material, frequency_hz: float, diameter_mm: float | None = None
) -> float:
    """Loss of leak noise in dB per metre of pipe at ``frequency_hz``.

    Raises ``ValueError`` for an unknown material or a non-positive diameter or frequency.
    """
    m = material if isinstance(material, Material) else get_material(material)
    d = diameter_mm if diameter_mm is not None else m.default_diameter_mm
    f = float(frequency_hz)
    if not (d > 0 and f > 0):
        raise ValueError(f"diameter and frequency must be positive, got d={d} mm, f={f} Hz")
    return (
        m.atten_db_per_m
        * (f / m.atten_ref_hz) ** m.atten_freq_exponent
        * math.sqrt(d / m.atten_ref_diameter_mm)
    )


def listening_attenuation_db_per_m(
    material: str | Material, diameter_mm: float | None = None
) -> float:
    """Attenuation at the material's listening frequency: what limits a logger's reach."""
    m = material if isinstance(material, Material) else get_material(material)
    return attenuation_db_per_m(m, m.listen_hz, diameter_mm)


def common_band_hz(materials: Iterable[str | Material]) -> tuple[float, float]:
    """The leak band shared by every material of a path (for correlating across a joint).

    The intersection of the materials' bands; when they do not overlap, the band of the
    material with the lowest upper edge (plastic decides: above its band, leak noise does not
    survive the plastic stretch). Raises ``ValueError`` for no or unknown materials.
    """
    ms = [m if isinstance(m, Material) else get_material(m) for m in materials]
    if not ms:
        raise ValueError("no materials given")
    lo = max(m.band_hz[0] for m in ms)
    hi = min(m.band_hz[1] for m in ms)
    if lo < hi:
        return (lo, hi)
    return min((m.band_hz for m in ms), key=lambda band: band[1])
