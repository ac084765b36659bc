"""Property: any interleaving of add / begin / end / rewind / reopen keeps the outbox honest:
event seqs are gap-free and never reused, depth matches what was not acknowledged, batches
come oldest first, and an acknowledged row never comes back."""

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.clock import MIN_PLAUSIBLE_EPOCH_S, SyncClock
from edge_agent.events import EventDraft, TelemetryDraft
from edge_agent.outbox import Outbox, OutboxSettings

T0 = MIN_PLAUSIBLE_EPOCH_S + 1000.0

ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(["level.high", "level.rising", "tel"])),
        st.tuples(st.just("begin"), st.integers(1, 6)),
        st.tuples(st.just("end"), st.integers(0, 3)),  # accept every k-th (0: none)
        st.tuples(st.just("rewind"), st.none()),
        st.tuples(st.just("reopen"), st.none()),
    ),
    max_size=40,
)


def open_box(d: Path) -> Outbox:
    return Outbox(OutboxSettings(state_dir=d), "gw-01", clock=SyncClock(lambda: T0, lambda: True))


@settings(max_examples=40, deadline=None)
@given(ops)
def test_any_interleaving_keeps_the_invariants(script):
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "state"
        box = open_box(d)
        stored: set[str] = set()  # ids not yet acknowledged
        acked: set[str] = set()
        event_seqs: list[int] = []
        open_batches = []
        try:
            for op, arg in script:
                if op == "add":
                    item = (
                        TelemetryDraft("lv-01", T0, {"level": 1.0})
                        if arg == "tel"
                        else EventDraft.of("lv-01", arg, T0)
                    )
                    ev = box.add(item)
                    stored.add(ev.id)
                    if ev.stream == "event":
                        event_seqs.append(ev.seq)
                elif op == "begin":
                    batch = box.begin(arg)
                    ids = [e.id for e in batch.events]
                    assert set(ids) <= stored, "an acknowledged row came back"
                    assert list(batch.rowids) == sorted(batch.rowids)
                    open_batches.append(batch)
                elif op == "end" and open_batches:
                    batch = open_batches.pop(0)
                    ok = [e.id for i, e in enumerate(batch.events) if arg and i % arg == 0]
                    box.end(batch, ok)
                    stored -= set(ok)
                    acked |= set(ok)
                elif op == "rewind":
                    box.rewind()
                elif op == "reopen":
                    box.close()
                    box = open_box(d)
                    open_batches.clear()
                assert box.depth() == len(stored)
            assert event_seqs == list(range(1, len(event_seqs) + 1))
            box.rewind()
            remaining = [e.id for e in box.begin(1000).events]  # everything, oldest first
            assert set(remaining) == stored
            assert not set(remaining) & acked
            assert box.next_seq() == len(event_seqs) + 1
        finally:
            box.close()
