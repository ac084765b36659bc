"""The whole daemon (in process) on a wall clock that steps: it boots at 1970 (no RTC), NTP
sets it to now, then it steps back an hour. Polling goes on at its interval through every
step (the runners schedule on monotonic time: no stall, no burst), the outbox numbers events
gap-free in acceptance order, events taken before NTP are flagged ``tsq: "unsynced"``, and
every payload matches the schema. Two level gauges on a real pymodbus server flip across
their threshold so events keep coming.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from drivers.codec import encode_value
from edge_agent import payload
from edge_agent.daemon.app import Daemon, DaemonOptions, WallClock
from edge_agent.daemon.systemd import Notifier
from edge_agent.events import Event
from tests.edge_agent.rules.helpers import PROFILES
from tests.helpers.modbus import profile_store, served_units

BOUND_S = 60.0
INTERVAL_S = 0.2
HOUR = 3600.0


class SteppedClock(WallClock):
    """The production clock plus an offset the test changes (an NTP step)."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset


def _config(path, port, state):
    devices = "\n".join(
        f"  - {{name: lv-{u}, bus: b1, unit_id: {u}, profile: level-radar-lr10,"
        f" poll_interval_s: {INTERVAL_S}, rules: {{points: {{level: {{high: 2000,"
        " hysteresis: 100, k: 1, n: 1}}}}"
        for u in (1, 2)
    )
    path.write_text(
        "version: 1\ngateway: {site: s, id: g}\nbuses:\n"
        f"  - {{name: b1, type: tcp, host: 127.0.0.1, port: {port}, timeout_s: 1.0}}\n"
        f"devices:\n{devices}\nstorage: {{state_dir: {state}}}\n"
    )
    return path


def test_daemon_polls_and_numbers_events_through_wall_clock_steps(tmp_path):
    profile = PROFILES.get("level-radar-lr10")
    level = next(p for p in profile.points if p.name == "level")
    clock = SteppedClock(offset=-(time.time() - 86400.0))  # 1970-01-02: before NTP
    events: list[Event] = []

    async def scenario():
        stores = {u: profile_store(profile, {"level": 500.0}) for u in (1, 2)}
        async with served_units({}) as server:
            for u, store in stores.items():
                server.add_unit(u, store)
            config = _config(tmp_path / "gateway.yaml", server.port, tmp_path / "state")
            daemon = Daemon(
                DaemonOptions(
                    config_path=config,
                    clock=clock,
                    status_interval_s=0.2,
                    on_event=events.append,
                    notifier=Notifier(""),
                )
            )
            task = asyncio.create_task(daemon.run())
            high = False

            def polls() -> list[int]:
                runtime = daemon.runtime
                if runtime is None:
                    return [0, 0]
                return [
                    c.polls_ok for r in runtime.runners.values() for c in r.coordinators.values()
                ]

            async def flips_until(n_polls: int) -> list[int]:
                """Flip the level each poll interval until every gauge has ``n_polls`` more
                good polls (bounded: a stalled poll loop fails here)."""
                nonlocal high
                start = polls()
                deadline = asyncio.get_running_loop().time() + BOUND_S
                while min(p - s for p, s in zip(polls(), start, strict=True)) < n_polls:
                    assert asyncio.get_running_loop().time() < deadline, f"stalled: {polls()}"
                    high = not high
                    for store in stores.values():
                        store.set_input(level.address, encode_value(level, 3000 if high else 500))
                    await asyncio.sleep(3 * INTERVAL_S)
                return start

            mono0 = time.monotonic()
            await flips_until(5)  # before NTP
            clock.offset = 0.0  # NTP sets the clock: 56 years forward
            await flips_until(5)
            clock.offset = -HOUR  # and corrects it back an hour
            await flips_until(5)
            elapsed = time.monotonic() - mono0
            counts = polls()
            daemon.request_stop()
            assert await asyncio.wait_for(task, BOUND_S) == 0
            return counts, elapsed

    counts, elapsed = asyncio.run(asyncio.wait_for(scenario(), 3 * BOUND_S))
    for n in counts:
        # Fixed-rate schedule on monotonic time: never more polls than the time allows (a
        # forward step of 56 years makes no catch-up burst).
        assert 15 <= n <= elapsed / INTERVAL_S + 2
    numbered = [e for e in events if e.stream == "event"]
    assert [e.seq for e in numbered] == list(range(1, len(numbered) + 1))
    assert numbered[0].kind == "gateway.started" and not numbered[0].ts_synced
    levels = [e for e in numbered if e.kind.startswith("level.")]
    assert len(levels) >= 6
    # Before NTP: flagged. After: whatever the kernel says of this machine's clock, but never
    # flagged for the plausibility floor.
    early = [e for e in numbered if e.ts < 1_000_000_000]
    assert early and all(not e.ts_synced for e in early)
    late = [e for e in numbered if e.ts > 1_700_000_000]
    assert late
    for e in numbered:
        doc = payload.to_payload(e)
        payload.validate(doc)
        assert ("tsq" in doc) is (not e.ts_synced)
    for dev in ("lv-1", "lv-2"):
        kinds = [e.kind for e in numbered if e.dev == dev and e.kind.startswith("level.")]
        # Alternating raise / clear in acceptance order, through both steps.
        assert all(a != b for a, b in itertools.pairwise(kinds)), kinds
