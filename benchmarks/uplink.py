"""Uplink drain benchmark: how fast a backlog (a gateway back after days offline) empties.

Fills a fresh outbox with N events (default 100 000), starts a local mosquitto on a free
loopback port, and measures side by side in this process:
- ``drain``: edge_agent's Uplink draining the outbox at QoS 1 (read batch, publish, PUBACK,
  delete) until the outbox is empty;
- ``bare paho``: a plain paho-mqtt publish loop of the same topics and payloads at QoS 1 with
  the same in-flight window, waiting for every PUBACK (no durability, no read, no delete).
Prints ``drain_events_per_s``, ``bare_paho_events_per_s``, ``drain_ratio_vs_bare_paho``
(floor 0.5) and bytes per event as JSON and CBOR. Also, in process: the drain's per-row
encoding (``payload.encode`` around the stored ``data`` text) against the baseline of parsing
``data`` and dumping the whole payload dict, as the uplink did before
(``encode_speedup_vs_full_dump``; the two give the same bytes, checked first).

    .venv/bin/python benchmarks/uplink.py [--events N] [--inflight N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402
import structlog  # noqa: E402

from edge_agent import payload  # noqa: E402
from edge_agent.clock import SyncClock  # noqa: E402
from edge_agent.events import EventDraft  # noqa: E402
from edge_agent.outbox import Outbox, OutboxSettings  # noqa: E402
from edge_agent.uplink import Topics, Uplink, UplinkSettings, parse_broker_url  # noqa: E402
from tests.helpers.mosquitto import Mosquitto  # noqa: E402

RATIO_FLOOR = 0.5
T0 = 1_767_225_600.0


def realistic_drafts(n: int, seed: int = 1) -> list[EventDraft]:
    """A mix of the event kinds a district produces, with typical data."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r = i % 4
        ts = T0 + i * 0.5
        if r == 0:
            d = EventDraft.of(
                f"lv-{i % 40:02d}", "level.high", ts,
                level_mm=round(rng.uniform(800, 1500), 1), threshold_mm=800.0,
                rate_mm_min=round(rng.uniform(0, 30), 2),
            )  # fmt: skip
        elif r == 1:
            d = EventDraft.of(
                f"nl-{i % 60:02d}", "leak.suspected", ts,
                score=round(rng.random(), 3), l90_db=round(rng.uniform(10, 40), 1),
                peak_hz=round(rng.uniform(200, 1500), 0), nights=1,
            )  # fmt: skip
        elif r == 2:
            d = EventDraft.of(
                f"gd-{i % 20:02d}", "gas.alarm1", ts, lel_pct=round(rng.uniform(25, 50), 1)
            )
        else:
            d = EventDraft.of(f"lv-{i % 40:02d}", "device.offline", ts, failures=3)
        out.append(d)
    return out


def fill(box: Outbox, drafts: list[EventDraft]) -> None:
    for k in range(0, len(drafts), 2000):
        box.add_many(drafts[k : k + 2000])


async def drain(settings: UplinkSettings, box: Outbox) -> float:
    up = Uplink(settings, box)
    t0 = time.perf_counter()
    await up.start()
    while box.depth():
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - t0
    await up.stop()
    return elapsed


def bare_paho(broker: Mosquitto, messages: list[tuple[str, bytes]], inflight: int) -> float:
    """The baseline: publish every payload at QoS 1 keeping ``inflight`` unacknowledged (a
    semaphore released by on_publish). Bounded like the uplink: handing paho 100 000 messages
    at once would measure paho's queue scan (quadratic), not the link."""
    done = threading.Event()
    connected = threading.Event()
    window = threading.Semaphore(inflight)
    acked = 0

    def on_publish(client, userdata, mid, reason_code, properties):
        nonlocal acked
        acked += 1
        window.release()
        if acked == len(messages):
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, "bare-paho", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.on_connect = lambda *a: connected.set()
    t0 = time.perf_counter()
    client.connect(broker.host, broker.port)
    client.loop_start()
    connected.wait(10)
    for topic, body in messages:
        window.acquire()
        client.publish(topic, body, qos=1)
    done.wait(600)
    elapsed = time.perf_counter() - t0
    client.disconnect()
    client.loop_stop()
    return elapsed


def encode_speedup(events: list, rounds: int = 9) -> tuple[float, float]:
    """(us per row of payload.encode, its speedup over parse-and-dump), best of ``rounds``
    alternating batches over the same rows."""
    rows = events[:5000]

    def full_dump(e) -> bytes:
        doc = payload.to_payload(e)  # parses the stored data text, as the old path did
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

    assert all(payload.encode(e) == full_dump(e) for e in rows[:200])
    best = {"splice": float("inf"), "dump": float("inf")}
    for _ in range(rounds):
        for name, fn in (("splice", payload.encode), ("dump", full_dump)):
            t0 = time.perf_counter()
            for e in rows:
                fn(e)
            best[name] = min(best[name], (time.perf_counter() - t0) / len(rows))
    return best["splice"] * 1e6, best["dump"] / best["splice"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="backlog size (default 100000)")
    ap.add_argument("--inflight", type=int, default=32, help="QoS 1 window (default 32)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    # Log lines (connected / stopped) go to stderr: stdout is the figures (or one JSON object).
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))

    drafts = realistic_drafts(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        box = Outbox(
            OutboxSettings(state_dir=tmpdir / "state", max_bytes=1 << 30),
            "gw-01",
            clock=SyncClock(probe=lambda: True),
        )
        t0 = time.perf_counter()
        fill(box, drafts)
        fill_s = time.perf_counter() - t0
        # The exact payloads the uplink will send, for the bare loop and the size figures.
        events = []
        while batch := box.begin(5000):
            events.extend(batch.events)
        box.rewind()
        topics = Topics("lifeline/v1", "riverside", "gw-01")
        messages = [(topics.for_event(e), payload.encode(e, "json")) for e in events]
        json_sizes = [len(p) for _, p in messages]
        cbor_sizes = [len(payload.encode(e, "cbor")) for e in events]
        encode_us, encode_speedup_x = encode_speedup(events)

        with Mosquitto(tmpdir) as broker:
            settings = UplinkSettings(
                broker=parse_broker_url(broker.url),
                site="riverside",
                gateway="gw-01",
                inflight=args.inflight,
            )
            drain_s = asyncio.run(drain(settings, box))
            bare_s = bare_paho(broker, messages, args.inflight)
        box.close()

    n = len(events)
    result = {
        "events": n,
        "inflight": args.inflight,
        "fill_events_per_s": round(n / fill_s),
        "drain_s": round(drain_s, 2),
        "drain_events_per_s": round(n / drain_s),
        "bare_paho_s": round(bare_s, 2),
        "bare_paho_events_per_s": round(n / bare_s),
        "drain_ratio_vs_bare_paho": round(bare_s / drain_s, 3),
        "ratio_floor": RATIO_FLOOR,
        "encode_us_per_event": round(encode_us, 2),
        "encode_speedup_vs_full_dump": round(encode_speedup_x, 2),
        "bytes_per_event_json": round(statistics.fmean(json_sizes), 1),
        "bytes_per_event_cbor": round(statistics.fmean(cbor_sizes), 1),
    }
    result["floor_met"] = result["drain_ratio_vs_bare_paho"] >= RATIO_FLOOR
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:28s} {v}")
    return 0 if result["floor_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
