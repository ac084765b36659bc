"""No start-up burst: a daemon restarted in the night records only what the night still owes.

In process, against two simulated noise loggers on loopback TCP; the recording schedule runs
on a leak clock 600 times faster than the wall (the night window is local time), the
recordings themselves and the polls in real time. The first run records the 02:00 slot and
saves it; a restart at 02:20 records nothing until the 03:00 slot, then records that one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

from drivers.sim.clock import SimClock
from drivers.sim.site_sim import SiteSimulator
from edge_agent.daemon.app import Daemon, DaemonOptions
from edge_agent.daemon.schedule_state import SCHEDULE_FILE
from sitemodel import load_site

SEED_SITE = Path(__file__).resolve().parents[3] / "seeds" / "site.yaml"
LOGGERS = ("nl-01", "nl-02")
SPEED = 600.0  # leak-clock seconds per wall second: ten minutes of schedule a second


def _site():
    site = load_site(SEED_SITE)
    return dataclasses.replace(
        site,
        devices=tuple(d for d in site.devices if d.name in LOGGERS),
        sim_buses=tuple(b for b in site.sim_buses if b.name == "water"),
        scenarios=None,
    )


def _config(tmp_path: Path, port: int) -> Path:
    devices = "\n".join(
        f"  - {{name: {name}, bus: water, unit_id: {unit}, profile: noise-logger-nl200,"
        f" poll_interval_s: 5}}"
        for unit, name in enumerate(LOGGERS, start=1)
    )
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "version: 1\n"
        "gateway: {site: riverside, id: gw-t}\n"
        f"buses: [{{name: water, type: tcp, host: 127.0.0.1, port: {port}, timeout_s: 1.0}}]\n"
        f"devices:\n{devices}\n"
        f"storage: {{state_dir: {tmp_path / 'state'}}}\n"
        "leak_detection: {recording_interval_s: 3600, night_window: '02:00-04:00',"
        " duration_s: 1}\n"
        "logging: {level: warning}\n"
    )
    return config


def _local(hhmm: str) -> float:
    """Epoch seconds of today's ``HH:MM`` local time."""
    lt = time.localtime()
    h, m = (int(x) for x in hhmm.split(":"))
    return time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, h, m, 0, 0, 0, -1))


async def _run_until(daemon: Daemon, leak_clock: SimClock, until: str, stop_after=None) -> None:
    """Run ``daemon`` until the leak clock reads ``until`` (or ``stop_after()`` is true)."""
    task = asyncio.create_task(daemon.run())
    try:
        while leak_clock.time() < _local(until) and not task.done():
            if stop_after is not None and stop_after():
                break
            await asyncio.sleep(0.05)
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(task, 30) == 0


def _jobs(daemon: Daemon) -> int:
    leak = daemon.runtime.leak if daemon.runtime is not None else None
    return leak.jobs_run if leak is not None else 0


def test_a_restart_in_the_night_records_only_what_the_night_still_owes(tmp_path):
    async def main() -> None:
        sim = SiteSimulator(_site(), port_base=0)
        await sim.start()
        try:
            config = _config(tmp_path, sim.endpoints["water"].port)

            def done(count: int) -> bool:
                path = tmp_path / "state" / SCHEDULE_FILE
                saved = json.loads(path.read_text()) if path.exists() else {}
                return saved.get("done") == dict.fromkeys(LOGGERS, count)

            # Run 1 starts at 02:00: it settles a minute (0.1 s), records the 02:00 slot.
            clock = SimClock(SPEED, epoch_start=_local("02:00"))
            daemon = Daemon(DaemonOptions(config_path=config, leak_clock=clock))
            await _run_until(daemon, clock, "02:59", stop_after=lambda: done(1))
            assert done(1), "the 02:00 slot was not recorded and saved"
            # Run 2 starts at 02:20 (a restart): the 02:00 slot is done, 03:00 is not yet.
            clock = SimClock(SPEED, epoch_start=_local("02:20"))
            daemon = Daemon(DaemonOptions(config_path=config, leak_clock=clock))
            seen: list[int] = []

            def record_jobs() -> bool:
                seen.append(_jobs(daemon))
                return False

            await _run_until(daemon, clock, "02:55", stop_after=record_jobs)
            assert max(seen) == 0, "a restart recorded what the night already had"
            # Run 3, the same night at 02:58: the 03:00 slot is still owed and recorded.
            clock = SimClock(SPEED, epoch_start=_local("02:58"))
            daemon = Daemon(DaemonOptions(config_path=config, leak_clock=clock))
            await _run_until(daemon, clock, "03:50", stop_after=lambda: done(2))
            assert done(2), "the 03:00 slot was not recorded"
        finally:
            await sim.stop()

    asyncio.run(asyncio.wait_for(main(), 120))
