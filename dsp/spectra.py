"""Welch power spectral density and per-frame spectra (numba kernels).

``welch_psd(x, fs, nperseg)`` equals, to 1e-6 relative, the scipy call
``scipy.signal.welch(x, fs, window="hann", nperseg=nperseg, noverlap=nperseg // 2,
detrend="constant", return_onesided=True, scaling="density", average="mean")``: periodic Hann
window, 50 % overlap, each segment's mean removed before windowing, one-sided density in
units**2/Hz, trailing samples that do not fill a segment ignored.

``frame_psd`` returns every segment's periodogram with the same scaling (the rows of
``scipy.signal.spectrogram`` with the same arguments), from which features take per-frame levels
and the quiet-spectrum percentile. Both run in one pass of frame -> detrend -> window -> rfft.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from dsp._numba import jit

__all__ = [
    "all_finite",
    "default_nperseg",
    "frame_psd",
    "hann",
    "kernel_input",
    "n_segments",
    "welch_psd",
]


def default_nperseg(fs: float) -> int:
    """A power of two giving about 4 Hz resolution (1024 at 4096 Hz, 2048 at 8 kHz)."""
    return max(16, 2 ** round(math.log2(max(fs, 16.0) / 4.0)))


def hann(n: int) -> np.ndarray:
    """Periodic Hann window (scipy's ``get_window("hann", n)``)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def n_segments(n_samples: int, nperseg: int) -> int:
    """Welch segments in ``n_samples`` at 50 % overlap (0 when shorter than one segment)."""
    if n_samples < nperseg:
        return 0
    return (n_samples - nperseg) // (nperseg - nperseg // 2) + 1


def kernel_input(x: np.ndarray) -> np.ndarray:
    """``x`` as the one array type the kernels are compiled for: float64, C-contiguous,
    writeable (copied only when it is not). A strided or read-only array is another numba
    signature: a compile at call time (seconds, a minute on a Pi) that warm-up did not do."""
    return np.require(x, np.float64, ("C", "W"))


def all_finite(x: np.ndarray) -> bool:
    """True when no sample is NaN or infinite: min and max propagate both, in two passes
    without the boolean temporary of ``np.isfinite(x).all()``."""
    return x.size == 0 or bool(np.isfinite(x.min()) and np.isfinite(x.max()))


def _check(x: np.ndarray, fs: float, nperseg: int) -> np.ndarray:
    x = kernel_input(x)
    if x.ndim != 1:
        raise ValueError(f"samples must be 1-D, got shape {x.shape}")
    if not (fs > 0 and math.isfinite(fs)):
        raise ValueError(f"sample rate must be positive, got {fs!r}")
    if nperseg < 4:
        raise ValueError(f"segment length must be >= 4 samples, got {nperseg}")
    if x.size < nperseg:
        raise ValueError(f"{x.size} samples is shorter than one segment of {nperseg}")
    if not _all_finite_kernel(x):
        raise ValueError("samples contain NaN or infinity")
    return x


@jit
def _all_finite_kernel(x: np.ndarray) -> bool:
    # ``all_finite`` in one pass: an "and" over every sample, no early exit, vectorises
    ok = True
    for i in range(x.size):
        ok &= math.isfinite(x[i])
    return ok


@jit
def _hann_kernel(nperseg: int) -> tuple[np.ndarray, float]:
    # the periodic Hann window and its sum of squares (the density's scale)
    win = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(nperseg) / nperseg)
    return win, np.sum(win * win)


@lru_cache(maxsize=16)
def _window(nperseg: int) -> tuple[np.ndarray, float]:
    """``_hann_kernel(nperseg)``, once per length: a thousand cosines cost as much as the
    detrend of a whole recording. Shared between calls: the kernel only reads it."""
    return _hann_kernel(nperseg)


@jit
def _row_sums(frames: np.ndarray, bins: np.ndarray) -> np.ndarray:
    # each frame's sum over ``bins``, added in their order: the value a loop over one frame
    # gives. Eight frames at a time: eight chains of additions run side by side where one
    # chain waits on each addition (the sums are most of the reduction's time otherwise)
    nseg = frames.shape[0]
    out = np.empty(nseg)
    s = 0
    while s + 8 <= nseg:
        r0 = frames[s]
        r1 = frames[s + 1]
        r2 = frames[s + 2]
        r3 = frames[s + 3]
        r4 = frames[s + 4]
        r5 = frames[s + 5]
        r6 = frames[s + 6]
        r7 = frames[s + 7]
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
        for k in bins:
            a0 += r0[k]
            a1 += r1[k]
            a2 += r2[k]
            a3 += r3[k]
            a4 += r4[k]
            a5 += r5[k]
            a6 += r6[k]
            a7 += r7[k]
        out[s] = a0
        out[s + 1] = a1
        out[s + 2] = a2
        out[s + 3] = a3
        out[s + 4] = a4
        out[s + 5] = a5
        out[s + 6] = a6
        out[s + 7] = a7
        s += 8
    for r in range(s, nseg):
        row = frames[r]
        acc = 0.0
        for k in bins:
            acc += row[k]
        out[r] = acc
    return out


@jit
def _frame_psd_kernel(x: np.ndarray, fs: float, win: np.ndarray, win_sq_sum: float) -> np.ndarray:
    nperseg = win.size
    step = nperseg - nperseg // 2
    nseg = (x.size - nperseg) // step + 1
    scale = 1.0 / (fs * win_sq_sum)
    # each segment's sum in sample order (``_row_sums``: eight chains side by side), over a
    # view of the overlapping segments (no copy)
    segments = np.lib.stride_tricks.sliding_window_view(x, nperseg)[::step][:nseg]
    sums = _row_sums(segments, np.arange(nperseg))
    segs = np.empty((nseg, nperseg))
    for s in range(nseg):
        mean = sums[s] / nperseg
        xs = x[s * step : s * step + nperseg]
        row = segs[s]
        for i in range(nperseg):
            row[i] = (xs[i] - mean) * win[i]
    spec = np.fft.rfft(segs, axis=1)
    nfreq = nperseg // 2 + 1
    out = np.empty((nseg, nfreq))
    # one-sided: double every bin but DC and (for even lengths) Nyquist, as scipy does
    last_doubled = nfreq - 1 if nperseg % 2 == 0 else nfreq
    twice = 2.0 * scale
    for s in range(nseg):
        row = spec[s]
        dst = out[s]
        for k in range(nfreq):
            z = row[k]
            dst[k] = (z.real * z.real + z.imag * z.imag) * twice
        dst[0] *= 0.5
        if last_doubled < nfreq:
            dst[nfreq - 1] *= 0.5
    return out


def _frame_psd(x: np.ndarray, fs: float, nperseg: int) -> np.ndarray:
    """The rows of ``frame_psd`` for an input ``_check`` passed (no checks, no frequencies)."""
    win, win_sq_sum = _window(nperseg)
    return _frame_psd_kernel(x, float(fs), win, win_sq_sum)


@jit
def _mean_rows(a: np.ndarray) -> np.ndarray:
    out = np.zeros(a.shape[1])
    for s in range(a.shape[0]):
        for k in range(a.shape[1]):
            out[k] += a[s, k]
    return out / a.shape[0]


def frame_psd(x: np.ndarray, fs: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """``(freqs, P)`` with ``P[s, k]`` the density periodogram of segment ``s``.

    Raises ``ValueError`` for a non-1-D or non-finite input, a bad rate, or fewer samples than
    one segment.
    """
    x = _check(x, fs, nperseg)
    return np.fft.rfftfreq(nperseg, 1.0 / fs), _frame_psd(x, fs, int(nperseg))


def welch_psd(x: np.ndarray, fs: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """``(freqs, psd)``: Welch PSD as documented in the module docstring. Raises like
    ``frame_psd``."""
    freqs, frames = frame_psd(x, fs, nperseg)
    return freqs, _mean_rows(frames)
