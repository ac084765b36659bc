"""edge_agent.wavfile: every supported encoding round-trips; every broken file is one clear
WavError line naming the file and the problem."""

import struct

import numpy as np
import pytest

from edge_agent.errors import UsageError
from edge_agent.wavfile import WavError, channel_label, read_wav, read_wav_channels, write_wav


@pytest.mark.parametrize(
    ("bits", "encoding", "tol"),
    [
        (8, "pcm", 1 / 128),
        (16, "pcm", 1 / 32768),
        (24, "pcm", 1 / 2**23),
        (32, "pcm", 1 / 2**31),
        (32, "float", 1e-7),
        (64, "float", 0.0),
    ],
)
def test_round_trip(tmp_path, bits, encoding, tol):
    x = np.sin(np.linspace(0, 40, 1001)) * 0.9
    x[5] = -1.0
    path = tmp_path / "a.wav"
    write_wav(path, x, 4096, bits=bits, encoding=encoding)
    rec = read_wav(path)
    assert rec.fs == 4096.0 and rec.bits == bits and rec.encoding == encoding
    assert rec.samples.size == x.size
    assert np.max(np.abs(rec.samples - x)) <= tol


def test_stdlib_wave_agrees_on_pcm(tmp_path):
    """A file written by the stdlib wave module reads back as the same counts."""
    import wave

    counts = np.array([0, 1, -1, 32767, -32768, 1234], dtype="<i2")
    path = tmp_path / "w.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(counts.tobytes())
    rec = read_wav(path, units_per_count=0.5)
    np.testing.assert_array_equal(rec.samples, counts * 0.5)
    np.testing.assert_array_equal(read_wav(path).samples, counts / 32768)


def _riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _chunk(cid: bytes, body: bytes, size: int | None = None) -> bytes:
    pad = b"\0" if len(body) % 2 else b""
    return cid + struct.pack("<I", len(body) if size is None else size) + body + pad


def _fmt(tag=1, channels=1, fs=4096, bits=16):
    block = channels * bits // 8
    return _chunk(b"fmt ", struct.pack("<HHIIHH", tag, channels, fs, fs * block, block, bits))


def test_skips_unknown_chunks_and_odd_padding(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(_riff(_chunk(b"LIST", b"abc"), _fmt(), _chunk(b"data", b"\x01\x00\xff\xff")))
    np.testing.assert_array_equal(read_wav(path).samples, [1 / 32768, -1 / 32768])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"hello world, not audio", "not a WAV file"),
        (b"ID3\x03\x00" + b"\0" * 40, "not a WAV file"),
        (_riff(_fmt(channels=2, bits=16), _chunk(b"data", b"\0" * 6)), "2-channel frames"),
        (_riff(_fmt(channels=0), _chunk(b"data", b"\0" * 24)), "0 channels"),
        (_riff(_fmt(), _chunk(b"data", b"")), "no samples"),
        (_riff(_fmt()), "no data chunk"),
        (_riff(_chunk(b"data", b"\0\0")), "before the fmt chunk"),
        (_riff(_chunk(b"junk", b"\0\0")), "no fmt chunk"),
        (_riff(_fmt(), _chunk(b"data", b"\0" * 10, size=4000)), "truncated 'data' chunk"),
        (_riff(_fmt(), _chunk(b"data", b"\0\0\0")), "not a whole number"),
        (_riff(_fmt())[:-5], "truncated 'fmt' chunk"),
        (_riff(_fmt(), b"da"), "truncated chunk header"),
        (_riff(_fmt(tag=2), _chunk(b"data", b"\0\0")), "unsupported WAV encoding 0x0002"),
        (_riff(_fmt(bits=12), _chunk(b"data", b"\0\0")), "12-bit PCM"),
        (_riff(_fmt(fs=0), _chunk(b"data", b"\0\0")), "sample rate is 0"),
        (_riff(_chunk(b"fmt ", b"\1\0\1\0"), _chunk(b"data", b"\0\0")), "fmt chunk is 4 bytes"),
        (
            _riff(_fmt(tag=3, bits=32), _chunk(b"data", struct.pack("<f", float("nan")))),
            "NaN or infinity",
        ),
    ],
)
def test_broken_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(WavError, match=message) as info:
        read_wav(path)
    text = str(info.value)
    assert text.startswith(str(path)) and "\n" not in text
    assert isinstance(info.value, UsageError)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(WavError, match="no such file"):
        read_wav(tmp_path / "nope.wav")
    with pytest.raises(WavError, match="is a directory"):
        read_wav(tmp_path)


def test_bad_scale():
    with pytest.raises(WavError, match="scale"):
        read_wav("whatever.wav", units_per_count=0.0)


@pytest.mark.parametrize(("bits", "encoding"), [(16, "pcm"), (24, "pcm"), (32, "float")])
def test_multi_channel_files_are_read_one_channel_at_a_time(tmp_path, bits, encoding):
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.5, 0.5, size=(4000, 3))
    path = tmp_path / "three.wav"
    write_wav(path, x, 4800, bits=bits, encoding=encoding)
    recs = read_wav_channels(path)
    assert [r.channel for r in recs] == [1, 2, 3] and {r.channels for r in recs} == {3}
    for i, rec in enumerate(recs):
        assert rec.fs == 4800.0 and rec.samples.size == 4000
        assert np.max(np.abs(rec.samples - x[:, i])) <= 2.0 ** -min(bits - 2, 23)
    first = read_wav(path)
    assert first.channel == 1 and channel_label(first) == "channel 1 of 3"
    assert np.array_equal(read_wav(path, channel=3).samples, recs[2].samples)
    with pytest.raises(WavError, match=r"no channel 4 \(the file has channels 1-3\)"):
        read_wav(path, channel=4)


def test_stereo_is_left_and_right_and_mono_has_no_label(tmp_path):
    write_wav(tmp_path / "s.wav", np.tile([0.1, -0.2], (100, 1)), 8000)
    right = read_wav(tmp_path / "s.wav", channel=2)
    assert channel_label(right) == "right (channel 2 of 2)"
    assert np.allclose(right.samples, -0.2, atol=1e-4)
    write_wav(tmp_path / "m.wav", np.zeros(100), 8000)
    assert channel_label(read_wav(tmp_path / "m.wav")) == ""


def test_nan_in_one_channel_names_it(tmp_path):
    x = np.zeros((64, 2), dtype=np.float32)
    x[10, 1] = np.inf
    write_wav(tmp_path / "f.wav", x, 8000, bits=32, encoding="float")
    with pytest.raises(WavError, match="NaN or infinity in right"):
        read_wav(tmp_path / "f.wav", channel=2)
    with pytest.raises(WavError, match="NaN or infinity in right"):
        read_wav_channels(tmp_path / "f.wav")
    # the channel read is judged, not the others: a dead right input does not spoil the left
    assert np.all(read_wav(tmp_path / "f.wav").samples == 0.0)


def test_every_channel_decodes_alone_as_the_interleaved_whole(tmp_path):
    """Each channel read alone equals the same column of the whole file, in every format."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-0.9, 0.9, size=(500, 3))
    for bits, encoding in [(8, "pcm"), (16, "pcm"), (24, "pcm"), (32, "pcm"), (32, "float")]:
        path = tmp_path / f"{bits}{encoding}.wav"
        write_wav(path, x, 8000, bits=bits, encoding=encoding)
        tolerance = 2.0 / (1 << (bits - 1)) if encoding == "pcm" else 1e-6
        for channel in (1, 2, 3):
            got = read_wav(path, channel=channel).samples
            assert np.allclose(got, x[:, channel - 1], atol=tolerance), (bits, encoding, channel)


@pytest.mark.parametrize(
    ("bits", "encoding"), [(8, "pcm"), (16, "pcm"), (24, "pcm"), (32, "float")]
)
def test_clipped_share_counts_samples_at_full_scale(tmp_path, bits, encoding):
    x = np.sin(np.linspace(0, 200, 10_000)) * 0.5
    x += np.random.default_rng(2).normal(0, 0.05, x.size)
    write_wav(tmp_path / "ok.wav", x, 8000, bits=bits, encoding=encoding)
    assert read_wav(tmp_path / "ok.wav").clipped_share == 0.0
    hot = np.clip(x * 4.0, -1.0, 1.0)  # a gain 12 dB too high: the peaks flattened
    write_wav(tmp_path / "hot.wav", hot, 8000, bits=bits, encoding=encoding)
    expected = np.mean(np.abs(hot) >= 1.0)
    # float counts flat tops only (two or more neighbours at the peak): a few single samples less
    tol = 0.03 if encoding == "float" else 0.01
    assert read_wav(tmp_path / "hot.wav").clipped_share == pytest.approx(expected, abs=tol)
    assert expected > 0.5


def test_a_float_file_above_full_scale_is_not_clipped_but_a_flat_top_is(tmp_path):
    x = np.random.default_rng(4).normal(0, 30.0, 20_000)  # float: +30 dB over full scale
    write_wav(tmp_path / "loud.wav", x, 8000, bits=32, encoding="float")
    assert read_wav(tmp_path / "loud.wav").clipped_share == 0.0
    write_wav(tmp_path / "flat.wav", np.clip(x, -40.0, 40.0), 8000, bits=32, encoding="float")
    share = read_wav(tmp_path / "flat.wav").clipped_share
    assert share == pytest.approx(np.mean(np.abs(x) >= 40.0) / 2, rel=0.5) and share > 0.01


def test_wave_format_extensible_multi_channel(tmp_path):
    """Multi-channel recorders write WAVE_FORMAT_EXTENSIBLE (the PCM sub-format GUID)."""
    frames = np.array([[1000, -2000], [3000, -4000], [5000, -6000]], dtype="<i2")
    body = struct.pack("<HHIIHH", 0xFFFE, 2, 4800, 4800 * 4, 4, 16)
    body += struct.pack("<HHI", 22, 16, 0x3) + struct.pack("<H", 1) + b"\0" * 14
    path = tmp_path / "ext.wav"
    path.write_bytes(_riff(_chunk(b"fmt ", body), _chunk(b"data", frames.tobytes())))
    left, right = read_wav_channels(path)
    assert np.allclose(left.samples * 32768, [1000, 3000, 5000])
    assert np.allclose(right.samples * 32768, [-2000, -4000, -6000])
    assert right.fs == 4800.0 and right.channels == 2
