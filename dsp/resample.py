"""Band-limited resampling of a whole recording, for loggers that recorded at different rates.

Location needs every recording on one time base. The FFT method keeps timing exactly (zero
phase: a delay between two loggers is the same number of seconds before and after), drops what
lies above the new Nyquist frequency (an ideal low-pass, so nothing aliases), and costs one
real FFT each way. It treats the recording as one period of a periodic signal, so the first and
last few milliseconds ring a little; the correlation is dominated by the seconds between.
"""

from __future__ import annotations

import numpy as np

__all__ = ["resample"]


def resample(x: np.ndarray, fs_from: float, fs_to: float) -> np.ndarray:
    """``x`` sampled at ``fs_from`` Hz as samples at ``fs_to`` Hz (``round(n * fs_to /
    fs_from)`` of them). Raises ``ValueError`` for a non-positive rate or an empty result."""
    if not (fs_from > 0 and fs_to > 0):
        raise ValueError(f"rates must be positive, got {fs_from} and {fs_to}")
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    m = round(n * fs_to / fs_from)
    if m < 1:
        raise ValueError(f"{n} samples at {fs_from:g} Hz are none at {fs_to:g} Hz")
    if m == n:
        return x.copy()
    spectrum = np.fft.rfft(x)
    out = np.zeros(m // 2 + 1, dtype=np.complex128)
    keep = min(spectrum.size, out.size)
    out[:keep] = spectrum[:keep]
    # A bin at the Nyquist frequency of an even length is real and shared by +f and -f: when
    # the shorter of the two lengths is even, its Nyquist bin must carry both halves' share.
    short = min(n, m)
    if short % 2 == 0:
        if m < n:
            out[short // 2] = 2.0 * out[short // 2].real  # folded: +f and -f meet on one bin
        else:
            out[short // 2] *= 0.5  # split: half to +f, half to -f (irfft mirrors the rest)
    return np.fft.irfft(out, m) * (m / n)
