"""The committed JSON Schema is current, is a valid draft 2020-12 schema, accepts the valid
fixtures and rejects what the loader rejects for shape, type and range reasons."""

import json

import jsonschema
import pytest
import yaml

from edge_agent.config import ConfigError, parse_config
from edge_agent.config.schema import SCHEMA_PATH, gateway_config_schema, schema_json
from tests.edge_agent.config.conftest import VALID_FILES

REGENERATE = ".venv/bin/python -m edge_agent.config.schema --write"


@pytest.fixture(scope="module")
def validator():
    schema = gateway_config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_up_to_date():
    committed = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else ""
    assert committed == schema_json(), f"{SCHEMA_PATH} is stale: regenerate it with {REGENERATE}"


def test_committed_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text()))


@pytest.mark.parametrize("path", VALID_FILES, ids=lambda p: p.name)
def test_schema_accepts_valid_fixtures(validator, path):
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


BASE = {
    "version": 1,
    "gateway": {"site": "riverside", "id": "gw-01"},
    "buses": [{"name": "water", "type": "tcp", "host": "127.0.0.1"}],
    "devices": [{"name": "nl-01", "bus": "water", "unit_id": 1, "profile": "p"}],
}


def _set(doc, path, value):
    doc = json.loads(json.dumps(doc))
    *parents, last = path
    node = doc
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return doc


# (where, new value): each one is wrong for a reason the schema can express.
BAD = [
    (("version",), 2),
    (("gateway", "site"), "a/b"),
    (("gateway", "id"), "$SYS"),
    (("gateway", "id"), ""),
    (("gateway", "site"), "#"),
    (("gateway",), KeyError),
    (("devices", 0, "unit_id"), 300),
    (("devices", 0, "unit_id"), 0),
    (("devices", 0, "unit_id"), "1"),
    (("devices", 0, "bus"), KeyError),
    (("devices", 0, "unti_id"), 3),
    (("devices", 0, "name"), "nl+01"),
    (("devices", 0, "location"), {"lat": 91, "lon": 0}),
    (("buses", 0, "type"), "tcpp"),
    (("buses", 0, "type"), KeyError),
    (("buses", 0, "baudrate"), 9600),
    (("buses", 0, "port"), 0),
    (("buses", 0, "timeout_s"), 0),
    (("buses", 0, "name"), "bus 1"),
    (("uplink",), {"protocol": 4}),
    (("uplink",), {"password_env": "not a name"}),
    (("uplink",), {"tls": {"ca_fil": "x"}}),
    (("storage",), {"telemetry_sync": "sometimes"}),
    (("leak_detection",), {"night_window": "2-4"}),
    (("leak_detection",), {"threshold": 1.5}),
    (("leak_detection",), {"materials": {"pvcc": {}}}),
    (("leak_detection",), {"materials": {"pe": {"band_hz": [10]}}}),
    (("logging",), {"level": "loud"}),
    (("rules",), {"level": {"k": 0}}),
    (("devices", 0, "rules"), {"points": {"level": {"hysteresis": -1}}}),
]


@pytest.mark.parametrize(("where", "value"), BAD, ids=[f"{w}={v!r}" for w, v in BAD])
def test_schema_and_loader_both_reject(validator, where, value):
    doc = _set(BASE, where, value)
    assert list(validator.iter_errors(doc)), "the schema accepted it"
    with pytest.raises(ConfigError):
        parse_config(yaml.safe_dump(doc), file="gateway.yaml")


def test_base_document_is_valid_for_both(validator):
    assert list(validator.iter_errors(BASE)) == []
    parse_config(yaml.safe_dump(BASE), file="gateway.yaml")


def test_every_field_has_a_description():
    def walk(node, path):
        if isinstance(node, dict):
            for name, prop in node.get("properties", {}).items():
                assert prop.get("description"), f"{path}.{name} has no description"
            for key, sub in node.items():
                walk(sub, f"{path}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}[{i}]")

    walk(gateway_config_schema(), "$")
