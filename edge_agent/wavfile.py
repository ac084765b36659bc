"""Reading and writing mono WAV recordings: 8/16/24/32-bit PCM and 32/64-bit IEEE float.

The stdlib ``wave`` module reads PCM only, so the RIFF chunks are parsed here, carefully: a
file from the field may be cut short by a failed upload, be stereo, empty, or not a WAV at all.
Every problem is a ``WavError`` (a ``UsageError``: exit 2) whose one-line message names the file
and what is wrong with it.

Scaling: samples come back as float64 with full scale = 1.0 (PCM divided by 2**(bits-1), 8-bit
re-centred on 128; float as stored), or, when ``units_per_count`` is given, in physical units:
integer counts times ``units_per_count`` (float samples are multiplied by it).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_agent.errors import UsageError

__all__ = ["WavError", "WavRecording", "read_wav", "write_wav"]

_PCM = 1
_FLOAT = 3
_EXTENSIBLE = 0xFFFE
_MAX_BYTES = 1 << 31  # 2 GiB: far beyond any logger recording, refuse instead of swapping


class WavError(UsageError):
    """A WAV file that cannot be used; the message starts with the file name."""


@dataclass(frozen=True, slots=True)
class WavRecording:
    """One mono recording: ``samples`` float64 (see the module docstring for the scale)."""

    path: str
    fs: float
    samples: np.ndarray
    bits: int
    encoding: str  # "pcm" | "float"

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.fs


@dataclass(frozen=True, slots=True)
class _Format:
    """A mono fmt chunk that passed the checks (so one sample is ``bits // 8`` bytes)."""

    encoding: str
    fs: int
    bits: int


def _parse_fmt(path: str, body: bytes) -> _Format:
    if len(body) < 16:
        raise WavError(f"{path}: fmt chunk is {len(body)} bytes, needs at least 16")
    tag, channels, fs, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _EXTENSIBLE:
        if len(body) < 26:
            raise WavError(f"{path}: WAVE_FORMAT_EXTENSIBLE fmt chunk is too short")
        (tag,) = struct.unpack("<H", body[24:26])  # first two bytes of the sub-format GUID
    if tag == _PCM:
        encoding = "pcm"
        if bits not in (8, 16, 24, 32):
            raise WavError(f"{path}: {bits}-bit PCM is not supported (8, 16, 24 or 32)")
    elif tag == _FLOAT:
        encoding = "float"
        if bits not in (32, 64):
            raise WavError(f"{path}: {bits}-bit float is not supported (32 or 64)")
    else:
        raise WavError(f"{path}: unsupported WAV encoding 0x{tag:04x} (PCM or IEEE float only)")
    if channels == 0:
        raise WavError(f"{path}: fmt chunk says 0 channels")
    if channels != 1:
        kind = "stereo" if channels == 2 else f"{channels}-channel"
        raise WavError(f"{path}: {kind} recording, expected mono (one channel)")
    if fs == 0:
        raise WavError(f"{path}: sample rate is 0 Hz")
    if block_align != bits // 8:
        raise WavError(f"{path}: block align {block_align} does not match {bits}-bit mono")
    return _Format(encoding, fs, bits)


def _decode(fmt: _Format, data: bytes) -> tuple[np.ndarray, float]:
    """(values as float64, full-scale divisor)."""
    if fmt.encoding == "float":
        dtype = "<f4" if fmt.bits == 32 else "<f8"
        return np.frombuffer(data, dtype=dtype).astype(np.float64), 1.0
    if fmt.bits == 8:
        return np.frombuffer(data, dtype=np.uint8).astype(np.float64) - 128.0, 128.0
    if fmt.bits == 24:
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        val = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        val = np.where(val >= 1 << 23, val - (1 << 24), val)
        return val.astype(np.float64), float(1 << 23)
    dtype = "<i2" if fmt.bits == 16 else "<i4"
    return np.frombuffer(data, dtype=dtype).astype(np.float64), float(1 << (fmt.bits - 1))


def read_wav(path: str | Path, *, units_per_count: float | None = None) -> WavRecording:
    """Read a mono PCM or float WAV file.

    Raises ``WavError`` (one line naming the file) when the file is missing or unreadable, not
    RIFF/WAVE, has a truncated chunk, is not mono, has an unsupported encoding, holds no
    samples, or holds non-finite float samples.
    """
    name = str(path)
    if units_per_count is not None and not (units_per_count > 0 and math.isfinite(units_per_count)):
        raise WavError(f"{name}: scale must be a positive number, got {units_per_count}")
    try:
        p = Path(path)
        size = p.stat().st_size
        if size > _MAX_BYTES:
            raise WavError(f"{name}: {size} bytes is too large for a recording")
        blob = p.read_bytes()
    except FileNotFoundError as exc:
        raise WavError(f"{name}: no such file") from exc
    except IsADirectoryError as exc:
        raise WavError(f"{name}: is a directory, not a WAV file") from exc
    except OSError as exc:
        raise WavError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    if len(blob) == 0:
        raise WavError(f"{name}: empty file (0 bytes)")
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise WavError(f"{name}: not a WAV file (no RIFF/WAVE header)")
    fmt: _Format | None = None
    data: bytes | None = None
    pos = 12
    while pos < len(blob):
        if pos + 8 > len(blob):
            raise WavError(f"{name}: truncated chunk header at byte {pos}")
        chunk_id = blob[pos : pos + 4]
        (chunk_size,) = struct.unpack("<I", blob[pos + 4 : pos + 8])
        body_start = pos + 8
        body_end = body_start + chunk_size
        label = chunk_id.decode("ascii", errors="replace").strip()
        if body_end > len(blob):
            raise WavError(
                f"{name}: truncated {label!r} chunk: header says {chunk_size} bytes, "
                f"{len(blob) - body_start} present"
            )
        body = blob[body_start:body_end]
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(name, body)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError(f"{name}: data chunk comes before the fmt chunk")
            data = body
            break  # anything after the samples (LIST, id3) is of no interest
        pos = body_end + (chunk_size & 1)  # chunks are padded to even length
    if fmt is None:
        raise WavError(f"{name}: no fmt chunk")
    if data is None:
        raise WavError(f"{name}: no data chunk")
    if len(data) == 0:
        raise WavError(f"{name}: no samples (empty data chunk)")
    if len(data) % (fmt.bits // 8):
        raise WavError(
            f"{name}: truncated data: {len(data)} bytes is not a whole number of "
            f"{fmt.bits}-bit samples"
        )
    values, full_scale = _decode(fmt, data)
    if not np.all(np.isfinite(values)):
        raise WavError(f"{name}: float samples contain NaN or infinity")
    if units_per_count is not None:
        samples = values * float(units_per_count)
    else:
        samples = values / full_scale if full_scale != 1.0 else values
    return WavRecording(
        path=name, fs=float(fmt.fs), samples=samples, bits=fmt.bits, encoding=fmt.encoding
    )


def write_wav(
    path: str | Path, samples: np.ndarray, fs: int, *, bits: int = 16, encoding: str = "pcm"
) -> None:
    """Write mono ``samples`` (full scale = 1.0; PCM is clipped to full scale and rounded).

    For simulators and tests. Raises ``ValueError`` for an unsupported bits/encoding pair or
    a non-integer or non-positive rate.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"samples must be 1-D, got shape {x.shape}")
    if int(fs) != fs or fs <= 0:
        raise ValueError(f"WAV sample rate must be a positive integer, got {fs}")
    if encoding == "float" and bits in (32, 64):
        payload = x.astype("<f4" if bits == 32 else "<f8").tobytes()
        tag = _FLOAT
    elif encoding == "pcm" and bits in (8, 16, 24, 32):
        full = float(1 << (bits - 1))
        counts = np.clip(np.round(x * full), -full, full - 1).astype(np.int64)
        if bits == 8:
            payload = (counts + 128).astype(np.uint8).tobytes()
        elif bits == 24:
            u = (counts & 0xFFFFFF).astype(np.uint32)
            triplets = np.stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF], axis=1)
            payload = triplets.astype(np.uint8).tobytes()
        else:
            payload = counts.astype("<i2" if bits == 16 else "<i4").tobytes()
        tag = _PCM
    else:
        raise ValueError(f"unsupported WAV format: {bits}-bit {encoding}")
    block = bits // 8
    fmt = struct.pack("<HHIIHH", tag, 1, int(fs), int(fs) * block, block, bits)
    pad = b"\0" if len(payload) % 2 else b""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(payload)) + payload + pad
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
