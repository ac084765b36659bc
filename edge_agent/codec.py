"""Versioned event/telemetry payloads: encode to compact JSON (default) or CBOR, decode, and
validate against ``edge_agent/schemas/event.schema.json`` (the contract of docs/mqtt.md).

Payload, version 1 (keys in this order, JSON without spaces)::

    {"v":1,"id":"gw-01:42","seq":42,"ts":1767225600000,"dev":"nl-07",
     "kind":"leak.suspected","sev":1,"data":{...}}

plus ``"tsq":"unsynced"`` when the gateway clock was not synchronised at acceptance.

``validate`` checks a payload with jsonschema against the shipped schema (decode, tests, CLI
tools); ``check_payload`` applies the same schema's rules by hand (the few keywords it uses;
any other fails loudly), which the outbox runs on every accepted event: the daemon then never
imports jsonschema (about 7 MB of RSS with its dependencies), and a test holds the two to the
same verdict on generated payloads.
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

import cbor2

from edge_agent.errors import UsageError
from edge_agent.events import PAYLOAD_VERSION, Event

if TYPE_CHECKING:
    import jsonschema

__all__ = [
    "ENCODINGS",
    "TSQ_UNSYNCED",
    "Encoding",
    "PayloadError",
    "check_payload",
    "decode",
    "dumps_data",
    "encode",
    "event_schema",
    "to_payload",
    "validate",
]

Encoding = Literal["json", "cbor"]
ENCODINGS: tuple[str, ...] = ("json", "cbor")
TSQ_UNSYNCED = "unsynced"


class PayloadError(UsageError):
    """A payload that cannot be encoded, decoded or does not match the schema (one line)."""


@cache
def event_schema() -> dict[str, Any]:
    """The JSON Schema of event and telemetry payloads (shipped as package data)."""
    text = resources.files("edge_agent").joinpath("schemas/event.schema.json").read_text()
    return json.loads(text)


@cache
def _validator() -> jsonschema.protocols.Validator:
    import jsonschema  # only where payloads from outside are checked: see the module doc

    schema = event_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def to_payload(event: Event) -> dict[str, Any]:
    """The payload dict of an accepted event (``ts`` converted to integer epoch ms).

    Raises PayloadError for a ``ts`` that is not a finite number (NaN, infinity).
    """
    if not math.isfinite(event.ts):
        raise PayloadError(f"event {event.id}: ts {event.ts!r} is not a finite epoch time")
    payload: dict[str, Any] = {
        "v": PAYLOAD_VERSION,
        "id": event.id,
        "seq": event.seq,
        "ts": round(event.ts * 1000.0),
        "dev": event.dev,
        "kind": event.kind,
        "sev": int(event.sev),
        "data": event.data,
    }
    if not event.ts_synced:
        payload["tsq"] = TSQ_UNSYNCED
    return payload


def dumps_data(data: dict[str, Any]) -> str:
    """Compact JSON of an event's ``data``; the outbox stores this text.

    Raises PayloadError for values JSON cannot carry faithfully (NaN, infinities, objects).
    """
    try:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"event data is not JSON-serialisable: {exc}") from exc


def encode(event: Event, encoding: Encoding = "json") -> bytes:
    """Bytes to publish. Raises PayloadError for an unknown encoding or unencodable data."""
    payload = to_payload(event)
    if encoding == "json":
        try:
            return json.dumps(
                payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            ).encode()
        except (TypeError, ValueError) as exc:
            raise PayloadError(f"event {event.id}: cannot encode as JSON: {exc}") from exc
    if encoding == "cbor":
        try:
            return cbor2.dumps(payload)
        except cbor2.CBOREncodeError as exc:
            raise PayloadError(f"event {event.id}: cannot encode as CBOR: {exc}") from exc
    raise PayloadError(f"unknown encoding {encoding!r} (expected one of {', '.join(ENCODINGS)})")


def decode(raw: bytes, encoding: Encoding | None = None) -> dict[str, Any]:
    """Payload dict from bytes, validated. ``encoding=None`` sniffs: JSON starts with ``{``.

    Raises PayloadError (one line: what is wrong and where in the payload).
    """
    if encoding is None:
        encoding = "json" if raw[:1] == b"{" else "cbor"
    try:
        if encoding == "json":
            obj = json.loads(raw)
        elif encoding == "cbor":
            obj = cbor2.loads(raw)
        else:
            raise PayloadError(f"unknown encoding {encoding!r}")
    except (ValueError, cbor2.CBORDecodeError) as exc:
        raise PayloadError(f"payload is not valid {encoding.upper()}: {exc}") from exc
    validate(obj)
    return obj


def validate(payload: Any) -> None:
    """Check a payload dict against the schema. Raises PayloadError naming the field."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(payload))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "<root>"
        raise PayloadError(f"payload {where}: {error.message}")


# ``check_payload``: the shipped schema's own rules (no copy of its patterns or bounds), applied
# by hand. Only the keywords below are understood: a schema using any other makes every check
# fail loudly instead of being half applied. The parity test with jsonschema covers their meaning.
_TOP_KEYWORDS = frozenset(
    ("$schema", "$id", "title", "description", "type", "required", "additionalProperties",
     "properties")
)  # fmt: skip
_FIELD_KEYWORDS = frozenset(
    ("description", "type", "const", "enum", "pattern", "minimum", "maximum")
)
_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "integer": lambda v: _is_int(v),
}


@cache
def _payload_rules() -> tuple[dict[str, Any], dict[str, re.Pattern[str]]]:
    """The event schema and its compiled patterns. Raises PayloadError when the schema uses a
    keyword or type ``check_payload`` does not implement."""
    schema = event_schema()
    unknown = sorted(set(schema) - _TOP_KEYWORDS)
    for name, spec in schema["properties"].items():
        unknown += [f"{name}.{k}" for k in sorted(set(spec) - _FIELD_KEYWORDS)]
        if spec.get("type", "string") not in _TYPES:
            unknown.append(f"{name}.type={spec['type']}")
    if unknown or schema.get("type") != "object":
        raise PayloadError(f"event schema: check_payload cannot apply {', '.join(unknown)}")
    props = schema["properties"]
    return schema, {
        k: re.compile(spec["pattern"]) for k, spec in props.items() if "pattern" in spec
    }


def _is_int(value: Any) -> bool:
    """JSON Schema's integer: an int (not a bool) or a float with no fraction."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _same(a: Any, b: Any) -> bool:
    """JSON Schema equality of scalars (``const``, ``enum``): a bool never equals a number."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def check_payload(payload: Any) -> None:
    """``validate`` without jsonschema: the same verdict on the shipped schema (tested).
    Raises PayloadError naming the field."""

    def bad(where: str, message: str) -> PayloadError:
        return PayloadError(f"payload {where}: {message}")

    schema, patterns = _payload_rules()
    props: dict[str, dict[str, Any]] = schema["properties"]
    if not isinstance(payload, dict):
        raise bad("<root>", f"{payload!r} is not of type 'object'")
    for key in schema.get("required", ()):
        if key not in payload:
            raise bad("<root>", f"{key!r} is a required property")
    if schema.get("additionalProperties", True) is False:
        extra = [k for k in payload if k not in props]
        if extra:
            raise bad("<root>", f"additional properties are not allowed ({extra[0]!r})")
    for key, spec in props.items():
        if key not in payload:
            continue
        value = payload[key]
        if "const" in spec and not _same(value, spec["const"]):
            raise bad(key, f"{spec['const']!r} was expected, got {value!r}")
        if "enum" in spec and not any(_same(value, e) for e in spec["enum"]):
            raise bad(key, f"{value!r} is not one of {spec['enum']!r}")
        if "type" in spec and not _TYPES[spec["type"]](value):
            raise bad(key, f"{value!r} is not of type {spec['type']!r}")
        pattern = patterns.get(key)
        if pattern is not None and isinstance(value, str) and pattern.search(value) is None:
            raise bad(key, f"{value!r} does not match {pattern.pattern!r}")  # search: unanchored
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value < spec.get("minimum", value):
                raise bad(key, f"{value!r} is less than the minimum of {spec['minimum']}")
            if value > spec.get("maximum", value):
                raise bad(key, f"{value!r} is greater than the maximum of {spec['maximum']}")
