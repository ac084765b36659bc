"""The JSON Schema (draft 2020-12) of the gateway config, generated from the dataclasses.

The same field types and ``meta()`` bounds/patterns the loader enforces become schema keywords,
so an editor completes and checks what ``edge-agent check-config`` will accept. Cross checks
(device -> bus, unique unit ids, profiles, files on disk) are beyond a schema and stay with the
loader. The generated file ``edge_agent/schemas/gateway-config.schema.json`` is committed; a test
fails when it is stale. Regenerate it (and docs/config.md's reference) with::

    .venv/bin/python -m edge_agent.config.schema --write
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from edge_agent.config.model import GatewayConfig
from yamlread.fields import config_fields, help_text, union_args

__all__ = ["SCHEMA_PATH", "gateway_config_schema", "schema_json"]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "gateway-config.schema.json"
SCHEMA_ID = "urn:edge-agent:gateway-config:1"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _json_default(value: Any) -> Any:
    """A field default as JSON, or ``dataclasses.MISSING`` when it has no JSON form."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple):
        items = [_json_default(v) for v in value]
        return dataclasses.MISSING if dataclasses.MISSING in items else items
    if isinstance(value, dict):
        out = {k: _json_default(v) for k, v in value.items()}
        return dataclasses.MISSING if dataclasses.MISSING in out.values() else out
    return dataclasses.MISSING


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}

    def ref(self, cls: type) -> dict[str, Any]:
        name = cls.__name__
        if name not in self.defs:
            self.defs[name] = {}  # placeholder first: guards against recursion
            self.defs[name] = self.object_schema(cls)
        return {"$ref": f"#/$defs/{name}"}

    def object_schema(self, cls: type) -> dict[str, Any]:
        props: dict[str, Any] = {}
        required: list[str] = []
        for f, tp in config_fields(cls):
            schema = self.type_schema(tp, f.metadata)
            doc = help_text(f.metadata)
            if doc:
                schema = {"description": doc, **schema}
            default = f.default
            if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            if default is not dataclasses.MISSING:
                as_json = _json_default(default)
                if as_json is not dataclasses.MISSING:
                    schema["default"] = as_json
            else:
                required.append(f.name)
            example = f.metadata.get("example")
            if example is not None:
                schema["examples"] = [example]
            props[f.name] = schema
        out: dict[str, Any] = {"type": "object"}
        doc = (cls.__doc__ or "").strip()
        if doc:
            out["description"] = " ".join(doc.split())
        out["properties"] = props
        if required:
            out["required"] = required
        out["additionalProperties"] = False
        return out

    def type_schema(self, tp: Any, fmeta: Mapping[str, Any]) -> dict[str, Any]:
        args = union_args(tp)
        if args is not None:
            members = [a for a in args if a is not type(None)]
            if len(members) > 1:
                # Each member pins ``type`` with a const, so exactly one can match.
                inner: dict[str, Any] = {"oneOf": [self.ref(m) for m in members]}
            else:
                inner = self.type_schema(members[0], fmeta)
            if len(members) < len(args):
                return {"anyOf": [inner, {"type": "null"}]}
            return inner
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return self.ref(tp)
        origin = typing.get_origin(tp)
        if origin is tuple:
            items = typing.get_args(tp)
            if len(items) == 2 and items[1] is Ellipsis:
                return {"type": "array", "items": self.type_schema(items[0], fmeta)}
            return {
                "type": "array",
                "prefixItems": [self.type_schema(i, fmeta) for i in items],
                "minItems": len(items),
                "maxItems": len(items),
                "items": False,
            }
        if origin is dict:
            value_meta = {k: v for k, v in fmeta.items() if k != "pattern"}
            out: dict[str, Any] = {
                "type": "object",
                "additionalProperties": self.type_schema(typing.get_args(tp)[1], value_meta),
            }
            if fmeta.get("pattern"):
                out["propertyNames"] = {"pattern": f"^(?:{fmeta['pattern']})$"}
            return out
        if origin is Literal:
            choices = list(typing.get_args(tp))
            return {"const": choices[0]} if len(choices) == 1 else {"enum": choices}
        if tp is bool:
            return {"type": "boolean"}
        if tp is str:
            out = {"type": "string"}
            if fmeta.get("pattern"):
                out["pattern"] = f"^(?:{fmeta['pattern']})$"
            if fmeta.get("path"):
                out["minLength"] = 1
            return out
        if tp in (int, float):
            out = {"type": "integer" if tp is int else "number"}
            lo, hi = fmeta.get("min"), fmeta.get("max")
            if lo is not None:
                out["exclusiveMinimum" if fmeta.get("exclusive_min") else "minimum"] = lo
            if hi is not None:
                out["maximum"] = hi
            return out
        raise TypeError(f"no JSON Schema for config field type {tp!r}")


def gateway_config_schema() -> dict[str, Any]:
    """The JSON Schema of the whole gateway config file."""
    builder = _Builder()
    root = builder.object_schema(GatewayConfig)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": "edge-agent gateway config",
        **root,
        "$defs": dict(sorted(builder.defs.items())),
    }


def schema_json() -> str:
    """The schema as the committed file holds it (indented, trailing newline)."""
    return json.dumps(gateway_config_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m edge_agent.config.schema [--write]``: print or rewrite the generated files."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--write"]:
        SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_PATH.write_text(schema_json())
        print(f"wrote {SCHEMA_PATH}")
        from edge_agent.config.reference import write_reference

        print(f"wrote {write_reference()}")
        return 0
    if args:
        print("usage: python -m edge_agent.config.schema [--write]", file=sys.stderr)
        return 2
    sys.stdout.write(schema_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
