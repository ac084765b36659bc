"""The gateway SIGKILLed mid-stream and restarted: a process adds events to the outbox and
drains them to a real mosquitto; it is killed with SIGKILL at random instants, the broker
publishes its Last Will (``offline``), and the restarted process delivers the rest. The
consumer gets every accepted seq at least once, in order per device; duplicates are counted."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from edge_agent import payload
from tests.edge_agent.uplink.test_client import ROOT, check_delivery, event_payloads, has_seqs
from tests.helpers.mosquitto import Consumer, Mosquitto

REPO = Path(__file__).resolve().parents[3]

GATEWAY = r"""
import asyncio, sys
from edge_agent.clock import SyncClock
from edge_agent.events import EventDraft
from edge_agent.outbox import Outbox, OutboxSettings
from edge_agent.uplink import Uplink, UplinkSettings, parse_broker_url

state_dir, url, produce = sys.argv[1], sys.argv[2], int(sys.argv[3])
DEVICES = ("lv-01", "nl-01", "gd-01")

async def main():
    box = Outbox(OutboxSettings(state_dir=state_dir), "gw-01", clock=SyncClock(probe=lambda: True))
    s = UplinkSettings(broker=parse_broker_url(url), site="riverside", gateway="gw-01",
                       reconnect_min_s=0.2, reconnect_max_s=1.0, keepalive_s=5)
    up = Uplink(s, box)
    await up.start()
    print("READY", flush=True)
    i = 0
    while True:
        if produce:
            i += 1
            batch = [EventDraft.of(DEVICES[(i + k) % 3], "level.high", 1.8e9) for k in range(5)]
            evs = await asyncio.to_thread(box.add_many, batch)
            up.kick()
            print("A " + " ".join(str(e.seq) for e in evs), flush=True)
        await asyncio.sleep(0.01)

asyncio.run(main())
"""


def start_gateway(state_dir, url, produce):
    proc = subprocess.Popen(
        [sys.executable, "-c", GATEWAY, str(state_dir), url, "1" if produce else "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout.readline().strip() == "READY"
    return proc


def kill(proc):
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    return {int(s) for line in out.splitlines() if line.startswith("A ") for s in line.split()[1:]}


def test_gateway_sigkill_mid_stream_loses_nothing(tmp_path):
    rng = random.Random(7)
    state = tmp_path / "state"
    with Mosquitto(tmp_path) as broker:
        consumer = Consumer(broker, f"{ROOT}/#")
        consumer.start()
        try:
            accepted = set()
            for _ in range(3):
                proc = start_gateway(state, broker.url, produce=True)
                time.sleep(rng.uniform(0.3, 1.2))
                accepted |= kill(proc)
            assert len(accepted) > 20
            # The Will: the broker announced the killed gateway offline.
            consumer.wait_for(
                lambda ms: any(b"connection lost" in m.payload for m in ms), timeout=20
            )
            proc = start_gateway(state, broker.url, produce=False)
            try:
                consumer.wait_for(has_seqs(consumer, accepted), timeout=60)
            finally:
                kill(proc)
            payloads = event_payloads(consumer)
            dups = check_delivery(payloads, accepted)
            print(f"gateway SIGKILL x3: {len(accepted)} events, {dups} duplicates")
            seqs = {p["seq"] for p in payloads}
            assert seqs == set(range(1, max(seqs) + 1))  # gap-free as seen by the consumer
            wills = [json.loads(m.payload) for m in consumer.snapshot(f"{ROOT}/state")]
            assert {"online", "offline"} <= {w["state"] for w in wills}
            for p in payloads:
                payload.validate(p)
        finally:
            consumer.stop()
