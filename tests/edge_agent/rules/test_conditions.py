"""Conditions: the alarm slots the engine lists per device from its wiring, and which of them
are raised now, read off the rules themselves (no second copy of their state)."""

from __future__ import annotations

from drivers.model import AvailabilityChange, PollResult, Quality, Reading
from drivers.profile import ProfileRegistry
from edge_agent.rules import DeviceInfo, RulesConfig, RulesEngine
from edge_agent.rules.conditions import LEAK, OFFLINE, Condition

REGISTRY = ProfileRegistry()
T0 = 1_800_000_000.0


def engine() -> RulesEngine:
    devices = [
        DeviceInfo("lv-01", REGISTRY.get("level-radar-lr10"), kind="level"),
        DeviceInfo("gd-01", REGISTRY.get("gas-detector-mg4")),
        DeviceInfo("mc-01", REGISTRY.get("cover-sensor-mc1")),
        DeviceInfo("rg-01", REGISTRY.get("rain-gauge-tb2")),
        DeviceInfo("ps-01", REGISTRY.get("pump-controller-ps2"), kind="pump_controller"),
    ]
    return RulesEngine(RulesConfig(), devices)


def reading(dev: str, point: str, value: float, ts: float) -> Reading:
    return Reading(dev, point, value, "", Quality.GOOD, ts)


def test_slots_follow_the_wiring():
    """A gas detector has one slot per gas point, a level gauge a threshold and a rise slot on
    its level; every device has its fault slot; site rules give blockage and overflow."""
    e = engine()
    assert {c.id for c in e.conditions("gd-01")} == {
        "device.fault", "gas:lel", "gas:h2s", "gas:co", "gas:o2",
    }  # fmt: skip
    lv = {c.id for c in e.conditions("lv-01")}
    assert {"device.fault", "level.rising:level", "sewer.blockage_suspected"} <= lv
    assert "cover" in {c.id for c in e.conditions("mc-01")}
    assert "overflow.risk" in {c.id for c in e.conditions("ps-01")}
    assert e.conditions("nobody") == ()


def test_gas_slot_raises_escalates_and_clears_on_its_point_only():
    e = engine()
    gas = next(c for c in e.conditions("gd-01") if c.id == "gas:lel")
    assert gas.raises == ("gas.alarm1", "gas.alarm2") and gas.clears == ("gas.normal",)
    assert gas.takes("gas.alarm2", "lel") and not gas.takes("gas.alarm2", "h2s")
    events = []
    for i, value in enumerate([30.0] * 3):  # default persistence: raised within a few samples
        events += e.on_reading(reading("gd-01", "lel", value, T0 + i))
    assert [ev.kind for ev in events] == ["gas.alarm1"]
    assert e.active("gd-01") == {"gas:lel"}
    for i, value in enumerate([1.0] * 5):
        e.on_reading(reading("gd-01", "lel", value, T0 + 100 + i))
    assert e.active("gd-01") == frozenset()


def test_offline_and_leak_slots_are_named_for_their_owners():
    assert OFFLINE.takes("device.offline") and OFFLINE.takes("device.online")
    assert LEAK.takes("leak.confirmed") and not LEAK.takes("leak.located")
    assert Condition("level", ("level.high",), ("level.normal",), "level").id == "level:level"


def test_availability_is_not_a_rule_condition():
    """device.offline is decided by the bus: the engine emits it but holds no slot for it."""
    e = engine()
    drafts = e.on_poll(
        PollResult("b", "lv-01", T0, error="timeout", change=AvailabilityChange(False, "timeout"))
    )
    assert [d.kind for d in drafts] == ["device.offline"]
    assert "device.offline" not in {c.id for c in e.conditions("lv-01")}
