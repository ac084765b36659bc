"""Property tests: whatever is in a file handed to ``edge-agent analyze --json`` (random bytes,
a WAV header with any field mutated, extreme or non-finite samples), the answer is one strict
JSON object per file in order (an error naming the file, or a result with finite numbers or
null), exit 2 when any file was bad and 0 otherwise, never a traceback; the good recordings
of the same batch are still analysed."""

from __future__ import annotations

import contextlib
import io
import json
import math
import struct
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dsp import synth
from edge_agent.cli import main
from edge_agent.wavfile import write_wav

fuzz_settings = settings(
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

FS = 4096
GOOD = synth.recording(float(FS), 2.0, scene=synth.Scene(leak_distance_m=40), seed=3)


def _strict(text: str) -> dict:
    """json.loads that refuses NaN/Infinity (not JSON: a consumer's parser would choke)."""

    def refuse(name: str) -> float:
        raise AssertionError(f"non-JSON constant {name} in {text[:200]}")

    return json.loads(text, parse_constant=refuse)


def _analyze(blobs: list[bytes]) -> tuple[int, list[dict], str, list[str]]:
    """good.wav, then each blob as its own file, then good.wav again, through the dispatcher."""
    with tempfile.TemporaryDirectory() as d:
        good = str(Path(d) / "good.wav")
        write_wav(good, GOOD * 0.1, FS)
        files = [good]
        for i, blob in enumerate(blobs):
            path = Path(d) / f"fuzz-{i}.wav"
            path.write_bytes(blob)
            files.append(str(path))
        files.append(good)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["analyze", "--json", *files])
    objs = [_strict(line) for line in out.getvalue().splitlines()]
    return rc, objs, err.getvalue(), files


def _check(blobs: list[bytes], *, fuzzing: bool = True) -> list[dict]:
    rc, objs, err, files = _analyze(blobs)
    assert "Traceback" not in err
    assert err == ""  # --json: errors are objects on stdout
    assert [o["file"] for o in objs] == files, "one object per file, in order"
    for good in (objs[0], objs[-1]):
        assert good["verdict"] in ("leak", "no_leak", "uncertain") or "verdict" in good, good
    bad = [o for o in objs if "error" in o]
    for o in bad:
        assert set(o) == {"file", "error"}
        assert o["error"].startswith(o["file"] + ": ") and "\n" not in o["error"], o
    for o in objs:
        if "error" not in o:
            for key, value in o.items():
                if isinstance(value, float):
                    assert math.isfinite(value), (key, o)
    assert rc == (2 if bad else 0), (rc, bad)
    for o in objs[1:-1] if fuzzing else ():  # --hypothesis-show-statistics shows the mix
        event("error: " + o["error"].split(": ", 1)[1][:30] if "error" in o else "analysed")
    return objs


def wav_bytes(
    *,
    tag: int = 1,
    channels: int = 1,
    fs: int = FS,
    bits: int = 16,
    block_align: int | None = None,
    fmt_size: int = 16,
    data: bytes = b"\x00\x10" * 4096,
    data_size: int | None = None,
    riff_size: int | None = None,
    extra_chunk: bytes = b"",
) -> bytes:
    align = (bits // 8 * channels if block_align is None else block_align) & 0xFFFF
    fmt = struct.pack("<HHIIHH", tag, channels, fs, (fs * max(align, 0)) & 0xFFFFFFFF, align, bits)
    fmt = (fmt + b"\x00" * 64)[:fmt_size]
    body = b"WAVE" + extra_chunk + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data) if data_size is None else data_size) + data
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


U16 = st.one_of(
    st.sampled_from([0, 1, 2, 3, 8, 16, 24, 32, 64, 0xFFFE, 0xFFFF]), st.integers(0, 0xFFFF)
)
U32 = st.one_of(
    st.sampled_from([0, 1, 8, 100, 1000, FS, 48000, 2**31 - 1, 2**32 - 1]),
    st.integers(0, 2**32 - 1),
)


@st.composite
def sample_data(draw) -> tuple[bytes, int, int]:
    """(data chunk, format tag, bits) of samples a broken logger might send."""
    kind = draw(st.sampled_from(["pcm16", "pcm8", "pcm24", "float32", "float64", "raw"]))
    n = draw(st.sampled_from([0, 1, 7, 100, 2048, 8192]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "raw":
        return draw(st.binary(max_size=4096)), 1, 16
    if kind.startswith("pcm"):
        bits = int(kind[3:])
        top = 2 ** (bits - 1)
        value = draw(st.sampled_from([0, 1, -top, top - 1]))
        counts = np.clip(value + rng.integers(-3, 4, n), -top, top - 1)
        if bits == 8:
            return (counts + 128).astype(np.uint8).tobytes(), 1, 8
        if bits == 24:
            raw = counts.astype("<i4").tobytes()
            return b"".join(raw[i : i + 3] for i in range(0, len(raw), 4)), 1, 24
        return counts.astype("<i2").tobytes(), 1, 16
    special = draw(
        st.sampled_from([0.0, 1.0, -1.0, 1e-300, 1e-40, 1e300, 3e38, math.nan, math.inf, -math.inf])
    )
    x = np.full(n, special)
    if draw(st.booleans()):
        x = x + rng.normal(0, 1e-3, n)
    elif n and draw(st.booleans()):
        x[rng.integers(0, n)] = draw(st.sampled_from([math.nan, math.inf, 1e308]))
    bits = 32 if kind == "float32" else 64
    with np.errstate(over="ignore", invalid="ignore"):  # 1e300 as float32 is inf: wanted
        return x.astype("<f4" if bits == 32 else "<f8").tobytes(), 3, bits


FIELDS = {
    "tag": st.one_of(st.sampled_from([1, 3, 0xFFFE, 0x55]), U16),
    "channels": st.one_of(st.sampled_from([0, 1, 2]), U16),
    "fs": U32,
    "bits": st.one_of(st.sampled_from([8, 16, 24, 32, 64, 0, 12]), U16),
    "block_align": st.one_of(st.sampled_from([0, 1, 2, 3, 4, 8]), U16),
    "fmt_size": st.sampled_from([0, 2, 14, 16, 18, 26, 40]),
    "data_size": U32,
    "riff_size": U32,
    "extra_chunk": st.sampled_from(
        [b"", b"LIST\x04\x00\x00\x00abcd", b"junk\x03\x00\x00\x00abc\x00", b"x\xff"]
    ),
}


@st.composite
def mutated_wavs(draw) -> bytes:
    """A WAV of fuzzed samples whose header has none, one or a few fields set to anything."""
    data, tag, bits = draw(sample_data())
    fields: dict = {"data": data, "tag": tag, "bits": bits}
    for name in draw(st.sets(st.sampled_from(sorted(FIELDS)), max_size=3)):
        fields[name] = draw(FIELDS[name])
    return wav_bytes(**fields)


@fuzz_settings
@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"", b"RIFF\x24\x00\x00\x00WAVE", b"RIFF"]), st.binary(max_size=300)
        ),
        min_size=1,
        max_size=3,
    )
)
def test_random_bytes(blobs):
    _check([head + tail for head, tail in blobs])


@fuzz_settings
@given(st.lists(mutated_wavs(), min_size=1, max_size=3))
def test_mutated_headers_and_samples(blobs):
    _check(blobs)


VALID = wav_bytes()


@fuzz_settings
@given(st.data())
def test_valid_file_damaged_anywhere(data):
    blob = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, 60))  # the header and the first samples
        blob[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(blob))))
    _check([bytes(blob[:cut])])


def test_known_bad_shapes_each_give_their_error():
    """A table of one defect each (the fuzz above finds the rest)."""
    cases = {
        "not a WAV file": b"ID3\x04" + b"\x00" * 40,
        "0 channels": wav_bytes(channels=0),
        "unsupported WAV encoding 0x0055": wav_bytes(tag=0x55),
        "sample rate is 0 Hz": wav_bytes(fs=0),
        "12-bit PCM": wav_bytes(bits=12, block_align=2),
        "block align": wav_bytes(block_align=3),
        "NaN or infinity": wav_bytes(
            tag=3, bits=32, data=np.full(4096, np.nan).astype("<f4").tobytes()
        ),
        "truncated 'data' chunk": wav_bytes(data_size=10**6),
        "no samples": wav_bytes(data=b""),
    }
    objs = _check(list(cases.values()), fuzzing=False)
    for needle, obj in zip(cases, objs[1:-1], strict=True):
        assert needle in obj.get("error", ""), (needle, obj)


@fuzz_settings
@given(mutated_wavs(), st.booleans())
def test_locate_with_a_damaged_recording(blob, first):
    """``locate`` takes two recordings: a damaged one is exit 2 with one line naming it."""
    with tempfile.TemporaryDirectory() as d:
        good, bad = str(Path(d) / "good.wav"), str(Path(d) / "bad.wav")
        write_wav(good, GOOD * 0.1, FS)
        Path(bad).write_bytes(blob)
        pair = [bad, good] if first else [good, bad]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["locate", "--spacing-m", "100", "--json", *pair])
    assert rc in (0, 2), (rc, err.getvalue())
    assert "Traceback" not in err.getvalue()
    if rc == 2:
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 and lines[0].startswith("edge-agent locate: "), lines
        event("refused")
    else:
        result = _strict(out.getvalue())
        assert all(math.isfinite(v) for v in result.values() if isinstance(v, float)), result
        event("located")
