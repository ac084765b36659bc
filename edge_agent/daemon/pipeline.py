"""The data path from a poll to the outbox: ``Pipeline`` (one config's rules and telemetry
filter) and ``OutboxWriter``, whose ``emit`` is the one door into the outbox.

A bus runner hands each ``PollResult`` to ``Pipeline.on_poll``: the rules turn its
availability change and readings into ``EventDraft``s, the telemetry filter its readings into
at most one ``TelemetryDraft``, and both go through ``emit``, as do the leak pipeline's and
the daemon's own events. Drafts are stored in the order emitted, all those waiting at a
moment in one transaction on the outbox thread; each accepted event is logged and shown to
``on_event``, and the uplink is kicked. Telemetry alone waits up to ``TELEMETRY_HOLD_S`` for
company: the devices' polls are spread over each second, and one transaction (and one uplink
batch) a second costs the outbox thread and the loop's hand-overs far less than one per poll.
An event never waits: it takes the telemetry waiting before it along, in order. A SIGHUP
builds a new ``Pipeline`` (new rules) around the same writer: the outbox, its sequence
numbers and what is on its way stay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

from drivers.model import PollResult
from edge_agent.events import Draft, Event, TelemetryDraft
from edge_agent.logs import get_logger
from edge_agent.outbox import Outbox
from edge_agent.payload import PayloadError
from edge_agent.rules import RulesEngine, TelemetryFilter

__all__ = ["TELEMETRY_HOLD_S", "Emit", "OutboxWriter", "Pipeline"]

# The longest telemetry waits for the next drafts before it is stored: one poll interval
# (1 s) gathers every device's poll into one transaction. Events are stored at once.
TELEMETRY_HOLD_S = 1.0

# Returns at once; the future resolves once the drafts are stored (await it, or not).
Emit = Callable[[Sequence[Draft]], "asyncio.Future[None]"]

log = get_logger("edge_agent.daemon")


class OutboxWriter:
    """The one door into the outbox (``emit``, on the loop). Never raises: a draft the
    outbox refuses (a rule's bug: data JSON cannot carry) is logged and dropped, its
    neighbours kept."""

    def __init__(
        self,
        outbox: Outbox,
        io: Executor,
        *,
        kick: Callable[[], None],
        on_event: Callable[[Event], None] | None = None,
        telemetry_hold_s: float = TELEMETRY_HOLD_S,
    ) -> None:
        self.outbox, self._io, self._kick, self._on_event = outbox, io, kick, on_event
        self.telemetry_hold_s = telemetry_hold_s
        self.events_accepted = 0
        self._waiting: list[tuple[Sequence[Draft], asyncio.Future[None]]] = []
        self._urgent = False  # an event (or a drain) waits: no holding
        self._hold: asyncio.Future[None] | None = None  # resolved: stop holding
        self._writer: asyncio.Task[None] | None = None

    def emit(self, drafts: Sequence[Draft]) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        stored = loop.create_future()
        self._waiting.append((drafts, stored))
        if not all(type(d) is TelemetryDraft for d in drafts):
            self._flush_now()
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write(), name="outbox-writer")
            self._writer.add_done_callback(_log_failure)
        return stored

    async def drain(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until what was emitted is stored (held telemetry
        is stored at once)."""
        if self._writer is not None and not self._writer.done():
            self._flush_now()
            await asyncio.wait({self._writer}, timeout=timeout_s)

    def _flush_now(self) -> None:
        self._urgent = True
        if self._hold is not None and not self._hold.done():
            self._hold.set_result(None)

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            if not self._urgent and self.telemetry_hold_s > 0:
                await self._hold_telemetry(loop)
            batch, self._waiting = self._waiting, []
            self._urgent = False
            drafts = [draft for drafts, _ in batch for draft in drafts]
            try:
                accepted = await loop.run_in_executor(self._io, self._add, drafts)
            finally:
                for _, stored in batch:
                    if not stored.done():
                        stored.set_result(None)
            for event in accepted:
                if event is not None:  # None: held in memory (degraded), dropped telemetry
                    self._accepted(event)
            self._kick()

    async def _hold_telemetry(self, loop: asyncio.AbstractEventLoop) -> None:
        """Only telemetry waits: give the other devices' polls ``telemetry_hold_s`` to join
        it, unless an event or a drain comes first."""
        hold = self._hold = loop.create_future()
        timer = loop.call_later(self.telemetry_hold_s, _resolve, hold)
        try:
            await hold
        finally:
            timer.cancel()
            self._hold = None

    def _add(self, drafts: list[Draft]) -> list[Event | None]:
        """(outbox thread) One transaction; if a draft is refused, each on its own."""
        try:
            return self.outbox.add_many(drafts)
        except PayloadError:
            out: list[Event | None] = []
            for draft in drafts:
                try:
                    out += self.outbox.add_many([draft])
                except PayloadError as exc:
                    log.error(
                        "draft refused by the outbox (a bug)", device=draft.dev, error=str(exc)
                    )
            return out

    def _accepted(self, event: Event) -> None:
        if event.stream == "event":
            self.events_accepted += 1
            log.info(
                "event", device=event.dev, kind=event.kind, seq=event.seq, sev=int(event.sev),
                data=event.data,
            )  # fmt: skip
        if self._on_event is not None:
            self._on_event(event)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _log_failure(task: asyncio.Task[None]) -> None:
    """The outbox failed in a way it does not absorb (a corrupt database, the executor shut
    down at exit): say so once, with the traceback; what waited is resolved, not stored."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("outbox writer failed", exc_info=exc)


class Pipeline:
    """One config's rules and telemetry filter between the bus runners and ``emit``."""

    def __init__(self, rules: RulesEngine, telemetry: TelemetryFilter, emit: Emit) -> None:
        self.rules, self.telemetry, self.emit = rules, telemetry, emit

    def on_poll(self, result: PollResult) -> None:
        """The bus runners' sink (on the loop, never blocks)."""
        drafts: list[Draft] = list(self.rules.on_poll(result))
        telemetry = self.telemetry.on_poll(result)
        if telemetry is not None:
            drafts.append(telemetry)
        if drafts:
            self.emit(drafts)
