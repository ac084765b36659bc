"""Time delay between two simultaneous recordings, and where that puts the leak on the pipe.

Generalized cross-correlation (GCC): the cross-spectrum G = A * conj(B) of the two recordings,
weighted, band-limited to where leak noise carries on the pipe material, and transformed back
to a correlation over lags. Its peak is the time-difference of arrival

    tdoa = t_A - t_B          (negative: the leak is nearer A)

and with the loggers D metres apart on pipe of wave speed c the leak lies (D + c * tdoa) / 2
from A. Weightings:
- ``"phat"``: G / |G| keeps only the phase: a sharp peak whatever the leak's spectrum colour;
- ``"scot"``: G / sqrt(S_aa * S_bb) with auto-spectra smoothed across frequency: whitens each
  channel, keeps the coherence (better than PHAT when one channel has strong tones);
- ``"none"``: the plain (band-limited) cross-correlation;
- ``"ht"`` (Hannan-Thomson / maximum likelihood, Knapp & Carter 1976): G / |G| times
  MSC / (1 - MSC), the magnitude-squared coherence of a Welch cross-spectrum
  (``dsp.coherence``). Frequencies where both loggers hear the same source weigh most, where
  they hear unrelated noise (traffic on one street, flow at one fitting) about nothing; the
  band shrinks to where the coherence is significant inside the given (material) band, and
  steady tones get no weight.

Only lags within +-D/c can hold a leak between the loggers, so the FFT length is
next_fast_len(N + max_lag), not 2N - 1: long enough that the circular correlation equals the
linear one over that window (no wrap-around), about half the work of a full correlation. The
peak is refined below one sample by Newton steps on the exact band-limited correlation, which is
a finite sum of complex exponentials we already hold (no interpolation model).

Confidence is a probability-like figure that the peak is the source's and not noise's:
the correlation away from the main lobe is noise of robust standard deviation sigma (median
absolute deviation); a peak ``z`` sigmas up among ``N`` independent lags in the search window
(``N`` = 2 x max_lag x the weighting's equivalent bandwidth) would come from noise alone with
probability ``p = 1 - Phi(z)**N``. ``significance = -log10(p)``; confidence =
``logistic((significance - 2) / 0.5)`` (0.5 at p = 1 %), times ``logistic((z - z2 - 2) /
0.7)`` for a second peak ``z2`` in the window nearly as tall (an ambiguous lag), and at most
``EDGE_CONFIDENCE`` when the peak sits on the window's edge (a source at or beyond a logger).

Position helpers: ``locate_on_path`` for one wave speed, ``locate_on_legs`` for a path of
segments of different materials (travel time per segment).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from dsp._numba import jit
from dsp.coherence import (
    CoherentBand,
    choose_band,
    coherence_nperseg,
    plausible_band,
    welch_cross_spectra,
)
from dsp.spectra import all_finite, kernel_input

__all__ = [
    "WEIGHTINGS",
    "TdoaResult",
    "gcc_tdoa",
    "limit_transients",
    "locate_on_legs",
    "locate_on_path",
    "locate_tdoa",
    "next_fast_len",
]

Weighting = Literal["phat", "scot", "none", "ht"]
WEIGHTINGS: tuple[str, ...] = ("phat", "scot", "none", "ht")

# Raised-cosine taper at each band edge, as a fraction of the bandwidth: a brick-wall band
# gives sinc sidelobes that compete with the peak at low SNR.
BAND_TAPER_FRACTION = 0.1
# SCOT smooths each auto-spectrum over this many Hz (a single FFT frame's |A|^2 is too noisy
# to divide by; with no smoothing SCOT would equal PHAT).
SCOT_SMOOTHING_HZ = 8.0
# The main lobe excluded from the sidelobe search spans this many 1/bandwidth either side.
MAIN_LOBE_WIDTHS = 2.0
# Sidelobe statistics need some lags beyond the main lobe even when +-D/c is tiny.
MIN_SIDELOBE_LAGS = 32
NEWTON_STEPS = 4
# How far beyond +-D/c to look for a stronger peak (a source outside the loggers).
OUTSIDE_SEARCH_FACTOR = 1.5
# Confidence: 0.5 where noise alone would give such a peak 1 % of the time (significance 2).
SIGNIFICANCE_AT_HALF = 2.0
SIGNIFICANCE_WIDTH = 0.5
# A second peak within this many sigmas of the first makes the lag ambiguous.
AMBIGUITY_Z = 2.0
AMBIGUITY_WIDTH = 0.7
EDGE_CONFIDENCE = 0.3


@dataclass(frozen=True, slots=True)
class TdoaResult:
    """What a correlation found.

    ``tdoa_s`` = t_A - t_B. ``confidence`` in [0, 1] (module docstring): >= 0.5 means the
    peak is the source's with noise alone giving such a peak under 1 % of the time;
    ``significance`` is that -log10(p). ``peak_to_sidelobe`` is the peak over the largest
    |correlation| outside the main lobe. ``peak`` is the correlation at the peak,
    normalised so that identical inputs give 1. ``at_window_edge`` means the peak sits on the
    +-max_lag limit; ``outside_peak`` that the correlation just beyond +-max_lag (up to 1.5x)
    is taller than the best peak inside: the source is probably not between the loggers.
    ``lags_s`` / ``correlation`` hold the weighted correlation over the searched window,
    sampled every sample, or every few samples when the band lies well below Nyquist (the
    band-limited correlation needs no more; the peak is refined on the exact spectrum).
    ``band_hz`` is the band correlated (for ``"ht"`` the coherent span chosen inside the given
    band); ``mean_coherence`` the mean MSC over it (``"ht"`` only).
    """

    tdoa_s: float
    confidence: float
    peak: float
    peak_to_sidelobe: float
    lag_samples: float
    fs: float
    max_lag_s: float
    weighting: str
    band_hz: tuple[float, float] | None
    at_window_edge: bool
    outside_peak: bool
    lags_s: np.ndarray
    correlation: np.ndarray
    significance: float = 0.0
    mean_coherence: float | None = None


@lru_cache(maxsize=256)
def next_fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (what pocketfft transforms fastest)."""
    if n <= 1:
        return 1
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _as_signal(x: np.ndarray, name: str) -> np.ndarray:
    arr = kernel_input(x)
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"{name} must be a 1-D array of at least 2 samples, got shape {arr.shape}")
    if not all_finite(arr):
        raise ValueError(f"{name} contains NaN or infinite samples")
    return arr


_MODES = {"none": 0, "phat": 1, "scot": 2, "ht": 3}


@jit
def _band_weight(f, lo, hi, taper):  # pragma: no cover - compiled
    """Raised-cosine-edged band mask at frequency ``f``; lo < 0 means no band (all but DC)."""
    if lo < 0:
        return 1.0 if f > 0 else 0.0
    if f < lo or f > hi:
        return 0.0
    if taper > 0 and f < lo + taper:
        return 0.5 - 0.5 * np.cos(np.pi * (f - lo) / taper)
    if taper > 0 and f > hi - taper:
        return 0.5 - 0.5 * np.cos(np.pi * (hi - f) / taper)
    return 1.0


@jit
def _moving_average(x, bins):  # pragma: no cover - compiled
    n = x.size
    out = np.empty(n)
    csum = np.zeros(n + 1)
    for i in range(n):
        csum[i + 1] = csum[i] + x[i]
    half = bins // 2
    for i in range(n):
        lo = max(0, i - half)
        hi = min(n, i + half + 1)
        out[i] = (csum[hi] - csum[lo]) / (hi - lo)
    return out


@jit
def _gcc_kernel(
    a, b, nfft, fs, lo, hi, taper, mode, smooth_bins, computed, given
):  # pragma: no cover
    """Weighted, band-limited cross-spectrum and its correlation over lags +-computed.

    One pass over the band's bins only (everything outside stays zero). With a band the mean
    needs no removing: it lives in bin 0, which the band excludes. np.fft inside njit is
    rocket-fft (DUCC0): about twice as fast here as numpy's own FFT.
    """
    if lo < 0:
        # Full band: remove the means so the result is the linear correlation of the
        # mean-removed signals (zeroing bin 0 of the padded FFT alone is not the same).
        a = a - a.mean()
        b = b - b.mean()
    fa = np.fft.rfft(a, nfft)
    fb = np.fft.rfft(b, nfft)
    nbins = fa.size
    df = fs / nfft
    if lo < 0:
        k_lo, k_hi = 1, nbins - 1
    else:
        k_lo = max(1, int(np.ceil(lo / df)))
        k_hi = min(nbins - 1, int(np.floor(hi / df)))
    spec = np.zeros(nbins, dtype=np.complex128)
    tiny = 1e-300
    if mode == 2:  # SCOT divides by auto-spectra smoothed across frequency
        saa = _moving_average(fa.real**2 + fa.imag**2, smooth_bins)
        sbb = _moving_average(fb.real**2 + fb.imag**2, smooth_bins)
    else:
        saa = np.empty(0)
        sbb = np.empty(0)
    total = 0.0
    total2 = 0.0
    for k in range(k_lo, k_hi + 1):
        w = _band_weight(k * df, lo, hi, taper)
        if mode == 3:  # given weights (HT: MSC / (1 - MSC)) on the phase
            w *= given[k]
        if w == 0.0:
            continue
        total += 2.0 * w
        total2 += 4.0 * w * w
        # A conj(B) in real arithmetic: numba's complex abs is a hypot, twice as slow here
        ar, ai, br, bi = fa[k].real, fa[k].imag, fb[k].real, fb[k].imag
        gr = ar * br + ai * bi
        gi = ai * br - ar * bi
        if mode == 1 or mode == 3:  # PHAT (and HT): keep the phase only, then weight
            f = w / max(math.sqrt(gr * gr + gi * gi), tiny)
        elif mode == 2:
            f = w / max(math.sqrt(saa[k] * sbb[k]), tiny)
        else:
            f = w
        spec[k] = complex(gr * f, gi * f)
    if mode == 0:
        # Plain correlation normalised by the mean-removed energies (identical inputs peak at 1).
        n = a.size
        ea = max(np.sum(a * a) - n * a.mean() ** 2, 0.0)
        eb = max(np.sum(b * b) - n * b.mean() ** 2, 0.0)
        scale = 1.0 / max(np.sqrt(ea * eb), tiny)
    else:
        # Whitened: a perfect match peaks at 1 (sum of the band weights).
        scale = nfft / max(total, tiny)
    for k in range(k_lo, k_hi + 1):
        spec[k] *= scale
    # A band well below Nyquist makes a correlation that needs fewer samples: evaluate it
    # every `step` lags with an inverse transform `step` times shorter (power-of-two steps
    # while the band's top bin stays below the shorter transform's Nyquist). The peak is
    # refined on the exact spectrum afterwards, so nothing is lost.
    step = 1
    if lo >= 0:
        while nfft % (2 * step) == 0 and 2 * k_hi * (2 * step) < nfft:
            step *= 2
    nfft_d = nfft // step
    circ = np.fft.irfft(spec[: nfft_d // 2 + 1], nfft_d) / step
    half = computed // step
    corr = np.empty(2 * half + 1)
    corr[:half] = circ[nfft_d - half :]
    corr[half:] = circ[: half + 1]
    # the equivalent bandwidth of the band and given weights, (sum w)^2 / sum w^2 bins: how
    # many independent lags a window holds (the data's own |G| is left out, as for PHAT)
    return corr, spec, total * total / max(total2, tiny) * df, step


@jit
def _refine_peak(spec, nfft, k0, coarse, steps, bound):  # pragma: no cover - compiled
    """Newton steps on R(tau) = sum_k c_k Re(G_k exp(2j pi k tau / nfft)) from ``coarse``.

    R is the exact band-limited correlation (the irfft we sampled), so its maximum between
    samples is found without an interpolation model. Falls back to ``coarse`` if Newton
    leaves the +-``bound`` sample neighbourhood of the sampled peak ``k0`` (the correlation's
    sampling step) or R is not concave there. Stops once a step is below 1e-4 sample.
    """
    nbins = spec.size
    first = -1
    last = -1
    for k in range(nbins):
        if spec[k] != 0:
            first = k
            break
    for k in range(nbins - 1, -1, -1):
        if spec[k] != 0:
            last = k
            break
    if first < 0:
        return coarse
    tau = coarse
    for _ in range(steps):
        rot = np.exp(2j * np.pi * tau / nfft)
        z = np.exp(2j * np.pi * first * tau / nfft)
        d1 = 0.0
        d2 = 0.0
        for k in range(first, last + 1):
            # irfft doubles every bin except DC and Nyquist.
            c = 1.0 if (k == 0 or 2 * k == nfft) else 2.0
            ph = spec[k] * z
            om = 2.0 * np.pi * k / nfft
            d1 -= c * om * ph.imag
            d2 -= c * om * om * ph.real
            z *= rot
        if d2 >= 0:
            return coarse
        step = d1 / d2
        tau -= step
        if abs(tau - k0) > bound:
            return coarse
        if abs(step) < 1e-4:
            break
    return tau


def gcc_tdoa(
    a: np.ndarray,
    b: np.ndarray,
    fs: float,
    *,
    max_lag_s: float,
    band_hz: tuple[float, float] | None = None,
    weighting: Weighting = "phat",
    search_hz: tuple[float, float] | None = None,
) -> TdoaResult:
    """Time difference of arrival t_A - t_B between two simultaneous recordings.

    ``max_lag_s`` is the search limit, D / c for loggers D metres apart (or the path's total
    travel time for mixed materials; a limit beyond the recording's length searches every lag
    the recording holds); ``band_hz`` the leak band of the pipe material
    (``Material.band_hz``), None for all frequencies. With ``"ht"`` the coherent span is
    looked for in ``search_hz`` (default ``dsp.coherence.plausible_band(band_hz, fs)``: the
    material's band widened by an octave either side); when nothing there is significantly
    coherent, the result is PHAT over ``band_hz`` (and says so in ``weighting``). Raises
    ``ValueError`` for unequal or too-short recordings, non-finite samples, a band outside
    (0, fs/2) or an unknown weighting.
    """
    a, b, band_hz = _checked(a, b, fs, max_lag_s, band_hz)
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r} (known: {', '.join(WEIGHTINGS)})")
    if weighting != "ht":
        return _correlate(a, b, fs, max_lag_s, band_hz, weighting, None, None)
    if search_hz is None:
        search_hz = plausible_band(band_hz, fs)
    coherent = _coherent_band(a, b, fs, max_lag_s, search_hz)
    return _ht_or_phat(a, b, fs, max_lag_s, band_hz, coherent)


def _checked(
    a: np.ndarray, b: np.ndarray, fs: float, max_lag_s: float, band_hz: tuple[float, float] | None
) -> tuple[np.ndarray, np.ndarray, tuple[float, float] | None]:
    a = _as_signal(a, "recording A")
    b = _as_signal(b, "recording B")
    if b.size != a.size:
        raise ValueError(f"recordings differ in length: {a.size} vs {b.size} samples")
    if not (fs > 0 and math.isfinite(fs)):
        raise ValueError(f"sample rate must be positive, got {fs}")
    if not (max_lag_s > 0 and math.isfinite(max_lag_s)):
        raise ValueError(f"max_lag_s must be positive, got {max_lag_s}")
    if band_hz is not None:
        lo, hi = (float(band_hz[0]), float(band_hz[1]))
        if not (0 <= lo < hi <= fs / 2):
            raise ValueError(f"band {lo:g}-{hi:g} Hz must lie within 0-{fs / 2:g} Hz")
        band_hz = (lo, hi)
    return a, b, band_hz


def _ht_or_phat(
    a: np.ndarray,
    b: np.ndarray,
    fs: float,
    max_lag_s: float,
    band_hz: tuple[float, float] | None,
    coherent: CoherentBand,
) -> TdoaResult:
    """HT over the coherent span; PHAT over ``band_hz`` (lines left out) when none was found:
    the weights would be noise (the result says so in ``weighting``)."""
    if coherent.band_hz is None:
        return _correlate(
            a, b, fs, max_lag_s, band_hz, "phat", coherent.line_free, coherent.mean_coherence
        )
    return _correlate(
        a, b, fs, max_lag_s, coherent.band_hz, "ht", coherent.ht_weight, coherent.mean_coherence
    )


def _correlate(
    a: np.ndarray,
    b: np.ndarray,
    fs: float,
    max_lag_s: float,
    band_hz: tuple[float, float] | None,
    weighting: str,
    weights: Callable[[int, float], np.ndarray] | None,
    mean_coherence: float | None,
) -> TdoaResult:
    """One weighted correlation, its refined peak and confidence. ``weights(nfft, fs)`` gives
    per-bin weights on the phase (mode 3) for ``"ht"``, and for ``"phat"`` with lines left
    out; None = the weighting's own."""
    n = a.size
    max_lag = min(math.ceil(max_lag_s * fs), n - 1)
    bandwidth = (band_hz[1] - band_hz[0]) if band_hz else fs / 2
    lobe = max(1, math.ceil(MAIN_LOBE_WIDTHS * fs / bandwidth))
    # Compute lags beyond the window: sidelobes exist even for close loggers, and a stronger
    # peak just outside +-D/c says the source is not between the loggers.
    computed = min(n - 1, max(math.ceil(OUTSIDE_SEARCH_FACTOR * max_lag), lobe + MIN_SIDELOBE_LAGS))
    nfft = next_fast_len(n + computed)
    mode = _MODES[weighting] if weights is None else _MODES["ht"]
    given = weights(nfft, fs) if weights is not None else np.zeros(1)

    lo, hi = band_hz if band_hz is not None else (-1.0, -1.0)
    corr, wspec, bandwidth_hz, step = _gcc_kernel(
        a,
        b,
        nfft,
        float(fs),
        lo,
        hi,
        BAND_TAPER_FRACTION * (hi - lo),
        mode,
        max(1, round(SCOT_SMOOTHING_HZ * nfft / fs)),
        computed,
        given,
    )

    # corr holds lags -half*step .. +half*step every `step` samples
    half = (corr.size - 1) // 2
    reach = min(math.ceil(max_lag / step), half)  # coarse lags covering +-max_lag
    window = corr[half - reach : half + reach + 1]
    i = int(np.argmax(window))
    k0 = (i - reach) * step
    coarse = float(k0)
    if 0 < i < window.size - 1:
        y0, y1, y2 = window[i - 1], window[i], window[i + 1]
        denom = y0 - 2.0 * y1 + y2
        if denom < 0:
            coarse = k0 + 0.5 * (y0 - y2) / denom * step
    lag = _refine_peak(wspec, nfft, k0, coarse, NEWTON_STEPS, float(step))
    lag = min(max(lag, -max_lag_s * fs), max_lag_s * fs)
    peak = float(window[i])

    sidelobe, median, sigma, second, beyond, n_off = _peak_stats(
        corr, int(step), int(k0), int(lobe), int(max_lag)
    )
    if peak <= 0:
        psr = 0.0
    elif sidelobe <= 0:
        psr = math.inf
    else:
        psr = peak / sidelobe
    at_edge = abs(i - reach) >= reach
    confidence, significance = _confidence(
        peak, median, sigma, second, n_off, max_lag, bandwidth_hz, fs
    )
    if at_edge:
        confidence = min(confidence, EDGE_CONFIDENCE)
    return TdoaResult(
        tdoa_s=lag / fs,
        confidence=confidence,
        peak=peak,
        peak_to_sidelobe=psr,
        lag_samples=lag,
        fs=float(fs),
        max_lag_s=float(max_lag_s),
        weighting=weighting,
        band_hz=band_hz,
        at_window_edge=at_edge,
        outside_peak=bool(beyond > peak),
        lags_s=np.arange(-reach, reach + 1) * (step / fs),
        correlation=window.copy(),
        significance=significance,
        mean_coherence=mean_coherence,
    )


TRANSIENT_FRAME_S = 0.01  # transients are judged on 10 ms frames
TRANSIENT_FACTOR = 4.0  # a frame 12 dB over the median frame is a transient


@jit
def _limit_kernel(x, frame, factor):  # pragma: no cover - compiled
    n_frames = x.size // frame
    rms = np.empty(max(n_frames, 1))
    for j in range(n_frames):
        acc = 0.0
        for i in range(j * frame, (j + 1) * frame):
            acc += x[i] * x[i]
        rms[j] = np.sqrt(acc / frame)
    out = x.copy()
    if n_frames < 8:
        return out
    limit = factor * np.median(rms)
    for j in range(n_frames):
        if rms[j] > limit > 0.0:
            g = limit / rms[j]
            for i in range(j * frame, (j + 1) * frame):
                out[i] *= g
    return out


def limit_transients(x: np.ndarray, fs: float) -> np.ndarray:
    """``x`` with every 10 ms frame whose RMS exceeds 4x the median frame's scaled down to
    that limit (the mean removed first). Steady noise (a leak, the ambient) is never touched:
    a 10 ms frame of Gaussian noise does not reach 12 dB over the median; clicks, knocks and
    the loudest moments of a passing lorry are. Applied to each recording on its own, so
    the delay between the recordings is kept."""
    x = kernel_input(x)
    frame = max(16, round(TRANSIENT_FRAME_S * fs))
    return _limit_kernel(x - x.mean(), frame, TRANSIENT_FACTOR)


def locate_tdoa(
    a: np.ndarray,
    b: np.ndarray,
    fs: float,
    *,
    max_lag_s: float,
    band_hz: tuple[float, float] | None = None,
    search_hz: tuple[float, float] | None = None,
) -> TdoaResult:
    """The coherence-guided delay the locators use: ``"ht"`` over the coherent span (see
    ``gcc_tdoa``), PHAT over ``band_hz`` and PHAT over the full band, all with the lines of
    pumps and hum left out (``dsp.coherence.tonal_bins``: a tone correlates at every period),
    on the same recordings with their transients limited (``limit_transients``: a click in
    each recording makes a sharp, false PHAT peak at their time difference); the one whose
    peak is least likely noise (highest ``significance``) wins.

    Coherence weighting helps where the loggers share the leak's band and hear their own
    noise elsewhere; where it does not help (a weak leak whose coherence is nowhere
    significant bin by bin, the coherent span taken by something else) a plain PHAT peak is
    the clearer one, and is taken: never worse than plain full-band GCC-PHAT when that one is
    sure. Raises like ``gcc_tdoa``.
    """
    a, b, band_hz = _checked(a, b, fs, max_lag_s, band_hz)
    a = limit_transients(a, fs)
    b = limit_transients(b, fs)
    coherent = _coherent_band(
        a, b, fs, max_lag_s, search_hz if search_hz is not None else plausible_band(band_hz, fs)
    )
    candidates = [_ht_or_phat(a, b, fs, max_lag_s, band_hz, coherent)]
    if band_hz is not None and candidates[0].weighting == "ht":
        candidates.append(
            _correlate(
                a, b, fs, max_lag_s, band_hz, "phat", coherent.line_free, coherent.mean_coherence
            )
        )
    candidates.append(
        _correlate(a, b, fs, max_lag_s, None, "phat", coherent.line_free, coherent.mean_coherence)
    )
    return max(candidates, key=lambda r: r.significance)


def _coherent_band(
    a: np.ndarray, b: np.ndarray, fs: float, max_lag_s: float, search_hz: tuple[float, float]
) -> CoherentBand:
    """The coherence-chosen band inside ``search_hz`` (never below the first Welch bin)."""
    nperseg = coherence_nperseg(a.size, fs, max_lag_s)
    freqs, saa, sbb, sab, nseg = welch_cross_spectra(a, b, fs, min(nperseg, a.size))
    prior = (max(search_hz[0], float(freqs[1])), search_hz[1])
    return choose_band(freqs, saa, sbb, sab, nseg, prior)


@jit
def _peak_stats(corr, step, k0, lobe, max_lag):  # pragma: no cover - compiled
    """Around the peak at lag ``k0`` (samples) of ``corr`` (lags -half*step..half*step):
    the largest |value| outside the main lobe, the median and robust standard deviation
    (1.4826 x MAD) of the values outside it, the largest value outside it within +-max_lag,
    the largest value beyond +-max_lag, and how many values lie outside the lobe."""
    half = (corr.size - 1) // 2
    rest = np.empty(corr.size)
    n_off = 0
    sidelobe = 0.0
    second = -np.inf
    beyond = -np.inf
    for j in range(corr.size):
        lag = (j - half) * step
        v = corr[j]
        if abs(lag) > max_lag and v > beyond:
            beyond = v
        if abs(lag - k0) > lobe:
            rest[n_off] = v
            n_off += 1
            if abs(v) > sidelobe:
                sidelobe = abs(v)
            if abs(lag) <= max_lag and v > second:
                second = v
    if n_off == 0:
        return sidelobe, 0.0, 0.0, second, beyond, 0
    median = np.median(rest[:n_off])
    sigma = 1.4826 * np.median(np.abs(rest[:n_off] - median))
    return sidelobe, median, sigma, second, beyond, n_off


def _confidence(
    peak: float,
    median: float,
    sigma: float,
    second: float,
    n_off: int,
    max_lag: int,
    bandwidth_hz: float,
    fs: float,
) -> tuple[float, float]:
    """``(confidence, significance)`` of the peak (module docstring) from ``_peak_stats``."""
    if n_off < MIN_SIDELOBE_LAGS // 2 or not sigma > 0:
        return 0.0, 0.0
    z = (peak - median) / sigma
    n_lags = max(1.0, 2.0 * max_lag / fs * bandwidth_hz)
    tail = 0.5 * math.erfc(z / math.sqrt(2.0))  # P(one noise lag > z)
    p = -math.expm1(n_lags * math.log1p(-min(tail, 1.0 - 1e-16))) if tail > 0 else 0.0
    significance = -math.log10(p) if p > 0 else 300.0
    conf = _logistic((significance - SIGNIFICANCE_AT_HALF) / SIGNIFICANCE_WIDTH)
    if math.isfinite(second):
        z2 = (second - median) / sigma
        conf *= _logistic((z - z2 - AMBIGUITY_Z) / AMBIGUITY_WIDTH)
    return conf, significance


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0


def locate_on_path(tdoa_s: float, spacing_m: float, wave_speed_m_s: float) -> float:
    """Distance of the leak from logger A: (D + c * tdoa) / 2.

    Raises ``ValueError`` for a non-positive spacing or wave speed, or a delay longer than the
    travel time between the loggers (the leak would not lie between them).
    """
    if not (spacing_m > 0 and wave_speed_m_s > 0):
        raise ValueError(
            f"spacing and wave speed must be positive, got {spacing_m} m, {wave_speed_m_s} m/s"
        )
    travel = spacing_m / wave_speed_m_s
    if abs(tdoa_s) > travel * (1 + 1e-9):
        raise ValueError(
            f"delay {tdoa_s * 1e3:.2f} ms exceeds the {travel * 1e3:.2f} ms travel time "
            "between the loggers: the source is not between them"
        )
    return min(max((spacing_m + wave_speed_m_s * tdoa_s) / 2.0, 0.0), spacing_m)


def locate_on_legs(tdoa_s: float, legs: Sequence[tuple[float, float]]) -> float:
    """Distance from A along a path of legs ``(length_m, wave_speed_m_s)``, A's end first.

    With travel time T over the whole path, the leak is where the travel time from A is
    (T + tdoa) / 2; walking the legs converts that time back to metres. Raises ``ValueError``
    for an empty path, a non-positive length or speed, or |tdoa| > T.
    """
    if not legs:
        raise ValueError("the path between the loggers has no segments")
    for length, speed in legs:
        if not (length > 0 and speed > 0):
            raise ValueError(f"leg length and speed must be positive, got {length} m, {speed}")
    total = sum(length / speed for length, speed in legs)
    if abs(tdoa_s) > total * (1 + 1e-9):
        raise ValueError(
            f"delay {tdoa_s * 1e3:.2f} ms exceeds the {total * 1e3:.2f} ms travel time "
            "between the loggers: the source is not between them"
        )
    remaining = min(max((total + tdoa_s) / 2.0, 0.0), total)
    distance = 0.0
    for length, speed in legs:
        leg_time = length / speed
        if remaining <= leg_time:
            return distance + remaining * speed
        remaining -= leg_time
        distance += length
    return distance
