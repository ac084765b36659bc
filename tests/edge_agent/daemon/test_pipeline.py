"""The data path's two pieces: ``OutboxWriter.emit``, the one door into the outbox (drafts
stored in the order emitted; a refused draft logged and dropped, its neighbours kept), and
``Pipeline.on_poll`` (one PollResult -> its availability event, its rules' events, one
telemetry record)."""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor

from drivers.model import AvailabilityChange, PollResult
from edge_agent.clock import MIN_PLAUSIBLE_EPOCH_S, SyncClock
from edge_agent.daemon.pipeline import OutboxWriter, Pipeline
from edge_agent.events import EventDraft, Severity, TelemetryDraft
from edge_agent.outbox import Outbox, OutboxSettings
from edge_agent.rules import DeviceInfo, RulesConfig, RulesEngine, TelemetryFilter
from tests.edge_agent.rules.helpers import PROFILES, reading

T0 = MIN_PLAUSIBLE_EPOCH_S + 86400.0


def level(i: int) -> EventDraft:
    return EventDraft.of("lv-01", "level.high", T0, i=i)


def test_emits_are_stored_in_order_and_a_refused_draft_keeps_its_neighbours(tmp_path):
    """Three emits, the second holding a draft JSON cannot carry: every other draft is
    stored, numbered in the order emitted, none lost or reordered."""
    seen = []

    async def main() -> None:
        clock = SyncClock(lambda: T0, lambda: True)
        with (
            ThreadPoolExecutor(1) as io,
            Outbox(OutboxSettings(tmp_path / "state"), "gw-01", clock=clock) as box,
        ):
            writer = OutboxWriter(box, io, kick=lambda: None, on_event=seen.append)
            writer.emit([level(0)])
            nan = EventDraft("lv-01", "level.high", Severity.WARNING, T0, {"x": math.nan})
            writer.emit([level(1), nan, level(2)])
            await writer.emit([level(3), TelemetryDraft("lv-01", T0, {"level": 1.0})])
            assert box.depth() == 5
            assert writer.events_accepted == 4

    asyncio.run(main())
    assert [(e.stream, e.seq) for e in seen] == [("event", n) for n in (1, 2, 3, 4)] + [
        ("telemetry", 1)
    ]
    assert [e.data.get("i") for e in seen[:4]] == [0, 1, 2, 3]


def test_telemetry_waits_for_company_and_an_event_or_a_drain_takes_it_along(tmp_path):
    """Telemetry alone is held (one transaction for a second of polls, not one per poll);
    an event is stored at once with the telemetry emitted before it, in order; a drain
    stores held telemetry at once. (The hold is an hour here: nothing is timed.)"""
    seen = []

    def telemetry(i: int) -> TelemetryDraft:
        return TelemetryDraft("lv-01", T0 + i, {"level": float(i)})

    async def turns(n: int = 20) -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    async def main() -> None:
        clock = SyncClock(lambda: T0, lambda: True)
        with (
            ThreadPoolExecutor(1) as io,
            Outbox(OutboxSettings(tmp_path / "state"), "gw-01", clock=clock) as box,
        ):
            writer = OutboxWriter(
                box, io, kick=lambda: None, on_event=seen.append, telemetry_hold_s=3600
            )
            first = writer.emit([telemetry(0)])
            writer.emit([telemetry(1)])
            await turns()
            assert box.depth() == 0 and not first.done()  # held, waiting for company
            await writer.emit([level(0)])  # an event: stored at once, the telemetry with it
            assert first.done() and box.depth() == 3
            writer.emit([telemetry(2)])
            await turns()
            assert box.depth() == 3
            await writer.drain(10.0)
            assert box.depth() == 4

    asyncio.run(main())
    assert [(e.stream, e.seq) for e in seen] == [
        ("telemetry", 1), ("telemetry", 2), ("event", 1), ("telemetry", 3)
    ]  # fmt: skip


def test_a_poll_is_its_availability_event_then_its_rules_then_one_telemetry_record():
    info = [DeviceInfo("lv-01", PROFILES.get("level-radar-lr10"))]
    emitted: list[list] = []

    def emit(drafts):
        emitted.append(list(drafts))

    pipeline = Pipeline(
        RulesEngine(RulesConfig(), info), TelemetryFilter(RulesConfig(), info), emit
    )
    back = AvailabilityChange(True, offline_s=42.0)
    readings = (reading("lv-01", "level", 500.0, T0), reading("lv-01", "battery", 90.0, T0))
    pipeline.on_poll(PollResult("plc", "lv-01", T0, readings, None, back))
    pipeline.on_poll(PollResult("plc", "lv-01", T0 + 1, readings))  # nothing new: no emit
    pipeline.on_poll(PollResult("plc", "lv-01", T0 + 2, error="no answer"))
    (drafts,) = emitted
    assert (drafts[0].kind, drafts[0].data["offline_s"]) == ("device.online", 42.0)
    telemetry = drafts[-1]
    assert isinstance(telemetry, TelemetryDraft)
    assert telemetry.values == {"level": 500.0, "battery": 90.0}
