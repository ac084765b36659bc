"""Features of one noise recording: what a leak decision is made from.

One numba pass (``dsp.spectra`` frames: detrend, periodic Hann, rfft, 50 % overlap) gives every
frame's periodogram; one more kernel reduces them to the numbers below. Levels are in dB re
1 unit (``10*log10`` of power; the unit is whatever the samples are in), "in band" means
``band_hz`` (the material's leak band, ``dsp.pipes.Material.band_hz``). Frames are the Welch
segments (``nperseg`` samples, 50 % overlap).

- ``level_db``: in-band level of the Welch PSD (the energy average over the whole recording).
- ``l10_db`` / ``l90_db``: the in-band frame level exceeded 10 % / 90 % of the time (the 90th /
  10th percentile of frame levels, numpy's linear interpolation), ``spread_db = l10 - l90``:
  narrow for continuous noise (leaks, pumps, ambient), wide for intermittent noise (traffic,
  draw-off).
- ``quiet_level_db``: in-band level of the *quiet, tone-free* spectrum: the mean spectrum of the
  quiet frames (tone-free frame level <= its 10th percentile + ``quiet_margin_db``) with tonal
  bins bridged from the free bins either side along a power law (a straight line in log power
  over log frequency: a linear bridge over a pump's dense comb bulges into a false hump).
  Intermittent noise does not reach it (it is judged on the quiet frames), a pump's hum does
  not reach it (tones are left out); a leak, continuous and broadband, does. This is what the
  leak score is built on.
- tonal bins, over the whole spectrum: bins whose periodogram hardly varies across the quiet
  frames (coefficient of variation < ``tonal_cv``; Gaussian noise has about 1, a steady tone
  far less; judged on the quietest 8 frames when fewer are quiet) and one bin either side; and
  lines standing 6 dB over the median of their 8 neighbours either side in the quiet mean
  spectrum (a pump whose speed wanders smears its harmonics: unsteady per bin, still a line).
  Quiet frames and tones are found in two rounds, since each hides the other: a loud hum
  flattens the frame levels that should reveal traffic, and traffic in the quiet frames hides
  the hum's steadiness. ``tonality_db``: in-band power of the quiet spectrum over its
  tone-free part (0 dB = no tones); ``tone_hz``: the strongest tonal bin in band (0 if none).
- ``peak_hz``: the in-band frequency of the Welch PSD maximum; ``flatness``: in-band geometric
  over arithmetic mean of the Welch PSD (1 = white, near 0 = tonal).
- ``band_levels``: octave-band levels of the Welch PSD (``(lo_hz, hi_hz, dB)``), bands centred
  on 31.5 Hz * 2**k wholly below Nyquist.

Gain-free (none moves when the samples are multiplied by any gain):
- ``prominence_db`` / ``slope_db_per_octave``: how far the band's quiet, tone-free spectrum
  stands over its own smooth background (the mean of its power and its highest third-octave
  over it), and its slope (``dsp.shape``);
- ``unsteadiness_db``: the tone-free in-band L50 - L90 beyond what steady Gaussian noise over
  the same bins shows; ``quiet_share``: quiet frames over all frames.
- ``envelope_slope``: how much of the ambient's level swing the band shares: the slope of the
  in-band frame levels on the swing common to the spectrum outside the band (dB per dB). The
  reference is every third-octave wholly below the band (from ``ENVELOPE_LOW_HZ``) or wholly
  above it (up to ``TOP_OF_NYQUIST``) with 4 free bins or more, 3 of them at least: each one's
  frame levels less their own mean, averaged frame by frame (the common mode: one band swinging
  alone, draw-off hiss or a click's ring, is outvoted), read over the frames where that common
  mode is in its quietest ``ENVELOPE_QUIET_SHARE`` (a passing car or a burst of flow lifts the
  reference and leaves the slope to the ambient's own wander); tonal bins and their neighbours
  left out, the common mode's Gaussian estimation noise taken out of its variance. Ambient
  that wanders moves band and reference alike (about 1); a steady leak under it fills the
  band's troughs, so the band moves less (about 1 / (1 + SNR)). NaN when there is no swing to
  read (the common mode varies less than ``ENVELOPE_MIN_VARIANCE_DB2`` beyond its noise),
  fewer than 3 reference bands, fewer than ``_MIN_FRAMES_FOR_CV`` frames (or quiet ones), or
  fewer than 4 free bins in band.
- ``hump_fit``: how much better a power law plus a white floor plus a log-normal hump fits the
  quiet spectrum's tone-free sixth-octave levels than the background alone (the drop in
  relative weighted squared error; ``dsp.shape.hump_fit_kernel``). NaN with fewer than six
  bands to fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dsp._numba import jit
from dsp.shape import (
    HANN_ENBW_BINS,
    TOP_OF_NYQUIST,
    fit_shapes,
    hump_fit_kernel,
    shape_kernel,
)
from dsp.spectra import _check, _frame_psd, _row_sums, default_nperseg

__all__ = [
    "DEFAULT_QUIET_MARGIN_DB",
    "DEFAULT_TONAL_CV",
    "ENVELOPE_LOW_HZ",
    "ENVELOPE_MIN_VARIANCE_DB2",
    "ENVELOPE_QUIET_SHARE",
    "Features",
    "compute_features",
    "judged_band_hz",
    "octave_bands",
]

DEFAULT_QUIET_MARGIN_DB = 2.0  # frames within this of L90 count as quiet
DEFAULT_TONAL_CV = 0.5  # coefficient of variation below which a bin is a steady tone
_TINY = 1e-300  # floor inside log10 so digital silence gives a finite (very low) level
_MIN_FRAMES_FOR_CV = 8  # fewer frames cannot tell a steady tone from noise
# Bins each side of a steady bin left out too: a tone's Hann main lobe is +-2 bins, and the
# bins where it still dominates are steady themselves; a wider guard swallows the noise between
# the close harmonics of a slow pump (every 6 bins at 25 Hz).
_TONE_GUARD_BINS = 1
_LINE_FACTOR = 4.0  # a bin 6 dB over its neighbourhood's median is a line, not noise
_LINE_NEIGHBOURS = 8
_GAUSS_L50_L90 = 1.2816  # L50 - L90 of a Gaussian, in standard deviations
# The envelope's reference: third-octaves outside the band, from this low edge (a sensor's
# high-pass leaves little to read below it) up to TOP_OF_NYQUIST
ENVELOPE_LOW_HZ = 10.0
# The common mode must swing (variance beyond its estimation noise, dB^2) before a slope means
# anything: 0.25 dB^2 is a standard deviation of 0.5 dB.
ENVELOPE_MIN_VARIANCE_DB2 = 0.25
# the share of frames, quietest common mode first, the slope is read over (tenth pass: the
# quiet 40-70 % all did as well; all frames let traffic and flow bursts set the slope)
ENVELOPE_QUIET_SHARE = 0.6
_ENVELOPE_MIN_BINS = 4  # free bins in band and in each reference band
_ENVELOPE_MIN_REFERENCES = 3  # reference bands: fewer cannot outvote one swinging alone
_DB_PER_NEPER = 10.0 / math.log(10.0)


@dataclass(frozen=True, slots=True)
class Features:
    """Features of one recording (see the module docstring for each)."""

    fs: float
    n_samples: int
    nperseg: int
    n_frames: int
    band_hz: tuple[float, float]
    level_db: float
    l10_db: float
    l90_db: float
    spread_db: float
    quiet_level_db: float
    quiet_frames: int
    peak_hz: float
    flatness: float
    tonality_db: float
    tone_hz: float
    band_levels: tuple[tuple[float, float, float], ...]
    prominence_db: float = 0.0
    slope_db_per_octave: float = 0.0
    unsteadiness_db: float = 0.0
    quiet_share: float = 1.0
    envelope_slope: float = math.nan
    hump_fit: float = math.nan


def octave_bands(fs: float) -> tuple[tuple[float, float], ...]:
    """Octave bands centred on 31.5 * 2**k Hz whose upper edge is below Nyquist."""
    out = []
    centre = 31.5
    while centre * math.sqrt(2.0) <= fs / 2.0:
        out.append((centre / math.sqrt(2.0), centre * math.sqrt(2.0)))
        centre *= 2.0
    return tuple(out)


@lru_cache(maxsize=16)
def _octave_edges(fs: float) -> tuple[tuple[tuple[float, float], ...], np.ndarray, np.ndarray]:
    """``octave_bands(fs)`` and their lower and upper edges as arrays (per rate, once)."""
    octaves = octave_bands(fs)
    lo = np.array([b[0] for b in octaves], dtype=np.float64)
    hi = np.array([b[1] for b in octaves], dtype=np.float64)
    return octaves, lo, hi  # shared between calls: the kernel only reads them


@jit
def _percentile_sorted(s: np.ndarray, q: float) -> float:
    # numpy's default ("linear") percentile of an already sorted array
    pos = q / 100.0 * (s.size - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, s.size - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@jit
def _sum_levels(sums: np.ndarray, df: float, nb: int, n_used: int) -> np.ndarray:
    # per-frame in-band levels from the sums over the band's ``n_used`` bins of ``nb`` read,
    # scaled up to the whole band
    lev = np.empty(sums.size)
    for s in range(sums.size):
        lev[s] = 10.0 * math.log10(max(sums[s] * df * nb / max(n_used, 1), _TINY))
    return lev


@jit
def _band_levels(frames: np.ndarray, klo: int, skip: np.ndarray, df: float) -> np.ndarray:
    # per-frame in-band level over the bins not skipped, scaled up to the whole band
    used = np.nonzero(~skip)[0] + klo
    return _sum_levels(_row_sums(frames, used), df, skip.size, used.size)


@jit
def _quiet_mask(lev: np.ndarray, srt: np.ndarray, margin_db: float) -> np.ndarray:
    # ``srt``: ``lev`` sorted
    return lev <= _percentile_sorted(srt, 10.0) + margin_db


@jit
def _tonal_bins(
    frames: np.ndarray, lev: np.ndarray, order: np.ndarray, nq: int, tonal_cv: float, guard: int
) -> tuple[np.ndarray, np.ndarray]:
    # Steadiness is judged on the quiet frames, or on the quietest _MIN_FRAMES_FOR_CV frames
    # when fewer are quiet (the CV of noise over a handful of frames is itself too noisy).
    # ``order``: the frames from quietest to loudest (``_sorted_levels``)
    nfreq = frames.shape[1]
    nv = min(max(nq, _MIN_FRAMES_FOR_CV), lev.size)
    core = np.zeros(nfreq, dtype=np.bool_)
    if nv < _MIN_FRAMES_FOR_CV:
        return core, core.copy()
    # powers of samples as small as a float file may hold (~1e-100) square to nothing: the
    # sums run over rows scaled by the power of two nearest 1 / the loudest of these frames'
    # level, which is exact, so the test is the same at any ordinary gain
    top_db = lev[order[nv - 1]]
    scale = math.ldexp(1.0, min(max(-round(top_db * math.log2(10.0) / 10.0), -1000), 1000))
    # frame by frame, bins inner: the frames array is read row-wise (cache-friendly); four
    # frames a pass, each bin's sums still taken over the frames in order
    acc = np.zeros(nfreq)
    acc2 = np.zeros(nfreq)
    i = 0
    while i + 4 <= nv:
        r0 = frames[order[i]]
        r1 = frames[order[i + 1]]
        r2 = frames[order[i + 2]]
        r3 = frames[order[i + 3]]
        for k in range(nfreq):
            v0 = r0[k] * scale
            v1 = r1[k] * scale
            v2 = r2[k] * scale
            v3 = r3[k] * scale
            acc[k] = acc[k] + v0 + v1 + v2 + v3
            acc2[k] = acc2[k] + v0 * v0 + v1 * v1 + v2 * v2 + v3 * v3
        i += 4
    for j in range(i, nv):
        row = frames[order[j]]
        for k in range(nfreq):
            v = row[k] * scale
            acc[k] += v
            acc2[k] += v * v
    for k in range(nfreq):
        m = acc[k] / nv
        var = max(acc2[k] / nv - m * m, 0.0)
        core[k] = m > 0.0 and math.sqrt(var) < tonal_cv * m
    tonal = core.copy()
    for k in range(nfreq):
        if core[k]:
            for g in range(max(0, k - guard), min(nfreq, k + guard + 1)):
                tonal[g] = True
    return core, tonal


@jit
def _peak_bins(spectrum: np.ndarray, factor: float, half: int) -> np.ndarray:
    """Bins more than ``factor`` x the median of the ``half`` bins either side (DC and the
    bin itself left out, four at least), and one bin either side of each. Most bins stand
    under ``factor`` x their neighbours' minimum, which the median is not below (nor, rounded
    alike, ``factor`` x it): only the others sort their neighbours for the median."""
    n = spectrum.size
    core = np.zeros(n, dtype=np.bool_)
    window = np.empty(2 * half)
    # the neighbours' minimum, one offset at a time over all bins (a vectorised loop each): a
    # minimum is the same whatever the order its values are met in
    low = np.full(n, math.inf)
    for d in range(1, half + 1):
        for k in range(1 + d, n):
            low[k] = min(low[k], spectrum[k - d])
        for k in range(1, n - d):
            low[k] = min(low[k], spectrum[k + d])
    for k in range(1, n):
        first = max(1, k - half)
        last = min(n - 1, k + half)
        m = last - first  # the bin itself is not its own neighbour
        if m < 4 or not spectrum[k] > factor * low[k]:
            continue
        # the neighbours sorted (insertion sort: a handful of values)
        c = 0
        for j in range(first, last + 1):
            if j == k:
                continue
            v = spectrum[j]
            i = c
            while i > 0 and window[i - 1] > v:
                window[i] = window[i - 1]
                i -= 1
            window[i] = v
            c += 1
        median = window[m // 2] if m % 2 else 0.5 * (window[m // 2 - 1] + window[m // 2])
        core[k] = spectrum[k] > factor * median
    out = core.copy()
    for k in range(n):
        if core[k]:
            out[max(0, k - 1)] = True
            out[min(n - 1, k + 1)] = True
    return out


@jit
def _log_point(spectrum: np.ndarray, k: int) -> tuple[float, float]:
    # (log frequency, log power) of bin k, the bridge's coordinates (DC placed at half a bin)
    return math.log(max(float(k), 0.5)), math.log(max(spectrum[k], _TINY))


@jit
def _power_law_fill(spectrum: np.ndarray, tonal: np.ndarray) -> np.ndarray:
    """``spectrum`` with its ``tonal`` bins bridged from the free bins either side along a
    straight line in log power over log frequency (flat beyond the first and last free bin);
    zeros when no bin is free. Bit for bit ``np.exp(np.interp(log_f, log_f[free],
    log_q[free]))`` at the tonal bins (the same arithmetic: the slope between the two free
    bins around, from the left one), the free bins as measured; only the tonal bins and the
    free bins beside them take a logarithm."""
    n = spectrum.size
    filled = spectrum.copy()
    first = 0
    while first < n and tonal[first]:
        first += 1
    if first == n:
        return np.zeros(n)
    last = n - 1
    while tonal[last]:
        last -= 1
    k = 0
    while k < n:
        if not tonal[k]:
            k += 1
            continue
        end = k  # the run of tonal bins k .. end - 1, free bins (if any) at k - 1 and end
        while end < n and tonal[end]:
            end += 1
        if k < first or end > last:
            # before the first free bin or after the last: that bin's value
            edge = first if k < first else last
            value = math.exp(_log_point(spectrum, edge)[1])
            for j in range(k, end):
                filled[j] = value
        else:
            xa, ya = _log_point(spectrum, k - 1)
            xb, yb = _log_point(spectrum, end)
            slope = (yb - ya) / (xb - xa)
            for j in range(k, end):
                xj = math.log(max(float(j), 0.5))
                y = slope * (xj - xa) + ya
                if math.isnan(y):  # numpy's fallback (never with finite powers)
                    y = slope * (xj - xb) + yb
                    if math.isnan(y) and ya == yb:
                        y = ya
                filled[j] = math.exp(y)
        k = end
    return filled


@jit
def _sorted_levels(lev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, sorted): the frames from quietest to loudest (a stable sort) and their levels
    in that order, the values ``np.sort(lev)`` gives: one sort serves the percentiles, the
    quiet mask and the steadiness test."""
    order = np.argsort(lev, kind="mergesort")
    return order, lev[order]


@lru_cache(maxsize=64)
def _envelope_references(fs: float, n: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last bins of the third-octaves (centres 1000 Hz * 2**(k/3)) wholly
    outside ``lo..hi``, from ``ENVELOPE_LOW_HZ`` up to ``TOP_OF_NYQUIST`` (per rate and band,
    once; the kernel only reads them)."""
    df = fs / n
    f = np.arange(n // 2 + 1) * df
    top = TOP_OF_NYQUIST * fs / 2.0
    starts, stops = [], []
    for k in range(-30, 40):
        centre = 1000.0 * 2.0 ** (k / 3.0)
        b_lo, b_hi = centre * 2.0 ** (-1.0 / 6.0), centre * 2.0 ** (1.0 / 6.0)
        if b_lo < ENVELOPE_LOW_HZ or b_hi > top or not (b_hi <= lo or b_lo >= hi):
            continue
        bins = np.nonzero((f >= b_lo) & (f < b_hi))[0]
        if bins.size:
            starts.append(int(bins[0]))
            stops.append(int(bins[-1]) + 1)
    return np.array(starts, dtype=np.int64), np.array(stops, dtype=np.int64)


@jit
def _envelope_slope(
    frames: np.ndarray,
    free: np.ndarray,
    klo: int,
    khi: int,
    ref_starts: np.ndarray,
    ref_stops: np.ndarray,
    quiet_share: float,
    min_variance: float,
) -> float:
    # slope of the in-band frame level (free bins klo..khi) on the common mode of the reference
    # bands' (each band's free bins ref_starts[j]..ref_stops[j]-1), over the frames where the
    # common mode is in its quietest ``quiet_share``: see ``envelope_slope`` above
    nseg = frames.shape[0]
    if nseg < _MIN_FRAMES_FOR_CV:
        return math.nan
    bins_in = np.nonzero(free[klo : khi + 1])[0] + klo
    if bins_in.size < _ENVELOPE_MIN_BINS:
        return math.nan
    common = np.zeros(nseg)
    lev = np.empty(nseg)
    n_refs = 0
    noise = 0.0
    for j in range(ref_starts.size):
        bins = np.nonzero(free[ref_starts[j] : ref_stops[j]])[0] + ref_starts[j]
        if bins.size < _ENVELOPE_MIN_BINS:
            continue
        p = _row_sums(frames, bins)
        for s in range(nseg):
            lev[s] = _DB_PER_NEPER * math.log(p[s] + _TINY)
        mean = lev.mean()
        for s in range(nseg):
            common[s] += lev[s] - mean
        # a sum of n free bins' periodograms has a level whose Gaussian estimation variance is
        # about DB_PER_NEPER**2 * ENBW / n (Hann bins overlap by the window's noise bandwidth)
        noise += _DB_PER_NEPER * _DB_PER_NEPER * HANN_ENBW_BINS / bins.size
        n_refs += 1
    if n_refs < _ENVELOPE_MIN_REFERENCES:
        return math.nan
    common /= n_refs
    noise /= n_refs * n_refs
    cut = _percentile_sorted(np.sort(common), 100.0 * quiet_share)
    p_in = _row_sums(frames, bins_in)
    n_kept = 0
    mx = 0.0
    my = 0.0
    for s in range(nseg):
        lev[s] = _DB_PER_NEPER * math.log(p_in[s] + _TINY)
        if common[s] <= cut:
            n_kept += 1
            mx += common[s]
            my += lev[s]
    if n_kept < _MIN_FRAMES_FOR_CV:
        return math.nan
    mx /= n_kept
    my /= n_kept
    vx = 0.0
    cxy = 0.0
    for s in range(nseg):
        if common[s] <= cut:
            vx += (common[s] - mx) * (common[s] - mx)
            cxy += (common[s] - mx) * (lev[s] - my)
    vx = vx / n_kept - noise
    if not vx > min_variance:
        return math.nan
    return cxy / n_kept / vx


@jit
def _reduce_kernel(
    frames: np.ndarray,
    df: float,
    klo: int,
    khi: int,
    quiet_margin_db: float,
    tonal_cv: float,
    tone_guard: int,
    edges_lo: np.ndarray,
    edges_hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # stats, the quiet tone-free spectrum (all bins), the octave-band levels and the bins free
    # of tones (the hump fit reads those)
    nseg, nfreq = frames.shape
    nb = khi - klo + 1
    psd = np.zeros(nfreq)
    for s in range(nseg):
        row = frames[s]
        for k in range(nfreq):
            psd[k] += row[k]
    psd /= nseg
    band_sums = _row_sums(frames, np.arange(klo, khi + 1))
    lev_full = _sum_levels(band_sums, df, nb, nb)
    order, srt = _sorted_levels(lev_full)
    l10 = _percentile_sorted(srt, 90.0)
    l90 = _percentile_sorted(srt, 10.0)
    # Quiet frames and tones depend on each other: a loud hum hides traffic in the frame levels,
    # traffic in the quiet frames hides the hum's steadiness. Two rounds: quiet frames by level,
    # tones from them, quiet frames again by tone-free level, tones again. Tones are found over
    # the whole spectrum: the shape features look beyond the band.
    # A round that leaves the frame levels as they were (no tone in band, or the same tones in
    # band as the levels already leave out: the usual case) is a fixed point: the next round
    # would see the same levels and find the same tones, so it is skipped.
    lev = lev_full
    lev_skip = np.zeros(nb, dtype=np.bool_)  # the band bins ``lev`` leaves out
    quiet = _quiet_mask(lev, srt, quiet_margin_db)
    core = np.zeros(nfreq, dtype=np.bool_)
    tonal = core.copy()
    for _ in range(2):
        core, tonal = _tonal_bins(frames, lev, order, int(np.sum(quiet)), tonal_cv, tone_guard)
        skip = tonal[klo : khi + 1]
        if np.sum(skip) == nb or np.array_equal(skip, lev_skip):
            break
        lev = _band_levels(frames, klo, skip, df)
        lev_skip = skip.copy()
        order, srt = _sorted_levels(lev)
        quiet = _quiet_mask(lev, srt, quiet_margin_db)
    nq = int(np.sum(quiet))
    qmean = np.zeros(nfreq)
    for s in range(nseg):
        if quiet[s]:
            row = frames[s]
            for k in range(nfreq):
                qmean[k] += row[k]
    qmean /= nq
    # Lines the steadiness test missed: a pump whose speed wanders moves its harmonics across
    # bins (unsteady in each), yet they still stand far above their neighbours.
    tonal |= _peak_bins(qmean, _LINE_FACTOR, _LINE_NEIGHBOURS)
    # tone-free quiet spectrum: tonal bins bridged from the free bins either side along a power
    # law (a straight line in log power over log frequency, the background's own shape). A
    # straight line in linear power bulges into a hump over a long gap (a pump's dense comb),
    # and the shape features would read that hump as a leak.
    filled = _power_law_fill(qmean, tonal)
    all_power = np.sum(qmean[klo : khi + 1]) * df
    free_in_band = int(nb - np.sum(tonal[klo : khi + 1]))
    free_power = np.sum(filled[klo : khi + 1]) * df if free_in_band > 0 else 0.0
    tone_bin = -1
    for k in range(klo, khi + 1):
        if core[k] and (tone_bin < 0 or qmean[k] > qmean[tone_bin]):
            tone_bin = k
    # unsteadiness: the tone-free L50 - L90 beyond what steady Gaussian noise over the same
    # free bins shows (1.2816 sigma; sigma of a mean over m/ENBW independent bins). The lower
    # half only: a passing car or a tap fills the loud frames and leaves it alone; noise that
    # fluctuates all the time (flow) widens it, and a continuous leak underneath narrows it.
    lower_spread = _percentile_sorted(srt, 50.0) - _percentile_sorted(srt, 10.0)
    expected = _GAUSS_L50_L90 * _DB_PER_NEPER * math.sqrt(HANN_ENBW_BINS / max(free_in_band, 1))
    # Welch-PSD summaries over the band
    peak_k = klo
    log_sum = 0.0
    lin_sum = 0.0
    for k in range(klo, khi + 1):
        if psd[k] > psd[peak_k]:
            peak_k = k
        log_sum += math.log(max(psd[k], _TINY))
        lin_sum += psd[k]
    flat = math.exp(log_sum / nb) / (lin_sum / nb) if lin_sum > 0.0 else 0.0
    bands = np.empty(edges_lo.size)
    for b in range(edges_lo.size):
        acc = 0.0
        k = max(0, math.floor(edges_lo[b] / df) - 1)  # the bins of [lo, hi) only
        while k < nfreq and k * df < edges_hi[b]:
            if k * df >= edges_lo[b]:
                acc += psd[k]
            k += 1
        bands[b] = 10.0 * math.log10(max(acc * df, _TINY))
    level = 10.0 * math.log10(max(lin_sum * df, _TINY))
    quiet_db = 10.0 * math.log10(max(free_power, _TINY))
    tonality = 10.0 * math.log10(max(all_power, _TINY) / max(free_power, _TINY))
    if free_in_band == 0:
        tonality = math.inf
    stats = np.array(
        [
            level,
            l10,
            l90,
            quiet_db,
            float(nq),
            peak_k * df,
            flat,
            tonality,
            max(tone_bin, 0) * df,
            lower_spread - expected,
        ]
    )
    return stats, filled, bands, ~tonal


def judged_band_hz(band_hz: tuple[float, float], fs: float) -> tuple[float, float]:
    """The part of ``band_hz`` a recording at ``fs`` can be judged on: up to Nyquist for the
    levels (the shape reads up to ``dsp.shape.TOP_OF_NYQUIST`` of it). Equal to ``band_hz``
    when the band lies below Nyquist; a 1 kHz recording judges a metal band's 200-500 Hz."""
    return float(band_hz[0]), min(float(band_hz[1]), fs / 2.0)


def compute_features(
    samples: np.ndarray,
    fs: float,
    *,
    band_hz: tuple[float, float],
    nperseg: int | None = None,
    quiet_margin_db: float = DEFAULT_QUIET_MARGIN_DB,
    tonal_cv: float = DEFAULT_TONAL_CV,
) -> Features:
    """Features of ``samples`` at ``fs`` Hz over ``band_hz`` (any sample rate).

    ``nperseg`` defaults to ``dsp.spectra.default_nperseg(fs)`` (about 4 Hz resolution).
    A band reaching above Nyquist is judged on its part below (``judged_band_hz``; the
    caller says so). Raises ``ValueError`` for non-1-D or non-finite samples, fewer samples
    than one segment, a bad rate, or a band that is empty, inverted, above Nyquist at this
    resolution or starting above ``TOP_OF_NYQUIST`` of it (where anti-alias filters roll off:
    its shape cannot be judged, so its verdict would be "no leak" for want of evidence).
    """
    n = default_nperseg(fs) if nperseg is None else int(nperseg)
    x = _check(samples, fs, n)
    lo, hi = float(band_hz[0]), float(band_hz[1])
    if not (0.0 <= lo < hi):
        raise ValueError(f"band {band_hz!r} must satisfy 0 <= low < high")
    if lo >= fs / 2.0:
        raise ValueError(f"band {band_hz!r} starts above Nyquist ({fs / 2.0} Hz)")
    if lo >= TOP_OF_NYQUIST * fs / 2.0:
        raise ValueError(
            f"band {band_hz!r} starts too close to Nyquist ({fs / 2.0:g} Hz) to be judged: "
            f"needs a rate of {math.ceil(2.0 * lo / TOP_OF_NYQUIST) + 1} Hz or more"
        )
    df = fs / n
    klo = math.ceil(lo / df - 1e-9)
    khi = min(math.floor(hi / df + 1e-9), n // 2)
    if khi < klo:
        raise ValueError(f"band {band_hz!r} holds no frequency bin at {df:.3g} Hz resolution")
    octaves, edges_lo, edges_hi = _octave_edges(float(fs))
    top = TOP_OF_NYQUIST * fs / 2.0
    khi_env = min(khi, math.floor(top / df + 1e-9))
    frames = _frame_psd(x, fs, n)
    stats, filled, bands, free = _reduce_kernel(
        frames,
        df,
        klo,
        khi,
        float(quiet_margin_db),
        float(tonal_cv),
        _TONE_GUARD_BINS,
        edges_lo,
        edges_hi,
    )
    level, l10, l90, quiet, nq, peak, flat, tonality, tone, excess = stats.tolist()
    envelope = _envelope_slope(
        frames,
        free,
        klo,
        khi_env,
        *_envelope_references(float(fs), n, lo, hi),
        ENVELOPE_QUIET_SHARE,
        ENVELOPE_MIN_VARIANCE_DB2,
    )
    # called from here, not from inside the kernel: numba's cache does not notice a change in
    # a kernel of another file. Where a kernel does (``_row_sums``), edge_agent's commands keep
    # the cache per version of all of dsp's sources (edge_agent/kernel_cache.py)
    prominence, slope = shape_kernel(filled, df, lo, hi, float(fs), int(nq))
    hump_fit = hump_fit_kernel(
        filled, free, df, lo, hi, float(fs), int(nq), *fit_shapes(df, lo, hi, float(fs))
    )
    return Features(
        fs=float(fs),
        n_samples=int(x.size),
        nperseg=n,
        n_frames=int(frames.shape[0]),
        band_hz=(lo, hi),
        level_db=level,
        l10_db=l10,
        l90_db=l90,
        spread_db=l10 - l90,
        quiet_level_db=quiet,
        quiet_frames=int(nq),
        peak_hz=peak,
        flatness=flat,
        tonality_db=tonality,
        tone_hz=tone,
        band_levels=tuple(
            (lo_hz, hi_hz, db) for (lo_hz, hi_hz), db in zip(octaves, bands.tolist(), strict=True)
        ),
        prominence_db=prominence,
        slope_db_per_octave=slope,
        unsteadiness_db=excess,
        quiet_share=nq / frames.shape[0],
        envelope_slope=envelope,
        hump_fit=hump_fit,
    )
