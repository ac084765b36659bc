"""The uplink against a real mosquitto started by each test on a free loopback port: plain,
username/password, TLS client certificates, MQTT 3.1.1 and 5, CBOR, a broker that refuses a
topic (v5 PUBACK reason code), and a broker stopped and restarted mid-stream. Every event the
consumer sees is validated against the JSON Schema; delivery is checked as "every seq at least
once, in order per device", with duplicates counted."""

import asyncio
import json
from collections import defaultdict

import pytest
import structlog

from edge_agent import payload
from edge_agent.clock import MIN_PLAUSIBLE_EPOCH_S, SyncClock
from edge_agent.config.secrets import Secret
from edge_agent.events import EventDraft, TelemetryDraft
from edge_agent.integrations.catalog import Catalog, FieldDevice
from edge_agent.integrations.hub import Integrations, IntegrationSettings
from edge_agent.outbox import Outbox, OutboxSettings
from edge_agent.uplink import TlsFiles, Topics, Uplink, UplinkSettings, parse_broker_url
from tests.helpers.mosquitto import Consumer, Mosquitto, free_port, make_certs

T0 = MIN_PLAUSIBLE_EPOCH_S + 86400.0
DEVICES = ("lv-01", "nl-01", "gd-01")
ROOT = "lifeline/v1/riverside/gw-01"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("pki"))


def run(coro, timeout=120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def settings_for(broker, **kw):
    kw.setdefault("reconnect_min_s", 0.2)
    kw.setdefault("reconnect_max_s", 1.0)
    kw.setdefault("connect_timeout_s", 5.0)
    return UplinkSettings(
        broker=parse_broker_url(broker.url), site="riverside", gateway="gw-01", **kw
    )


def open_box(tmp_path):
    clock = SyncClock(probe=lambda: True)
    return Outbox(OutboxSettings(state_dir=tmp_path / "state"), "gw-01", clock=clock)


def drafts(start, n):
    return [
        EventDraft.of(DEVICES[i % 3], "level.high", T0 + i, i=i) for i in range(start, start + n)
    ]


def event_payloads(consumer):
    """Decoded, schema-validated payloads of every message on event/ topics."""
    out = []
    for m in consumer.snapshot(f"{ROOT}/event/"):
        p = payload.decode(m.payload)
        assert m.topic == f"{ROOT}/event/{p['dev']}"
        out.append(p)
    return out


def has_seqs(consumer, seqs):
    """A wait_for predicate: every seq in ``seqs`` seen on an event topic (incremental: each
    message is decoded once, however often the predicate runs)."""
    want = set(seqs)
    seen = set()
    done = 0

    def check(msgs):
        nonlocal done
        for m in msgs[done:]:
            if m.topic.startswith(f"{ROOT}/event/"):
                seen.add(payload.decode(m.payload)["seq"])
        done = len(msgs)
        return want <= seen

    return check


def check_delivery(payloads, expected):
    """Every expected seq at least once; per device, first sightings in increasing order.
    Returns the number of duplicates."""
    seen = [p["seq"] for p in payloads]
    assert set(expected) <= set(seen), sorted(set(expected) - set(seen))[:10]
    first = {}
    for p in payloads:
        first.setdefault(p["seq"], p["dev"])
    per_dev = defaultdict(list)
    for seq, dev in first.items():  # dicts keep insertion (= arrival) order
        per_dev[dev].append(seq)
    for dev, seqs in per_dev.items():
        assert seqs == sorted(seqs), f"{dev} out of order"
    return len(seen) - len(set(seen))


async def wait_until(predicate, timeout=60.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def metadata_hub(devices):
    """The integrations hub with a catalog of ``devices`` (FieldDevice), as the daemon has."""
    catalog = Catalog("riverside", "gw-01", "edge-agent test", tuple(devices))
    hub = Integrations(
        IntegrationSettings(),
        Topics("lifeline/v1", "riverside", "gw-01"),
        Catalog("riverside", "gw-01", "edge-agent test"),
        now=lambda: T0,
        wall=lambda: T0,
    )
    hub.set_catalog(catalog, lambda _dev: frozenset())
    return hub


async def drain_all(settings, box, consumer, seqs, derived=None, timeout=60.0):
    up = Uplink(settings, box, derived)
    await up.start()
    try:
        await asyncio.to_thread(consumer.wait_for, has_seqs(consumer, seqs), timeout)
        await wait_until(lambda: box.depth() == 0)
    finally:
        await up.stop()
    return up


def test_plain_drain_birth_metadata_and_clean_offline(tmp_path):
    """Events arrive in order on event/{device}; state goes online then (clean stop) offline,
    both retained; device metadata is retained; telemetry goes to telemetry/{device}."""
    with Mosquitto(tmp_path) as broker, open_box(tmp_path) as box:
        accepted = box.add_many(drafts(0, 300))
        box.add(TelemetryDraft("lv-01", T0, {"level_mm": 812.0}))
        meta = metadata_hub(
            FieldDevice(d, "p", asset_id=f"A-{d}", lat=31.2, lon=121.4) for d in DEVICES
        )
        with Consumer(broker, f"{ROOT}/#") as consumer:
            up = run(
                drain_all(settings_for(broker), box, consumer, [e.seq for e in accepted], meta)
            )
            consumer.wait_for(lambda ms: any(b'"offline"' in m.payload for m in ms), 10)
            assert check_delivery(event_payloads(consumer), [e.seq for e in accepted]) == 0
            states = [json.loads(m.payload)["state"] for m in consumer.snapshot(f"{ROOT}/state")]
            assert states[0] == "online" and states[-1] == "offline"
            (tel,) = consumer.snapshot(f"{ROOT}/telemetry/")
            assert payload.decode(tel.payload)["data"] == {"level_mm": 812.0}
            st = up.status()
            assert (st.published, st.failed, st.state) == (301, 0, "stopped")
        # A late subscriber gets the retained state and metadata only.
        with Consumer(broker, f"{ROOT}/#") as late:
            late.wait_for(lambda ms: len(ms) >= 4, 10)
            got = {m.topic: json.loads(m.payload) for m in late.snapshot() if m.retain}
            assert got[f"{ROOT}/state"]["state"] == "offline"
            assert got[f"{ROOT}/devices/nl-01"]["asset_id"] == "A-nl-01"
            assert got[f"{ROOT}/devices/nl-01"]["location"]["lat"] == 31.2


@pytest.mark.parametrize(("protocol", "encoding"), [("3.1.1", "json"), ("5", "cbor")])
def test_protocols_and_encodings(tmp_path, protocol, encoding):
    with Mosquitto(tmp_path) as broker, open_box(tmp_path) as box:
        accepted = box.add_many(drafts(0, 50))
        with Consumer(broker, f"{ROOT}/#") as consumer:
            s = settings_for(broker, protocol=protocol, encoding=encoding)
            run(drain_all(s, box, consumer, [e.seq for e in accepted]))
            raw = consumer.snapshot(f"{ROOT}/event/")[0].payload
            assert raw[:1] == (b"{" if encoding == "json" else b"\xa8")


def test_username_password_and_wrong_password_never_shown(tmp_path, capsys):
    """A wrong password is refused with a one-line error; no password shows in the status,
    the settings' repr, the log entries or the output."""
    users = {"gw-01": "right-horse-battery", "ops": "ops-pass"}
    with Mosquitto(tmp_path, users=users) as broker, open_box(tmp_path) as box:
        accepted = box.add_many(drafts(0, 20))
        with Consumer(broker, f"{ROOT}/#", username="ops", password="ops-pass") as consumer:
            bad = settings_for(broker, username="gw-01", password=Secret("wrong-staple"))

            async def refused():
                up = Uplink(bad, box)
                await up.start()
                await wait_until(lambda: up.status().last_error is not None, 20)
                await up.stop()
                return up.status()

            with structlog.testing.capture_logs() as logs:
                st = run(refused())
            assert any("refused" in str(e.get("error")) for e in logs)
            assert "wrong-staple" not in repr(logs)
            assert "refused" in st.last_error and st.state == "stopped"
            assert "wrong-staple" not in repr(st) + repr(bad) + str(bad)
            good = settings_for(broker, username="gw-01", password=Secret("right-horse-battery"))
            run(drain_all(good, box, consumer, [e.seq for e in accepted]))
    out = capsys.readouterr()
    assert "wrong-staple" not in out.out + out.err
    assert "right-horse-battery" not in out.out + out.err


def test_tls_with_client_certificate(tmp_path, certs):
    with Mosquitto(tmp_path, tls=certs) as broker, open_box(tmp_path) as box:
        accepted = box.add_many(drafts(0, 50))
        tls = TlsFiles(str(certs.ca), str(certs.client_cert), str(certs.client_key))
        with Consumer(broker, f"{ROOT}/#") as consumer:
            run(drain_all(settings_for(broker, tls=tls), box, consumer, [e.seq for e in accepted]))


@pytest.mark.parametrize(
    ("which", "needle"),
    [("wrong_ca", "certificate"), ("no_client_cert", "")],
)
def test_tls_refusals(tmp_path, certs, which, needle):
    """A broker whose certificate is not from our CA is refused; a broker that requires a
    client certificate refuses us without one. Nothing is deleted from the outbox."""
    if which == "wrong_ca":
        tls = TlsFiles(str(certs.wrong_ca), str(certs.client_cert), str(certs.client_key))
    else:
        tls = TlsFiles(str(certs.ca))
    with Mosquitto(tmp_path, tls=certs) as broker, open_box(tmp_path) as box:
        box.add_many(drafts(0, 5))

        async def attempt():
            up = Uplink(settings_for(broker, tls=tls), box)
            await up.start()
            await wait_until(lambda: up.status().last_error is not None, 20)
            await asyncio.sleep(0.5)
            status = up.status()
            await up.stop()
            return status

        st = run(attempt())
        assert st.state != "connected" and st.published == 0
        assert needle in st.last_error
        assert "\n" not in st.last_error
        assert box.depth() == 5


def test_unreachable_broker_keeps_everything_and_stops_promptly(tmp_path):
    with open_box(tmp_path) as box:
        box.add_many(drafts(0, 3))
        s = UplinkSettings(
            broker=parse_broker_url(f"mqtt://127.0.0.1:{free_port()}"),
            site="riverside",
            gateway="gw-01",
            reconnect_min_s=0.1,
            reconnect_max_s=0.2,
        )

        async def go():
            up = Uplink(s, box)
            await up.start()
            await wait_until(lambda: up.status().last_error is not None, 20)
            await up.stop()
            return up.status()

        st = run(go(), timeout=30)
        assert st.last_error.startswith("cannot connect to mqtt://127.0.0.1:")
        assert "refused" in st.last_error
        assert (st.state, st.published) == ("stopped", 0)
        assert box.depth() == 3


def test_v5_puback_failure_keeps_the_row(tmp_path):
    """The broker refuses event/nl-01 (ACL): a v5 PUBACK with 'Not authorized'. paho calls
    that a completed publish; the uplink must keep the row and count the failure."""
    acl = f"user gw-01\ntopic write {ROOT}/state\ntopic write {ROOT}/event/lv-01\n"
    acl += f"topic write {ROOT}/devices/#\nuser ops\ntopic read {ROOT}/#\n"
    users = {"gw-01": "pw-gw", "ops": "pw-ops"}
    with Mosquitto(tmp_path, users=users, acl=acl) as broker, open_box(tmp_path) as box:
        ok = box.add(EventDraft.of("lv-01", "level.high", T0, i=1))
        denied = box.add(EventDraft.of("nl-01", "leak.suspected", T0, score=0.7))
        with Consumer(broker, f"{ROOT}/#", username="ops", password="pw-ops") as consumer:
            s = settings_for(broker, username="gw-01", password=Secret("pw-gw"))

            async def go():
                up = Uplink(s, box)
                await up.start()
                await wait_until(lambda: up.status().failed >= 1, 30)
                await asyncio.to_thread(consumer.wait_for, has_seqs(consumer, [ok.seq]), 20)
                st = up.status()
                await up.stop()
                return st

            st = run(go())
        assert "Not authorized" in st.last_error
        assert denied.id in st.last_error
        remaining = box.begin(10).events
        assert [e.id for e in remaining] == [denied.id]


def test_broker_restart_mid_stream(tmp_path):
    """The broker goes away while events keep coming and returns on the same port: the
    consumer (persistent session) gets every seq at least once, in order per device."""
    with Mosquitto(tmp_path, persistence=True) as broker, open_box(tmp_path) as box:
        consumer = Consumer(broker, f"{ROOT}/event/#", client_id="ops-1", clean_start=False)
        consumer.start()
        try:
            accepted = []

            async def go():
                up = Uplink(settings_for(broker), box)
                await up.start()
                for round_ in range(30):
                    accepted.extend(box.add_many(drafts(round_ * 40, 40)))
                    up.kick()
                    if round_ == 10:
                        await asyncio.to_thread(broker.restart)
                    await asyncio.sleep(0.05)
                await asyncio.to_thread(
                    consumer.wait_for, has_seqs(consumer, [e.seq for e in accepted]), 90
                )
                await wait_until(lambda: box.depth() == 0)
                st = up.status()
                await up.stop()
                return st

            st = run(go(), timeout=150)
            dups = check_delivery(event_payloads(consumer), [e.seq for e in accepted])
            assert st.reconnects >= 1
            print(f"broker restart: {len(accepted)} events, {dups} duplicates")
        finally:
            consumer.stop()


def test_stop_with_drain_sends_the_backlog_first(tmp_path):
    """stop(drain_s) waits until the outbox is empty (or drain_s passes) before going offline."""

    async def main(broker, box):
        up = Uplink(settings_for(broker), box)
        await up.start()
        await wait_until(lambda: up.status().connected)
        accepted = box.add_many(drafts(0, 500))  # no await: the uplink has not seen it yet
        up.kick()
        await up.stop(drain_s=60.0)
        return accepted

    with (
        Mosquitto(tmp_path) as broker,
        open_box(tmp_path) as box,
        Consumer(broker, f"{ROOT}/#") as consumer,
    ):
        accepted = run(main(broker, box))
        assert box.depth() == 0
        consumer.wait_for(lambda ms: any(b'"offline"' in m.payload for m in ms), 10)
        check_delivery(event_payloads(consumer), [e.seq for e in accepted])
