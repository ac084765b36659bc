"""``edge-agent locate`` through the CLI: real WAV files in, position out; bad input exit 2."""

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from dsp.pipes import wave_speed
from dsp.synth import ambient, leak_at_loggers, scale_to_snr
from edge_agent.cli import main
from tests.edge_agent.mini_site import write_site

FS = 4096
SEED_SITE = Path(__file__).resolve().parents[3] / "seeds" / "site.yaml"


def write_wav(path: Path, samples: np.ndarray, fs: int = FS, channels: int = 1) -> Path:
    peak = float(np.max(np.abs(samples))) or 1.0
    pcm = np.round(samples / peak * 20000).astype("<i2")
    if channels > 1:
        pcm = np.repeat(pcm, channels)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(fs)
        w.writeframes(pcm.tobytes())
    return path


def leak_wavs(tmp_path, material, distances, seed=1, snr_db=3.0, **pipe):
    band = {"ductile_iron": (200.0, 1500.0), "cast_iron": (200.0, 1500.0)}.get(
        material, (20.0, 300.0)
    )
    at = leak_at_loggers(FS, 8.0, material=material, distances_m=distances, seed=seed, **pipe)
    paths = []
    for i, x in enumerate(at):
        amb = ambient(FS, 8.0, seed=seed * 10 + i)
        paths.append(write_wav(tmp_path / f"{i}.wav", amb + scale_to_snr(x, amb, FS, band, snr_db)))
    return paths


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_locate_on_iron_with_material_and_size(tmp_path, capsys):
    a, b = leak_wavs(tmp_path, "ductile_iron", [63.0, 93.0], diameter_mm=300, wall_mm=7.2)
    out = run_json(
        capsys,
        [
            "locate",
            str(a),
            str(b),
            "--spacing-m",
            "156",
            "--material",
            "ductile_iron",
            "--diameter-mm",
            "300",
            "--wall-mm",
            "7.2",
            "--json",
        ],
    )
    c = wave_speed("ductile_iron", 300, 7.2)
    assert out["wave_speed_m_s"] == pytest.approx(c, rel=1e-3)
    assert out["distance_from_a_m"] == pytest.approx(63.0, abs=0.5)
    assert out["tdoa_s"] == pytest.approx(-30.0 / c, abs=0.4e-3)
    assert 0.5 < out["confidence"] <= 1.0
    assert out["source_outside_loggers"] is False


def test_locate_on_pe_with_wave_speed_given(tmp_path, capsys):
    a, b = leak_wavs(tmp_path, "pe", [30.0, 10.0], seed=2)
    c = wave_speed("pe")
    out = run_json(
        capsys,
        [
            "locate",
            str(a),
            str(b),
            "--spacing-m",
            "40",
            "--wave-speed",
            f"{c}",
            "--band-hz",
            "20",
            "300",
            "--weighting",
            "scot",
            "--json",
        ],
    )
    assert out["distance_from_a_m"] == pytest.approx(30.0, abs=0.5)
    assert out["weighting"] == "scot"


def test_locate_along_a_site_path_of_mixed_materials(tmp_path, capsys):
    site = write_site(tmp_path)
    # nl-04 (cast iron P-04 @ 90 m) -> J5 -> nl-07 (PE P-07 @ 40 m): leak on P-04 at 130 m.
    from dsp.synth import leak_source, propagate

    src = leak_source(FS, 10.0, material="cast_iron", seed=5)
    margin = FS * 2
    at_a = propagate(src, FS, material="cast_iron", distance_m=40.0)
    at_b = propagate(
        propagate(src, FS, material="cast_iron", distance_m=30.0),
        FS,
        material="pe",
        distance_m=40.0,
        diameter_mm=63,
        wall_mm=5.8,
    )
    a = write_wav(tmp_path / "nl-04.wav", at_a[margin:])
    b = write_wav(tmp_path / "nl-07.wav", at_b[margin:])
    out = run_json(
        capsys,
        [
            "locate",
            str(a),
            str(b),
            "--site",
            str(site),
            "--loggers",
            "nl-04",
            "nl-07",
            "--json",
        ],
    )
    assert out["spacing_m"] == pytest.approx(110.0)
    assert [leg["material"] for leg in out["path"]] == ["cast_iron", "pe"]
    assert out["distance_from_a_m"] == pytest.approx(40.0, abs=0.5)
    assert out["position"]["pipe"] == "P-04"
    assert out["position"]["offset_m"] == pytest.approx(130.0, abs=0.5)


def test_human_output_names_the_result(tmp_path, capsys):
    a, b = leak_wavs(tmp_path, "cast_iron", [40.0, 60.0], seed=3)
    assert main(["locate", str(a), str(b), "--spacing-m", "100", "--material", "cast_iron"]) == 0
    out = capsys.readouterr().out
    assert "m from A (0.wav)" in out
    assert "confidence" in out


def bad_cases(tmp_path):
    good = write_wav(tmp_path / "good.wav", np.random.default_rng(0).standard_normal(4096))
    other_rate = write_wav(tmp_path / "rate.wav", np.ones(4096), fs=8000)
    silent = write_wav(tmp_path / "silent.wav", np.zeros(4096))
    stereo = write_wav(
        tmp_path / "stereo.wav", np.random.default_rng(1).standard_normal(4096), channels=2
    )
    half_silent = tmp_path / "half_silent.wav"
    from edge_agent.wavfile import write_wav as write_multi

    noise = np.random.default_rng(2).standard_normal(4096) * 0.1
    write_multi(half_silent, np.stack([noise, np.zeros(4096)], axis=1), FS)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav at all")
    g = str(good)
    pipe = ["--spacing-m", "100", "--material", "steel"]
    return [
        ([g, str(tmp_path / "missing.wav"), *pipe], "missing.wav: no such file"),
        ([g, str(junk), *pipe], "junk.wav: not a WAV file"),
        ([g, str(stereo), *pipe], "--spacing-m is for two recordings; for 3"),
        ([str(silent), g, *pipe], "silent.wav: digital silence"),
        ([str(half_silent), *pipe], "half_silent.wav: right (channel 2 of 2): digital silence"),
        ([g, str(other_rate), *pipe], "rate.wav: digital silence"),
        ([g, g, "--spacing-m", "100", "--material", "copper"], "unknown pipe material"),
        ([g, g, "--spacing-m", "-5", "--material", "steel"], "--spacing-m must be a positive"),
        ([g, g, "--spacing-m", "100", "--wave-speed", "0"], "--wave-speed must be a positive"),
        ([g, g, "--material", "steel"], "give --spacing-m"),
        ([g, g, "--spacing-m", "100"], "give the pipe"),
        ([g, g, "--spacing-m", "100", "--wave-speed", "1200", "--wall-mm", "5"], "only apply"),
        ([g, g, "--spacing-m", "100", "--material", "steel", "--diameter-mm", "0"], "positive"),
        ([g, g, "--site", str(SEED_SITE)], "--site needs --loggers"),
        ([g, g, "--site", str(SEED_SITE), "--loggers", "nl-02", "nope"], "no device named"),
        ([g, g, "--site", str(SEED_SITE), "--loggers", "nl-02", "lv-01"], "not a noise logger"),
        ([g, g, "--site", str(tmp_path / "nosite.yaml"), "--loggers", "a", "b"], "nosite.yaml"),
        ([g, g, "--spacing-m", "100", "--material", "steel", "--band-hz", "500", "100"], "band"),
        ([g, g, "--loggers", "a", "b", "--spacing-m", "10", "--wave-speed", "100"], "--site"),
        ([g], "two or more recordings"),
        ([g, g, g, "--spacings-m", "10", "--wave-speed", "100"], "needs 2 value(s)"),
        ([g, g, g, "--spacing-m", "10", "--wave-speed", "100"], "give --spacings-m"),
        ([g, g, "--site", str(SEED_SITE), "--loggers", "nl-02"], "names 1 loggers for 2"),
        ([g, g, "--site", str(SEED_SITE), "--loggers", "nl-02", "nl-02"], "twice"),
        ([g, g, "--spacings-m", "0", "--wave-speed", "100"], "--spacings-m must be a positive"),
    ]


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    for argv, fragment in bad_cases(tmp_path):
        code = main(["locate", *argv])
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert err.count("\n") == 1, err
        assert fragment in err, (fragment, err)
        assert "Traceback" not in err


def test_material_and_measured_wave_speed_together(tmp_path, capsys):
    """The material gives the band the coherence is looked for in, the speed is the user's."""
    a, b = leak_wavs(tmp_path, "pe", [30.0, 10.0], seed=2, snr_db=0.0)
    c = wave_speed("pe") * 1.05  # "measured on site": not the material's Korteweg speed
    argv = ["locate", str(a), str(b), "--spacing-m", "40", "--material", "pe"]
    out = run_json(capsys, [*argv, "--wave-speed", f"{c}", "--json"])
    assert out["wave_speed_m_s"] == pytest.approx(c, rel=1e-3)
    assert out["band_hz"][0] >= 10.0 and out["band_hz"][1] <= 600.0
    assert out["mean_coherence"] is not None and 0.0 < out["mean_coherence"] <= 1.0
    # the delay is the same; the position follows the user's speed
    assert out["distance_from_a_m"] == pytest.approx(
        (40 + c * 20.0 / wave_speed("pe")) / 2, abs=0.6
    )


def test_human_output_prints_band_and_coherence(tmp_path, capsys):
    a, b = leak_wavs(tmp_path, "cast_iron", [40.0, 60.0], seed=3)
    assert main(["locate", str(a), str(b), "--spacing-m", "100", "--material", "cast_iron"]) == 0
    out = capsys.readouterr().out
    assert " Hz" in out and "coherence" in out


def line_wavs(tmp_path, positions, leak_m, seed=4, shift_s=None):
    """Loggers along one cast-iron pipe at ``positions``; ``shift_s`` delays one recording."""
    distances = [abs(leak_m - p) for p in positions]
    paths = leak_wavs(tmp_path, "cast_iron", distances, seed=seed, snr_db=6.0)
    if shift_s is not None:
        index, seconds = shift_s
        import wave as wavemod

        with wavemod.open(str(paths[index]), "rb") as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        shifted = np.roll(pcm.astype(float), round(seconds * FS))
        write_wav(paths[index], shifted)
    return [str(p) for p in paths]


def test_three_loggers_along_a_pipe_agree(tmp_path, capsys):
    files = line_wavs(tmp_path, [0.0, 120.0, 215.0], leak_m=150.0)
    out = run_json(
        capsys,
        ["locate", *files, "--spacings-m", "120", "95", "--material", "cast_iron", "--json"],
    )
    assert out["distance_from_first_m"] == pytest.approx(150.0, abs=0.5)
    assert out["consistent"] is True and out["disagreeing"] is None
    assert out["residual_ms"] < 0.3
    assert len(out["pairs"]) == 3 and set(out["closures_ms"]) == {"0.wav/1.wav/2.wav"}


def test_a_logger_that_started_late_is_named(tmp_path, capsys):
    files = line_wavs(tmp_path, [0.0, 120.0, 215.0, 300.0], leak_m=150.0, shift_s=(3, 0.004))
    argv = ["locate", *files, "--spacings-m", "120", "95", "85", "--material", "cast_iron"]
    out = run_json(capsys, [*argv, "--json"])
    assert out["consistent"] is False
    assert out["disagreeing"] == "3.wav"
    assert main(argv) == 0
    assert "disagrees with the others: 3.wav" in capsys.readouterr().out


def test_three_loggers_on_the_site(tmp_path, capsys):
    """nl-02 and nl-03 on P-02, nl-01 on P-01 (25 m from J1): the leak on P-02 at 75 m."""
    site = SEED_SITE
    distances = [155.0 + 75.0, 75.0 - 12.0, 168.0 - 75.0]  # from nl-01, nl-02, nl-03
    paths = leak_wavs(
        tmp_path, "ductile_iron", distances, seed=6, snr_db=10.0, diameter_mm=300, wall_mm=7.2
    )
    out = run_json(
        capsys,
        [
            "locate",
            *[str(p) for p in paths],
            "--site",
            str(site),
            "--loggers",
            "nl-01",
            "nl-02",
            "nl-03",
            "--json",
        ],
    )
    assert out["position"]["pipe"] == "P-02"
    assert out["position"]["offset_m"] == pytest.approx(75.0, abs=1.0)
    assert out["consistent"] is True


def test_help_teaches_with_examples(capsys):
    with pytest.raises(SystemExit):
        main(["locate", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out
    assert "--spacing-m" in out


def leak_wavs_at(tmp_path, fs, material, distances, seconds=8.0, seed=4, snr_db=6.0):
    band = (200.0, min(1500.0, 0.45 * fs)) if "iron" in material else (20.0, 300.0)
    at = leak_at_loggers(fs, seconds, material=material, distances_m=distances, seed=seed)
    out = []
    for i, x in enumerate(at):
        amb = ambient(fs, seconds, seed=seed * 10 + i)
        out.append(amb + scale_to_snr(x, amb, fs, band, snr_db))
    return out


@pytest.mark.parametrize(
    ("fs", "material", "tolerance_m"),
    [
        (4800, "ductile_iron", 0.5),
        (4800, "pe", 0.5),
        (1000, "ductile_iron", 1.5),
        (1000, "pe", 1.0),
    ],
)
def test_locate_at_low_and_odd_rates(tmp_path, capsys, fs, material, tolerance_m):
    """A multi-sensor field recorder at 4.8 kHz, an old logger at 1 kHz (whose Nyquist cuts a
    metal band at 500 Hz: the band is fitted below it and said)."""
    xa, xb = leak_wavs_at(tmp_path, fs, material, [35.0, 65.0])
    a = write_wav(tmp_path / "a.wav", xa, fs=fs)
    b = write_wav(tmp_path / "b.wav", xb, fs=fs)
    out = run_json(
        capsys,
        ["locate", str(a), str(b), "--spacing-m", "100", "--material", material, "--json"],
    )
    assert out["sample_rate_hz"] == fs
    assert out["band_hz"][1] < fs / 2
    assert abs(out["distance_from_a_m"] - 35.0) <= tolerance_m, out
    assert out["confidence"] >= 0.5


def test_one_multi_channel_file_is_one_logger_per_channel(tmp_path, capsys):
    """A multi-sensor field recording: one file, a channel per sensor, in order."""
    xs = leak_wavs_at(tmp_path, 4800, "ductile_iron", [20.0, 40.0, 100.0])
    peak = max(float(np.max(np.abs(x))) for x in xs)
    frames = np.stack(xs, axis=1) / peak * 0.5
    path = tmp_path / "field.wav"
    from edge_agent.wavfile import write_wav as write_multi

    write_multi(path, frames, 4800, bits=24)
    out = run_json(
        capsys,
        ["locate", str(path), "--spacings-m", "60", "60", "--material", "ductile_iron", "--json"],
    )
    assert out["loggers"] == ["field.wav#1", "field.wav#2", "field.wav#3"]
    assert out["inputs"] == [f"{path}#1", f"{path}#2", f"{path}#3"]
    assert abs(out["distance_from_first_m"] - 20.0) <= 0.5, out
    assert out["consistent"]


def test_recordings_of_unequal_length_are_cut_to_the_shortest(tmp_path, capsys):
    """Loggers start together but one upload ends 1.5 s early: the common part is used."""
    xa, xb = leak_wavs_at(tmp_path, 4096, "ductile_iron", [40.0, 60.0])
    a = write_wav(tmp_path / "a.wav", xa, fs=4096)
    b = write_wav(tmp_path / "b.wav", xb[:-6144], fs=4096)
    argv = ["locate", str(a), str(b), "--spacing-m", "100", "--material", "ductile_iron"]
    out = run_json(capsys, [*argv, "--json"])
    assert out["samples"] == xb.size - 6144 and out["trimmed_from_samples"] == xa.size
    assert out["clipped"] == {}
    assert abs(out["distance_from_a_m"] - 40.0) <= 0.5, out
    assert main(argv) == 0
    assert "cut to the shortest" in capsys.readouterr().out


@pytest.mark.parametrize(("material", "tolerance_m"), [("ductile_iron", 0.5), ("pe", 0.5)])
def test_loggers_at_two_rates_are_resampled_to_the_lower(tmp_path, capsys, material, tolerance_m):
    """Two makes of logger, 9.6 kHz and 4.8 kHz: the faster one is resampled down (the
    reference decimation here is scipy's polyphase filter, not the product's FFT method)."""
    from scipy.signal import resample_poly

    xa, xb = leak_wavs_at(tmp_path, 9600, material, [40.0, 60.0])
    a = write_wav(tmp_path / "a.wav", xa, fs=9600)
    b = write_wav(tmp_path / "b.wav", resample_poly(xb, 1, 2), fs=4800)
    argv = ["locate", str(a), str(b), "--spacing-m", "100", "--material", material]
    out = run_json(capsys, [*argv, "--json"])
    assert out["sample_rate_hz"] == 4800
    assert out["resampled_from_hz"] == {str(a): 9600}
    assert abs(out["distance_from_a_m"] - 40.0) <= tolerance_m, out
    assert out["confidence"] >= 0.5
    assert main(argv) == 0
    assert f"resampled to 4800 Hz, the lowest rate given ({a} 9600 Hz)" in capsys.readouterr().out


def test_a_few_samples_at_a_high_rate_are_a_one_line_error(tmp_path, capsys):
    """Seven samples at 57.3 kHz are none at 4096 Hz: a one-line error naming the file, not
    resample's ValueError (the WAV fuzz test found it)."""
    rng = np.random.default_rng(7)
    a = write_wav(tmp_path / "a.wav", rng.normal(0, 0.1, 7), fs=57344)
    b = write_wav(tmp_path / "b.wav", rng.normal(0, 0.1, 4096), fs=4096)
    assert main(["locate", str(a), str(b), "--spacing-m", "100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"edge-agent locate: {a}: too short to correlate once resampled to 4096 Hz"], err


def test_a_clipped_recording_is_said(tmp_path, capsys):
    xa, xb = leak_wavs_at(tmp_path, 4096, "ductile_iron", [40.0, 60.0])
    a = write_wav(tmp_path / "a.wav", xa, fs=4096)
    b = tmp_path / "b.wav"
    from edge_agent.wavfile import write_wav as write_scaled

    write_scaled(b, np.clip(xb / np.std(xb) * 0.5, -1.0, 1.0), 4096)  # peaks over full scale
    argv = ["locate", str(a), str(b), "--spacing-m", "100", "--material", "ductile_iron"]
    out = run_json(capsys, [*argv, "--json"])
    assert list(out["clipped"]) == [str(b)] and out["clipped"][str(b)] > 0.01
    assert main(argv) == 0
    assert "note: clipped (samples at full scale: " in capsys.readouterr().out
