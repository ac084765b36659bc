"""SIGHUP reloads in process: a reload the new files refuse keeps the running config (no
buses: nothing to poll, so no peer is needed; the site file is a real copy of the seed's)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from edge_agent.daemon.app import Daemon, DaemonOptions

SEED_SITE = Path(__file__).resolve().parents[3] / "seeds" / "site.yaml"


def _gateway(tmp_path: Path) -> Path:
    shutil.copy(SEED_SITE, tmp_path / "site.yaml")
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "version: 1\n"
        "gateway: {site: s, id: g}\n"
        "buses: []\n"
        "site_file: site.yaml\n"
        f"storage: {{state_dir: {tmp_path / 'state'}}}\n"
    )
    return config


async def _until(predicate, what: str, tries: int = 500) -> None:
    for _ in range(tries):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_reload_with_a_broken_site_file_is_refused_and_the_daemon_keeps_running(tmp_path):
    config = _gateway(tmp_path)
    daemon = Daemon(DaemonOptions(config_path=config, status_interval_s=0.05))

    async def main() -> int:
        task = asyncio.create_task(daemon.run())
        await _until(lambda: daemon.ready, "ready")
        (tmp_path / "site.yaml").write_text("pipes: [\n")
        daemon.request_reload()
        await _until(lambda: daemon.config_error is not None or task.done(), "the reload")
        assert not task.done(), "the daemon stopped on a refused reload"
        assert "site.yaml" in daemon.config_error
        assert daemon.runtime is not None  # the old runtime still runs
        daemon.request_stop()
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(main()) == 0


def test_start_and_reload_parse_each_profile_file_once(tmp_path, monkeypatch):
    """The config check's profile registry serves the bus setup, at start and on reload."""
    import drivers.profile

    config = _gateway(tmp_path)
    config.write_text(
        config.read_text().replace(
            "buses: []\n",
            "buses: [{name: b, type: tcp, host: 127.0.0.1, port: 1}]\n"
            "devices: [{name: lv, bus: b, unit_id: 1, profile: level-radar-lr10}]\n",
        )
    )
    loaded: list[str] = []
    real_load = drivers.profile.load_profile

    def counting_load(path):
        loaded.append(str(path))
        return real_load(path)

    monkeypatch.setattr(drivers.profile, "load_profile", counting_load)
    daemon = Daemon(DaemonOptions(config_path=config, status_interval_s=0.05))

    async def main() -> int:
        task = asyncio.create_task(daemon.run())
        await _until(lambda: daemon.runtime is not None, "the runtime")
        at_start = list(loaded)
        loaded.clear()
        first_runtime = daemon.runtime
        daemon.request_reload()
        await _until(lambda: daemon.runtime not in (None, first_runtime), "the reload", 2000)
        daemon.request_stop()
        code = await asyncio.wait_for(task, 30)
        assert at_start and len(at_start) == len(set(at_start)), at_start
        assert loaded and len(loaded) == len(set(loaded)), loaded
        return code

    assert asyncio.run(main()) == 0


# -- what a reload keeps --------------------------------------------------------------------
# Two buses on real pymodbus servers: b1 serves lv-1 (its level above lv-1's threshold) and
# lv-2; lv-3's unit is not served (silent, like an unplugged gauge); b2 serves lv-b.

LEVEL_MM = 2500.0


def _carry_config(tmp_path: Path, ports: dict[str, int], **changes: str) -> Path:
    """The gateway; ``changes`` replace a line's text by key (see the defaults below)."""
    lines = {
        "b1": f"  - {{name: b1, type: tcp, host: 127.0.0.1, port: {ports['b1']}, timeout_s: 0.2,"
        " retries: 0, offline_after: 2, backoff: {initial_s: 0.2, max_s: 0.4}}",
        "b2": f"  - {{name: b2, type: tcp, host: 127.0.0.1, port: {ports['b2']}, timeout_s: 0.2,"
        " retries: 0, offline_after: 2, backoff: {initial_s: 0.2, max_s: 0.4}}",
        "lv-1": "  - {name: lv-1, bus: b1, unit_id: 1, profile: level-radar-lr10,"
        " poll_interval_s: 0.2, rules: {points: {level: {high: 2000, hysteresis: 100,"
        " k: 2, n: 3}}}}",
        "lv-2": "  - {name: lv-2, bus: b1, unit_id: 2, profile: level-radar-lr10,"
        " poll_interval_s: 0.2}",
        "lv-3": "  - {name: lv-3, bus: b1, unit_id: 3, profile: level-radar-lr10,"
        " poll_interval_s: 0.2}",
        "lv-b": "  - {name: lv-b, bus: b2, unit_id: 1, profile: level-radar-lr10,"
        " poll_interval_s: 0.2}",
    }
    lines.update(changes)
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "version: 1\ngateway: {site: s, id: g}\n"
        f"buses:\n{lines['b1']}\n{lines['b2']}\n"
        "devices:\n"
        + "".join(lines[d] + "\n" for d in ("lv-1", "lv-2", "lv-3", "lv-b") if lines[d])
        + f"storage: {{state_dir: {tmp_path / 'state'}}}\n"
    )
    return config


def _kinds(events, device: str) -> list[str]:
    return [e.kind for e in events if e.dev == device and e.stream == "event"]


def test_reloads_keep_what_did_not_change_and_never_repeat_an_event(tmp_path):
    """lv-3 silent and offline, lv-1's level.high raised: reloads that leave them as they
    were (or change only a rule of another device, or another bus) repeat neither event; the
    bus whose devices are all unchanged polls on with the same runner; a device polled
    differently starts fresh but from what was told of it (lv-3 moved to a served unit comes
    back with one device.online); a raised threshold clears lv-1's alarm once."""
    from tests.edge_agent.rules.helpers import PROFILES
    from tests.helpers.modbus import profile_store, served_units

    profile = PROFILES.get("level-radar-lr10")
    events = []

    async def main() -> None:
        async with (
            served_units({1: {}, 2: {}}) as b1,
            served_units({1: {}}) as b2,
        ):
            b1.units[1] = profile_store(profile, {"level": LEVEL_MM})
            b1.units[2] = profile_store(profile, {"level": 100.0})
            b2.units[1] = profile_store(profile, {"level": 100.0})
            ports = {"b1": b1.port, "b2": b2.port}
            config = _carry_config(tmp_path, ports)
            daemon = Daemon(
                DaemonOptions(config_path=config, status_interval_s=0.05, on_event=events.append)
            )
            task = asyncio.create_task(daemon.run())

            def seen(device: str, kind: str) -> bool:
                return kind in _kinds(events, device)

            async def reload(what: str) -> None:
                before = daemon.runtime
                daemon.request_reload()
                await _until(lambda: daemon.runtime not in (None, before), what, 3000)
                assert daemon.config_error is None, daemon.config_error

            await _until(lambda: seen("lv-3", "device.offline"), "lv-3 offline", 3000)
            await _until(lambda: seen("lv-1", "level.high"), "lv-1 level.high", 3000)
            assert daemon.ready and daemon.status_line().startswith("3/4 devices online (lv-3:")
            runner_b1 = daemon.runtime.runners["b1"]
            polls_lv1 = runner_b1.coordinators["lv-1"].polls_ok

            # 1. A rule of lv-2 and b2's timeout change: b1 is taken over running.
            edits = {
                "lv-2": "  - {name: lv-2, bus: b1, unit_id: 2, profile: level-radar-lr10,"
                " poll_interval_s: 0.2, rules: {level_high_mm: 9000}}",
                "b2": f"  - {{name: b2, type: tcp, host: 127.0.0.1, port: {b2.port},"
                " timeout_s: 0.3, retries: 0, offline_after: 2,"
                " backoff: {initial_s: 0.2, max_s: 0.4}}",
            }
            _carry_config(tmp_path, ports, **edits)
            await reload("reload 1")
            assert daemon.last_reload.changed == {"lv-b"} and not daemon.last_reload.removed
            assert daemon.runtime.runners["b1"] is runner_b1  # never stopped, port kept open
            status = {d.name: d for d in daemon.runtime.device_status()}
            assert status["lv-3"].online is False and status["lv-b"].polls_ok <= 1
            await asyncio.sleep(1.0)  # offline_after (2) failed polls of lv-3 many times over
            assert runner_b1.coordinators["lv-1"].polls_ok > polls_lv1
            assert daemon.status_line().startswith("3/4 devices online (lv-3:")

            # 2. lv-3 moved to a unit that answers, lv-2 removed: b1 rebuilt around lv-1's
            # coordinator; lv-3 comes back once.
            b1.units[4] = profile_store(profile, {"level": 100.0})
            polls_lv1 = daemon.runtime.runners["b1"].coordinators["lv-1"].polls_ok
            edits["lv-2"] = ""
            edits["lv-3"] = (
                "  - {name: lv-3, bus: b1, unit_id: 4, profile: level-radar-lr10,"
                " poll_interval_s: 0.2}"
            )
            _carry_config(tmp_path, ports, **edits)
            await reload("reload 2")
            changes = daemon.last_reload
            assert (changes.changed, changes.removed) == ({"lv-3"}, {"lv-2"})
            assert daemon.runtime.runners["b1"] is not runner_b1
            assert daemon.runtime.runners["b1"].coordinators["lv-1"].polls_ok >= polls_lv1
            await _until(lambda: seen("lv-3", "device.online"), "lv-3 back", 3000)
            assert daemon.status_line().startswith("3/3 devices online")

            # 3. lv-1's threshold raised above its level: the alarm clears, once.
            edits["lv-1"] = (
                "  - {name: lv-1, bus: b1, unit_id: 1, profile: level-radar-lr10,"
                " poll_interval_s: 0.2, rules: {points: {level: {high: 3000, hysteresis: 100,"
                " k: 2, n: 3}}}}"
            )
            _carry_config(tmp_path, ports, **edits)
            await reload("reload 3")
            assert daemon.last_reload.changed == frozenset()  # a rule is not the device
            await _until(lambda: seen("lv-1", "level.normal"), "lv-1 level.normal", 3000)
            await asyncio.sleep(0.5)
            daemon.request_stop()
            assert await asyncio.wait_for(task, 30) == 0

    asyncio.run(main())
    assert _kinds(events, "lv-3") == ["device.offline", "device.online"]
    assert _kinds(events, "lv-1") == ["level.high", "level.normal"]
    assert _kinds(events, "lv-2") == [] and _kinds(events, "lv-b") == []
    seqs = [e.seq for e in events if e.stream == "event"]
    assert seqs == list(range(1, len(seqs) + 1))  # gateway.started first, no gap


def test_a_reload_the_rules_refuse_keeps_the_running_config(tmp_path):
    """A config that loads but that the rules engine refuses (a rain gauge that is a level
    gauge) is refused like a file that does not parse: the old runtime polls on."""
    from tests.edge_agent.rules.helpers import PROFILES
    from tests.helpers.modbus import profile_store, served_units

    profile = PROFILES.get("level-radar-lr10")

    async def main() -> None:
        async with served_units({1: {}}) as b1, served_units({1: {}}) as b2:
            b1.units[1] = profile_store(profile, {"level": 100.0})
            ports = {"b1": b1.port, "b2": b2.port}
            config = _carry_config(tmp_path, ports, **{"lv-2": "", "lv-3": "", "lv-b": ""})
            daemon = Daemon(DaemonOptions(config_path=config, status_interval_s=0.05))
            task = asyncio.create_task(daemon.run())
            await _until(lambda: daemon.ready, "ready", 3000)
            running = daemon.runtime
            _carry_config(
                tmp_path, ports,
                **{"lv-3": "", "lv-b": "", "lv-2": "  - {name: lv-2, bus: b1, unit_id: 2,"
                   " profile: level-radar-lr10, rules: {rain_gauge: lv-1}}"},
            )  # fmt: skip
            daemon.request_reload()
            await _until(lambda: daemon.config_error is not None or task.done(), "refusal")
            assert not task.done() and daemon.runtime is running
            assert "rain_gauge" in daemon.config_error
            polls = running.runners["b1"].coordinators["lv-1"].polls_ok
            await _until(
                lambda: running.runners["b1"].coordinators["lv-1"].polls_ok > polls, "polling"
            )
            daemon.request_stop()
            assert await asyncio.wait_for(task, 30) == 0

    asyncio.run(main())


_BASE = (
    "version: 1\ngateway: {site: s, id: g}\n"
    "buses:\n"
    "  - {name: b1, type: tcp, host: 127.0.0.1, port: 1502, timeout_s: 0.5}\n"
    "  - {name: b2, type: tcp, host: 127.0.0.1, port: 1503, timeout_s: 0.5}\n"
    "devices:\n"
    "  - {name: lv-1, bus: b1, unit_id: 1, profile: level-radar-lr10, asset_id: A1}\n"
    "  - {name: lv-2, bus: b1, unit_id: 2, profile: level-radar-lr10}\n"
    "  - {name: gd-1, bus: b2, unit_id: 1, profile: gas-detector-mg4}\n"
)


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        pytest.param("asset_id: A1}", "asset_id: A2, rules: {level_high_mm: 900}}", set(),
                     id="rules-and-metadata-are-not-the-device"),
        pytest.param("unit_id: 2,", "unit_id: 3,", {"lv-2"}, id="unit"),
        pytest.param("port: 1502, timeout_s: 0.5", "port: 1502, timeout_s: 0.7",
                     {"lv-1", "lv-2"}, id="its-bus"),
        pytest.param("profile: gas-detector-mg4}",
                     "profile: gas-detector-mg4, overrides: {points: {lel: {deadband: 2}}}}",
                     {"gd-1"}, id="profile-overrides"),
        pytest.param("unit_id: 1, profile: level-radar-lr10, asset_id: A1}",
                     "unit_id: 1, profile: level-radar-lr10, asset_id: A1,"
                     " poll_interval_s: 30}", {"lv-1"}, id="poll-interval"),
    ],
)  # fmt: skip
def test_what_makes_a_device_changed(tmp_path, old, new, changed):
    """A device is the same when it is polled as before and sits where it sat."""
    from edge_agent.bus_setup import build_bus_setup
    from edge_agent.daemon.loading import load_config
    from edge_agent.daemon.reload import DeviceChanges, device_identities

    def identities(text: str):
        path = tmp_path / "gateway.yaml"
        path.write_text(text)
        config, registry = load_config(path)
        setup = build_bus_setup(config, registry=registry)
        return device_identities(config, setup.profiles, None)

    assert old in _BASE
    changes = DeviceChanges.between(identities(_BASE), identities(_BASE.replace(old, new)))
    assert changes.changed == changed
    assert changes.same == {"lv-1", "lv-2", "gd-1"} - changed
    assert not changes.added and not changes.removed
    lv2 = "  - {name: lv-2, bus: b1, unit_id: 2, profile: level-radar-lr10}\n"
    dropped = _BASE.replace(lv2, "")
    moved = dropped + "  - {name: lv-9, bus: b2, unit_id: 9, profile: level-radar-lr10}\n"
    changes = DeviceChanges.between(identities(_BASE), identities(moved))
    assert (changes.added, changes.removed) == ({"lv-9"}, {"lv-2"})


@pytest.fixture
def json_log():
    """The daemon's logging into a string (JSON lines), restored afterwards."""
    import io
    import logging

    import structlog

    from edge_agent.logs import configure_logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_every_refused_reload_is_logged_with_its_reason(tmp_path, json_log):
    """Real SIGHUPs: each refusal is one ERROR line with its reason, none swallowed by the
    rate limit (the bug: a second bad SIGHUP within 5 min logged only "reloading config");
    a reason repeated in a row says how many times."""
    import json
    import os
    import signal

    config = _gateway(tmp_path)
    good = config.read_text()
    daemon = Daemon(DaemonOptions(config_path=config, status_interval_s=0.05))

    async def main() -> int:
        task = asyncio.create_task(daemon.run())
        await _until(lambda: daemon.ready, "ready")
        for text in ("version: [\n", "version: [\n", good + "bogus: 1\n", good):
            config.write_text(text)
            answers = json_log.getvalue().count('"reload refused') + json_log.getvalue().count(
                '"config reloaded"'
            )
            os.kill(os.getpid(), signal.SIGHUP)

            def answered(before: int = answers) -> bool:
                log = json_log.getvalue()
                return log.count('"reload refused') + log.count('"config reloaded"') > before

            await _until(answered, "the answer to a SIGHUP")
        daemon.request_stop()
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(main()) == 0
    lines = [json.loads(x) for x in json_log.getvalue().splitlines()]
    answers = [
        (x["event"], x.get("reason", ""), x.get("refused_in_a_row"))
        for x in lines
        if x["event"] in ("reload refused, keeping the running config", "config reloaded")
    ]
    assert [(a[0].split(",")[0], a[2]) for a in answers] == [
        ("reload refused", None),
        ("reload refused", 2),
        ("reload refused", None),
        ("config reloaded", None),
    ]
    assert "YAML" in answers[0][1] and answers[0][1] == answers[1][1]
    assert "bogus" in answers[2][1]
    assert all(x["level"] == "error" for x in lines if x["event"].startswith("reload refused"))
    assert "rate_limit" not in json_log.getvalue()
