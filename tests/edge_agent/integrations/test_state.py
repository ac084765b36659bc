"""The retained current state: availability from poll results, the active-alarm snapshot from
accepted events (with the raising event's seq), latest values merged from telemetry, removal
and reconciliation on a new config. Every message is checked against its shipped schema."""

from __future__ import annotations

from drivers.model import AvailabilityChange, PollResult
from edge_agent.integrations.state import CurrentState, held_by
from tests.edge_agent.integrations.fixtures import (
    BASE,
    T0,
    TOPICS,
    catalog_and_engine,
    checked,
    event,
    telemetry,
)

NOTHING = frozenset[str]()


def fresh() -> CurrentState:
    catalog, _ = catalog_and_engine()
    return CurrentState(TOPICS, catalog)


def test_a_good_first_poll_is_online_and_offline_says_why():
    state = fresh()
    assert checked(state.on_poll(PollResult("sewer", "lv-01", T0, readings=()))) == {
        f"{BASE}/availability/lv-01": {"v": 1, "dev": "lv-01", "state": "online", "ts": T0 * 1000}
    }
    assert state.on_poll(PollResult("sewer", "lv-01", T0 + 1)) == []  # no news
    assert state.on_poll(PollResult("sewer", "lv-01", T0 + 2, error="timeout")) == []
    change = AvailabilityChange(False, reason="no answer", failures=3)
    got = checked(state.on_poll(PollResult("sewer", "lv-01", T0 + 3, error="x", change=change)))
    assert got[f"{BASE}/availability/lv-01"]["state"] == "offline"
    assert got[f"{BASE}/availability/lv-01"]["reason"] == "no answer"


def test_a_device_never_answering_is_unknown_until_the_bus_says_offline():
    state = fresh()
    assert state.on_poll(PollResult("sewer", "gd-01", T0, error="timeout")) == []
    change = AvailabilityChange(False, reason="timeout", failures=3)
    got = checked(state.on_poll(PollResult("sewer", "gd-01", T0 + 2, error="t", change=change)))
    assert got[f"{BASE}/availability/gd-01"]["state"] == "offline"


def test_snapshot_carries_kind_since_and_seq_escalates_and_clears():
    state = fresh()
    alarms = f"{BASE}/alarms/lv-01"
    got = checked(state.on_event(event(7, "lv-01", "level.high", T0, point="level")))
    assert got[alarms]["active"] == [
        {"id": "level:level", "kind": "level.high", "sev": 2, "since": T0 * 1000, "seq": 7,
         "point": "level"}
    ]  # fmt: skip
    got = checked(state.on_event(event(9, "lv-01", "level.high_high", T0 + 5, 3, point="level")))
    (active,) = got[alarms]["active"]
    assert (active["kind"], active["seq"], active["sev"]) == ("level.high_high", 9, 3)
    got = checked(state.on_event(event(11, "lv-01", "level.normal", T0 + 9, 0, point="level")))
    assert got[alarms] == {"v": 1, "dev": "lv-01", "active": [], "ts": (T0 + 9) * 1000}


def test_gas_points_are_separate_slots():
    state = fresh()
    state.on_event(event(1, "gd-01", "gas.alarm1", T0, point="lel"))
    state.on_event(event(2, "gd-01", "gas.alarm2", T0 + 1, 4, point="h2s"))
    got = checked(state.on_event(event(3, "gd-01", "gas.normal", T0 + 2, 0, point="lel")))
    assert [a["id"] for a in got[f"{BASE}/alarms/gd-01"]["active"]] == ["gas:h2s"]


def test_offline_slot_follows_availability():
    """device.offline is raised by its event while the device is offline and dropped as soon
    as a poll brings it back (a first good poll after a reload carries no device.online)."""
    state = fresh()
    change = AvailabilityChange(False, reason="timeout", failures=3)
    state.on_poll(PollResult("sewer", "lv-01", T0, error="t", change=change))
    state.on_event(event(4, "lv-01", "device.offline", T0, reason="timeout"))
    assert [a.id for a in state.active("lv-01")] == ["device.offline"]
    back = AvailabilityChange(True, offline_s=60.0)
    got = checked(state.on_poll(PollResult("sewer", "lv-01", T0 + 60, change=back)))
    assert got[f"{BASE}/alarms/lv-01"]["active"] == []
    # an offline event stored after the device came back raises nothing
    assert state.on_event(event(5, "lv-01", "device.offline", T0 + 61)) == []


def test_values_merge_telemetry_and_list_every_point():
    state = fresh()
    state.on_event(telemetry(1, "lv-01", T0, level=812.0, battery=97))
    got = checked(state.on_event(telemetry(2, "lv-01", T0 + 1, level=815.0)))
    body = got[f"{BASE}/values/lv-01"]
    assert body["data"]["level"] == 815.0 and body["data"]["battery"] == 97
    assert body["data"]["temperature"] is None  # a known point not reported yet
    assert body["ts"] == (T0 + 1) * 1000


def test_a_removed_device_is_cleared_and_changed_metadata_republished():
    state = fresh()
    state.on_event(event(1, "gd-01", "gas.alarm1", T0, point="lel"))
    smaller, _ = catalog_and_engine(
        "version: 1\ngateway: {site: riverside, id: gw-01}\n"
        "buses: [{name: sewer, type: tcp, host: 127.0.0.1, port: 15022}]\n"
        "devices:\n  - {name: lv-01, bus: sewer, unit_id: 1, profile: level-radar-lr10,"
        " asset_id: CIM-LV-2}\n"
    )
    got = checked(state.set_catalog(smaller, lambda _d: NOTHING, T0 + 10))
    for kind in ("devices", "availability", "alarms", "values"):
        for dev in ("gd-01", "nl-01", "ps-01"):
            assert got[f"{BASE}/{kind}/{dev}"] is None
    assert got[f"{BASE}/devices/lv-01"]["asset_id"] == "CIM-LV-2"
    assert "gd-01" not in state.alarms


def test_reconcile_keeps_what_the_new_runtime_holds():
    """A slot survives a new config only if its owner still holds it: rules that start
    afresh raise it again if it is still true; leak and offline follow their owners."""
    catalog, engine = catalog_and_engine()
    state = CurrentState(TOPICS, catalog)
    state.on_event(event(1, "lv-01", "level.high", T0, point="level"))
    state.on_event(event(2, "nl-01", "leak.confirmed", T0, 3))
    held = held_by(engine.active, [("nl-01", "confirmed")], [("lv-01", None)])
    got = checked(state.set_catalog(catalog, held, T0 + 1))
    assert got[f"{BASE}/alarms/lv-01"]["active"] == []  # the fresh rule holds nothing
    assert [a.id for a in state.active("nl-01")] == ["leak"]
    assert [a.seq for a in state.active("nl-01")] == [2]


def test_alarms_survive_a_restart_through_json():
    state = fresh()
    state.on_event(event(5, "nl-01", "leak.suspected", T0, 1))
    saved = state.alarms_to_json()
    again = fresh()
    again.restore_alarms(saved)
    assert again.active("nl-01") == state.active("nl-01")


def test_everything_on_connect_has_an_alarm_snapshot_per_device_even_when_normal():
    state = fresh()
    got = checked(state.messages())
    snapshots = {t: b for t, b in got.items() if "/alarms/" in t}
    assert len(snapshots) == 4 and all(b["active"] == [] for b in snapshots.values())
    assert all(f"{BASE}/devices/{d}" in got for d in ("lv-01", "gd-01", "nl-01", "ps-01"))


def test_publish_state_off_keeps_metadata_only():
    catalog, _ = catalog_and_engine()
    state = CurrentState(TOPICS, catalog, publish_state=False)
    state.on_event(event(1, "gd-01", "gas.alarm1", T0, point="lel"))
    assert state.active("gd-01")  # kept for Home Assistant / Sparkplug
    assert {m.topic.split("/")[4] for m in state.messages()} == {"devices"}
