"""``payload.check_payload`` (hand-written, what the outbox runs per event, no jsonschema in the
daemon) gives the same verdict as ``payload.validate`` (jsonschema on the shipped schema)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent import payload

GOOD = {
    "v": 1,
    "id": "gw-01:42",
    "seq": 42,
    "ts": 1767225600000,
    "dev": "nl-07",
    "kind": "leak.suspected",
    "sev": 1,
    "data": {"score": 0.8},
}

# Values near each field's edges: right and wrong types, bools, floats, patterns, ranges.
ODD_VALUES_LIST = [
    None,
    True,
    False,
    *range(-3, 7),
    *(0.0, 1.0, 1.5, 4.0, 4.5, -1.0, float("nan"), float("inf"), 1e300),
    "",
    "gw-01:1",
    "gw-01:t7",
    "gw-01:0",
    "gw 01:1",
    "gw-01:01",
    "nl-07",
    "nl/07",
    "lv-01\n",
    "telemetry",
    "level.high",
    "Level.high",
    "level",
    "level.",
    "a.b.c",
    "unsynced",
    "synced",
    {},
    {"a": 1},
    [1],
]
ODD_VALUES = st.sampled_from(ODD_VALUES_LIST)
FIELDS = [*GOOD, "tsq", "extra"]


def verdict(fn, doc) -> bool:
    try:
        fn(doc)
    except payload.PayloadError:
        return False
    return True


def test_same_verdict_for_every_single_field_change():
    """Exhaustive over one field at a time (the combinations below are sampled)."""
    for key in FIELDS:
        for value in ODD_VALUES_LIST:
            doc = {**GOOD, key: value}
            assert verdict(payload.check_payload, doc) == verdict(payload.validate, doc), doc
        doc = {k: v for k, v in GOOD.items() if k != key}
        assert verdict(payload.check_payload, doc) == verdict(payload.validate, doc)


@settings(max_examples=1500, deadline=None)
@given(
    changes=st.dictionaries(st.sampled_from(FIELDS), ODD_VALUES, max_size=3),
    drop=st.lists(st.sampled_from(list(GOOD)), max_size=2),
)
def test_same_verdict_as_jsonschema(changes, drop):
    doc = {**GOOD, **changes}
    for key in drop:
        doc.pop(key, None)
    assert verdict(payload.check_payload, doc) == verdict(payload.validate, doc), doc


@pytest.mark.parametrize("doc", [GOOD, {**GOOD, "tsq": "unsynced"}, {**GOOD, "seq": 1.0}])
def test_valid_payloads_pass(doc):
    payload.check_payload(doc)
    payload.validate(doc)


@pytest.mark.parametrize(
    "change, where",
    [
        ({"dev": "lv/01"}, "payload dev:"),
        ({"sev": 5}, "payload sev:"),
        ({"seq": True}, "payload seq:"),
        ({"kind": "Level"}, "payload kind:"),
        ({"data": []}, "payload data:"),
        ({"x": 1}, "payload <root>:"),
    ],
)
def test_errors_name_the_field(change, where):
    with pytest.raises(payload.PayloadError, match=f"^{where}"):
        payload.check_payload({**GOOD, **change})


def test_non_dict_and_missing_key():
    with pytest.raises(payload.PayloadError, match="object"):
        payload.check_payload([GOOD])
    with pytest.raises(payload.PayloadError, match="'seq' is a required property"):
        payload.check_payload({k: v for k, v in GOOD.items() if k != "seq"})


@pytest.fixture
def schema_edit(monkeypatch):
    """Swap the schema check_payload reads (its rules are cached: cleared before and after)."""
    import copy

    def edit(change):
        schema = copy.deepcopy(payload.event_schema())
        change(schema)
        monkeypatch.setattr(payload, "event_schema", lambda: schema)
        payload._payload_rules.cache_clear()

    yield edit
    monkeypatch.undo()
    payload._payload_rules.cache_clear()


def test_rules_come_from_the_schema_not_a_copy(schema_edit):
    schema_edit(lambda s: s["properties"]["sev"].update(maximum=5))
    payload.check_payload({**GOOD, "sev": 5})
    schema_edit(lambda s: s["properties"]["dev"].update(pattern="^[a-z]+$"))
    with pytest.raises(payload.PayloadError, match=r"^payload dev:"):
        payload.check_payload(GOOD)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["properties"]["dev"].update(maxLength=8),
        lambda s: s["properties"]["data"].update(type="array"),
        lambda s: s.update(oneOf=[]),
    ],
)
def test_a_keyword_check_payload_does_not_apply_fails_loudly(schema_edit, change):
    schema_edit(change)
    with pytest.raises(payload.PayloadError, match=r"^event schema: check_payload cannot apply"):
        payload.check_payload(GOOD)
