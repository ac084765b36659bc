"""Property tests: whatever a person (or a broken editor) writes, `edge-agent check-config`
answers with exit 0 or 2 and one well-formed line per problem, never a traceback; and what the
loader accepts, the published JSON Schema accepts too."""

import contextlib
import copy
import io
import os
import re
import tempfile

import jsonschema
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.cli import main
from edge_agent.config.schema import gateway_config_schema
from tests.edge_agent.config.conftest import FIXTURES, FULL

PROBLEM_LINE = re.compile(r"^[^:]+:\d+:\d+: \S")
WHOLE_FILE_LINE = re.compile(r"^[^:]+: cannot read: ")
VALIDATOR = jsonschema.Draft202012Validator(gateway_config_schema())

fuzz_settings = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _check(text: str | bytes) -> tuple[int, str, str]:
    """Run check-config in-process on ``text`` written to a fresh file."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "gateway.yaml")
        with open(path, "wb") as f:
            f.write(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["check-config", path])
    return rc, out.getvalue(), err.getvalue()


def _assert_clean(rc: int, out: str, err: str) -> None:
    assert rc in (0, 2), (rc, err)
    assert "Traceback" not in err
    if rc == 0:
        assert out.endswith("ok (" + out.split("ok (", 1)[1]) and err == ""
        return
    lines = err.splitlines()
    assert lines, "exit 2 without a message"
    for line in lines:
        assert PROBLEM_LINE.match(line) or WHOLE_FILE_LINE.match(line), line


YAML_ALPHABET = st.sampled_from(
    [
        *list(":-[]{},#&*!|>'\"%@`?\n\t "),
        "version",
        "1",
        "gateway",
        "buses",
        "devices",
        "name",
        "type",
        "tcp",
        "unit_id",
        "<<",
        "&a ",
        "*a",
        "<<: *a",
        "&b [*b]",
        "!!timestamp ",
        "!!bool ",
        "!!int ",
        "!!binary ",
        "!!float ",
        "!!set ",
        "---",
        "...",
        "null",
        "\x00",
        "\x85",
        "é",
        "\ufeff",
        "  ",
        "\n  - ",
    ]
)


@fuzz_settings
@given(st.lists(YAML_ALPHABET, max_size=80).map("".join))
def test_yamlish_garbage_is_answered_cleanly(text):
    _assert_clean(*_check(text))


@fuzz_settings
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_answered_cleanly(data):
    _assert_clean(*_check(data))


FULL_TEXT = FULL.read_text()


@st.composite
def damaged_full_text(draw):
    """The full fixture with up to 40 characters replaced by up to 6 YAML-ish ones."""
    start = draw(st.integers(0, len(FULL_TEXT)))
    end = draw(st.integers(start, min(len(FULL_TEXT), start + 40)))
    insert = draw(st.lists(YAML_ALPHABET, max_size=6).map("".join))
    return FULL_TEXT[:start] + insert + FULL_TEXT[end:]


@fuzz_settings
@given(damaged_full_text())
def test_damaged_valid_text_is_answered_cleanly(text):
    _assert_clean(*_check(text))


def _base_document():
    doc = yaml.safe_load(FULL_TEXT)
    # Absolute paths, so the mutated copy can live in a temporary directory.
    doc["site_file"] = str(FIXTURES / doc["site_file"])
    doc["profiles_dir"] = str(FIXTURES / doc["profiles_dir"])
    doc["uplink"]["tls"]["ca_file"] = str(FIXTURES / doc["uplink"]["tls"]["ca_file"])
    return doc


BASE_DOC = _base_document()

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([10**400, -(10**400), 2**63, 1e308, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "a/b",
            "+",
            "#",
            "$SYS",
            "",
            "\x07",
            "tcp",
            "rtu",
            "N",
            "02:00-04:00",
            "mqtt://broker.example",
            "mqtts://127.0.0.1:8883",
            "pvc",
            "5",
            "3.1.1",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node, prefix=()):
    """Every (container path, key) in the document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix, k
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix, i
            yield from _paths(v, (*prefix, i))


ALL_PATHS = list(_paths(BASE_DOC))


@fuzz_settings
@given(
    st.lists(
        st.tuples(
            st.sampled_from(ALL_PATHS),
            st.sampled_from(["set", "del", "add"]),
            VALUES,
            st.text(max_size=10),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_valid_config_is_answered_cleanly_and_agrees_with_the_schema(mutations):
    doc = copy.deepcopy(BASE_DOC)
    for (parent_path, key), op, value, new_key in mutations:
        try:
            parent = doc
            for k in parent_path:
                parent = parent[k]
            if op == "set":
                parent[key] = value
            elif op == "del":
                del parent[key]
            elif isinstance(parent, dict):
                parent[new_key] = value
            elif isinstance(parent, list):
                parent.append(value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    text = yaml.safe_dump(doc, allow_unicode=True)
    rc, out, err = _check(text)
    _assert_clean(rc, out, err)
    if rc == 0:
        # The loader is at least as strict as the schema (it adds cross checks).
        errors = [e.message for e in VALIDATOR.iter_errors(yaml.safe_load(text))]
        assert errors == [], errors


@fuzz_settings
@given(damaged_full_text())
def test_problem_positions_are_inside_the_document(text):
    from edge_agent.config import ConfigError, parse_config

    try:
        parse_config(text, file="gateway.yaml", base_dir=str(FIXTURES))
    except ConfigError as exc:
        n_lines = text.count("\n") + 1
        for p in exc.problems:
            assert 1 <= p.line <= n_lines + 1 and p.col >= 1, p
            assert "\n" not in str(p) and "\r" not in str(p), p
