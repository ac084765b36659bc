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
