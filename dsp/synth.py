"""Seeded synthesis of what a noise logger hears, for tests, simulators and benchmarks.

Every generator takes ``seed`` (an int, a ``numpy.random.SeedSequence`` or a
``numpy.random.Generator``) and returns float64 samples; the same seed gives the same samples
on every run and platform. Levels are RMS in dB re 1 unit (``20*log10(rms)``).

Sources and what makes them what they are (the field facts the detector relies on):
- ``leak_source``: broadband, continuous, stationary noise, shaped into the material's leak band
  (``dsp.pipes.Material.band_hz``) with gentle 12 dB/octave skirts and a seeded jitter of the
  corners, so no two leaks have the same spectrum.
- ``propagate``: pipe transfer function: frequency-dependent loss
  (``dsp.pipes.attenuation_db_per_m`` times distance) and the delay distance / wave speed applied
  as a fractional delay in the frequency domain (exact for the circular signal, so correlation
  can be validated to a small fraction of a sample). ``leak_at_loggers`` avoids wrap-around by
  propagating a longer source and cropping.
- ``ambient``: continuous power-law background (PSD ~ 1/f**slope) plus an optional white floor.
- ``traffic_bursts``: intermittent low-frequency-heavy broadband bursts (vehicles passing).
- ``draw_off``: a customer drawing water: broadband flow noise with a fluctuating envelope that
  starts and stops within the recording (intermittent on the night window's time scale).
- ``pump_tone``: steady tonal hum: a fundamental and decaying harmonics.

``recording(fs, duration_s, scene=Scene(...), seed=...)`` mixes these; the leak is scaled to an
in-band signal-to-noise ratio against the ambient (``Scene.leak_snr_db``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsp.pipes import Material, attenuation_db_per_m, get_material, wave_speed

__all__ = [
    "Scene",
    "SeedLike",
    "ambient",
    "band_power",
    "draw_off",
    "leak_at_loggers",
    "leak_source",
    "mix",
    "propagate",
    "pump_tone",
    "recording",
    "scale_to_snr",
    "traffic_bursts",
]

SeedLike = int | np.random.SeedSequence | np.random.Generator

_EPS = 1e-30


def _rng(seed: SeedLike) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _n_samples(fs: float, duration_s: float) -> int:
    if not (fs > 0 and math.isfinite(fs)):
        raise ValueError(f"sample rate must be a positive number, got {fs!r}")
    if not (duration_s > 0 and math.isfinite(duration_s)):
        raise ValueError(f"duration must be a positive number of seconds, got {duration_s!r}")
    n = round(fs * duration_s)
    if n < 2:
        raise ValueError(f"{duration_s} s at {fs} Hz is fewer than 2 samples")
    return n


def _material(material: str | Material) -> Material:
    return material if isinstance(material, Material) else get_material(material)


def _set_rms(x: np.ndarray, level_db: float) -> np.ndarray:
    rms = math.sqrt(float(np.mean(x * x)))
    if rms <= 0.0:
        return x
    return x * (10.0 ** (level_db / 20.0) / rms)


def _shaped_noise(rng: np.random.Generator, n: int, gain: np.ndarray) -> np.ndarray:
    """Gaussian noise with amplitude response ``gain`` (length n//2+1) via the frequency domain."""
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    spec *= gain
    spec[0] = 0.0  # no DC: sensors are AC coupled
    if n % 2 == 0:
        spec[-1] = spec[-1].real
    return np.fft.irfft(spec, n)


def leak_source(
    fs: float,
    duration_s: float,
    *,
    material: str | Material,
    seed: SeedLike,
    level_db: float = 0.0,
) -> np.ndarray:
    """Leak noise at the leak (before the pipe): continuous broadband noise in the material band.

    The band corners are jittered by a seeded factor in 0.75..1.33, skirts fall at
    12 dB/octave. Raises ``ValueError`` for a bad rate, duration or material.
    """
    m = _material(material)
    n = _n_samples(fs, duration_s)
    rng = _rng(seed)
    lo, hi = m.band_hz
    lo *= float(np.exp(rng.uniform(-0.29, 0.29)))
    hi *= float(np.exp(rng.uniform(-0.29, 0.29)))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    with np.errstate(divide="ignore"):
        gain = 1.0 / np.sqrt(1.0 + (lo / np.maximum(f, _EPS)) ** 4) / np.sqrt(1.0 + (f / hi) ** 4)
    return _set_rms(_shaped_noise(rng, n, gain), level_db)


def _pipe_response(
    n: int,
    fs: float,
    m: Material,
    distance_m: float,
    diameter_mm: float | None,
    wall_mm: float | None,
) -> np.ndarray:
    f = np.fft.rfftfreq(n, 1.0 / fs)
    # attenuation_db_per_m is a scalar function of frequency; a grid of 256 log-spaced points
    # interpolated in log-frequency keeps this cheap for long recordings.
    grid = np.geomspace(1.0, max(fs / 2.0, 2.0), 256)
    loss = np.array([attenuation_db_per_m(m, g, diameter_mm) for g in grid])
    loss_db = np.interp(np.log(np.maximum(f, 1.0)), np.log(grid), loss) * distance_m
    delay_s = distance_m / wave_speed(m, diameter_mm, wall_mm)
    h = 10.0 ** (-loss_db / 20.0) * np.exp(-2j * np.pi * f * delay_s)
    if n % 2 == 0:
        h[-1] = 0.0  # a fractional delay of the Nyquist bin is not real: drop it
    return h


def propagate(
    source: np.ndarray,
    fs: float,
    *,
    material: str | Material,
    distance_m: float,
    diameter_mm: float | None = None,
    wall_mm: float | None = None,
) -> np.ndarray:
    """``source`` heard ``distance_m`` along the pipe: frequency-dependent loss and delay.

    The delay (distance / Korteweg wave speed) is circular: sample k of the output is the
    source at time k/fs - delay, modulo the length. Use ``leak_at_loggers`` for recordings
    without wrap-around. Raises ``ValueError`` for a negative distance or bad material.
    """
    if not (distance_m >= 0 and math.isfinite(distance_m)):
        raise ValueError(f"distance must be >= 0 m, got {distance_m!r}")
    x = np.asarray(source, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise ValueError("source must be a 1-D array of at least 2 samples")
    m = _material(material)
    h = _pipe_response(x.size, fs, m, distance_m, diameter_mm, wall_mm)
    return np.fft.irfft(np.fft.rfft(x) * h, x.size)


def leak_at_loggers(
    fs: float,
    duration_s: float,
    *,
    material: str | Material,
    distances_m: tuple[float, ...] | list[float],
    seed: SeedLike,
    level_db: float = 0.0,
    diameter_mm: float | None = None,
    wall_mm: float | None = None,
) -> list[np.ndarray]:
    """One leak heard by several loggers at ``distances_m`` along the pipe, no wrap-around.

    A source longer than the recording by the largest delay is propagated to each distance and
    the same window cropped from each, so ``t_A - t_B = (d_A - d_B) / c`` exactly.
    """
    m = _material(material)
    n = _n_samples(fs, duration_s)
    c = wave_speed(m, diameter_mm, wall_mm)
    margin = math.ceil(max(distances_m) / c * fs) + 16
    src = leak_source(fs, (n + margin) / fs, material=m, seed=seed, level_db=level_db)
    src = src[: n + margin]
    out = []
    for d in distances_m:
        y = propagate(src, fs, material=m, distance_m=d, diameter_mm=diameter_mm, wall_mm=wall_mm)
        out.append(y[margin : margin + n].copy())
    return out


def ambient(
    fs: float,
    duration_s: float,
    *,
    seed: SeedLike,
    level_db: float = 0.0,
    slope: float = 1.0,
    floor_db: float | None = None,
) -> np.ndarray:
    """Continuous background: PSD ~ 1/f**slope (0 white, 1 pink, 2 brown) at ``level_db`` RMS,
    plus an optional white sensor floor at ``floor_db`` RMS."""
    n = _n_samples(fs, duration_s)
    rng = _rng(seed)
    f = np.fft.rfftfreq(n, 1.0 / fs)
    gain = np.maximum(f, 2.0) ** (-slope / 2.0)  # flat below 2 Hz: no runaway at DC
    x = _set_rms(_shaped_noise(rng, n, gain), level_db)
    if floor_db is not None:
        x = x + _set_rms(rng.standard_normal(n), floor_db)
    return x


def _envelope(n: int, fs: float, start_s: float, length_s: float, ramp_s: float) -> np.ndarray:
    t = np.arange(n) / fs
    ramp = max(ramp_s, 1.0 / fs)
    up = np.clip((t - start_s) / ramp, 0.0, 1.0)
    down = np.clip((start_s + length_s - t) / ramp, 0.0, 1.0)
    return np.minimum(up, down)


def traffic_bursts(
    fs: float,
    duration_s: float,
    *,
    seed: SeedLike,
    level_db: float = 0.0,
    count: int | None = None,
    mean_length_s: float = 0.8,
) -> np.ndarray:
    """Vehicles passing: ``count`` (default seeded 1..3) bursts of low-frequency-heavy noise
    with a raised-cosine envelope; ``level_db`` is the RMS during a burst."""
    n = _n_samples(fs, duration_s)
    rng = _rng(seed)
    k = int(rng.integers(1, 4)) if count is None else int(count)
    f = np.fft.rfftfreq(n, 1.0 / fs)
    gain = 1.0 / np.sqrt(1.0 + (np.maximum(f, 1.0) / 80.0) ** 2)  # rumble, 6 dB/oct above 80 Hz
    noise = _set_rms(_shaped_noise(rng, n, gain), level_db)
    env = np.zeros(n)
    t = np.arange(n) / fs
    for _ in range(k):
        length = min(float(rng.uniform(0.4, 1.6)) * mean_length_s, 0.45 * duration_s)
        centre = float(rng.uniform(0.0, duration_s))
        u = (t - centre) / length
        env = np.maximum(env, np.where(np.abs(u) < 0.5, np.cos(np.pi * u) ** 2, 0.0))
    return noise * env


def draw_off(
    fs: float,
    duration_s: float,
    *,
    seed: SeedLike,
    level_db: float = 0.0,
    duty: float | None = None,
) -> np.ndarray:
    """A customer drawing water: broadband flow noise (a few hundred Hz up) with a slowly
    fluctuating level, on for a fraction ``duty`` (default seeded 0.15..0.6) of the recording,
    starting and stopping inside it."""
    n = _n_samples(fs, duration_s)
    rng = _rng(seed)
    d = float(rng.uniform(0.15, 0.6)) if duty is None else float(duty)
    if not 0.0 < d < 1.0:
        raise ValueError(f"draw-off duty must be in (0, 1), got {d}")
    f = np.fft.rfftfreq(n, 1.0 / fs)
    fc = float(rng.uniform(250.0, 700.0))
    gain = 1.0 / np.sqrt(1.0 + (fc / np.maximum(f, 1.0)) ** 2)  # hiss: rises to fc, then flat
    noise = _set_rms(_shaped_noise(rng, n, gain), level_db)
    length = d * duration_s
    start = float(rng.uniform(0.0, duration_s - length))
    env = _envelope(n, fs, start, length, ramp_s=min(0.1, length / 4))
    # the tap is opened and adjusted: a slow +-3 dB wobble of the flow noise
    wobble = _shaped_noise(rng, n, 1.0 / (1.0 + (f / 2.0) ** 4))
    wobble = 10.0 ** (3.0 * wobble / max(float(np.std(wobble)), _EPS) / 20.0)
    return noise * env * wobble


def pump_tone(
    fs: float,
    duration_s: float,
    *,
    seed: SeedLike,
    f0_hz: float = 50.0,
    level_db: float = 0.0,
    harmonics: int = 6,
) -> np.ndarray:
    """A pump or motor hum: ``f0_hz`` and ``harmonics - 1`` harmonics below Nyquist with
    seeded phases and amplitudes falling ~4 dB per harmonic; steady, ``level_db`` RMS."""
    n = _n_samples(fs, duration_s)
    if not 0.0 < f0_hz < fs / 2.0:
        raise ValueError(f"pump frequency {f0_hz} Hz is not in (0, fs/2 = {fs / 2} Hz)")
    rng = _rng(seed)
    t = np.arange(n) / fs
    x = np.zeros(n)
    for k in range(1, max(1, harmonics) + 1):
        fk = k * f0_hz
        if fk >= fs / 2.0:
            break
        amp = 10.0 ** (-4.0 * (k - 1) / 20.0) * float(rng.uniform(0.6, 1.0))
        x += amp * np.sin(2.0 * np.pi * fk * t + float(rng.uniform(0.0, 2.0 * np.pi)))
    return _set_rms(x, level_db)


def band_power(x: np.ndarray, fs: float, band_hz: tuple[float, float]) -> float:
    """Mean power of ``x`` inside ``band_hz`` (periodogram sum, Parseval-scaled)."""
    x = np.asarray(x, dtype=np.float64)
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1.0 / fs)
    sel = (f >= band_hz[0]) & (f <= band_hz[1])
    return float(2.0 * np.sum(spec[sel]) / (x.size * x.size))


def scale_to_snr(
    signal: np.ndarray,
    noise: np.ndarray,
    fs: float,
    band_hz: tuple[float, float],
    snr_db: float,
) -> np.ndarray:
    """``signal`` scaled so its in-band power is ``snr_db`` above ``noise``'s in the band."""
    ps = band_power(signal, fs, band_hz)
    pn = band_power(noise, fs, band_hz)
    if ps <= 0.0 or pn <= 0.0:
        raise ValueError("signal and noise must both have power in the band")
    return signal * math.sqrt(pn / ps * 10.0 ** (snr_db / 10.0))


def mix(*signals: np.ndarray) -> np.ndarray:
    """Sum of equally long signals (raises ``ValueError`` when lengths differ)."""
    if not signals:
        raise ValueError("mix needs at least one signal")
    n = signals[0].size
    if any(s.size != n for s in signals):
        raise ValueError(f"signals differ in length: {[s.size for s in signals]}")
    return np.sum(np.stack(signals), axis=0)


@dataclass(frozen=True, slots=True)
class Scene:
    """What one logger hears in one recording.

    ``leak_distance_m=None`` means no leak. The leak is scaled to ``leak_snr_db`` of in-band
    power over the ambient (band = the material's ``band_hz``). Interferers are off when their
    level is ``None``; their levels are RMS in dB re 1 unit like ``ambient_db``.
    ``ambient_in_band=True`` makes ``ambient_db`` the ambient's level inside the material's band
    (the site file's ``noise_floor_db``, what the leak score's floor means) instead of its
    overall RMS.
    """

    material: str = "ductile_iron"
    leak_distance_m: float | None = None
    leak_snr_db: float = 10.0
    ambient_db: float = 0.0
    ambient_slope: float = 1.0
    traffic_db: float | None = None
    draw_off_db: float | None = None
    pump_db: float | None = None
    pump_hz: float = 50.0
    diameter_mm: float | None = None
    ambient_in_band: bool = False


def recording(fs: float, duration_s: float, *, scene: Scene, seed: SeedLike) -> np.ndarray:
    """Samples of ``scene`` at ``fs``; each component gets its own child seed, so switching
    one source on or off does not change the others."""
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2**63))
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    s_amb, s_leak, s_traffic, s_draw, s_pump = ss.spawn(5)
    m = get_material(scene.material)
    amb = ambient(fs, duration_s, seed=s_amb, level_db=scene.ambient_db, slope=scene.ambient_slope)
    if scene.ambient_in_band:
        in_band = band_power(amb, fs, m.band_hz)
        amb = amb * math.sqrt(10.0 ** (scene.ambient_db / 10.0) / in_band)
    parts = [amb]
    if scene.leak_distance_m is not None:
        (leak,) = leak_at_loggers(
            fs,
            duration_s,
            material=m,
            distances_m=[scene.leak_distance_m],
            seed=s_leak,
            diameter_mm=scene.diameter_mm,
        )
        parts.append(scale_to_snr(leak, amb, fs, m.band_hz, scene.leak_snr_db))
    if scene.traffic_db is not None:
        parts.append(traffic_bursts(fs, duration_s, seed=s_traffic, level_db=scene.traffic_db))
    if scene.draw_off_db is not None:
        parts.append(draw_off(fs, duration_s, seed=s_draw, level_db=scene.draw_off_db))
    if scene.pump_db is not None:
        parts.append(
            pump_tone(fs, duration_s, seed=s_pump, f0_hz=scene.pump_hz, level_db=scene.pump_db)
        )
    return mix(*parts)
