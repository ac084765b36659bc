"""The catalog: device metadata with points, alarm slots and the listening radius from the
coverage model, valid against the shipped device schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent import payload
from edge_agent.integrations.catalog import listening_radii
from sitemodel import load_site
from tests.edge_agent.integrations.fixtures import catalog_and_engine

SEED = Path(__file__).resolve().parents[3] / "seeds" / "site.yaml"


def test_metadata_lists_points_with_units_ranges_roles_and_resolution():
    catalog, _ = catalog_and_engine()
    lv = catalog.device("lv-01").payload()
    payload.validate(lv, "device")
    level = next(p for p in lv["points"] if p["name"] == "level")
    assert level == {
        "name": "level", "type": "f32", "unit": "mm", "range": [0.0, 10000.0],
        "role": "level_mm", "resolution": 1.0,
        "description": "water level above the invert (the gauge reports metres)",
    }  # fmt: skip
    assert (lv["vendor"], lv["model"], lv["asset_id"]) == ("Aquameter", "LR10", "CIM-LV-1")
    assert {a["id"] for a in lv["alarms"]} >= {"device.offline", "level:level", "device.fault"}


def test_a_logger_has_a_leak_slot_and_no_recording_handshake_point():
    catalog, _ = catalog_and_engine()
    nl = catalog.device("nl-01")
    assert nl.condition("leak.confirmed") is not None
    assert nl.point("rec_status") is None and nl.point("leak_level") is not None
    payload.validate(nl.payload(), "device")


def test_listening_radius_comes_from_the_coverage_model():
    """About 150 m along DN150 iron, tens of metres along plastic (docs/architecture.md)."""
    site = load_site(SEED)
    loggers = [d.name for d in site.devices_of("noise_logger")]
    radii = listening_radii(site, loggers)
    assert set(radii) == set(loggers)
    by_material = {}
    for name, radius in radii.items():
        pipe = site.pipe(site.device(name).pipe)
        by_material.setdefault(pipe.material, []).append(radius)
    metal = [r for m, rs in by_material.items() if m in ("ductile_iron", "cast_iron", "steel")
             for r in rs]  # fmt: skip
    plastic = [r for m, rs in by_material.items() if m in ("pe", "pvc", "hdpe") for r in rs]
    assert metal and all(80 <= r <= 250 for r in metal)
    if plastic:
        assert max(plastic) < min(metal)
    assert listening_radii(None, loggers) == {}
    assert listening_radii(site, ["lv-01"]) == {}


@pytest.mark.parametrize("field", ["vendor", "listening_radius_m", "points"])
def test_schema_requires_each_field(field):
    catalog, _ = catalog_and_engine()
    body = catalog.device("lv-01").payload()
    del body[field]
    with pytest.raises(payload.PayloadError, match=field):
        payload.validate(body, "device")
