"""`edge-agent check-config` and `edge-agent config-schema`, in-process through the dispatcher."""

import json
import re
import shutil

import pytest

from edge_agent.cli import main
from edge_agent.config.schema import schema_json
from tests.edge_agent.config.conftest import FIXTURES, FULL, MINIMAL, SEED

PROBLEM_LINE = re.compile(r"^[^:]+:\d+:\d+: \S")


def test_valid_file_prints_one_ok_line(capsys):
    assert main(["check-config", str(FULL)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{FULL}: ok (3 buses, 3 devices)\n"
    assert err == ""


def test_singular_counts(capsys):
    assert main(["check-config", str(MINIMAL)]) == 0
    assert capsys.readouterr().out == f"{MINIMAL}: ok (1 bus, 1 device)\n"


def test_problems_one_per_line_on_stderr_exit_2(tmp_path, capsys):
    path = tmp_path / "gateway.yaml"
    path.write_text(
        MINIMAL.read_text()
        .replace("unit_id: 1", "unit_id: 300")
        .replace("water, type", "wat/er, type")
    )
    assert main(["check-config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines == [
        f"{path}:5:12: buses[0].name: 'wat/er' is not allowed: use letters, digits, '_', '.' or "
        "'-' (it becomes an MQTT topic level)",
        f"{path}:7:40: devices[0].unit_id: 300 is not in 1..247",
    ]


def test_unknown_profile_uses_the_real_registry(tmp_path, capsys):
    path = tmp_path / "gateway.yaml"
    path.write_text(MINIMAL.read_text().replace("noise-logger-nl200", "noise-logger-nl2000"))
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"{path}:7:52: devices[0].profile: unknown profile 'noise-logger-nl2000' "
        "(did you mean 'noise-logger-nl200'?)\n"
    )


@pytest.mark.parametrize(
    ("section", "key", "col"),
    [("overrides", "levle: {scale: 2}", 34), ("rules", "levl: {high: 2}", 29)],
)
def test_point_names_are_checked_against_the_profile(tmp_path, capsys, section, key, col):
    """Point overrides and per-point rules must name a point of the device's profile."""
    path = tmp_path / "gateway.yaml"
    path.write_text(
        MINIMAL.read_text().replace(
            "profile: noise-logger-nl200}",
            f"profile: level-radar-lr10,\n     {section}: {{points: {{{key}}}}}}}",
        )
    )
    name = key.split(":")[0]
    assert main(["check-config", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"{path}:8:{col}: devices[0].{section}.points.{name}: profile 'level-radar-lr10' has no "
        f"point '{name}' (did you mean 'level'?)\n"
    )


def test_a_missing_profiles_dir_is_one_problem(tmp_path, capsys):
    path = tmp_path / "gateway.yaml"
    path.write_text(
        MINIMAL.read_text().replace("noise-logger-nl200", "my-own") + "profiles_dir: p\n"
    )
    assert main(["check-config", str(path)]) == 2
    assert (
        capsys.readouterr().err == f"{path}:8:15: profiles_dir: no such directory: {tmp_path}/p\n"
    )


def test_a_bad_user_profile_is_reported_at_profiles_dir(tmp_path, capsys):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "broken.yaml").write_text("name: [unclosed\n")
    path = tmp_path / "gateway.yaml"
    path.write_text(MINIMAL.read_text() + "profiles_dir: profiles\n")
    assert main(["check-config", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}:8:15: profiles_dir: ")
    assert "broken.yaml" in lines[0]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "{p}: cannot read: No such file or directory"),
        ("huge", "{p}: larger than 4 MiB: not a gateway config"),
        ("directory", "{p}: cannot read: Is a directory"),
        ("binary", "{p}:1:3: not UTF-8 text"),
        ("empty", "{p}:1:1: the file is empty (expected a mapping with version, gateway, buses)"),
    ],
)
def test_whole_file_problems_are_one_line(tmp_path, capsys, setup, expected):
    p = tmp_path / "gateway.yaml"
    if setup == "directory":
        p.mkdir()
    elif setup == "binary":
        p.write_bytes(b"ve\xff\xfersion: 1\n")
    elif setup == "empty":
        p.write_text("")
    elif setup == "huge":
        p.write_bytes(b"#" * (4 * 2**20 + 1))
    assert main(["check-config", str(p)]) == 2
    assert capsys.readouterr().err == expected.format(p=p) + "\n"


def test_json_output(tmp_path, capsys):
    assert main(["check-config", "--json", str(MINIMAL)]) == 0
    ok = json.loads(capsys.readouterr().out)
    assert ok == {"ok": True, "file": str(MINIMAL), "problems": [], "buses": 1, "devices": 1}
    bad = tmp_path / "gateway.yaml"
    bad.write_text(MINIMAL.read_text().replace("unit_id: 1", "unit_id: 0"))
    assert main(["check-config", "--json", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert err == ""
    assert json.loads(out) == {
        "ok": False,
        "file": str(bad),
        "problems": [
            {
                "file": str(bad),
                "line": 7,
                "col": 40,
                "path": "devices[0].unit_id",
                "message": "0 is not in 1..247",
            }
        ],
    }


def test_json_for_an_unreadable_file(tmp_path, capsys):
    assert main(["check-config", "--json", str(tmp_path / "nope.yaml")]) == 2
    problem = json.loads(capsys.readouterr().out)["problems"][0]
    assert problem["line"] is None and problem["col"] is None


def test_relative_file_name_is_echoed_as_given(tmp_path, capsys, monkeypatch):
    shutil.copy(MINIMAL, tmp_path / "gw.yaml")
    monkeypatch.chdir(tmp_path)
    assert main(["check-config", "gw.yaml"]) == 0
    assert capsys.readouterr().out.startswith("gw.yaml: ok")


def test_help_teaches_with_examples(capsys):
    with pytest.raises(SystemExit) as info:
        main(["check-config", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "--json" in out and "FILE:LINE:COL" in out


def test_config_schema_command_prints_the_committed_schema(capsys):
    assert main(["config-schema"]) == 0
    assert capsys.readouterr().out == schema_json()
    assert main(["config-schema", "--compact"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(schema_json())


def test_every_fixture_problem_line_has_the_documented_form(tmp_path, capsys):
    # A config with many problems at once: every line must be FILE:LINE:COL: ...
    text = (FIXTURES / "gateway-full.yaml").read_text()
    for a, b in [("unit_id: 7", "unit_id: 7.5"), ("parity: E", "parity: e"), ("k: 2", "k: 9")]:
        text = text.replace(a, b)
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    assert main(["check-config", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 3
    assert all(PROBLEM_LINE.match(line) for line in lines), lines


def test_the_site_file_is_checked_as_the_daemon_loads_it(tmp_path, capsys):
    # The daemon refuses to start on a bad site file: check-config must say so at the kerb.
    site = tmp_path / "site.yaml"
    site.write_text((SEED.parent / "site.yaml").read_text())
    path = tmp_path / "gateway.yaml"
    path.write_text(MINIMAL.read_text() + "site_file: site.yaml\n")
    assert main(["check-config", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: ok (1 bus, 1 device)\n"

    site.write_text(site.read_text().replace("to: J2,", "to: J9,", 1))
    assert main(["check-config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert re.fullmatch(
        rf"{re.escape(str(site))}:\d+:\d+: pipes\[0\]\.to: unknown node 'J9'\n", err
    )

    assert main(["check-config", "--json", str(path)]) == 2
    (problem,) = json.loads(capsys.readouterr().out)["problems"]
    where = (problem["file"], problem["path"], problem["message"])
    assert where == (str(site), "pipes[0].to", "unknown node 'J9'")
    assert problem["line"] > 0


def test_the_site_files_scenarios_are_checked_as_the_simulator_reads_them(tmp_path, capsys):
    """The scenarios belong to the simulator, but a mistake in them is still the file's."""
    site = tmp_path / "site.yaml"
    text = (SEED.parent / "site.yaml").read_text()
    needle = "{device: gd-01, start_s: 900"
    line = text[: text.index(needle)].count("\n") + 1
    site.write_text(text.replace(needle, "{device: gd-99, start_s: 900"))
    path = tmp_path / "gateway.yaml"
    path.write_text(MINIMAL.read_text() + "site_file: site.yaml\n")
    assert main(["check-config", str(path)]) == 2
    assert re.fullmatch(
        rf"{re.escape(str(site))}:{line}:\d+: scenarios\.gas\[0\]\.device: "
        r"unknown device 'gd-99'\n",
        capsys.readouterr().err,
    )
