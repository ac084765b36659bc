"""The event/telemetry payload of docs/mqtt.md: encode to compact JSON (default) or CBOR,
decode, and validate against ``edge_agent/schemas/event.schema.json``; and the JSON Schemas of
every other payload of the contract (``SCHEMAS``, ``schema``, ``validate(payload, name)``).

Payload, version 1 (keys in this order, JSON without spaces)::

    {"v":1,"id":"gw-01:42","seq":42,"ts":1767225600000,"dev":"nl-07",
     "kind":"leak.suspected","sev":1,"data":{...}}

plus ``"tsq":"unsynced"`` when the gateway clock was not synchronised at acceptance.

Encoded and checked once: the outbox serialises an item's ``data`` (``dumps_data``) and
checks the fields the item decides (``check_fields``: ``ts``, ``dev``, ``kind``, ``sev``,
``data``) when it accepts it; ``id`` and ``seq`` are the outbox's own numbering (the gateway
id is checked once, when the outbox opens). ``encode`` then splices the stored ``data`` text
into the JSON envelope, never parsing it again (CBOR parses it once, to re-encode it).

``validate`` checks a payload with jsonschema against the shipped schema (decode, tests, CLI
tools); ``check_payload`` applies the same schema's rules by hand (the few keywords it uses;
any other fails loudly): the daemon never imports jsonschema (about 7 MB of RSS with its
dependencies), and a test holds the two to the same verdict on generated payloads.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from json.encoder import encode_basestring  # what json.dumps(ensure_ascii=False) quotes with
from typing import TYPE_CHECKING, Literal

from edge_agent.errors import UsageError
from edge_agent.events import PAYLOAD_VERSION, Event, JsonValue

if TYPE_CHECKING:
    import jsonschema

__all__ = [
    "ENCODINGS",
    "SCHEMAS",
    "TSQ_UNSYNCED",
    "Encoding",
    "PayloadError",
    "check_fields",
    "check_payload",
    "decode",
    "dumps_data",
    "encode",
    "event_schema",
    "schema",
    "to_payload",
    "ts_ms",
    "validate",
]

Encoding = Literal["json", "cbor"]
ENCODINGS: tuple[str, ...] = ("json", "cbor")
TSQ_UNSYNCED = "unsynced"


class PayloadError(UsageError):
    """A payload that cannot be encoded, decoded or does not match the schema (one line)."""


# Every JSON payload of the contract has a schema, shipped as package data (docs/mqtt.md).
SCHEMAS = (
    "event", "state", "device", "availability", "alarms", "values", "command", "command-result",
)  # fmt: skip


@cache
def schema(name: str) -> dict[str, object]:
    """The JSON Schema of payload ``name`` (one of ``SCHEMAS``). Raises PayloadError."""
    if name not in SCHEMAS:
        raise PayloadError(f"no schema {name!r} (schemas: {', '.join(SCHEMAS)})")
    text = resources.files("edge_agent").joinpath(f"schemas/{name}.schema.json").read_text()
    loaded: dict[str, object] = json.loads(text)
    return loaded


def event_schema() -> dict[str, object]:
    """The JSON Schema of event and telemetry payloads (shipped as package data)."""
    return schema("event")


@cache
def _validator(name: str = "event") -> jsonschema.protocols.Validator:
    import jsonschema  # only where payloads from outside are checked: see the module doc

    checked = schema(name)
    cls = jsonschema.validators.validator_for(checked)
    cls.check_schema(checked)
    return cls(checked)


def ts_ms(ts: float, what: str) -> int:
    """Epoch seconds as the payload's integer epoch milliseconds. Raises PayloadError for a
    ``ts`` that is not a finite number (NaN, infinity), naming ``what``."""
    if not math.isfinite(ts):
        raise PayloadError(f"{what}: ts {ts!r} is not a finite epoch time")
    return round(ts * 1000.0)


def to_payload(event: Event) -> dict[str, JsonValue]:
    """The payload dict of an accepted event (``data`` parsed from its stored text).

    Raises PayloadError for a ``ts`` that is not a finite number (NaN, infinity).
    """
    payload: dict[str, JsonValue] = {
        "v": PAYLOAD_VERSION,
        "id": event.id,
        "seq": event.seq,
        "ts": ts_ms(event.ts, f"event {event.id}"),
        "dev": event.dev,
        "kind": event.kind,
        "sev": int(event.sev),
        "data": event.data,
    }
    if not event.ts_synced:
        payload["tsq"] = TSQ_UNSYNCED
    return payload


def dumps_data(data: Mapping[str, JsonValue]) -> str:
    """Compact JSON of an event's ``data``; the outbox stores this text.

    Raises PayloadError for values JSON cannot carry faithfully (NaN, infinities, objects).
    """
    try:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"event data is not JSON-serialisable: {exc}") from exc


def encode(event: Event, encoding: Encoding = "json") -> bytes:
    """Bytes to publish. Raises PayloadError for an unknown encoding or a non-finite ``ts``.

    JSON: the envelope around the stored ``data`` text, byte for byte what ``json.dumps`` of
    ``to_payload`` gives (a test holds them equal), without parsing ``data`` again.
    """
    if encoding == "json":
        ts = ts_ms(event.ts, f"event {event.id}")
        tail = ',"tsq":"unsynced"}' if not event.ts_synced else "}"
        return (
            f'{{"v":{PAYLOAD_VERSION},"id":{encode_basestring(event.id)},"seq":{event.seq},'
            f'"ts":{ts},"dev":{encode_basestring(event.dev)},'
            f'"kind":{encode_basestring(event.kind)},"sev":{int(event.sev)},'
            f'"data":{event.data_json}{tail}'
        ).encode()
    if encoding == "cbor":
        import cbor2  # only for a CBOR uplink: a JSON gateway never loads it

        try:
            return cbor2.dumps(to_payload(event))
        except cbor2.CBOREncodeError as exc:
            raise PayloadError(f"event {event.id}: cannot encode as CBOR: {exc}") from exc
    raise PayloadError(f"unknown encoding {encoding!r} (expected one of {', '.join(ENCODINGS)})")


def decode(raw: bytes, encoding: Encoding | None = None) -> dict[str, JsonValue]:
    """Payload dict from bytes, validated. ``encoding=None`` sniffs: JSON starts with ``{``.

    Raises PayloadError (one line: what is wrong and where in the payload).
    """
    if encoding is None:
        encoding = "json" if raw[:1] == b"{" else "cbor"
    import cbor2

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


def validate(payload: object, name: str = "event") -> None:
    """Check a payload dict against schema ``name`` (default: events and telemetry). Raises
    PayloadError naming the field."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(name).iter_errors(payload))  # type: ignore[arg-type]  # any object: that is what it checks
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "<root>"
        what = "payload" if name == "event" else f"{name} payload"
        raise PayloadError(f"{what} {where}: {error.message}")


# ``check_payload``: the shipped schema's own rules (no copy of its patterns or bounds), applied
# by hand. Only the keywords below are understood: a schema using any other makes every check
# fail loudly instead of being half applied (`$defs` only documents: nothing refers to it).
# The parity test with jsonschema covers their meaning.
_TOP_KEYWORDS = frozenset(
    ("$schema", "$id", "title", "description", "type", "required", "additionalProperties",
     "properties", "$defs")
)  # fmt: skip
_FIELD_KEYWORDS = frozenset(
    ("description", "type", "const", "enum", "pattern", "minimum", "maximum")
)
_TYPES: dict[str, Callable[[object], bool]] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "integer": lambda v: _is_int(v),
}


@dataclass(frozen=True, slots=True)
class _FieldRule:
    """One property's keywords, as ``check_fields`` applies them."""

    type: str | None = None
    const: tuple[object, ...] = ()  # (value,) when the schema has ``const``
    enum: tuple[object, ...] | None = None
    pattern: re.Pattern[str] | None = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True, slots=True)
class _Rules:
    required: tuple[str, ...]
    closed: bool  # additionalProperties: false
    fields: dict[str, _FieldRule]


@cache
def _payload_rules() -> _Rules:
    """The event schema's rules. Raises PayloadError when the schema uses a keyword or type
    ``check_payload`` does not implement."""
    schema = event_schema()
    props = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(props, dict):
        raise PayloadError("event schema: check_payload cannot apply a non-object schema")
    unknown = sorted(set(schema) - _TOP_KEYWORDS)
    fields: dict[str, _FieldRule] = {}
    for name, spec in props.items():
        unknown += [f"{name}.{k}" for k in sorted(set(spec) - _FIELD_KEYWORDS)]
        if spec.get("type", "string") not in _TYPES:
            unknown.append(f"{name}.type={spec['type']}")
        fields[name] = _FieldRule(
            type=spec.get("type"),
            const=(spec["const"],) if "const" in spec else (),
            enum=tuple(spec["enum"]) if "enum" in spec else None,
            pattern=re.compile(spec["pattern"]) if "pattern" in spec else None,
            minimum=spec.get("minimum"),
            maximum=spec.get("maximum"),
        )
    if unknown:
        raise PayloadError(f"event schema: check_payload cannot apply {', '.join(unknown)}")
    closed = schema.get("additionalProperties", True) is False
    required = schema.get("required", ())
    if not isinstance(required, list | tuple):
        raise PayloadError("event schema: check_payload cannot apply a non-list 'required'")
    return _Rules(tuple(required), closed, fields)


def _is_int(value: object) -> bool:
    """JSON Schema's integer: an int (not a bool) or a float with no fraction."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _same(a: object, b: object) -> bool:
    """JSON Schema equality of scalars (``const``, ``enum``): a bool never equals a number."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _bad(where: str, message: str) -> PayloadError:
    return PayloadError(f"payload {where}: {message}")


def check_payload(payload: object) -> None:
    """``validate`` without jsonschema: the same verdict on the shipped schema (tested).
    Raises PayloadError naming the field."""
    rules = _payload_rules()
    if not isinstance(payload, dict):
        raise _bad("<root>", f"{payload!r} is not of type 'object'")
    for key in rules.required:
        if key not in payload:
            raise _bad("<root>", f"{key!r} is a required property")
    if rules.closed:
        extra = [k for k in payload if k not in rules.fields]
        if extra:
            raise _bad("<root>", f"additional properties are not allowed ({extra[0]!r})")
    check_fields(payload)


def check_fields(fields: Mapping[str, object]) -> None:
    """The schema's rules for each field given (``check_payload`` less the required and
    unknown keys): how the outbox checks what an item decides, once. Raises PayloadError."""
    for key, rule in _payload_rules().fields.items():  # schema order: the first bad is named
        if key not in fields:
            continue
        value = fields[key]
        if rule.const and not _same(value, rule.const[0]):
            raise _bad(key, f"{rule.const[0]!r} was expected, got {value!r}")
        if rule.enum is not None and not any(_same(value, e) for e in rule.enum):
            raise _bad(key, f"{value!r} is not one of {list(rule.enum)!r}")
        if rule.type is not None and not _TYPES[rule.type](value):
            raise _bad(key, f"{value!r} is not of type {rule.type!r}")
        pattern = rule.pattern
        if pattern is not None and isinstance(value, str) and pattern.search(value) is None:
            raise _bad(key, f"{value!r} does not match {pattern.pattern!r}")  # search: unanchored
        if isinstance(value, int | float) and not isinstance(value, bool):
            if rule.minimum is not None and value < rule.minimum:
                raise _bad(key, f"{value!r} is less than the minimum of {rule.minimum}")
            if rule.maximum is not None and value > rule.maximum:
                raise _bad(key, f"{value!r} is greater than the maximum of {rule.maximum}")
