"""Property: every value inside the documented types, bounds and patterns is accepted and read
back exactly, section by section, in every format the reader reads: the gateway config, device
profiles, site files and the simulator's scenarios (sections are generated from the dataclasses
themselves, so a new field or section is covered without touching this file). Only a
section's own ``config_checks()`` may refuse a generated value, and then with exactly its
message."""

import dataclasses
import typing
from typing import Literal

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.profile import (
    FaultRef,
    IdentCheck,
    Point,
    PointOverride,
    RecordingBlock,
    UnreadableRange,
)
from drivers.sim.scenarios import Scenarios
from edge_agent.config.model import GatewayConfig
from sitemodel import PARAMS_BY_KIND, Node, Origin, SimBus
from yamlread.convert import Converter
from yamlread.fields import config_fields, is_required, tag_of, union_args, yaml_key

TEXT = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp"))
FAR = 1e9


def _number(tp, fmeta):
    lo, hi = fmeta.get("min"), fmeta.get("max")
    if tp is int:
        lo = -1_000_000 if lo is None else int(lo) + (1 if fmeta.get("exclusive_min") else 0)
        return st.integers(lo, 1_000_000 if hi is None else int(hi))
    return st.floats(
        -FAR if lo is None else lo,
        FAR if hi is None else hi,
        exclude_min=bool(fmeta.get("exclusive_min")),
        allow_nan=False,
        allow_infinity=False,
    )


def _text(fmeta):
    if fmeta.get("path"):
        return st.from_regex(r"/[a-z]{1,8}(/[a-z0-9_]{1,8}){0,2}", fullmatch=True)
    if fmeta.get("pattern"):
        return st.from_regex(fmeta["pattern"], fullmatch=True, alphabet=TEXT)
    return st.text(TEXT, max_size=20)


def strategy(tp, fmeta):
    """Values of type ``tp`` inside ``fmeta``'s bounds, as plain YAML data."""
    args = union_args(tp)
    if args is not None:
        members = [a for a in args if a is not type(None)]
        inner = st.one_of([strategy(m, fmeta) for m in members])
        return st.one_of(st.none(), inner) if len(members) < len(args) else inner
    if dataclasses.is_dataclass(tp):
        required, optional = {}, {}
        for f, ftp in config_fields(tp):
            (required if is_required(f) else optional)[yaml_key(f)] = strategy(ftp, f.metadata)
        return st.fixed_dictionaries(required, optional=optional)
    origin = typing.get_origin(tp)
    if origin is tuple:
        items = typing.get_args(tp)
        if len(items) == 2 and items[1] is Ellipsis:
            return st.lists(strategy(items[0], fmeta), max_size=3)
        return st.tuples(*(strategy(i, fmeta) for i in items)).map(list)
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        if key_tp is int:  # a pattern checks the values (bit names)
            return st.dictionaries(st.integers(0, 40), strategy(value_tp, fmeta), max_size=3)
        key_meta = {"pattern": fmeta.get("pattern")}
        value_meta = {k: v for k, v in fmeta.items() if k != "pattern"}
        value = strategy(value_tp, value_meta)
        return st.dictionaries(_text(key_meta), value, max_size=3)
    if origin is Literal:
        return st.sampled_from(typing.get_args(tp))
    if tp is bool:
        return st.booleans()
    if tp is str:
        return _text(fmeta)
    return _number(tp, fmeta)


def _expected(tp, data):
    """What the loader should make of ``data``."""
    args = union_args(tp)
    if args is not None:
        if data is None:
            return None
        members = [a for a in args if a is not type(None)]
        if len(members) > 1 and not all(dataclasses.is_dataclass(m) for m in members):
            return data  # int | str: as written
        if len(members) > 1:
            (cls,) = [m for m in members if tag_of(m) == data["type"]]
            return _expected(cls, data)
        return _expected(members[0], data)
    if dataclasses.is_dataclass(tp):
        fields = {yaml_key(f): (f.name, t) for f, t in config_fields(tp)}
        return tp(**{fields[k][0]: _expected(fields[k][1], v) for k, v in data.items()})
    origin = typing.get_origin(tp)
    if origin is tuple:
        items = typing.get_args(tp)
        if len(items) == 2 and items[1] is Ellipsis:
            return tuple(_expected(items[0], v) for v in data)
        return tuple(_expected(t, v) for t, v in zip(items, data, strict=True))
    if origin is dict:
        return {k: _expected(typing.get_args(tp)[1], v) for k, v in data.items()}
    if tp is float:
        return float(data)
    return data


def _check_messages(obj):
    """Every message the sections' own config_checks() give, recursively."""
    if dataclasses.is_dataclass(obj):
        own = list(obj.config_checks()) if hasattr(obj, "config_checks") else []
        nested = [m for f in dataclasses.fields(obj) for m in _check_messages(getattr(obj, f.name))]
        return [m for _, m in own] + nested
    if isinstance(obj, tuple | list):
        return [m for v in obj for m in _check_messages(v)]
    if isinstance(obj, dict):
        return [m for v in obj.values() for m in _check_messages(v)]
    return []


def _sections():
    seen, out = set(), []

    def walk(cls):
        if cls in seen:
            return
        seen.add(cls)
        if cls is not GatewayConfig:
            out.append(cls)
        for _, tp in config_fields(cls):
            stack = [tp]
            while stack:
                t = stack.pop()
                if dataclasses.is_dataclass(t):
                    walk(t)
                else:
                    stack.extend(typing.get_args(t))

    walk(GatewayConfig)
    return out


# Records of the other formats that read alone (a pipe or a placed device needs its network).
OTHER_SECTIONS = [
    Point, FaultRef, IdentCheck, RecordingBlock, UnreadableRange, PointOverride,
    Origin, Node, SimBus, *PARAMS_BY_KIND.values(), Scenarios,
]  # fmt: skip
SECTIONS = _sections() + [c for c in OTHER_SECTIONS if c not in _sections()]


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.__name__)
def test_every_valid_section_reads_back_exactly(cls):
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(strategy(cls, {}))
    def run(data):
        node = yaml.compose(yaml.safe_dump(data, allow_unicode=True), Loader=yaml.SafeLoader)
        conv = Converter("section.yaml", "/")
        got = conv.convert(node, cls, "s", {})
        expected = _expected(cls, data)
        wanted = _check_messages(expected)
        messages = [p.message for p in conv.problems]
        if wanted:
            assert sorted(messages) == sorted(wanted)
        else:
            assert messages == []
            assert got == expected

    run()


def test_sections_cover_the_whole_config():
    names = {c.__name__ for c in SECTIONS}
    assert {"TcpBus", "RtuBus", "RtuOverTcpBus", "Device", "UplinkConfig", "RulesConfig"} <= names
    assert {"Point", "IdentCheck", "LevelParams", "Scenarios"} <= names
