"""The field reference of docs/config.md, generated from the config dataclasses.

``docs/config.md`` holds hand-written guidance plus one generated block between the markers
below; a test fails when the block no longer matches the dataclasses. Regenerate with::

    .venv/bin/python -m edge_agent.config.schema --write
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from edge_agent.config.model import GatewayConfig
from yamlread.fields import config_fields, help_text, tag_of, union_args
from yamlread.problems import fmt_num

__all__ = ["BEGIN", "DOC_PATH", "END", "reference_markdown", "write_reference"]

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "config.md"
BEGIN = "<!-- BEGIN GENERATED REFERENCE: python -m edge_agent.config.schema --write -->"
END = "<!-- END GENERATED REFERENCE -->"


def _anchor(title: str) -> str:
    keep = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -_")
    return keep.replace(" ", "-")


def _dataclasses_in(tp: Any) -> list[type]:
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return [tp]
    out: list[type] = []
    for arg in typing.get_args(tp):
        out.extend(_dataclasses_in(arg))
    return out


class _Writer:
    def __init__(self) -> None:
        self.titles: dict[type, str] = {}
        self.order: list[type] = []

    def collect(self, cls: type, title: str, path: str) -> None:
        """Give ``cls`` a section titled ``title``; its children are titled under ``path``."""
        if cls in self.titles:
            return
        self.titles[cls] = title
        self.order.append(cls)
        for f, tp in config_fields(cls):
            members = _dataclasses_in(tp)
            args = union_args(tp)
            inner = [a for a in args if a is not type(None)] if args else [tp]
            key = f"{path}.{f.name}" if path else f.name
            if any(typing.get_origin(a) is tuple for a in inner):
                key += "[]"
            if any(typing.get_origin(a) is dict for a in inner):
                key += ".<name>"
            for sub in members:
                tag = tag_of(sub) if len(members) > 1 else None
                self.collect(sub, f"{key} (type: {tag})" if tag else key, key)

    def type_text(self, tp: Any) -> str:
        args = union_args(tp)
        if args is not None:
            members = [a for a in args if a is not type(None)]
            if len(members) > 1:
                text = "a bus: " + ", ".join(
                    f"[{tag_of(m)}](#{_anchor(self.titles[m])})" for m in members
                )
            else:
                text = self.type_text(members[0])
            return f"{text} or null" if len(members) < len(args) else text
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return f"mapping ([{self.titles[tp]}](#{_anchor(self.titles[tp])}))"
        origin = typing.get_origin(tp)
        if origin is tuple:
            items = typing.get_args(tp)
            if len(items) == 2 and items[1] is Ellipsis:
                return f"list of {self.type_text(items[0])}"
            return "[" + ", ".join(self.type_text(i) for i in items) + "]"
        if origin is dict:
            return f"mapping of name to {self.type_text(typing.get_args(tp)[1])}"
        if origin is Literal:
            return ", ".join(f"`{_json(c)}`" for c in typing.get_args(tp))
        return {str: "text", int: "integer", float: "number", bool: "true/false"}[tp]

    @staticmethod
    def allowed(fmeta: Mapping[str, Any]) -> str:
        parts = []
        lo, hi = fmeta.get("min"), fmeta.get("max")
        if fmeta.get("exclusive_min") and lo is not None:
            parts.append(f"> {fmt_num(lo)}" + (f", <= {fmt_num(hi)}" if hi is not None else ""))
        elif lo is not None and hi is not None:
            parts.append(f"{fmt_num(lo)}..{fmt_num(hi)}")
        elif lo is not None:
            parts.append(f">= {fmt_num(lo)}")
        elif hi is not None:
            parts.append(f"<= {fmt_num(hi)}")
        if fmeta.get("pattern"):
            parts.append(fmeta.get("pattern_help") or f"matches `{fmeta['pattern']}`")
        if fmeta.get("path"):
            parts.append("a path; relative to the config file")
        if fmeta.get("secret"):
            parts.append("never printed")
        return "; ".join(parts)

    def default_text(self, f: dataclasses.Field[Any]) -> str:
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            return "**required**"
        if dataclasses.is_dataclass(value):
            return "(all defaults)"
        return f"`{_json(value)}`"

    def section(self, cls: type) -> list[str]:
        title = self.titles[cls]
        lines = [f"### {title}", ""]
        doc = " ".join((cls.__doc__ or "").split())
        if doc:
            lines += [doc, ""]
        lines += ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
        for f, tp in config_fields(cls):
            cells = [
                f"`{f.name}`",
                self.type_text(tp),
                self.default_text(f),
                self.allowed(f.metadata),
                help_text(f.metadata),
            ]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return [*lines, ""]


def _json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return fmt_num(value)
    return str(value)


def reference_markdown() -> str:
    """The generated block (markers included) for docs/config.md."""
    writer = _Writer()
    writer.collect(GatewayConfig, "top level", "")
    lines = [BEGIN, ""]
    for cls in writer.order:
        lines += writer.section(cls)
    lines.append(END)
    return "\n".join(lines) + "\n"


def current_block(text: str) -> str | None:
    """The generated block as it stands in ``text`` (markers included), or ``None``."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return None
    return text[start : end + len(END)] + "\n"


def write_reference(path: Path = DOC_PATH) -> Path:
    """Replace the generated block of docs/config.md (append it if the markers are missing)."""
    text = path.read_text() if path.exists() else ""
    block = reference_markdown()
    old = current_block(text)
    text = text.rstrip("\n") + "\n\n" + block if old is None else text.replace(old, block)
    path.write_text(text)
    return path
