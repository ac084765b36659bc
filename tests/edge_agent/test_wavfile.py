"""edge_agent.wavfile: every supported encoding round-trips; every broken file is one clear
WavError line naming the file and the problem."""

import struct

import numpy as np
import pytest

from edge_agent.errors import UsageError
from edge_agent.wavfile import WavError, read_wav, write_wav


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
        (_riff(_fmt(channels=2, bits=16), _chunk(b"data", b"\0" * 8)), "stereo recording"),
        (_riff(_fmt(channels=6), _chunk(b"data", b"\0" * 24)), "6-channel"),
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
