"""``edge-agent demo`` keeps its promise: within its run it shows a leak suspected, confirmed
and located, a storm's level alarm, a gas alarm raised and cleared, and a device dropping off
the bus and coming back (what `make demo` runs; README and issue 5)."""

from __future__ import annotations

import json
import subprocess

import pytest

from edge_agent import payload
from edge_agent.commands.demo import PROMISES
from tests.integration.sitegw import ENTRY, _env

pytestmark = pytest.mark.slow

DURATION_S = 45  # everything shows by ~30 s on the development machine; margin for CI


def test_demo_shows_every_promised_event_and_exits_0(tmp_path):
    proc = subprocess.run(
        [
            *ENTRY,
            "demo",
            "--duration",
            str(DURATION_S),
            "--json",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=DURATION_S + 240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    for event in events:
        payload.validate(event)
    kinds = {e["kind"] for e in events}
    missing = [label for label, wanted in PROMISES if not kinds & set(wanted)]
    assert not missing, f"not shown: {missing}; saw {sorted(kinds)}"
    located = next(e for e in events if e["kind"] == "leak.located")
    assert located["data"]["pipe"] == "P-02"
    assert located["data"]["offset_m"] == pytest.approx(75.0, abs=5.0)  # the seed leak L1
    assert (tmp_path / "state" / "outbox.sqlite3").exists()
