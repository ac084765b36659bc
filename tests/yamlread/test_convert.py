"""The reader's general features on small formats of the test's own: key aliases, inherited
fields, a record type chosen by a sibling, integer-keyed mappings, scalar unions, numbers read
as text, sections kept for later, checks across records, and every problem at its place."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from yamlread import KeyPath, ReadError, Section, meta, read_section, read_text, whole


@dataclass(frozen=True)
class Leg:
    name: str = field(metadata=meta("leg name", pattern=r"[a-z]+"))
    from_node: str = field(metadata=meta("start", key="from"))
    order: Literal["big", "little"] = field(default="big", metadata=meta("order", inherit=True))
    bits: dict[int, str] = field(default_factory=dict, metadata=meta("bit names"))

    def config_checks(self) -> Iterator[tuple[str, str]]:
        for bit in self.bits:
            if not 0 <= bit < 16:
                yield KeyPath(f"bits.{bit}"), f"{bit} is not in 0..15"


@dataclass(frozen=True)
class Wet:
    depth_m: float = field(default=1.0, metadata=meta("depth", min=0))


@dataclass(frozen=True)
class Dry:
    dust: bool = field(default=False, metadata=meta("dusty"))


@dataclass(frozen=True)
class Route:
    kind: Literal["wet", "dry"] = field(metadata=meta("kind"))
    order: Literal["big", "little"] = field(default="big", metadata=meta("every leg's order"))
    legs: tuple[Leg, ...] = field(default=(), metadata=meta("legs"))
    extra: Wet | Dry = field(
        default_factory=Wet, metadata=meta("per kind", type_from=("kind", {"wet": Wet, "dry": Dry}))
    )
    code: int | str = field(default=0, metadata=meta("an id or a name"))
    later: Section | None = field(default=None, metadata=meta("read by someone else"))


def legs_unique(route: Route) -> Iterator[tuple[str, str]]:
    seen: set[str] = set()
    for i, leg in whole(route.legs):
        if leg.name in seen:
            yield f"legs[{i}].name", f"duplicate name {leg.name!r}"
        seen.add(leg.name)


def read(text: str, **kw: Any) -> Route:
    return read_text(text, Route, file="r.yaml", checks=(legs_unique,), **kw)


def problems(text: str, **kw: Any) -> list[str]:
    with pytest.raises(ReadError) as info:
        read(text, **kw)
    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.problems)
    return lines


def test_a_key_that_is_not_the_field_name():
    route = read("kind: wet\nlegs: [{name: a, from: J1}]\n")
    assert route.legs[0].from_node == "J1"
    assert problems("kind: wet\nlegs: [{name: a, form: J1}]\n") == [
        "r.yaml:2:8: legs[0]: missing required key 'from'",
        "r.yaml:2:18: legs[0].form: unknown key (did you mean 'from'?)",
    ]


def test_an_inherited_field_is_the_enclosing_records_unless_given():
    route = read(
        "legs: [{name: a, from: x}, {name: b, from: y, order: big}]\norder: little\nkind: dry"
    )
    assert [leg.order for leg in route.legs] == ["little", "big"]
    assert read("kind: dry\nlegs: [{name: a, from: x}]").legs[0].order == "big"


def test_a_bad_enclosing_value_is_reported_once():
    assert problems("kind: dry\norder: sideways\nlegs: [{name: a, from: x}]") == [
        "r.yaml:2:8: order: 'sideways' is not one of big, little",
    ]


def test_a_record_type_chosen_by_a_sibling_field():
    assert read("kind: dry\nextra: {dust: true}").extra == Dry(dust=True)
    assert read("kind: dry").extra == Dry()  # left out: the chosen type's defaults
    assert read("extra: {depth_m: 2}\nkind: wet").extra == Wet(depth_m=2.0)
    assert problems("kind: dry\nextra: {depth_m: 2}") == [
        "r.yaml:2:9: extra.depth_m: unknown key (expected one of: dust)",
    ]
    # a bad kind is one problem, not a second one about a block it cannot choose
    assert problems("kind: damp\nextra: {depth_m: 2}") == [
        "r.yaml:1:7: kind: 'damp' is not one of wet, dry",
    ]


def test_integer_keys_and_a_problem_at_the_key():
    route = read("kind: wet\nlegs: [{name: a, from: x, bits: {0: low, 3: high}}]")
    assert route.legs[0].bits == {0: "low", 3: "high"}
    assert problems("kind: wet\nlegs:\n  - {name: a, from: x, bits: {0: a, 16: b, x: c}}") == [
        "r.yaml:3:37: legs[0].bits.16: 16 is not in 0..15",
        "r.yaml:3:44: legs[0].bits: keys must be integers, got text 'x'",
    ]


def test_a_union_of_scalars_takes_what_was_written():
    assert read("kind: wet\ncode: 7").code == 7
    assert read("kind: wet\ncode: A7").code == "A7"
    assert problems("kind: wet\ncode: true") == [
        "r.yaml:2:7: code: expected an integer or text, got boolean true",
    ]


def test_numbers_as_text_only_where_the_format_allows_it():
    text = "kind: wet\nlegs: [{name: a, from: 0001}]"
    assert read(text, numbers_as_text=True).legs[0].from_node == "0001"
    assert problems(text) == [
        "r.yaml:2:24: legs[0].from: expected text, got integer 0001 (put it in quotes)"
    ]


def test_a_section_is_read_later_with_its_place_in_the_file():
    route = read("kind: wet\nlater:\n  name: a\n  from: 7\n")
    assert isinstance(route.later, Section)
    assert read_section(route.later, Leg, numbers_as_text=True) == Leg(name="a", from_node="7")
    with pytest.raises(ReadError) as info:
        read_section(dataclasses.replace(route.later), Leg)
    assert (
        str(info.value) == "r.yaml:4:9: later.from: expected text, got integer 7 (put it in quotes)"
    )


def test_checks_across_records_skip_records_that_could_not_be_read():
    text = (
        "kind: wet\nlegs:\n  - {name: a, from: x}\n  - {name: B, from: y}\n  - {name: a, from: z}"
    )
    assert problems(text) == [
        "r.yaml:4:12: legs[1].name: 'B' is not allowed: it must match [a-z]+",
        "r.yaml:5:12: legs[2].name: duplicate name 'a'",
    ]


def test_every_problem_in_file_order():
    text = "legs: [{name: a}]\nkind: moist\ncode: [1]\nflavour: sweet\n"
    assert [line.split(": ")[0] for line in problems(text)] == [
        "r.yaml:1:8",
        "r.yaml:2:7",
        "r.yaml:3:7",
        "r.yaml:4:1",
    ]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("", "r.yaml:1:1: the file is empty"),
        ("- a\n- b\n", "r.yaml:1:1: expected a mapping at the top level, got a list"),
        ("kind: [wet\n", "r.yaml:2:1: YAML syntax: expected ',' or ']', but got '<stream end>'"),
        ("kind: wet\nkind: dry\n", "r.yaml:2:1: kind: duplicate key (first at line 1)"),
    ],
)
def test_whole_document_problems(text, line):
    assert problems(text) == [line]


def test_aliases_cannot_blow_a_small_file_up():
    """Nine levels of ten merged aliases each: a billion keys from a few hundred bytes."""
    lines = ["a0: &a0 {0: x}"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} {{<<: [" + ", ".join([f"*a{i - 1}"] * 10) + "]}")
    text = "kind: wet\nlater: {" + ", ".join(lines) + "}\nlegs: [{name: a, from: b, bits: *a9}]\n"
    (line,) = problems(text)
    assert line == "r.yaml:1:1: the document expands to more than 200000 values (aliases?)"


def test_a_large_file_gets_a_budget_to_match(monkeypatch):
    """A district's site file may hold far more values than a gateway config: the budget is
    the larger of the floor and the file's length (here a floor of 500 values)."""
    monkeypatch.setattr("yamlread.document.MAX_NODE_VISITS", 500)
    legs = "".join(f"  - {{name: leg, from: n{i}}}\n" for i in range(300))
    assert len(read_text("kind: wet\nlegs:\n" + legs, Route, file="r.yaml").legs) == 300
    lines = ["a0: &a0 {0: x}"] + [
        f"a{i}: &a{i} {{<<: [" + ", ".join([f"*a{i - 1}"] * 6) + "]}" for i in range(1, 5)
    ]
    bomb = "kind: wet\nlater: {" + ", ".join(lines) + "}\nlegs: [{name: a, from: b, bits: *a4}]"
    assert len(bomb) < 500
    with pytest.raises(ReadError, match="expands to more than 500 values"):
        read_text(bomb, Route, file="r.yaml")
