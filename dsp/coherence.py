"""Coherence of two recordings, and the correlation band and weights it suggests.

Two loggers hearing the same leak share that noise in the leak's band; everything else they
hear (ambient, traffic on each street, flow at each fitting) is their own. The
magnitude-squared coherence of a Welch cross-spectrum,

    MSC(f) = |S_ab(f)|^2 / (S_aa(f) S_bb(f)),

is near 1 where both hear one source and near 1/K (K segments averaged) where they hear
unrelated noise. So it tells the correlator where to listen (``choose_band``) and how much to
trust each frequency (``ht_weights``: the Hannan-Thomson / maximum-likelihood weighting of
Knapp & Carter 1976, MSC / (1 - MSC) / |G_ab|, applied by ``dsp.correlate``).

``welch_cross_spectra`` equals scipy's ``csd``/``welch`` with ``window="hann"``,
``noverlap=nperseg // 2``, ``detrend="constant"``, one-sided density, to 1e-6 relative, with
``S_ab = A conj(B)`` (scipy's ``csd(b, a)``; the correlator's convention). The segment is long
enough for the delay: a lag of tau between the channels costs a segment of T about
(1 - tau/T)^2 of its coherence (the same at every frequency, so the weights keep their shape),
hence ``coherence_nperseg`` picks T >= ``SEGMENT_PER_LAG`` x the largest lag searched.

Pump and motor lines are coherent too (both loggers hear the same pump) but carry no delay
information a correlator can use (a tone correlates at every period): ``tonal_bins`` finds
narrow lines standing ``TONE_DB`` over their neighbourhood in either auto-spectrum, and they
get no weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsp._numba import jit
from dsp.spectra import all_finite, kernel_input

__all__ = [
    "CoherentBand",
    "choose_band",
    "coherence_nperseg",
    "ht_weights",
    "plausible_band",
    "tonal_bins",
    "welch_cross_spectra",
]

# The material's leak band (dsp.pipes) is where leak noise mostly carries; coherence is looked
# for an octave either side of it, up to this fraction of Nyquist (anti-alias roll-off).
PLAUSIBLE_OCTAVES = 1.0
TOP_OF_NYQUIST = 0.95
SEGMENT_PER_LAG = 4.0  # Welch segment >= this many times the largest lag searched
MIN_RESOLUTION_HZ = 8.0  # segments at least fs / 8 Hz long (finer when the lag asks)
MIN_SEGMENTS = 8  # never fewer segments than this (shorter segments instead)
SIGNIFICANCE = 0.01  # a bin is coherent when noise alone would exceed its MSC this rarely
MIN_COHERENT_BINS = 3  # fewer significant bins than this: no coherent band found
MAX_MSC = 0.95
WEIGHT_SMOOTHING_BINS = 5  # caps the HT weight at 19: a near-perfect line must not swamp the band
TONE_DB = 8.0  # a line this far above its neighbourhood's median is a tone
TONE_NEIGHBOURHOOD_BINS = 8
# Welch with 50 % overlapping Hann segments: neighbouring segments are correlated, so K
# segments average like about K / 1.1 independent ones (Harris 1978 / Welch 1967).
OVERLAP_INDEPENDENCE = 1.0 / 1.1


@jit
def _cross_kernel(a, b, fs, nperseg):  # pragma: no cover - compiled
    step = nperseg - nperseg // 2
    nseg = (a.size - nperseg) // step + 1
    win = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(nperseg) / nperseg)
    scale = 1.0 / (fs * np.sum(win * win))
    sa = np.empty((nseg, nperseg))
    sb = np.empty((nseg, nperseg))
    for s in range(nseg):
        start = s * step
        ma = 0.0
        mb = 0.0
        for i in range(nperseg):
            ma += a[start + i]
            mb += b[start + i]
        ma /= nperseg
        mb /= nperseg
        for i in range(nperseg):
            sa[s, i] = (a[start + i] - ma) * win[i]
            sb[s, i] = (b[start + i] - mb) * win[i]
    fa = np.fft.rfft(sa, axis=1)
    fb = np.fft.rfft(sb, axis=1)
    nfreq = nperseg // 2 + 1
    saa = np.zeros(nfreq)
    sbb = np.zeros(nfreq)
    sab = np.zeros(nfreq, dtype=np.complex128)
    for s in range(nseg):
        for k in range(nfreq):
            x = fa[s, k]
            y = fb[s, k]
            saa[k] += x.real * x.real + x.imag * x.imag
            sbb[k] += y.real * y.real + y.imag * y.imag
            sab[k] += x * np.conj(y)
    last_doubled = nfreq - 1 if nperseg % 2 == 0 else nfreq
    for k in range(nfreq):
        c = scale / nseg
        if 0 < k < last_doubled:
            c *= 2.0
        saa[k] *= c
        sbb[k] *= c
        sab[k] *= c
    return saa, sbb, sab


def welch_cross_spectra(
    a: np.ndarray, b: np.ndarray, fs: float, nperseg: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """``(freqs, S_aa, S_bb, S_ab, n_segments)``: Welch auto- and cross-spectra (module
    docstring). Raises ``ValueError`` for unequal, non-1-D or non-finite inputs, a bad rate, or
    fewer samples than one segment."""
    a = kernel_input(a)
    b = kernel_input(b)
    if a.ndim != 1 or b.ndim != 1 or a.size != b.size:
        raise ValueError(f"recordings must be 1-D and equally long, got {a.shape} and {b.shape}")
    if not (fs > 0 and math.isfinite(fs)):
        raise ValueError(f"sample rate must be positive, got {fs!r}")
    if nperseg < 4 or a.size < nperseg:
        raise ValueError(f"{a.size} samples do not hold one segment of {nperseg}")
    if not (all_finite(a) and all_finite(b)):
        raise ValueError("samples contain NaN or infinity")
    saa, sbb, sab = _cross_kernel(a, b, float(fs), int(nperseg))
    step = nperseg - nperseg // 2
    nseg = (a.size - nperseg) // step + 1
    return np.fft.rfftfreq(nperseg, 1.0 / fs), saa, sbb, sab, nseg


def plausible_band(band_hz: tuple[float, float] | None, fs: float) -> tuple[float, float]:
    """Where to look for coherence: the material's band widened by ``PLAUSIBLE_OCTAVES``
    either side (everything up to ``TOP_OF_NYQUIST`` of Nyquist without a band), kept below
    that top. Raises ``ValueError`` when nothing of it lies below the top."""
    top = TOP_OF_NYQUIST * fs / 2.0
    if band_hz is None:
        return (0.0, top)
    lo = band_hz[0] / 2.0**PLAUSIBLE_OCTAVES
    hi = min(band_hz[1] * 2.0**PLAUSIBLE_OCTAVES, top)
    if lo >= hi:
        raise ValueError(
            f"the band {band_hz[0]:g}-{band_hz[1]:g} Hz lies above what {fs:g} Hz sampling holds"
        )
    return (lo, hi)


def coherence_nperseg(n_samples: int, fs: float, max_lag_s: float) -> int:
    """Segment length for the coherence of an ``n_samples`` recording searched to
    ``max_lag_s``: a power of two >= ``SEGMENT_PER_LAG`` x the lag and fs / 8 Hz, shortened
    to leave ``MIN_SEGMENTS`` segments (50 % overlap), never below 16 samples."""
    want = max(SEGMENT_PER_LAG * max_lag_s * fs, fs / MIN_RESOLUTION_HZ, 16.0)
    n = 1 << math.ceil(math.log2(want))
    cap = max(16, 2 * n_samples // (MIN_SEGMENTS + 1))
    while n > cap and n > 16:
        n //= 2
    return n


def tonal_bins(spectrum: np.ndarray) -> np.ndarray:
    """Bins of narrow lines: ``TONE_DB`` over the median of the ``TONE_NEIGHBOURHOOD_BINS``
    either side, plus one bin either side."""
    n = spectrum.size
    half = TONE_NEIGHBOURHOOD_BINS
    padded = np.pad(np.maximum(spectrum, 1e-300), half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    local = np.median(windows, axis=1)
    core = spectrum > local * 10 ** (TONE_DB / 10)
    out = core.copy()
    out[1:] |= core[:-1]
    out[:-1] |= core[1:]
    return out[:n]


@dataclass(frozen=True, slots=True)
class CoherentBand:
    """What the coherence says: the ``band_hz`` to correlate in (None: nothing coherent was
    found, the caller's prior band stands), the mean MSC over it, the significance threshold
    and the segments it was judged on; ``freqs``/``msc``/``weight`` per Welch bin."""

    band_hz: tuple[float, float] | None
    mean_coherence: float
    threshold: float
    n_segments: int
    freqs: np.ndarray
    msc: np.ndarray
    weight: np.ndarray
    lines: np.ndarray

    def ht_weight(self, nfft: int, fs: float) -> np.ndarray:
        """The HT weight MSC / (1 - MSC) on the rfft grid of ``nfft`` (``ht_weights``)."""
        return ht_weights(self, nfft, fs)

    def line_free(self, nfft: int, fs: float) -> np.ndarray:
        """1 on the rfft grid of ``nfft``, 0 within the lines (pumps, hum) of either
        recording: PHAT with the tones left out."""
        fine = np.fft.rfftfreq(nfft, 1.0 / fs)
        near = np.interp(fine, self.freqs, self.lines.astype(np.float64), left=0.0, right=0.0)
        return np.where(near > 0.0, 0.0, 1.0)


def choose_band(
    freqs: np.ndarray,
    saa: np.ndarray,
    sbb: np.ndarray,
    sab: np.ndarray,
    n_segments: int,
    prior_hz: tuple[float, float],
) -> CoherentBand:
    """The span of significantly coherent, tone-free frequencies inside ``prior_hz`` and the
    debiased coherence weight per bin (0 outside that span and on tones). The weight is
    ``(MSC - 1/K) / (1 - 1/K)``, capped at ``MAX_MSC``: noise-only bins get about nothing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        msc = np.abs(sab) ** 2 / (saa * sbb)
    msc = np.nan_to_num(msc, nan=0.0, posinf=0.0, neginf=0.0).clip(0.0, 1.0)
    k_eff = max(n_segments * OVERLAP_INDEPENDENCE, 2.0)
    threshold = 1.0 - SIGNIFICANCE ** (1.0 / (k_eff - 1.0))
    tones = tonal_bins(saa) | tonal_bins(sbb)
    inside = (freqs >= prior_hz[0]) & (freqs <= prior_hz[1]) & ~tones
    # a run of three bins, not a lone one: smooth before thresholding
    smooth = np.convolve(msc, np.ones(3) / 3.0, mode="same")
    coherent = inside & (smooth > threshold)
    # Soft weights: the MSC estimate smoothed over a few bins, not debiased. Bins of noise keep
    # a weight near 1/K (PHAT-like), so a leak too weak to be significant bin by bin still
    # adds up over many bins; bins where both loggers clearly hear one source weigh more.
    debiased = np.clip(
        np.convolve(msc, np.ones(WEIGHT_SMOOTHING_BINS) / WEIGHT_SMOOTHING_BINS, mode="same"),
        0.0,
        MAX_MSC,
    )
    if int(np.sum(coherent)) < MIN_COHERENT_BINS:
        weight = np.where(inside, debiased, 0.0)
        mean = float(np.mean(msc[inside])) if np.any(inside) else 0.0
        return CoherentBand(None, mean, threshold, n_segments, freqs, msc, weight, tones)
    idx = np.nonzero(coherent)[0]
    lo_k = max(int(idx[0]) - 1, 0)
    hi_k = min(int(idx[-1]) + 1, freqs.size - 1)
    lo = max(float(freqs[lo_k]), prior_hz[0])
    hi = min(float(freqs[hi_k]), prior_hz[1])
    span = inside & (freqs >= lo) & (freqs <= hi)
    weight = np.where(span, debiased, 0.0)
    return CoherentBand(
        (lo, hi), float(np.mean(msc[span])), threshold, n_segments, freqs, msc, weight, tones
    )


def ht_weights(band: CoherentBand, nfft: int, fs: float) -> np.ndarray:
    """The HT weight MSC / (1 - MSC) on the rfft grid of ``nfft`` (linear interpolation of the
    Welch bins); the correlator divides by |G_ab| itself."""
    fine = np.fft.rfftfreq(nfft, 1.0 / fs)
    w = np.interp(fine, band.freqs, band.weight, left=0.0, right=0.0)
    return w / (1.0 - w)
