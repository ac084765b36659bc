"""Recordings the leak detector and locator were not built from: the benchmark corpora.

Written apart from ``dsp.synth`` on purpose (it imports nothing from ``dsp``): the detector
is tuned on ``dsp.synth`` signals, so judging it on them would only show that it learnt their
habits. Every signal model here is its own: other spectra, other envelopes, other pipe and
sensor responses, and things ``dsp.synth`` never makes.

What one recording holds (each drawn per file from a seeded generator):
- **ambient**: Gaussian noise, PSD ~ 1/max(f, knee)**tilt (tilt 0..2.5, knee 3-40 Hz) plus a
  white sensor floor 10-45 dB under it at 100 Hz, with a smooth random ripple of +-1.5 dB over
  frequency; in 40 % of files its level wanders slowly (log-normal envelope, 1-4 dB, 0.3-3 s);
- **leak** (half the files): stationary noise with a log-normal hump of 0.7-1.8 octaves
  (metal centred 250-1000 Hz, plastic 20-120 Hz), a random ripple, and a pipe loss of
  a*(f/f_ref)**n dB per metre over 5-150 m (metal) or 2-40 m (plastic); scaled to an in-band
  SNR of -6..+20 dB against the stationary ambient (band: metal 200-1500 Hz, plastic 20-300 Hz);
- **interferers**, each with its own probability: passing vehicles (low-pass rumble with a
  rise-and-fall envelope, Poisson arrivals), draw-off (hiss switched on for 10-60 % of the
  file), pumps (rotation 12.5-50 Hz with up to 20 harmonics, a stronger blade-pass line and a
  slow speed drift), mains hum (50/60 Hz and harmonics), low-frequency turbulent flow noise
  (strongly modulated: the hydrophone case), clicks (decaying resonant transients, never
  clipping);
- **sensor**: a high-pass at 1-30 Hz (order 1-2) and an anti-alias low-pass at 0.80-0.95 of
  Nyquist (order 8) applied to everything heard; then a DC offset (30 % of files), a random
  gain of +-30 dB, and in 30 % of files 16-bit quantisation with the RMS at -65..-35 dBFS.
- rates 4000-44100 Hz, lengths 4-60 s (log-uniform); a "hydrophone" profile (15 % of files):
  8 kHz, plastic pipe, flow noise always present.

Location pairs (``location_cases``): one leak heard by two sensors D metres apart (metal
60-300 m at 1100-1400 m/s, plastic 20-120 m at 250-480 m/s), leak at 5-95 % of the spacing,
the delay applied exactly in the frequency domain on a longer source, frequency-dependent
loss along each path, independent ambient (own tilt) at each sensor with the leak at the same
in-band SNR (-6..+20 dB) at both, and interferers: vehicles (independent at each sensor),
a pump beyond one sensor (coherent at both, delayed by the full spacing), hum (independent
phase), flow noise, clicks.

Usage: ``detection_cases(n, seed)`` / ``location_cases(n, seed)`` yield frozen cases; the
same seed gives the same corpus on every run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BANDS",
    "MATERIALS",
    "DetectionCase",
    "LocationCase",
    "detection_cases",
    "location_cases",
]

BANDS = {"metal": (200.0, 1500.0), "plastic": (20.0, 300.0)}
MATERIALS = {"metal": ("ductile_iron", "cast_iron", "steel"), "plastic": ("pvc", "pe")}
RATES = (4000.0, 4096.0, 4800.0, 8000.0, 11025.0, 16000.0, 22050.0, 44100.0)
DEFAULT_SEED = 20270117


@dataclass(frozen=True)
class DetectionCase:
    """One recording: ``is_leak`` and ``snr_db`` (in-band, None without a leak) are the truth;
    ``kinds`` names what else is in it. ``flow_db`` is the flow noise's in-band power over the
    steady ambient (None without flow): ``snr_db`` is set against the ambient alone, so a leak
    under loud flow can be "audible" and still lie under the flow."""

    index: int
    samples: np.ndarray
    fs: float
    family: str
    material: str
    is_leak: bool
    snr_db: float | None
    kinds: tuple[str, ...]
    gain_db: float
    duration_s: float
    flow_db: float | None = None

    @property
    def snr_over_flow_db(self) -> float | None:
        """The leak's in-band SNR against the ambient and the flow noise together."""
        if self.snr_db is None or self.flow_db is None:
            return self.snr_db
        return self.snr_db - 10.0 * math.log10(1.0 + 10.0 ** (self.flow_db / 10.0))


@dataclass(frozen=True)
class LocationCase:
    """Two simultaneous recordings; the leak is ``distance_m`` from A along ``spacing_m``."""

    index: int
    a: np.ndarray
    b: np.ndarray
    fs: float
    family: str
    material: str
    spacing_m: float
    wave_speed_m_s: float
    distance_m: float
    snr_db: float
    kinds: tuple[str, ...]
    duration_s: float


# --- spectra ------------------------------------------------------------------------------


def _ripple_db(rng: np.random.Generator, f: np.ndarray, depth_db: float) -> np.ndarray:
    """A smooth random curve over log-frequency (a few wiggles per decade)."""
    u = np.log2(np.maximum(f, 1.0))
    out = np.zeros_like(u)
    for _ in range(4):
        period = float(rng.uniform(0.7, 3.0))  # octaves
        out += np.sin(2 * np.pi * u / period + float(rng.uniform(0, 2 * np.pi)))
    return depth_db * out / 2.0


def _shape(rng: np.random.Generator, n: int, power: np.ndarray) -> np.ndarray:
    """Gaussian noise of ``n`` samples whose periodogram follows ``power`` (rfft bins)."""
    spec = rng.standard_normal(power.size) + 1j * rng.standard_normal(power.size)
    spec *= np.sqrt(power)
    spec[0] = 0.0
    return np.fft.irfft(spec, n)


def _ambient_power(rng: np.random.Generator, f: np.ndarray) -> np.ndarray:
    tilt = float(rng.uniform(0.0, 2.5))
    knee = float(rng.uniform(3.0, 40.0))
    floor_db = float(rng.uniform(-45.0, -10.0))
    law = (np.maximum(f, knee) / 100.0) ** (-tilt)
    return (law + 10 ** (floor_db / 10)) * 10 ** (_ripple_db(rng, f, 1.5) / 10)


def _leak_power(rng: np.random.Generator, f: np.ndarray, family: str) -> np.ndarray:
    """A leak heard some way along the pipe: a broad hump, a ripple, the pipe's loss."""
    if family == "metal":
        centre = float(np.exp(rng.uniform(np.log(250.0), np.log(1000.0))))
        distance = float(rng.uniform(5.0, 150.0))
        loss_ref, f_ref = float(rng.uniform(0.05, 0.15)), 500.0
    else:
        centre = float(np.exp(rng.uniform(np.log(20.0), np.log(120.0))))
        distance = float(rng.uniform(2.0, 40.0))
        loss_ref, f_ref = float(rng.uniform(0.3, 0.9)), 150.0
    width = float(rng.uniform(0.7, 1.8))
    u = np.log2(np.maximum(f, 0.5) / centre)
    hump_db = -10.0 * np.log10(np.e) * 0.5 * (u / width) ** 2
    loss_db = distance * loss_ref * (f / f_ref) ** float(rng.uniform(0.8, 1.4))
    return 10 ** ((hump_db - loss_db + _ripple_db(rng, f, 1.0)) / 10)


def _sensor_gain(rng: np.random.Generator, f: np.ndarray, fs: float) -> np.ndarray:
    """Amplitude response: high-pass (1-30 Hz, order 1-2) and anti-alias low-pass."""
    hp = float(rng.uniform(1.0, 30.0))
    order = int(rng.integers(1, 3))
    aa = float(rng.uniform(0.80, 0.95)) * fs / 2
    ratio = np.maximum(f, 1e-9) / hp
    high = ratio**order / np.sqrt(1.0 + ratio ** (2 * order))
    low = 1.0 / np.sqrt(1.0 + (f / aa) ** 16)
    return high * low


def _band_power(power: np.ndarray, f: np.ndarray, band: tuple[float, float]) -> float:
    sel = (f >= band[0]) & (f <= band[1])
    return float(np.sum(power[sel]))


def _signal_band_power(x: np.ndarray, fs: float, band: tuple[float, float]) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    return _band_power(spec, np.fft.rfftfreq(x.size, 1 / fs), band)


# --- envelopes and interferers --------------------------------------------------------------


def _slow_gauss(rng: np.random.Generator, n: int, fs: float, corr_s: float) -> np.ndarray:
    """Unit-variance Gaussian process with correlation time ~corr_s."""
    f = np.fft.rfftfreq(n, 1 / fs)
    g = _shape(rng, n, np.exp(-((f * corr_s) ** 2)))
    return g / max(float(np.std(g)), 1e-12)


def _wander(rng: np.random.Generator, n: int, fs: float, depth_db: float) -> np.ndarray:
    """Amplitude envelope whose level wanders by ``depth_db`` (std), unit mean power."""
    g = _slow_gauss(rng, n, fs, float(rng.uniform(0.3, 3.0)))
    env = 10 ** (depth_db * g / 20)
    return env / math.sqrt(float(np.mean(env**2)))


def _vehicles(rng: np.random.Generator, n: int, fs: float, f: np.ndarray) -> np.ndarray:
    duration = n / fs
    count = max(1, int(rng.poisson(duration / float(rng.uniform(8.0, 30.0)))))
    corner = float(rng.uniform(20.0, 120.0))
    rumble = _shape(rng, n, 1.0 / (1.0 + (f / corner) ** 4) + 1e-3 / (1.0 + (f / 2000) ** 2))
    t = np.arange(n) / fs
    env = np.zeros(n)
    for _ in range(count):
        centre = float(rng.uniform(0.0, duration))
        half = float(rng.uniform(0.7, 4.0))
        env = np.maximum(env, np.exp(-(((t - centre) / half) ** 2) * 3.0))
    return rumble * env


def _draw_off(rng: np.random.Generator, n: int, fs: float, f: np.ndarray) -> np.ndarray:
    corner = float(rng.uniform(200.0, 1000.0))
    hiss = _shape(rng, n, (f / corner) ** 2 / (1.0 + (f / corner) ** 2))
    on = float(rng.uniform(0.10, 0.60)) * n
    start = float(rng.uniform(0.0, n - on))
    idx = np.arange(n)
    ramp = max(1.0, 0.3 * fs)
    env = np.clip((idx - start) / ramp, 0, 1) * np.clip((start + on - idx) / ramp, 0, 1)
    return hiss * env * _wander(rng, n, fs, 2.0)


def _pump(rng: np.random.Generator, n: int, fs: float, delay_s: float = 0.0) -> np.ndarray:
    rotation = float(rng.uniform(12.5, 50.0))
    blades = int(rng.integers(3, 8))
    t = np.arange(n) / fs - delay_s
    drift = 1.0 + 0.003 * np.sin(2 * np.pi * t / float(rng.uniform(5.0, 30.0)))
    phase = 2 * np.pi * rotation * np.cumsum(drift) / fs
    x = np.zeros(n)
    for k in range(1, 21):
        if k * rotation * 1.01 >= fs / 2:
            break
        amp = 10 ** (-float(rng.uniform(2.0, 5.0)) * (k - 1) / 20)
        if k == blades:
            amp *= 3.0
        x += amp * np.sin(k * phase + float(rng.uniform(0, 2 * np.pi)))
    return x


def _hum(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    mains = 50.0 if rng.random() < 0.5 else 60.0
    t = np.arange(n) / fs
    x = np.zeros(n)
    for k in range(1, 11):
        if k * mains >= 0.9 * fs / 2:
            break
        amp = 10 ** (-float(rng.uniform(3.0, 12.0) if k % 2 == 0 else rng.uniform(0.0, 8.0)) / 20)
        x += amp * np.sin(2 * np.pi * k * mains * t + float(rng.uniform(0, 2 * np.pi)))
    return x


def _flow(rng: np.random.Generator, n: int, fs: float, f: np.ndarray) -> np.ndarray:
    """Turbulent flow noise at the sensor: low-frequency, strongly modulated."""
    corner = float(rng.uniform(20.0, 80.0))
    base = _shape(rng, n, 1.0 / (1.0 + (f / corner) ** 3))
    g = _slow_gauss(rng, n, fs, float(rng.uniform(0.1, 1.0)))
    return base * np.exp(float(rng.uniform(0.35, 0.7)) * g)


def _clicks(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    x = np.zeros(n)
    for _ in range(int(rng.integers(1, 11))):
        ring = float(rng.uniform(200.0, min(3000.0, 0.4 * fs)))
        decay = float(rng.uniform(0.003, 0.05))
        m = min(n, int(decay * 6 * fs) + 1)
        t = np.arange(m) / fs
        at = int(rng.integers(0, max(1, n - m)))
        x[at : at + m] += np.exp(-t / decay) * np.sin(2 * np.pi * ring * t) * rng.choice([-1, 1])
    return x


def _scale_to(x: np.ndarray, fs: float, band: tuple[float, float], target: float) -> np.ndarray:
    p = _signal_band_power(x, fs, band)
    return x * math.sqrt(target / p) if p > 0 else x


def _rms(x: np.ndarray) -> float:
    return math.sqrt(float(np.mean(x * x)))


# --- detection corpus ---------------------------------------------------------------------


def _finish(rng: np.random.Generator, x: np.ndarray, kinds: list[str]) -> tuple[np.ndarray, float]:
    """DC offset, gain, optional 16-bit quantisation (never clipping). Returns (x, gain_db)."""
    rms = _rms(x)
    if rng.random() < 0.3:
        x = x + float(rng.uniform(0.1, 10.0)) * rms * rng.choice([-1, 1])
        kinds.append("dc")
    gain_db = float(rng.uniform(-30.0, 30.0))
    x = x * 10 ** (gain_db / 20)
    if rng.random() < 0.3:
        peak = float(np.max(np.abs(x)))
        level = 10 ** (float(rng.uniform(-65.0, -35.0)) / 20) / _rms(x - np.mean(x))
        level = min(level, 0.9 / max(peak, 1e-30))  # a click or offset must not clip
        x = np.round(x * level * 32767.0) / 32767.0
        gain_db += 20 * math.log10(level)
        kinds.append("q16")
    return x, gain_db


def _detection_case(index: int, seed: int) -> DetectionCase:
    rng = np.random.default_rng([seed, index])
    hydrophone = rng.random() < 0.15
    family = "plastic" if hydrophone else str(rng.choice(["metal", "plastic"]))
    material = str(rng.choice(MATERIALS[family]))
    fs = 8000.0 if hydrophone else float(rng.choice(RATES))
    duration = float(np.exp(rng.uniform(np.log(4.0), np.log(60.0))))
    n = int(duration * fs)
    f = np.fft.rfftfreq(n, 1 / fs)
    band = BANDS[family]
    kinds: list[str] = ["hydrophone"] if hydrophone else []

    ambient = _shape(rng, n, _ambient_power(rng, f))
    amb_band = _signal_band_power(ambient, fs, band)
    parts = []
    if rng.random() < 0.4:
        ambient = ambient * _wander(rng, n, fs, float(rng.uniform(1.0, 4.0)))
        kinds.append("wandering")
    parts.append(ambient)
    is_leak = index % 2 == 0
    snr = None
    if is_leak:
        snr = float(rng.uniform(-6.0, 20.0))
        leak = _shape(rng, n, _leak_power(rng, f, family))
        parts.append(_scale_to(leak, fs, band, amb_band * 10 ** (snr / 10)))

    levels_db: dict[str, float] = {}

    def add(name: str, x: np.ndarray, lo_db: float, hi_db: float) -> None:
        levels_db[name] = float(rng.uniform(lo_db, hi_db))
        parts.append(_scale_to(x, fs, band, amb_band * 10 ** (levels_db[name] / 10)))
        kinds.append(name)

    if rng.random() < 0.4:
        add("vehicles", _vehicles(rng, n, fs, f), 5.0, 25.0)
    if rng.random() < 0.25:
        add("draw_off", _draw_off(rng, n, fs, f), 3.0, 15.0)
    if rng.random() < 0.25:
        add("pump", _pump(rng, n, fs), 0.0, 20.0)
    if rng.random() < 0.25:
        add("hum", _hum(rng, n, fs), 0.0, 20.0)
    if hydrophone or rng.random() < 0.2:
        add("flow", _flow(rng, n, fs, f), 0.0, 15.0)
    if rng.random() < 0.2:
        add("clicks", _clicks(rng, n, fs), 0.0, 10.0)
    x = np.fft.irfft(np.fft.rfft(np.sum(parts, axis=0)) * _sensor_gain(rng, f, fs), n)
    x, gain_db = _finish(rng, x, kinds)
    return DetectionCase(
        index,
        x,
        fs,
        family,
        material,
        is_leak,
        snr,
        tuple(kinds),
        gain_db,
        n / fs,
        flow_db=levels_db.get("flow"),
    )


def detection_cases(n: int = 400, seed: int = DEFAULT_SEED) -> Iterator[DetectionCase]:
    """``n`` recordings, every other one with a leak (even indices)."""
    for i in range(n):
        yield _detection_case(i, seed)


# --- location corpus ----------------------------------------------------------------------


def _delayed(source_spec: np.ndarray, total: int, delay_s: float, fs: float) -> np.ndarray:
    f = np.fft.rfftfreq(total, 1 / fs)
    return np.fft.irfft(source_spec * np.exp(-2j * np.pi * f * delay_s), total)


def _location_case(index: int, seed: int) -> LocationCase:
    rng = np.random.default_rng([seed, 7, index])
    family = "metal" if index % 2 == 0 else "plastic"
    material = str(rng.choice(MATERIALS[family]))
    if family == "metal":
        spacing = float(rng.uniform(60.0, 300.0))
        c = float(rng.uniform(1100.0, 1400.0))
    else:
        spacing = float(rng.uniform(20.0, 120.0))
        c = float(rng.uniform(250.0, 480.0))
    fs = float(rng.choice((4000.0, 4096.0, 4800.0, 8000.0)))
    duration = float(rng.uniform(10.0, 60.0))
    n = int(duration * fs)
    band = BANDS[family]
    distance = float(rng.uniform(0.05, 0.95)) * spacing
    snr = float(rng.uniform(-6.0, 20.0))
    margin = math.ceil(spacing / c * fs) + 64
    total = n + 2 * margin
    f_total = np.fft.rfftfreq(total, 1 / fs)
    # One hump for the source; each path adds its own loss (the pipe between).
    src_spec = np.fft.rfft(rng.standard_normal(total))
    hump = _leak_power(rng, f_total, family)
    loss_ref = float(rng.uniform(0.05, 0.15) if family == "metal" else rng.uniform(0.3, 0.9))
    f_ref = 500.0 if family == "metal" else 150.0
    exponent = float(rng.uniform(0.8, 1.4))
    kinds: list[str] = []
    f = np.fft.rfftfreq(n, 1 / fs)
    pump_on = rng.random() < 0.3
    pump_src = _pump(rng, total, fs) if pump_on else None
    pump_level = float(rng.uniform(0.0, 15.0))
    vehicles_on = rng.random() < 0.4
    vehicle_level = float(rng.uniform(5.0, 20.0))
    hum_on = rng.random() < 0.3
    flow_on = rng.random() < 0.25
    clicks_on = rng.random() < 0.2
    out = []
    for leg in (distance, spacing - distance):
        path = np.sqrt(hump * 10 ** (-leg * loss_ref * (f_total / f_ref) ** exponent / 10))
        heard = _delayed(src_spec * path, total, leg / c, fs)[margin : margin + n]
        ambient = _shape(rng, n, _ambient_power(rng, f))
        amb_band = _signal_band_power(ambient, fs, band)
        parts = [ambient, _scale_to(heard, fs, band, amb_band * 10 ** (snr / 10))]
        if pump_src is not None:
            # the pump sits beyond logger B: it reaches A a full spacing later than B
            lag = spacing / c if leg == distance else 0.0
            tone = _delayed(np.fft.rfft(pump_src), total, lag, fs)[margin : margin + n]
            parts.append(_scale_to(tone, fs, band, amb_band * 10 ** (pump_level / 10)))
        if vehicles_on:
            parts.append(
                _scale_to(_vehicles(rng, n, fs, f), fs, band, amb_band * 10 ** (vehicle_level / 10))
            )
        if hum_on:
            parts.append(
                _scale_to(_hum(rng, n, fs), fs, band, amb_band * 10 ** (rng.uniform(0, 15) / 10))
            )
        if flow_on:
            parts.append(
                _scale_to(
                    _flow(rng, n, fs, f), fs, band, amb_band * 10 ** (rng.uniform(0, 10) / 10)
                )
            )
        if clicks_on:
            parts.append(_scale_to(_clicks(rng, n, fs), fs, band, amb_band))
        x = np.fft.irfft(np.fft.rfft(np.sum(parts, axis=0)) * _sensor_gain(rng, f, fs), n)
        out.append(x * 10 ** (float(rng.uniform(-30.0, 30.0)) / 20))
    for name, on in (
        ("pump", pump_on),
        ("vehicles", vehicles_on),
        ("hum", hum_on),
        ("flow", flow_on),
        ("clicks", clicks_on),
    ):
        if on:
            kinds.append(name)
    return LocationCase(
        index, out[0], out[1], fs, family, material, spacing, c, distance, snr, tuple(kinds), n / fs
    )


def location_cases(n: int = 80, seed: int = DEFAULT_SEED) -> Iterator[LocationCase]:
    """``n`` leak pairs, metal (even indices) and plastic (odd) alternating."""
    for i in range(n):
        yield _location_case(i, seed)
