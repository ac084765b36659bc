"""``edge-agent demo`` keeps its promise: within its default run it shows a leak suspected,
confirmed and located, a blockage caught in dry weather with its reach, a storm's level,
overflow and flood warnings, a gas alarm raised and cleared and a gas leak on the line, a
cover opened, and a device dropping off the bus and coming back (what `make demo` runs;
README, issues 5 and 11); and the wet well cycling raises nothing."""

from __future__ import annotations

import json
import subprocess

import pytest

from edge_agent import payload
from edge_agent.commands.demo import PROMISES
from tests.integration.sitegw import ENTRY, _env

pytestmark = pytest.mark.slow

DURATION_S = 90  # the default: the storm's warnings come at ~85 s (sim 02:25)


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
    # --json: stdout is events only, one JSON object a line (progress goes to stderr)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "edge-agent demo:" in proc.stderr
    for event in events:
        payload.validate(event)
    kinds = {e["kind"] for e in events}
    missing = [label for label, wanted in PROMISES if not kinds & set(wanted)]
    assert not missing, f"not shown: {missing}; saw {sorted(kinds)}"
    located = next(e for e in events if e["kind"] == "leak.located")
    assert located["data"]["pipe"] == "P-02"
    assert located["data"]["offset_m"] == pytest.approx(75.0, abs=5.0)  # the seed leak L1
    blockages = [e for e in events if e["kind"] == "sewer.blockage_suspected"]
    # the seed blockage is below MH-09 (lv-03), above MH-17 (lv-02): that reach, only it
    assert [(e["dev"], e["data"]["reach"]) for e in blockages] == [("lv-03", "MH09-MH17")]
    assert blockages[0]["data"]["rain_mm_h"] == [0.0]
    # the wet well (lv-01, and ps-01's own level) rises every cycle: no alarm from that
    wet_well = [e for e in events if e["dev"] in ("lv-01", "ps-01") and e["sev"] >= 2]
    assert all(e["kind"] == "overflow.risk" for e in wet_well), wet_well  # the storm's only
    assert (tmp_path / "state" / "outbox.sqlite3").exists()
