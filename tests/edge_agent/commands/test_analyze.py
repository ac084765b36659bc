"""``edge-agent analyze`` through the real dispatcher, on real WAV files written by the test:
verdicts on synthesised recordings, one line per bad file, the batch goes on, exit 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from dsp import synth
from edge_agent.cli import main
from edge_agent.wavfile import write_wav

SCALE = 0.001  # units per count: ambient ~1 unit = ~1000 counts in a 16-bit file


def _write_counts(path, x, fs, bits=16):
    """Write ``x`` (in units) as PCM counts of SCALE units."""
    write_wav(path, x / SCALE / 2 ** (bits - 1), fs, bits=bits)


def _scene_wav(path, scene, fs=4096, seed=1, seconds=4.0):
    _write_counts(path, synth.recording(float(fs), seconds, scene=scene, seed=seed), fs)
    return str(path)


@pytest.fixture
def batch(tmp_path):
    good = {
        "leak": _scene_wav(tmp_path / "leak.wav", synth.Scene(leak_distance_m=40, leak_snr_db=12)),
        "quiet": _scene_wav(tmp_path / "quiet.wav", synth.Scene(ambient_db=-8.0)),
        "pump": _scene_wav(tmp_path / "pump.wav", synth.Scene(ambient_db=-8.0, pump_db=10.0)),
    }
    bad = {}
    full = (tmp_path / "leak.wav").read_bytes()
    (tmp_path / "truncated.wav").write_bytes(full[: len(full) // 2])
    bad["truncated"] = str(tmp_path / "truncated.wav")
    stereo = tmp_path / "stereo.wav"
    import wave

    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(4096)
        w.writeframes(b"\0\0" * 2 * 4096)
    bad["stereo"] = str(stereo)
    (tmp_path / "empty.wav").write_bytes(b"")
    bad["empty"] = str(tmp_path / "empty.wav")
    (tmp_path / "notes.wav").write_text("meeting notes, not audio\n")
    bad["non-wav"] = str(tmp_path / "notes.wav")
    write_wav(tmp_path / "zero.wav", np.zeros(0), 4096)
    bad["zero-length"] = str(tmp_path / "zero.wav")
    write_wav(tmp_path / "short.wav", np.random.default_rng(0).uniform(-0.1, 0.1, 100), 4096)
    bad["too short"] = str(tmp_path / "short.wav")
    bad["missing"] = str(tmp_path / "missing.wav")
    return good, bad


def test_json_batch_verdicts_and_errors(batch, capsys):
    """Bad files in the middle do not stop the batch; one object per file, in order."""
    good, bad = batch
    files = [good["leak"], *bad.values(), good["quiet"], good["pump"]]
    code = main(["analyze", "--scale", str(SCALE), "--json", *files])
    out = capsys.readouterr().out.splitlines()
    assert code == 2
    objs = [json.loads(line) for line in out]
    assert [o["file"] for o in objs] == files
    by_file = {o["file"]: o for o in objs}
    assert by_file[good["leak"]]["verdict"] == "leak"
    assert by_file[good["leak"]]["leak_score"] > 0.9
    assert by_file[good["quiet"]]["verdict"] == "no_leak"
    assert by_file[good["pump"]]["verdict"] == "no_leak"
    assert by_file[good["pump"]]["tonality_db"] > 3
    for key in ("leak_score", "verdict", "level_db", "spread_db", "peak_hz", "band_levels"):
        assert key in by_file[good["leak"]]
    assert set(by_file[good["leak"]]["band_levels"]) == {"31.5", "63", "125", "250", "500", "1000"}
    assert 200 <= by_file[good["leak"]]["peak_hz"] <= 1500
    expected = {
        "truncated": "truncated",
        "stereo": "stereo.wav: left (channel 1 of 2): digital silence (every sample is 0)",
        "empty": "empty file",
        "non-wav": "not a WAV file",
        "zero-length": "no samples",
        "too short": "0.0244 s is too short: at 4096 Hz one frame is 0.25 s",
        "missing": "no such file",
    }
    for name, path in bad.items():
        assert set(by_file[path]) == {"file", "error"}
        assert expected[name] in by_file[path]["error"], by_file[path]


def test_text_mode_bad_file_is_one_stderr_line(batch, capsys):
    good, bad = batch
    code = main(["analyze", "--scale", str(SCALE), good["leak"], bad["stereo"], good["quiet"]])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("mode absolute")
    assert lines[1].startswith(good["leak"] + ": leak")
    assert lines[2].startswith(good["quiet"] + ": no_leak")
    assert captured.err.splitlines() == [
        f"edge-agent analyze: {bad['stereo']}: left (channel 1 of 2): digital silence (every "
        "sample is 0): nothing to judge (a sensor or cable fault?)"
    ]


def test_all_good_exit_0_and_any_rate_and_material(tmp_path, capsys):
    """An 8 kHz float WAV on PE (full scale = 1.0, the floor given instead of a scale)."""
    x = synth.recording(
        8000.0, 3.0, scene=synth.Scene(material="pe", leak_distance_m=10, ambient_db=-30.0), seed=4
    )
    write_wav(tmp_path / "pe.wav", x, 8000, bits=32, encoding="float")
    quiet = synth.recording(8000.0, 3.0, scene=synth.Scene(material="pe", ambient_db=-30.0), seed=5)
    write_wav(tmp_path / "pe0.wav", quiet, 8000, bits=24)
    floor = 10 * np.log10(synth.band_power(quiet, 8000.0, (20.0, 300.0)))
    code = main(
        [
            "analyze",
            "--material",
            "pe",
            "--floor-db",
            f"{floor:.2f}",
            "--json",
            str(tmp_path / "pe.wav"),
            str(tmp_path / "pe0.wav"),
        ]
    )
    objs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [o["verdict"] for o in objs] == ["leak", "no_leak"]
    assert objs[0]["fs"] == 8000.0 and objs[0]["material"] == "pe"
    assert objs[0]["band_hz"] == [20.0, 300.0]


def test_a_96_khz_recording_names_its_eleventh_octave(tmp_path, capsys):
    """Above ~90 kHz the octave bands pass 16 kHz: the 31.5 kHz band gets its nominal name
    (was an IndexError traceback)."""
    x = synth.ambient(96000.0, 1.0, seed=7, level_db=-20.0)
    write_wav(tmp_path / "r96.wav", x, 96000, bits=24)
    code = main(["analyze", "--json", str(tmp_path / "r96.wav")])
    objs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert list(objs[0]["band_levels"]) == [
        "31.5", "63", "125", "250", "500", "1000", "2000", "4000", "8000", "16000", "31500"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--threshold", "1.5", "x.wav"], "--threshold must be between 0 and 1"),
        (["--scale", "-2", "x.wav"], "--scale must be a positive number"),
        (["--material", "wood", "x.wav"], "invalid choice: 'wood'"),
        ([], "the following arguments are required: FILE.wav"),
    ],
)
def test_bad_arguments_exit_2_one_line(argv, message):
    proc = subprocess.run(
        [sys.executable, "-m", "edge_agent", "analyze", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_teaches(capsys):
    with pytest.raises(SystemExit) as info:
        main(["analyze", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "--json" in out and "--scale" in out and "pvc" in out


def test_without_scale_or_floor_the_mode_is_relative_and_gain_free(tmp_path, capsys):
    """The same recording at two gains 40 dB apart scores the same without --scale; the mode
    is printed first."""
    x = synth.recording(4096.0, 4.0, scene=synth.Scene(leak_distance_m=40, leak_snr_db=12), seed=9)
    write_wav(tmp_path / "loud.wav", x / np.max(np.abs(x)) * 0.9, 4096, bits=32, encoding="float")
    write_wav(tmp_path / "soft.wav", x / np.max(np.abs(x)) * 0.009, 4096, bits=32, encoding="float")
    code = main(["analyze", str(tmp_path / "loud.wav"), str(tmp_path / "soft.wav")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and lines[0].startswith("mode relative")
    code = main(["analyze", "--json", str(tmp_path / "loud.wav"), str(tmp_path / "soft.wav")])
    loud, soft = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert loud["mode"] == soft["mode"] == "relative"
    assert loud["floor_db"] is None and loud["verdict"] == "leak"
    assert soft["leak_score"] == pytest.approx(loud["leak_score"], abs=1e-3)
    assert soft["quiet_level_db"] == pytest.approx(loud["quiet_level_db"] - 40.0, abs=0.05)


@pytest.mark.parametrize("material", [[], ["--material", "ductile_iron"]])
def test_group_flags_the_file_that_stands_out(tmp_path, capsys, material):
    """Five loggers of one night at one gain; the one near a faint leak (a small hump its
    own shape does not call) stands 10 dB over the others: flagged and called, with the
    material given or unknown (each band then compared with the same band of the others)."""
    files = []
    for i in range(5):
        scene = synth.Scene(ambient_db=-30.0)
        x = synth.recording(4096.0, 4.0, scene=scene, seed=20 + i)
        if i == 2:
            leak = synth.leak_source(4096.0, 4.0, material="ductile_iron", seed=3)
            x = x + leak * np.std(x) * 3.0
        path = tmp_path / f"nl-0{i}.wav"
        write_wav(path, x, 4096, bits=32, encoding="float")
        files.append(str(path))
    code = main(["analyze", "--group", "--json", *material, *files])
    objs = {o["file"]: o for o in map(json.loads, capsys.readouterr().out.splitlines())}
    assert code == 0
    assert objs[files[2]]["group"]["flagged"] is True
    assert objs[files[2]]["group"]["excess_db"] > 6.0 and objs[files[2]]["verdict"] == "leak"
    assert not any(objs[f]["group"]["flagged"] for f in files if f != files[2])
    assert all(objs[f]["group"]["peers"] == 4 for f in files)


def test_group_of_two_compares_nothing(batch, capsys):
    good, _ = batch
    code = main(["analyze", "--group", "--json", good["leak"], good["quiet"]])
    captured = capsys.readouterr()
    assert code == 0 and "--group needs 3 or more" in captured.err
    assert all(json.loads(line)["group"] is None for line in captured.out.splitlines())


def _leak_at(fs, seconds, seed=5, material="ductile_iron"):
    scene = synth.Scene(material=material, leak_distance_m=20, leak_snr_db=10)
    x = synth.recording(float(fs), seconds, scene=scene, seed=seed)
    return x / np.max(np.abs(x)) * 0.3


def _analyze_json(capsys, *argv):
    code = main(["analyze", "--json", *argv])
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_each_channel_of_a_stereo_file_is_said(tmp_path, capsys):
    """A recorder with two inputs: the first channel unless --channel says, and which one is
    named; the channels are judged apart (a leak on one, quiet on the other)."""
    leak = _leak_at(8000, 6.0)
    quiet = synth.recording(8000.0, 6.0, scene=synth.Scene(), seed=9)
    quiet = quiet / np.max(np.abs(quiet)) * 0.3
    path = tmp_path / "two.wav"
    write_wav(path, np.stack([leak, quiet], axis=1), 8000, bits=24)
    _, [left] = _analyze_json(capsys, str(path))
    _, [right] = _analyze_json(capsys, "--channel", "2", str(path))
    assert (left["channel"], left["channels"], right["channel"]) == (1, 2, 2)
    assert left["verdict"] == "leak" and right["verdict"] == "no_leak"
    assert left["notes"] == ["read left (channel 1 of 2); --channel N reads another"]
    code, [err] = _analyze_json(capsys, "--channel", "3", str(path))
    assert code == 2 and err["error"] == f"{path}: no channel 3 (the file has channels 1-2)"
    assert main(["analyze", "--channel", "0", str(path)]) == 2
    assert "--channel counts from 1" in capsys.readouterr().err


def test_a_1_khz_recording_says_which_part_of_the_band_it_judged(tmp_path, capsys):
    """Nyquist 500 Hz lies inside the metal band (200-1500 Hz): judged on 200-500 Hz, and
    said, in JSON and on the text line; plastic's band (20-300 Hz) fits whole."""
    path = tmp_path / "old-logger.wav"
    write_wav(path, _leak_at(1000, 10.0), 1000)
    code, [metal] = _analyze_json(capsys, "--material", "ductile_iron", str(path))
    assert code == 0
    assert metal["band_hz"] == [200.0, 1500.0] and metal["judged_band_hz"] == [200.0, 500.0]
    assert "judged on 200-500 Hz only" in metal["notes"][0]
    _, [pvc] = _analyze_json(capsys, "--material", "pvc", str(path))
    assert pvc["judged_band_hz"] == pvc["band_hz"] == [20.0, 300.0] and pvc["notes"] == []
    assert main(["analyze", "--material", "ductile_iron", str(path)]) == 0
    assert "[ductile_iron 200-500 Hz, 1000 Hz" in capsys.readouterr().out


def test_a_rate_too_low_for_the_band_is_one_line(tmp_path, capsys):
    path = tmp_path / "slow.wav"
    write_wav(path, _leak_at(500, 10.0), 500)  # Nyquist 250 Hz: 0.75 of it is below 200 Hz
    code, [err] = _analyze_json(capsys, "--material", "ductile_iron", str(path))
    assert code == 2 and "ductile_iron: band" in err["error"]
    assert "needs a rate of 535 Hz or more" in err["error"]
    # material unknown: the metal band is left out, the bands the rate holds are judged
    code, [unknown] = _analyze_json(capsys, str(path))
    assert code == 0 and unknown["material"] is None
    assert set(unknown["family_scores"]) == {"cement", "plastic"}


def test_clipping_is_said_and_a_dc_offset_changes_nothing(tmp_path, capsys):
    x = _leak_at(8000, 6.0)
    write_wav(tmp_path / "ok.wav", x, 8000)
    write_wav(tmp_path / "dc.wav", x + 0.4, 8000)  # a sensor's offset, no clipping
    write_wav(tmp_path / "hot.wav", np.clip(x * 6.0, -1.0, 1.0), 8000)
    _, [ok, dc, hot] = _analyze_json(
        capsys, *(str(tmp_path / f"{n}.wav") for n in ("ok", "dc", "hot"))
    )
    assert ok["notes"] == [] and ok["clipped_share"] == 0.0
    assert dc["leak_score"] == pytest.approx(ok["leak_score"], abs=2e-3)
    assert dc["verdict"] == ok["verdict"] and dc["notes"] == []
    assert hot["clipped_share"] > 0.01
    assert (
        hot["notes"][0].startswith("clipped: ") and "% of samples at full scale" in hot["notes"][0]
    )


def test_degenerate_files_are_one_line_each(tmp_path, capsys):
    """Silence, a constant, NaN in a float file: each one line naming the file, exit 2."""
    write_wav(tmp_path / "zeros.wav", np.zeros(40_000), 8000)
    write_wav(tmp_path / "dc.wav", np.full(40_000, 0.25), 8000)
    nan = _leak_at(8000, 5.0).astype(np.float32)
    nan[1000] = np.nan
    write_wav(tmp_path / "nan.wav", nan, 8000, bits=32, encoding="float")
    files = [str(tmp_path / f"{n}.wav") for n in ("zeros", "dc", "nan")]
    code, objs = _analyze_json(capsys, *files)
    assert code == 2
    assert [o["error"] for o in objs] == [
        f"{files[0]}: digital silence (every sample is 0): nothing to judge (a sensor or cable "
        "fault?)",
        f"{files[1]}: digital silence (every sample is 0.25): nothing to judge (a sensor or "
        "cable fault?)",
        f"{files[2]}: float samples contain NaN or infinity",
    ]


def test_a_recording_under_two_seconds_is_a_stated_weak_verdict(tmp_path, capsys):
    write_wav(tmp_path / "brief.wav", _leak_at(8000, 1.0), 8000)
    code, [obj] = _analyze_json(capsys, str(tmp_path / "brief.wav"))
    assert code == 0 and obj["verdict"] in ("leak", "no_leak")
    assert obj["notes"] == ["short: 1 s, 6 frames: a weak verdict (record 10 s or more)"]


def test_float_samples_beyond_float64_powers_are_one_line(tmp_path, capsys):
    """A float file can hold 1e200 or 1e-300: its powers overflow or underflow (inf or 0 dB
    levels); one line says so instead of a score of nothing."""
    x = np.random.default_rng(0).standard_normal(40_000)
    for name, gain in (("huge", 1e200), ("tiny", 1e-300)):
        write_wav(tmp_path / f"{name}.wav", x * gain, 8000, bits=64, encoding="float")
    for name in ("huge", "tiny"):
        assert main(["analyze", str(tmp_path / f"{name}.wav")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "over- or underflow" in err and "Traceback" not in err
    write_wav(tmp_path / "loud.wav", x * 1e30, 8000, bits=64, encoding="float")  # fine
    code, [obj] = _analyze_json(capsys, str(tmp_path / "loud.wav"))
    write_wav(tmp_path / "unit.wav", x, 8000, bits=64, encoding="float")
    _, [unit] = _analyze_json(capsys, str(tmp_path / "unit.wav"))
    assert code == 0 and obj["leak_score"] == pytest.approx(unit["leak_score"], abs=1e-6)


def test_a_band_of_digital_silence_is_said(tmp_path, capsys):
    """One click in silence: its quiet frames hold nothing in band."""
    x = np.zeros(40_000)
    x[20_000] = 0.9
    write_wav(tmp_path / "click.wav", x, 8000)
    code, [obj] = _analyze_json(capsys, str(tmp_path / "click.wav"))
    assert code == 0 and obj["verdict"] == "no_leak"
    assert "the band is digital silence in the quiet frames" in " ".join(obj["notes"])
    assert main(["analyze", str(tmp_path / "click.wav")]) == 0
    assert "note: the band is digital silence" in capsys.readouterr().out


def test_an_error_on_one_channel_of_a_stereo_file_starts_with_the_file(tmp_path, capsys):
    """Found by tests/edge_agent/test_wav_fuzz.py: a too-short stereo file's error read
    "FILE (left (channel 1 of 2)): ...", which a script splitting on "FILE: " misses."""
    path = tmp_path / "short-stereo.wav"
    noise = np.random.default_rng(3).uniform(-0.1, 0.1, (50, 2))
    write_wav(path, noise, 4096)
    code = main(["analyze", "--json", str(path)])
    (obj,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 2
    assert obj["error"].startswith(f"{path}: left (channel 1 of 2): "), obj
    assert "too short" in obj["error"]


def test_with_no_material_each_file_is_judged_in_its_familys_band(tmp_path, capsys):
    """Issue 10: one batch of recordings from metal and plastic pipes, no --material (the
    user does not know): a PVC leak is judged in the plastic band, a ductile iron one in the
    metal band, a quiet file stays no_leak; the output names the band and the mode."""
    fs = 8000
    paths = {}
    for name, material, leak in (
        ("pvc", "pvc", True),
        ("iron", "ductile_iron", True),
        ("quiet", "pvc", False),
    ):
        scene = synth.Scene(material=material, leak_distance_m=10.0 if leak else None)
        x = synth.recording(float(fs), 10.0, scene=scene, seed=11)
        paths[name] = str(tmp_path / f"{name}.wav")
        write_wav(paths[name], x / np.max(np.abs(x)) * 0.3, fs)  # 16-bit PCM
    code, objs = _analyze_json(capsys, *paths.values())
    pvc, iron, quiet = objs
    assert code == 0
    assert [o["material"] for o in objs] == [None, None, None]
    assert (pvc["judged_as"], pvc["band_hz"], pvc["verdict"]) == ("plastic", [20.0, 300.0], "leak")
    assert (iron["judged_as"], iron["band_hz"], iron["verdict"]) == (
        "metal",
        [200.0, 1500.0],
        "leak",
    )
    assert quiet["verdict"] == "no_leak"
    for o in objs:
        assert set(o["family_scores"]) == {"metal", "cement", "plastic"}
        assert o["leak_score"] <= max(o["family_scores"].values())
        assert o["reasons"][0].startswith(f"material unknown: judged in the {o['judged_as']} band")
    _, [given] = _analyze_json(capsys, "--material", "pvc", paths["pvc"])
    assert (given["material"], given["judged_as"], given["family_scores"]) == (
        "pvc",
        "plastic",
        None,
    )
    assert given["leak_score"] == pytest.approx(pvc["family_scores"]["plastic"], abs=1e-4)
    assert main(["analyze", paths["pvc"]]) == 0
    mode, line = capsys.readouterr().out.splitlines()
    assert mode.startswith("mode relative") and "material unknown" in mode
    assert "[material unknown, judged as plastic 20-300 Hz, 8000 Hz" in line
