"""Payload encoding: compact JSON and CBOR round-trip, the schema accepts what we produce and
rejects what breaks the contract with a one-line error naming the field."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent import payload
from edge_agent.events import DEFAULT_SEVERITY, Event, EventDraft, Severity
from edge_agent.payload import PayloadError


def make_event(**kw):
    base = dict(
        gateway="gw-01",
        seq=42,
        dev="nl-07",
        kind="leak.suspected",
        sev=Severity.NOTICE,
        ts=1767225600.1234,
        data={"score": 0.71, "band_hz": [200, 1500]},
    )
    base.update(kw)
    base["data_json"] = payload.dumps_data(base.pop("data"))  # as the outbox stores it
    return Event(**base)


@pytest.mark.parametrize("encoding", ["json", "cbor"])
def test_round_trip_validates(encoding):
    """What we encode decodes to the documented payload and passes the schema."""
    raw = payload.encode(make_event(), encoding)
    doc = payload.decode(raw, encoding)
    assert doc == {
        "v": 1,
        "id": "gw-01:42",
        "seq": 42,
        "ts": 1767225600123,
        "dev": "nl-07",
        "kind": "leak.suspected",
        "sev": 1,
        "data": {"score": 0.71, "band_hz": [200, 1500]},
    }
    assert payload.decode(raw) == doc  # sniffed


def test_json_is_compact_and_keyed_in_contract_order():
    raw = payload.encode(make_event())
    assert b" " not in raw
    assert raw.startswith(b'{"v":1,"id":"gw-01:42","seq":42,"ts":')


def test_unsynced_clock_is_flagged():
    """``tsq`` is present only while the clock was not synchronised."""
    assert "tsq" not in payload.to_payload(make_event())
    doc = payload.decode(payload.encode(make_event(ts_synced=False)))
    assert doc["tsq"] == "unsynced"


def test_telemetry_has_its_own_id_space():
    ev = make_event(kind="telemetry", sev=Severity.INFO, stream="telemetry", data={"level": 1.2})
    assert payload.decode(payload.encode(ev))["id"] == "gw-01:t42"


@pytest.mark.parametrize("kind", sorted(DEFAULT_SEVERITY))
def test_every_known_kind_validates(kind):
    d = EventDraft.of("dev-1", kind, 1767225600.0, x=1)
    ev = make_event(kind=d.kind, sev=d.sev, dev=d.dev, data=d.data)
    payload.validate(payload.to_payload(ev))


GOOD = payload.to_payload(make_event())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"v": 2}, "v"),
        ({"seq": 0}, "seq"),
        ({"seq": "7"}, "seq"),
        ({"ts": -1}, "ts"),
        ({"ts": 1.5}, "ts"),
        ({"dev": "a/b"}, "dev"),
        ({"dev": "+"}, "dev"),
        ({"kind": "Leak"}, "kind"),
        ({"sev": 5}, "sev"),
        ({"id": "gw-01"}, "id"),
        ({"data": []}, "data"),
        ({"tsq": "maybe"}, "tsq"),
        ({"extra": 1}, "<root>"),
    ],
)
def test_schema_rejects_with_field_name(change, field):
    bad = {**GOOD, **change}
    with pytest.raises(PayloadError) as err:
        payload.validate(bad)
    msg = str(err.value)
    assert msg.startswith(f"payload {field}:")
    assert "\n" not in msg


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"", b"{}"])
def test_garbage_bytes_are_one_line_errors(raw):
    with pytest.raises(PayloadError) as err:
        payload.decode(raw)
    assert "\n" not in str(err.value)


def test_non_finite_data_is_refused():
    with pytest.raises(PayloadError):
        payload.dumps_data({"x": math.nan})
    with pytest.raises(PayloadError):
        payload.encode(make_event(data={"x": math.inf}))
    with pytest.raises(PayloadError):
        payload.encode(make_event(), "xml")


def test_cbor_is_smaller_than_json():
    ev = make_event()
    assert len(payload.encode(ev, "cbor")) < len(payload.encode(ev, "json"))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(data=st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_any_json_data_round_trips_both_encodings(data):
    ev = make_event(data=data)
    for enc in ("json", "cbor"):
        assert payload.decode(payload.encode(ev, enc), enc)["data"] == json.loads(json.dumps(data))


@pytest.mark.parametrize("ts", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("encoding", ["json", "cbor"])
def test_non_finite_ts_is_a_payload_error(ts, encoding):
    """Not a bare ValueError/OverflowError from round(): the outbox promises PayloadError."""
    with pytest.raises(PayloadError, match=r"^event gw-01:42: ts .* is not a finite epoch time"):
        payload.encode(make_event(ts=ts), encoding)


@given(
    data=st.dictionaries(st.text(max_size=10), json_values, max_size=6),
    synced=st.booleans(),
    dev=st.text(min_size=1, max_size=12),
)
def test_json_splices_stored_data_exactly_as_a_full_dump(data, synced, dev):
    """``encode`` builds JSON around the stored ``data`` text without parsing it: the bytes
    are exactly those of dumping the whole payload."""
    ev = make_event(data=data, ts_synced=synced, dev=dev)
    whole = json.dumps(payload.to_payload(ev), separators=(",", ":"), ensure_ascii=False)
    assert payload.encode(ev) == whole.encode()
