"""``edge-agent coverage`` through the CLI on the seed site and on small site files."""

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edge_agent.cli import main

SEED_SITE = Path(__file__).resolve().parents[3] / "seeds" / "site.yaml"

LINE_SITE = """\
site: line
name: Two loggers on a line
origin: {lat: 31.0, lon: 121.0}
noise_floor_db: 0.0
nodes:
  - {id: A, x: 0, y: 0}
  - {id: B, x: 400, y: 0}
  - {id: C, x: 400, y: 100}
pipes:
  - {id: M1, from: A, to: B, material: ductile_iron, diameter_mm: 150, wall_mm: 6, length_m: 400}
  - {id: S1, from: B, to: C, material: pe, diameter_mm: 110, wall_mm: 10, length_m: 100}
devices:
  - {name: nl-a, kind: noise_logger, profile: noise-logger-nl200, asset_id: A1,
     lat: 31.0, lon: 121.00052, pipe: M1, offset_m: 50, bus: water, unit_id: 1}
  - {name: nl-b, kind: noise_logger, profile: noise-logger-nl200, asset_id: B1,
     lat: 31.0, lon: 121.00366, pipe: M1, offset_m: 350, bus: water, unit_id: 2}
sim_buses:
  - {name: water, port: 15020}
"""


@pytest.fixture
def line_site(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(LINE_SITE)
    return path


def run_json(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_line_site_reach_and_gaps(line_site, capsys):
    out = run_json(capsys, ["coverage", "--site", str(line_site), "--json"])
    assert out["total_length_m"] == pytest.approx(500.0)
    reach = {lg["name"]: lg for lg in out["loggers"]}
    # DN150 ductile iron, 15 dB budget at 0.1 dB/m: 150 m each way.
    assert reach["nl-a"]["reach_along_own_pipe_m"] == pytest.approx(150.0, abs=1)
    assert reach["nl-a"]["heard_length_m"] == pytest.approx(200.0, abs=1)  # 0..200 on M1
    # nl-b: 200..400 on M1, 5 dB spent to B, 10 dB left: 10/0.6 ~ 16.7 m of DN110 PE.
    pe = [s for s in reach["nl-b"]["heard"] if s["pipe"] == "S1"]
    assert pe[0]["to_m"] == pytest.approx(10.0 / 0.6, abs=0.5)
    gaps = [(g["pipe"], g["from_m"], g["to_m"]) for g in out["uncovered"]]
    assert gaps == [("S1", pytest.approx(16.67, abs=0.5), 100.0)]
    assert out["covered_fraction"] == pytest.approx((400 + 16.67) / 500, abs=0.002)


def test_a_quieter_leak_leaves_a_gap_in_the_middle(line_site, capsys):
    out = run_json(capsys, ["coverage", "--site", str(line_site), "--leak-db", "15", "--json"])
    gaps = [(g["pipe"], g["from_m"], g["to_m"]) for g in out["uncovered"]]
    # 10 dB budget: 100 m each way -> M1 150..250 unheard.
    assert ("M1", pytest.approx(150.0, abs=0.5), pytest.approx(250.0, abs=0.5)) in gaps


def test_seed_site_human_output_and_map(tmp_path, capsys):
    svg = tmp_path / "map.svg"
    assert main(["coverage", "--site", str(SEED_SITE), "--svg", str(svg)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("riverside: ")
    assert "nl-07" in out
    assert "not heard by any logger" in out
    assert f"map: {svg}" in out
    root = ET.parse(svg).getroot()  # well-formed XML
    text = svg.read_text()
    for needle in ("ductile_iron", "cast_iron", "pe DN63", "nl-01", "gap: no logger", "url(#gap)"):
        assert needle in text
    assert root.tag.endswith("svg")


@pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="rsvg-convert not installed")
def test_map_renders_with_a_real_svg_renderer(tmp_path, capsys):
    svg = tmp_path / "map.svg"
    assert main(["coverage", "--site", str(SEED_SITE), "--svg", str(svg)]) == 0
    png = tmp_path / "map.png"
    subprocess.run(["rsvg-convert", "-o", str(png), str(svg)], check=True, timeout=60)
    assert png.stat().st_size > 10_000


def test_suspected_leak_candidate_on_the_seed_site(tmp_path, capsys):
    # The seed scenario's leak L1 (P-02 @ 75 m, 20 dB): nl-02 hears ~11.1 dB, nl-03 ~6.8 dB.
    svg = tmp_path / "leak.svg"
    out = run_json(
        capsys,
        [
            "coverage",
            "--site",
            str(SEED_SITE),
            "--heard",
            "nl-02=11.1",
            "nl-03=6.8",
            "--json",
            "--svg",
            str(svg),
        ],
    )
    leak = out["suspected_leak"]
    assert leak["best"]["pipe"] == "P-02"
    assert leak["best"]["offset_m"] == pytest.approx(75.0, abs=2.0)
    assert leak["source_level_db"] == pytest.approx(20.0, abs=0.5)
    assert any(c["pipe"] == "P-02" and c["from_m"] <= 75 <= c["to_m"] for c in leak["candidates"])
    assert "suspected leak" in svg.read_text()


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--heard", "nl-99=3"], "no noise logger 'nl-99'"),
        (["--heard", "nl-02"], "expected LOGGER=DB"),
        (["--heard", "nl-02=loud"], "not a number"),
        (["--heard", "nl-02=3", "nl-02=4"], "given twice"),
        (["--leak-db", "-3"], "--leak-db must be a positive"),
        (["--margin-db", "nan"], "--margin-db"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(extra, fragment, capsys):
    code = main(["coverage", "--site", str(SEED_SITE), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert fragment in err


def test_bad_site_file_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(LINE_SITE.replace("material: pe", "material: copper"))
    for path in (bad, tmp_path / "missing.yaml"):
        code = main(["coverage", "--site", str(path)])
        err = capsys.readouterr().err
        assert code == 2
        assert err.count("\n") == 1
        assert path.name in err
        assert "Traceback" not in err


def test_unwritable_map_is_a_runtime_failure(tmp_path, capsys):
    code = main(["coverage", "--site", str(SEED_SITE), "--svg", str(tmp_path / "no" / "m.svg")])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot write map" in err


def test_missing_site_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["coverage"])
    assert exc.value.code == 2
