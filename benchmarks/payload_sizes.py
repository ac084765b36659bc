"""What the gateway puts on the wire, measured from a real run: message sizes per topic class.

Starts a local mosquitto on a free loopback port, runs ``edge-agent demo --mqtt`` (the
reference site, every integration on) for ``--duration`` seconds as a subprocess, records every
message with a subscriber on ``#``, and prints per class the count and the mean / median /
max payload size in bytes: events (JSON as published, and the same payloads as CBOR), per
event kind, telemetry, the retained state (``state``, ``devices``, ``availability``,
``alarms``, ``values``), Home Assistant discovery configs and Sparkplug B messages. Also the
baseline the docs stated before it was measured: 144 bytes per event.

    .venv/bin/python benchmarks/payload_sizes.py [--duration S] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cbor2  # noqa: E402

from tests.helpers.mosquitto import Consumer, Mosquitto  # noqa: E402

DOCUMENTED_BYTES_PER_EVENT = 144  # docs/mqtt.md before this benchmark existed


def classify(topic: str) -> str:
    if topic.startswith("homeassistant/"):
        return "homeassistant config"
    if topic.startswith("spBv1.0/"):
        return "sparkplug " + topic.split("/")[2]
    parts = topic.split("/")
    return parts[4] if len(parts) > 4 else topic


def figures(sizes: list[int]) -> dict[str, float]:
    return {
        "count": len(sizes),
        "mean": round(statistics.fmean(sizes), 1),
        "median": statistics.median(sizes),
        "max": max(sizes),
    }


def measure(duration_s: float) -> dict[str, object]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        Mosquitto(Path(tmp)) as broker,
        Consumer(broker, "#") as consumer,
    ):
        env = dict(os.environ, PYTHONPATH=str(REPO))
        env.setdefault("NUMBA_CACHE_DIR", str(REPO / ".cache" / "numba"))
        subprocess.run(
            [sys.executable, "-m", "edge_agent", "demo", "--duration", str(duration_s),
             "--mqtt", broker.url, "--state-dir", str(Path(tmp) / "state")],
            check=True, capture_output=True, env=env, timeout=duration_s + 300,
        )  # fmt: skip
        messages = [m for m in consumer.snapshot() if m.payload]
    by_class: dict[str, list[int]] = defaultdict(list)
    by_kind: dict[str, list[int]] = defaultdict(list)
    cbor_sizes = []
    for m in messages:
        cls = classify(m.topic)
        by_class[cls].append(len(m.payload))
        if cls == "event":
            body = json.loads(m.payload)
            by_kind[body["kind"]].append(len(m.payload))
            cbor_sizes.append(len(cbor2.dumps(body)))
    events = by_class["event"]
    return {
        "duration_s": duration_s,
        "classes": {cls: figures(sizes) for cls, sizes in sorted(by_class.items())},
        "event_kinds": {kind: figures(sizes) for kind, sizes in sorted(by_kind.items())},
        "bytes_per_event_json": round(statistics.fmean(events), 1),
        "bytes_per_event_cbor": round(statistics.fmean(cbor_sizes), 1),
        "bytes_per_event_documented_before": DOCUMENTED_BYTES_PER_EVENT,
        "json_vs_documented": round(statistics.fmean(events) / DOCUMENTED_BYTES_PER_EVENT, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="demo seconds (default 60)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    result = measure(args.duration)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'class':<34} {'count':>6} {'mean':>8} {'median':>8} {'max':>7}")
    for title, table in (("", result["classes"]), ("event kind: ", result["event_kinds"])):
        for name, f in table.items():  # type: ignore[attr-defined]
            print(
                f"{title + name:<34} {f['count']:>6} {f['mean']:>8} {f['median']:>8} {f['max']:>7}"
            )
    print(
        f"bytes per event: JSON {result['bytes_per_event_json']}, CBOR "
        f"{result['bytes_per_event_cbor']} (documented before: {DOCUMENTED_BYTES_PER_EVENT}; "
        f"measured / documented {result['json_vs_documented']})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
