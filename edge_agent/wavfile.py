"""Reading and writing WAV recordings: 8/16/24/32-bit PCM and 32/64-bit IEEE float.

The stdlib ``wave`` module reads PCM only, so the RIFF chunks are parsed here, carefully: a
file from the field may be cut short by a failed upload, empty, or not a WAV at all. Every
problem is a ``WavError`` (a ``UsageError``: exit 2) whose one-line message names the file and
what is wrong with it.

Channels: a stereo or multi-channel file (a recorder with two inputs, a multi-sensor field
recorder) is read one channel at a time: ``read_wav`` returns one channel (the first unless
``channel`` says otherwise, 1-based as a user counts them) and says which of how many it is;
``read_wav_channels`` returns every channel.

Clipping: ``clipped_share`` is the share of samples at the format's rails. PCM: the lowest or
highest code. Float has no rails (a float file may exceed 1.0 without harm), so there it is the
share of samples in flat tops: two or more neighbours at the recording's largest magnitude,
which noise, even at float32 precision, does not make. A clipped recording's spectrum carries
the clipping's distortion: the caller says so.

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

__all__ = [
    "CLIPPED_SHARE_NOTED",
    "USABLE_MAGNITUDE",
    "WavError",
    "WavRecording",
    "channel_label",
    "read_wav",
    "read_wav_channels",
    "write_wav",
]

_PCM = 1
_FLOAT = 3
_EXTENSIBLE = 0xFFFE
# Samples at full scale above this share (1 in 10 000) are worth saying: the spectrum carries
# the clipping's distortion (harmonics, a raised floor), which gain-free features assume absent.
CLIPPED_SHARE_NOTED = 1e-4
# Peak magnitudes whose powers (squares summed over a frame) stay inside float64's range: a
# float file can hold any value, and one at 1e200 or 1e-300 would give inf or 0 dB levels.
USABLE_MAGNITUDE = (1e-120, 1e120)
_MAX_BYTES = 1 << 31  # 2 GiB: far beyond any logger recording, refuse instead of swapping


class WavError(UsageError):
    """A WAV file that cannot be used; the message starts with the file name."""


@dataclass(frozen=True, slots=True)
class WavRecording:
    """One channel of a recording: ``samples`` float64 (see the module docstring for the
    scale); ``channel`` (1-based) of the file's ``channels``; ``clipped_share`` the share of
    this channel's samples at full scale."""

    path: str
    fs: float
    samples: np.ndarray
    bits: int
    encoding: str  # "pcm" | "float"
    channel: int = 1
    channels: int = 1
    clipped_share: float = 0.0

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.fs

    def unusable_error(self, where: str, what: str) -> WavError | None:
        """A ``WavError`` for samples nothing can be made of, or None: digital silence (every
        sample equal, a constant offset too) or float samples beyond ``USABLE_MAGNITUDE``
        either way (their powers overflow or underflow float64). ``where`` names the file
        (and channel), ``what`` the purpose ("judge", "correlate")."""
        x = self.samples
        if x.size == 0 or x.min() == x.max():
            value = float(x[0]) if x.size else 0.0
            return WavError(
                f"{where}: digital silence (every sample is {value:g}): nothing to {what} "
                "(a sensor or cable fault?)"
            )
        peak = float(np.max(np.abs(x)))
        lo, hi = USABLE_MAGNITUDE
        if not lo <= peak <= hi:
            return WavError(
                f"{where}: samples peak at {peak:.3g}, outside {lo:g}..{hi:g}: their powers "
                f"over- or underflow, nothing to {what} (rescale the file)"
            )
        return None


@dataclass(frozen=True, slots=True)
class _Format:
    """A fmt chunk that passed the checks (one frame is ``channels * bits // 8`` bytes)."""

    encoding: str
    fs: int
    bits: int
    channels: int


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
    if fs == 0:
        raise WavError(f"{path}: sample rate is 0 Hz")
    if block_align != bits // 8 * channels:
        raise WavError(
            f"{path}: block align {block_align} does not match {bits}-bit x {channels} channel(s)"
        )
    return _Format(encoding, fs, bits, channels)


def _decode(fmt: _Format, data: bytes) -> tuple[np.ndarray, float]:
    """(values as float64, interleaved, full-scale divisor)."""
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


def _channel_name(channel: int, channels: int) -> str:
    if channels == 2:
        return ("left", "right")[channel - 1] + " (channel " + str(channel) + " of 2)"
    return f"channel {channel} of {channels}"


def channel_label(rec: WavRecording) -> str:
    """How a user names the channel read: "" for mono, else e.g. "left (channel 1 of 2)"."""
    return "" if rec.channels == 1 else _channel_name(rec.channel, rec.channels)


def _read_blob(name: str, path: str | Path) -> bytes:
    try:
        p = Path(path)
        size = p.stat().st_size
        if size > _MAX_BYTES:
            raise WavError(f"{name}: {size} bytes is too large for a recording")
        return p.read_bytes()
    except FileNotFoundError as exc:
        raise WavError(f"{name}: no such file") from exc
    except IsADirectoryError as exc:
        raise WavError(f"{name}: is a directory, not a WAV file") from exc
    except OSError as exc:
        raise WavError(f"{name}: cannot read ({exc.strerror or exc})") from exc


def _chunks(name: str, blob: bytes) -> tuple[_Format, bytes]:
    """The fmt chunk (checked) and the data chunk's bytes (a whole number of frames)."""
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
    frame = fmt.bits // 8 * fmt.channels
    if len(data) % frame:
        what = "samples" if fmt.channels == 1 else f"{fmt.channels}-channel frames"
        raise WavError(
            f"{name}: truncated data: {len(data)} bytes is not a whole number of "
            f"{fmt.bits}-bit {what}"
        )
    return fmt, data


def _clipped_share(fmt: _Format, values: np.ndarray) -> float:
    """Share of ``values`` (one channel, raw counts or float) at the format's rails."""
    if fmt.encoding == "float":
        mag = np.abs(values)
        at_peak = mag == mag.max()
        pair = at_peak[1:] & at_peak[:-1]  # two neighbours both at the peak
        in_flat_top = np.zeros(values.size, dtype=bool)
        in_flat_top[1:] |= pair
        in_flat_top[:-1] |= pair
        at_rail = np.count_nonzero(in_flat_top)
    elif fmt.bits == 8:
        at_rail = np.count_nonzero((values <= -128.0) | (values >= 127.0))
    else:
        full = float(1 << (fmt.bits - 1))
        at_rail = np.count_nonzero((values <= -full) | (values >= full - 1.0))
    return at_rail / max(values.size, 1)


def _one_channel(
    name: str, fmt: _Format, data: bytes, index: int, units_per_count: float | None
) -> WavRecording:
    """Channel ``index`` (0-based) of the data chunk, decoded alone: a stereo 60 s file at
    44.1 kHz costs one channel's float64 array, not every channel's."""
    if fmt.channels > 1:
        width = fmt.bits // 8
        frames = np.frombuffer(data, dtype=np.uint8).reshape(-1, fmt.channels * width)
        data = frames[:, index * width : (index + 1) * width].tobytes()
    raw, full_scale = _decode(fmt, data)
    if not np.all(np.isfinite(raw)):
        where = "" if fmt.channels == 1 else f" in {_channel_name(index + 1, fmt.channels)}"
        raise WavError(f"{name}: float samples contain NaN or infinity{where}")
    if units_per_count is not None:
        samples = raw * float(units_per_count)
    else:
        samples = raw / full_scale if full_scale != 1.0 else raw
    return WavRecording(
        path=name,
        fs=float(fmt.fs),
        samples=samples,
        bits=fmt.bits,
        encoding=fmt.encoding,
        channel=index + 1,
        channels=fmt.channels,
        clipped_share=float(_clipped_share(fmt, raw)),
    )


def _open(name: str, path: str | Path, units_per_count: float | None) -> tuple[_Format, bytes]:
    if units_per_count is not None and not (units_per_count > 0 and math.isfinite(units_per_count)):
        raise WavError(f"{name}: scale must be a positive number, got {units_per_count}")
    return _chunks(name, _read_blob(name, path))


def read_wav_channels(
    path: str | Path, *, units_per_count: float | None = None
) -> list[WavRecording]:
    """Every channel of a PCM or float WAV file, in order (one for a mono file).

    Raises ``WavError`` (one line naming the file) when the file is missing or unreadable, not
    RIFF/WAVE, has a truncated chunk, has an unsupported encoding, holds no samples, or holds
    non-finite float samples (naming the channel).
    """
    name = str(path)
    fmt, data = _open(name, path, units_per_count)
    return [_one_channel(name, fmt, data, i, units_per_count) for i in range(fmt.channels)]


def read_wav(
    path: str | Path, *, units_per_count: float | None = None, channel: int | None = None
) -> WavRecording:
    """One channel of a PCM or float WAV file: ``channel`` (1-based), by default the first;
    the other channels are not decoded (nor judged: NaN in another channel is not this one's).

    Raises ``WavError`` like ``read_wav_channels``, and for a channel the file does not have.
    """
    name = str(path)
    fmt, data = _open(name, path, units_per_count)
    index = 1 if channel is None else channel
    if not 1 <= index <= fmt.channels:
        have = "1 channel" if fmt.channels == 1 else f"channels 1-{fmt.channels}"
        raise WavError(f"{path}: no channel {index} (the file has {have})")
    return _one_channel(name, fmt, data, index - 1, units_per_count)


def write_wav(
    path: str | Path, samples: np.ndarray, fs: int, *, bits: int = 16, encoding: str = "pcm"
) -> None:
    """Write ``samples`` (full scale = 1.0; PCM is clipped to full scale and rounded): 1-D
    for mono, 2-D ``(frames, channels)`` for several channels.

    For simulators and tests. Raises ``ValueError`` for an unsupported bits/encoding pair or
    a non-integer or non-positive rate.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim not in (1, 2) or (x.ndim == 2 and x.shape[1] < 1):
        raise ValueError(f"samples must be 1-D or (frames, channels), got shape {x.shape}")
    channels = 1 if x.ndim == 1 else x.shape[1]
    x = x.reshape(-1)  # interleaved
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
    block = bits // 8 * channels
    fmt = struct.pack("<HHIIHH", tag, channels, int(fs), int(fs) * block, block, bits)
    pad = b"\0" if len(payload) % 2 else b""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(payload)) + payload + pad
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
