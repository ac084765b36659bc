"""A simulated noise logger: what it hears, and the recording protocol it serves.

What it hears (``render_recording``): the site's ambient, passing traffic and draw-off in
the day, a pump's hum if one is near, and every scenario leak active at the start, each
carried to the logger along the shortest path through the pipe network, segment by segment
with that segment's material, size and length (``dsp.synth.propagate``: frequency-dependent
loss and the delay length / wave speed).

Why the leak source is built here rather than with ``dsp.synth.leak_source``: two loggers
must hear *the same* leak with the right relative delay, even when the gateway starts them
one after the other. So the source is a function of absolute sim time: white noise drawn in
fixed one-second chunks seeded by (site seed, leak, chunk index), shaped into the leak band
of the leak's pipe material (the same skirts as ``dsp.synth``). Any logger, whenever it
records, crops the same underlying signal; a broadcast start gives every logger on the bus
the same start instant, so their recordings differ by exactly the path-delay difference.

The protocol (docs/architecture.md, addresses from the profile's ``recording`` block):
write 1 to ``control`` starts ``duration_s`` of recording; ``status`` goes 1 (recording) and,
after that much sim time, 2 (ready) with the sample count, a fixed scale (physical units per
count: the logger's gain does not change between recordings, so levels compare), the CRC-32
of the samples as big-endian int16 bytes, and block 0 mapped into the window; writing N to
``block_index`` maps samples N*block_size onwards (the last block zero-padded).
"""

from __future__ import annotations

import functools
import heapq
import math
import struct
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Executor, Future
from typing import Any

import numpy as np

from drivers.codec import Value
from dsp import synth
from dsp.pipes import get_material
from sitemodel import NoiseLoggerParams, Site, SiteDevice

from .devices import DeviceModel
from .scenarios import LeakScenario

__all__ = [
    "FULL_SCALE_ABOVE_FLOOR_DB",
    "NoiseLoggerModel",
    "Quantised",
    "leak_path",
    "quantise",
    "render_recording",
    "summarise",
]

CHUNK = 4096  # samples per seeded chunk of the leak source (1 s at 4096 Hz)
PAD = 512  # samples of guard on both sides of a window against circular filtering
MAX_PATH_DELAY_S = 2.0  # a leak further away in time than this is not rendered (inaudible)
FULL_SCALE_ABOVE_FLOOR_DB = 40.0  # ADC full scale relative to the site's ambient RMS
TRAFFIC_ABOVE_FLOOR_DB = 12.0
DRAW_OFF_ABOVE_FLOOR_DB = 6.0
PUMP_ABOVE_FLOOR_DB = 3.0
AMBIENT_SLOPE = 1.0  # pink: the usual shape of a pipe network's background
NIGHT_HOURS = (0.0, 5.0)  # little traffic and draw-off: what the night window relies on
SUMMARY_TAKE_S = 2.0  # what the logger listens to for its summary registers
SUMMARY_TAKES = 1_000_000  # seeds summary takes apart from the gateway's recordings
SAMPLE_RATE_HZ = 4096  # fixed on this kind of logger (rec_sample_rate is read-only)

STATUS_IDLE, STATUS_RECORDING, STATUS_READY, STATUS_ERROR = 0, 1, 2, 3

Segment = tuple[str, float]  # (pipe id, metres along it)


# --- where sound travels -----------------------------------------------------------------------


def _graph(site: Site) -> dict[str, list[tuple[str, str, float]]]:
    adj: dict[str, list[tuple[str, str, float]]] = {n.id: [] for n in site.nodes}
    for p in site.pipes:
        adj[p.from_node].append((p.to_node, p.id, p.length_m))
        adj[p.to_node].append((p.from_node, p.id, p.length_m))
    return adj


def _dijkstra(adj, start: str) -> tuple[dict[str, float], dict[str, tuple[str, str]]]:
    dist = {start: 0.0}
    prev: dict[str, tuple[str, str]] = {}
    heap = [(0.0, start)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist.get(u, math.inf):
            continue
        for v, pipe, length in adj[u]:
            nd = d + length
            if nd < dist.get(v, math.inf):
                dist[v], prev[v] = nd, (u, pipe)
                heapq.heappush(heap, (nd, v))
    return dist, prev


def leak_path(
    site: Site, pipe_a: str, offset_a: float, pipe_b: str, offset_b: float
) -> list[Segment]:
    """Shortest route along the pipes between two placements, as (pipe, metres) segments.

    Returns ``[]`` when the two are not connected. Zero-length pieces are left out.
    """
    a, b = site.pipe(pipe_a), site.pipe(pipe_b)
    best: tuple[float, list[Segment]] | None = None
    if pipe_a == pipe_b:
        best = (abs(offset_a - offset_b), [(pipe_a, abs(offset_a - offset_b))])
    adj = _graph(site)
    for end_a, along_a in ((a.from_node, offset_a), (a.to_node, a.length_m - offset_a)):
        dist, prev = _dijkstra(adj, end_a)
        for end_b, along_b in ((b.from_node, offset_b), (b.to_node, b.length_m - offset_b)):
            if end_b not in dist:
                continue
            total = along_a + dist[end_b] + along_b
            if best is not None and total >= best[0]:
                continue
            middle: list[Segment] = []
            node = end_b
            while node != end_a:
                parent, pipe = prev[node]
                middle.append((pipe, site.pipe(pipe).length_m))
                node = parent
            best = (total, [(pipe_a, along_a), *reversed(middle), (pipe_b, along_b)])
    if best is None:
        return []
    return [(p, d) for p, d in best[1] if d > 0]


def path_delay_s(site: Site, segments: list[Segment]) -> float:
    return sum(d / site.pipe(p).wave_speed_m_s for p, d in segments)


# --- the leak as a function of absolute time -------------------------------------------------


def _white(seed: int, leak_index: int, k0: int, n: int) -> np.ndarray:
    """Unit white noise for absolute samples k0 .. k0+n-1 (the same wherever it is cut)."""
    first, last = k0 // CHUNK, (k0 + n - 1) // CHUNK
    chunks = [
        np.random.default_rng([seed, leak_index, c + 2**40]).standard_normal(CHUNK)
        for c in range(first, last + 1)
    ]
    data = np.concatenate(chunks)
    start = k0 - first * CHUNK
    return data[start : start + n]


def _leak_gain(site: Site, leak: LeakScenario, index: int, seed: int, f: np.ndarray) -> np.ndarray:
    """Amplitude response of the leak source (``index``: of the site's leaks): the material
    band with seeded corners."""
    material = get_material(site.pipe(leak.pipe).material)
    jitter = np.random.default_rng([seed, index, 7]).uniform(-0.29, 0.29, 2)
    lo, hi = material.band_hz[0] * math.exp(jitter[0]), material.band_hz[1] * math.exp(jitter[1])
    fz = np.maximum(f, 1e-9)
    return 1.0 / np.sqrt(1.0 + (lo / fz) ** 4) / np.sqrt(1.0 + (f / hi) ** 4)


def _leak_norm(site: Site, leak: LeakScenario, index: int, seed: int, fs: float) -> float:
    """RMS of the shaped unit noise, computed on a fixed grid so every window agrees."""
    n = 1 << 16
    g = _leak_gain(site, leak, index, seed, np.fft.rfftfreq(n, 1.0 / fs))
    g[0] = 0.0
    power = (g[0] ** 2 + 2.0 * np.sum(g[1:-1] ** 2) + g[-1] ** 2) / n
    return math.sqrt(power)


def leak_at(
    site: Site,
    leak: LeakScenario,
    device: SiteDevice,
    *,
    index: int,
    fs: float,
    k0: int,
    n: int,
    seed: int,
) -> np.ndarray | None:
    """Samples k0 .. k0+n-1 (absolute, at ``fs``) of ``leak`` (``index``: its place among
    the site's leaks, which seeds it) as heard at ``device``.

    None when the logger is not connected to the leak's pipe or too far away in time.
    """
    if device.pipe is None or device.offset_m is None:
        return None
    segments = leak_path(site, leak.pipe, leak.offset_m, device.pipe, device.offset_m)
    if not segments and not (leak.pipe == device.pipe and leak.offset_m == device.offset_m):
        return None
    delay = path_delay_s(site, segments)
    if delay > MAX_PATH_DELAY_S:
        return None
    margin = math.ceil(delay * fs) + PAD
    total = margin + n + PAD
    white = _white(seed, index, k0 - margin, total)
    gain = _leak_gain(site, leak, index, seed, np.fft.rfftfreq(total, 1.0 / fs))
    gain[0] = 0.0
    source = np.fft.irfft(np.fft.rfft(white) * gain, total)
    source *= 10.0 ** (leak.level_db / 20.0) / _leak_norm(site, leak, index, seed, fs)
    heard = source
    for pipe_id, metres in segments:
        pipe = site.pipe(pipe_id)
        heard = synth.propagate(
            heard,
            fs,
            material=pipe.material,
            distance_m=metres,
            diameter_mm=pipe.diameter_mm,
            wall_mm=pipe.wall_mm,
        )
    return heard[margin : margin + n].copy()


# --- one recording -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _in_band_share_db(fs: float, band: tuple[float, float], slope: float) -> float:
    """dB of an ``ambient`` spectrum's power that falls inside ``band`` (same shape as
    ``dsp.synth.ambient``: PSD ~ 1/max(f, 2 Hz)**slope), on a fixed fine grid."""
    f = np.fft.rfftfreq(1 << 16, 1.0 / fs)[1:]
    power = np.maximum(f, 2.0) ** (-slope)
    inside = (f >= band[0]) & (f <= band[1])
    return float(10.0 * np.log10(power[inside].sum() / power.sum()))


def _is_night(hour: float) -> bool:
    return NIGHT_HOURS[0] <= hour < NIGHT_HOURS[1]


def render_recording(
    site: Site,
    device: SiteDevice,
    *,
    leaks: Sequence[LeakScenario],
    t0: float,
    duration_s: float,
    fs: float,
    seed: int,
    hour_of_day: float = 3.0,
    take: int = 0,
) -> np.ndarray:
    """What ``device`` records from sim time ``t0`` for ``duration_s`` at ``fs`` (float64,
    physical units) while the site's ``leaks`` (``Scenarios.leaks``) run. The ambient's level
    *inside the leak band of the logger's pipe material* is the site's ``noise_floor_db`` (or
    the logger's ``ambient_db``), the floor the leak score is measured against; interferers
    are set relative to it.

    ``take`` numbers this logger's recordings: it seeds the ambient and the interferers, so
    two takes differ while the leak (a function of absolute time) stays one signal.
    Raises ``ValueError`` for a bad rate or duration.
    """
    n = round(fs * duration_s)
    params: NoiseLoggerParams = device.sim  # type: ignore[assignment]
    floor_db = params.ambient_db if params.ambient_db is not None else site.noise_floor_db
    dev_index = next(i for i, d in enumerate(site.devices) if d.name == device.name)
    ss = np.random.SeedSequence([seed, dev_index, take])
    s_amb, s_traffic, s_draw, s_pump, s_events = ss.spawn(5)
    events = np.random.default_rng(s_events)
    band = get_material(site.pipe(device.pipe).material).band_hz if device.pipe else (200, 1500)
    full_band_db = floor_db - _in_band_share_db(fs, band, AMBIENT_SLOPE)
    out = synth.ambient(fs, duration_s, seed=s_amb, level_db=full_band_db, slope=AMBIENT_SLOPE)
    out = out[:n]
    night = _is_night(hour_of_day)
    vehicles = int(
        events.poisson(params.traffic_per_min * duration_s / 60.0 * (0.05 if night else 1.0))
    )
    if vehicles:
        out += synth.traffic_bursts(
            fs,
            duration_s,
            seed=s_traffic,
            level_db=floor_db + TRAFFIC_ABOVE_FLOOR_DB,
            count=vehicles,
        )[:n]
    if events.random() < (0.02 if night else 0.25):
        out += synth.draw_off(
            fs, duration_s, seed=s_draw, level_db=floor_db + DRAW_OFF_ABOVE_FLOOR_DB
        )[:n]
    if params.pump_tone_hz is not None:
        out += synth.pump_tone(
            fs,
            duration_s,
            seed=s_pump,
            f0_hz=params.pump_tone_hz,
            level_db=floor_db + PUMP_ABOVE_FLOOR_DB,
        )[:n]
    k0 = round(t0 * fs)
    for index, leak in enumerate(leaks):
        if not leak.active(t0):
            continue
        heard = leak_at(site, leak, device, index=index, fs=fs, k0=k0, n=n, seed=seed)
        if heard is not None:
            out += heard
    return out


class Quantised:
    """Samples as the logger stores them: int16 counts, a float32 scale, their CRC-32."""

    def __init__(self, counts: np.ndarray, scale: float) -> None:
        self.counts = counts
        self.scale = scale
        self.crc32 = zlib.crc32(counts.astype(">i2").tobytes())

    def block(self, index: int, size: int) -> list[int]:
        """Block ``index`` as unsigned 16-bit registers, the last one zero-padded."""
        part = self.counts[index * size : (index + 1) * size]
        regs = part.astype(np.int64) & 0xFFFF
        return [int(r) for r in regs] + [0] * (size - len(part))

    def blocks(self, size: int) -> int:
        return max(1, math.ceil(len(self.counts) / size))


def full_scale(site: Site, device: SiteDevice) -> float:
    """The logger's fixed gain: physical units per count."""
    params: NoiseLoggerParams = device.sim  # type: ignore[assignment]
    floor_db = params.ambient_db if params.ambient_db is not None else site.noise_floor_db
    return float(np.float32(10.0 ** ((floor_db + FULL_SCALE_ABOVE_FLOOR_DB) / 20.0) / 32767.0))


def quantise(samples: np.ndarray, scale: float) -> Quantised:
    """The ADC: round to counts of ``scale`` and clip at full scale (as a real one clips)."""
    counts = np.clip(np.rint(samples / scale), -32768, 32767).astype(np.int16)
    return Quantised(counts, scale)


def summarise(counts: np.ndarray, fs: float) -> tuple[float, float, int]:
    """(L90 level dB re 1 count, L10 - L90 spread dB, dominant frequency Hz) of a recording:
    the quiet-window figures a logger keeps in its summary registers."""
    x = counts.astype(np.float64)
    frame = max(1, int(fs / 8))
    frames = len(x) // frame
    if frames == 0:
        return 0.0, 0.0, 0
    rms = np.sqrt(np.mean(x[: frames * frame].reshape(frames, frame) ** 2, axis=1))
    levels = 20.0 * np.log10(np.maximum(rms, 1e-9))
    l90, l10 = float(np.percentile(levels, 10)), float(np.percentile(levels, 90))
    seg = min(len(x), 4096)
    spec = np.abs(np.fft.rfft(x[:seg] * np.hanning(seg))) ** 2
    f = np.fft.rfftfreq(seg, 1.0 / fs)
    spec[f < 20.0] = 0.0
    peak = round(float(f[int(np.argmax(spec))]))
    return max(0.0, l90), max(0.0, l10 - l90), peak


# --- the device --------------------------------------------------------------------------------


class NoiseLoggerModel(DeviceModel):
    """A noise logger serving the recording protocol of its profile's ``recording`` block.

    ``instant()`` gives the sim time a start write arrives (the site simulator shares one
    instant across a broadcast); ``executor`` renders off the server loop (None: inline).
    ``seed`` seeds the leak sources (site-wide) and this logger's ambient.
    """

    def __init__(
        self,
        *args: Any,
        seed: int = 0,
        instant: Callable[[], float] | None = None,
        executor: Executor | None = None,
        **kwargs: Any,
    ) -> None:
        self.seed = seed
        self.instant = instant or (lambda: self.t)
        self.executor = executor
        self.rec_status = STATUS_IDLE
        self.rec_started = 0.0
        self.rec_until = 0.0
        self.takes = 0
        self.pending: Future | None = None
        self.result: Quantised | None = None
        self.summary = (0.0, 0.0, 0)
        self.summary_ts = 0  # epoch seconds of the summary; 0 = never (as the profile says)
        self._summary_job: Future | None = None
        self._summaries = 0
        super().__init__(*args, **kwargs)
        rec = self.profile.recording
        if rec is None:
            raise ValueError(f"profile {self.profile.name!r} has no recording block")
        self.rec = rec
        self.fs = float(SAMPLE_RATE_HZ)
        self.duration_s = rec.default_duration_s
        self.scale = full_scale(self.world.site, self.device)
        self.owned = {
            *range(rec.control, rec.block_index + 1),
            *range(rec.block, rec.block + rec.block_size),
        }
        words = self._words
        self.store.set_holding(rec.control, [0])
        self.store.set_holding(rec.duration_s, [rec.default_duration_s])
        self.store.set_holding(rec.sample_rate, [int(self.fs)])
        self.store.set_holding(rec.status, [STATUS_IDLE])
        self.store.set_holding(rec.sample_count, words(">I", 0))
        self.store.set_holding(rec.scale, words(">f", self.scale))
        self.store.set_holding(rec.crc32, words(">I", 0))
        self.store.set_holding(rec.block_index, [0])
        self.store.set_holding(rec.block, [0] * rec.block_size)
        read_only = {rec.sample_rate, rec.status, rec.sample_count, rec.sample_count + 1}
        read_only |= {rec.scale, rec.scale + 1, rec.crc32, rec.crc32 + 1}
        read_only |= set(range(rec.block, rec.block + rec.block_size))
        self.store.read_only.difference_update({rec.control, rec.duration_s, rec.block_index})
        self.store.read_only.update(read_only)

    def _words(self, fmt: str, value: float) -> list[int]:
        data = struct.pack(fmt, value)
        regs = [data[i] << 8 | data[i + 1] for i in range(0, len(data), 2)]
        return regs if self.rec.word_order == "big" else regs[::-1]

    def settings(self) -> dict[str, Value]:
        default = self.profile.recording.default_duration_s if self.profile.recording else 8
        return {"listen_start": 120, "listen_duration": 120, "rec_duration": default}

    # -- protocol -----------------------------------------------------------------------------
    def on_write(self, function: int, address: int, values: list[int] | list[bool]) -> int | None:
        if function not in (6, 16):
            return None
        rec = self.rec
        span = range(address, address + len(values))
        written = dict(zip(span, values, strict=True))
        if rec.duration_s in written:
            d = int(written[rec.duration_s])
            if not 1 <= d <= rec.max_duration_s:
                self.store.set_holding(rec.duration_s, [self.duration_s])  # keep the old one
                return 3  # illegal data value
            self.duration_s = d
        if rec.control in written:
            value = int(written[rec.control])
            self.store.set_holding(rec.control, [0])  # a command register, not a state
            if value == 1:
                self.start(self.instant())
            elif value == 0:
                self.abort()
            else:
                return 3
        if rec.block_index in written:
            return self.map_block(int(written[rec.block_index]))
        return None

    def start(self, t0: float) -> None:
        """Begin a recording at sim time ``t0`` (a running one is replaced)."""
        duration = self.duration_s
        self.rec_status = STATUS_RECORDING
        self.rec_started, self.rec_until = t0, t0 + duration
        self.result = None
        self.takes += 1
        self._set_status(STATUS_RECORDING)
        self.pending = self._render(
            t0=t0,
            duration_s=float(duration),
            fs=self.fs,
            seed=self.seed,
            hour_of_day=self.world.hour_of_day(t0),
            take=self.takes,
        )

    def abort(self) -> None:
        self.pending = None
        self.rec_status = STATUS_IDLE
        self._set_status(STATUS_IDLE)

    def map_block(self, index: int) -> int | None:
        if self.rec_status != STATUS_READY or self.result is None:
            return 3
        if not 0 <= index < self.result.blocks(self.rec.block_size):
            return 3
        self.store.set_holding(self.rec.block, self.result.block(index, self.rec.block_size))
        return None

    def _set_status(self, status: int) -> None:
        self.store.holding[self.rec.status] = status

    # -- the logger's own nightly listening (summary registers) ---------------------------
    def _render(self, **kwargs: Any) -> Future:
        site, device, leaks = self.world.site, self.device, self.world.scenarios.leaks
        if self.executor is not None:
            return self.executor.submit(render_recording, site, device, leaks=leaks, **kwargs)
        future: Future = Future()
        try:
            future.set_result(render_recording(site, device, leaks=leaks, **kwargs))
        except ValueError as exc:
            future.set_exception(exc)
        return future

    def _listen_end_h(self) -> float:
        return (float(self.setting("listen_start")) + float(self.setting("listen_duration"))) / 60

    def _listen(self, t: float, dt: float) -> None:
        """At start-up (last night's figures) and whenever the listening window closes, the
        logger summarises a quiet-window take into its summary registers."""
        job = self._summary_job
        if job is not None and job.done():
            self._summary_job = None  # a take cancelled by a stop is simply taken again
            if not job.cancelled() and job.exception() is None:
                self.summary = summarise(quantise(job.result(), self.scale).counts, self.fs)
                self.summary_ts = int(self.world.epoch_start + t)
            return
        if job is not None:
            return
        now_h = self.world.hour_of_day(t)
        end_h = self._listen_end_h() % 24.0
        crossed = dt > 0 and (now_h - end_h) % 24.0 < min(dt / 3600.0, 24.0)
        if self.summary_ts == 0 or crossed:
            self._summaries += 1
            self._summary_job = self._render(
                t0=t,
                duration_s=SUMMARY_TAKE_S,
                fs=self.fs,
                seed=self.seed,
                hour_of_day=(end_h - 0.5) % 24.0,  # inside the quiet window
                take=SUMMARY_TAKES + self._summaries,
            )

    def update(self, t: float, dt: float) -> None:
        super().update(t, dt)
        self._listen(t, dt)
        if self.rec_status != STATUS_RECORDING or t < self.rec_until or self.pending is None:
            return
        if not self.pending.done():
            return  # the DSP is still rendering: the logger is "still recording"
        future, self.pending = self.pending, None
        try:
            samples = future.result()
        except (ValueError, CancelledError):  # bad parameters, or the simulator was stopped
            self.rec_status = STATUS_ERROR
            self._set_status(STATUS_ERROR)
            return
        self.result = quantise(samples, self.scale)
        self.summary = summarise(self.result.counts, self.fs)
        self.summary_ts = int(self.world.epoch_start + t)
        self.store.set_holding(self.rec.sample_count, self._words(">I", len(self.result.counts)))
        self.store.set_holding(self.rec.crc32, self._words(">I", self.result.crc32))
        self.store.set_holding(self.rec.block_index, [0])
        self.store.set_holding(self.rec.block, self.result.block(0, self.rec.block_size))
        self.rec_status = STATUS_READY
        self._set_status(STATUS_READY)

    def values(self) -> dict[str, Value]:
        level, spread, peak = self.summary
        return {
            "battery_pct": 87,
            "leak_level_db": round(level, 2),
            "leak_spread_db": round(spread, 2),
            "leak_peak_hz": min(peak, 2048),
            "temperature_c": 12.5,
            "summary_ts": self.summary_ts,
            "battery_v": 3.58,
        }

    def status_bits(self) -> int:
        return (self.rec_status == STATUS_RECORDING) << 0 | (self.rec_status == STATUS_READY) << 1
