"""Spectral shape that no gain can move: how far the leak band stands above its own background.

A recording's gain is often unknown (a WAV from a listening stick, a hydrophone, a logger
download through other software), so a level in dB means nothing on its own. Its *shape* does:
multiplying the samples by any gain shifts the whole log-spectrum by one constant and leaves
every difference within it unchanged.

The background a leak sits on is smooth and, in a log-log plot, convex: ambient and flow noise
fall with frequency (PSD ~ 1/f**k, any tilt), a sensor's white floor flattens them out at the
top, and a sum of power laws has a convex log-log spectrum. Leak noise is a broad hump in the
material's band (metal ~200-1500 Hz, plastic below ~300 Hz): on top of that background it
bends the spectrum the other way. So:

1. the quiet, tone-free spectrum (``dsp.features``: the quiet frames' mean, steady tones
   bridged over along a power law) is averaged in fractional-octave bands (``PER_OCTAVE`` a
   octave) over the leak band and ``CONTEXT_OCTAVES`` either side of it, from the third bin up
   to ``TOP_OF_NYQUIST`` of Nyquist (anti-alias filters roll the top off);
2. each band level is raised by ``NOISE_ALLOWANCE`` standard deviations of its own estimate
   (few bins x few quiet frames = a noisy level; a noisy dip must not drag the background
   down), and the lower convex hull of those points is the background;
3. two readings of the hump, each gain-free, and ``prominence_db`` is their mean:
   - the band's **power** over the power of the background under it (the hull over the whole
     context): about 10*log10(1 + SNR) for a leak at in-band SNR ``SNR``. It sees a plastic
     leak whose noise sits at the bottom of its band, and also the hump that a sensor's
     high-pass and the ambient's low-frequency knee make there;
   - the band's **highest third-octave** over the background, in dB: where the hump stands
     out most, wherever its power is. For a band reaching below ``LOW_BAND_HZ`` (plastic) this
     hull starts at the spectrum's maximum within the band's lowest octave, so the chain's own
     low hump (the roll-off below that maximum) cannot make a peak; a leak's hump bends the
     spectrum above it.
   About 0 dB (or below) for any smooth background whatever its tilt; a few dB for a recording
   chain's ripple or high-pass; more for a leak's hump (``dsp.leak`` is neutral at 5.5 dB).

Short recordings give few frames, so wide allowances and a prominence near 0: the evidence
fades, it does not explode.

``hump_fit`` (``hump_fit_kernel``, below) reads the same spectrum another way: how much better
a power law plus a white floor *plus a log-normal hump* fits its sixth-octave levels than the
background alone, in relative error (gain-free): a likelihood ratio over the whole context.
``slope_db_per_octave`` is the least-squares slope of the band
levels inside the band (reported, not scored).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from dsp._numba import jit

__all__ = [
    "CONTEXT_OCTAVES",
    "FIT_TILTS",
    "FIT_WIDTHS_OCTAVES",
    "NOISE_ALLOWANCE",
    "PER_OCTAVE",
    "TOP_OF_NYQUIST",
    "fit_shapes",
    "hump_fit_kernel",
    "shape_kernel",
]

PER_OCTAVE = 3  # third-octave bands: fine enough to see a hump, coarse enough to average
CONTEXT_OCTAVES = 1.0  # background judged this far either side of the leak band
# A band reaching down below this (plastic: 20 Hz) starts where the sensor's high-pass and the
# ambient's low-frequency knee make a hump of their own: there the peak reading's hull starts
# at the spectrum's low-frequency maximum (within the band's lowest octave), not below it.
LOW_BAND_HZ = 60.0
TOP_OF_NYQUIST = 0.75  # above this fraction of Nyquist anti-alias filters roll off
NOISE_ALLOWANCE = 2.0  # band levels raised by this many standard deviations before the hull
LOWEST_BIN = 3  # below the third bin the detrended, windowed spectrum is not noise
MEDIAN_FROM_BINS = 3  # bands of this many bins or more are summarised by their median bin
# A periodic Hann window's equivalent noise bandwidth in bins: adjacent bins are correlated.
HANN_ENBW_BINS = 1.5
_DB_PER_NEPER = 10.0 / math.log(10.0)
_TINY = 1e-300


@jit
def _lower_hull(u: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Values at ``u`` (ascending) of the lower convex hull of the points (u, y)."""
    n = u.size
    hx = np.empty(n)
    hy = np.empty(n)
    m = 0
    for i in range(n):
        while m >= 2:
            cross = (hx[m - 1] - hx[m - 2]) * (y[i] - hy[m - 2]) - (hy[m - 1] - hy[m - 2]) * (
                u[i] - hx[m - 2]
            )
            if cross <= 0.0:
                m -= 1
            else:
                break
        hx[m] = u[i]
        hy[m] = y[i]
        m += 1
    return np.interp(u, hx[:m], hy[:m])


@jit
def shape_kernel(
    spectrum: np.ndarray, df: float, band_lo: float, band_hi: float, fs: float, n_averages: int
) -> tuple[float, float]:
    """``(prominence_db, slope_db_per_octave)`` of a one-sided ``spectrum`` (bins ``k * df``)
    over the band, each bin an average of ``n_averages`` frames (see the module docstring).
    Both are 0.0 when the range holds fewer than two bands or none inside the leak band."""
    nfreq = spectrum.size
    f_lo = max(LOWEST_BIN * df, band_lo / 2.0**CONTEXT_OCTAVES)
    f_hi = min(TOP_OF_NYQUIST * fs / 2.0, band_hi * 2.0**CONTEXT_OCTAVES)
    if f_hi <= f_lo:
        return 0.0, 0.0
    n_bands = max(1, math.floor(PER_OCTAVE * math.log2(f_hi / f_lo)))
    centre = np.empty(n_bands)
    level = np.empty(n_bands)
    raised = np.empty(n_bands)
    count = np.empty(n_bands)
    used = 0
    k = math.ceil(f_lo / df - 1e-9)
    values = np.empty(nfreq)
    for b in range(n_bands):
        lo = f_lo * (f_hi / f_lo) ** (b / n_bands)
        hi = f_lo * (f_hi / f_lo) ** ((b + 1) / n_bands)
        m = 0
        while k < nfreq and k * df < hi:
            if k * df >= lo:
                values[m] = spectrum[k]
                m += 1
            k += 1
        if m == 0:
            continue
        dof = 2.0 * m * max(n_averages, 1) / HANN_ENBW_BINS
        centre[used] = 0.5 * math.log2(lo * hi)
        # the median bin, not the mean: lines the tone search missed (a pump whose speed
        # wanders smears its harmonics over several bins) must not lift a band
        typical = np.median(values[:m]) if m >= MEDIAN_FROM_BINS else np.mean(values[:m])
        level[used] = _DB_PER_NEPER * math.log(max(typical, _TINY))
        raised[used] = level[used] + NOISE_ALLOWANCE * _DB_PER_NEPER * math.sqrt(2.0 / dof)
        count[used] = m
        used += 1
    if used < 2:
        return 0.0, 0.0
    u_lo = math.log2(max(band_lo, _TINY))
    u_hi = math.log2(band_hi)
    # (a) the band's power over the hull of the whole context
    hull = _lower_hull(centre[:used], raised[:used])
    # (b) the hull from the low maximum on (a band reaching below LOW_BAND_HZ): the chain's
    # own low hump (high-pass, ambient knee) lies below it and cannot make a peak
    start = 0
    if band_lo < LOW_BAND_HZ:
        for i in range(used):
            if centre[i] <= u_lo + 1.0 and level[i] > level[start]:
                start = i
    peak_hull = hull
    if start > 0:
        peak_hull = np.full(used, -np.inf)
        if used - start >= 2:
            peak_hull[start:] = _lower_hull(centre[start:used], raised[start:used])
    top = 0.0
    bottom = 0.0
    peak = -np.inf
    su = 0.0
    sy = 0.0
    suu = 0.0
    suy = 0.0
    n_in = 0
    for i in range(used):
        u = centre[i]
        if u_lo <= u <= u_hi:
            top += count[i] * 10.0 ** (level[i] / 10.0)
            bottom += count[i] * 10.0 ** (hull[i] / 10.0)
            if i >= start and used - start >= 2:
                peak = max(peak, level[i] - peak_hull[i])
            su += u
            sy += level[i]
            suu += u * u
            suy += u * level[i]
            n_in += 1
    if n_in == 0 or bottom <= 0.0:
        return 0.0, 0.0
    if not peak > -np.inf:
        peak = 0.0
    power_over_hull = 10.0 * math.log10(max(top, _TINY) / bottom)
    prominence = 0.5 * (power_over_hull + peak)
    denom = n_in * suu - su * su
    slope = (n_in * suy - su * sy) / denom if n_in >= 2 and denom > 0.0 else 0.0
    return prominence, slope


# --- the hump's fit (seventh pass) ----------------------------------------------------------
# How much better the quiet spectrum is described by a smooth background *plus a hump* than by
# the background alone. Background: a power law of any tilt plus a white floor (a sum of power
# laws, convex in log-log); hump: a log-normal bump (a Gaussian in log-frequency), the
# generic smooth broad hump. Both fitted to sixth-octave levels of the tone-free quiet
# spectrum, each level's error relative (a gain scales every level and every fitted
# coefficient alike: the fit's errors do not move), the coefficients non-negative, the tilt,
# the hump's centre and its width searched on a grid. The drop in weighted squared error the
# hump buys is ``hump_fit``: a likelihood ratio, near 0 for a smooth background, large for a
# hump the whole context agrees on (it reads every band, where the hull reads the highest).
FIT_PER_OCTAVE = 6
FIT_TILTS = np.arange(0.0, 4.0 + 1e-9, 0.1)  # background slopes 0 .. 12 dB per octave
FIT_CENTRE_STEP_OCTAVES = 0.25  # hump centres from an octave under the band to half over it
FIT_WIDTHS_OCTAVES = np.array([0.5, 0.75, 1.0, 1.5, 2.0, 2.5])  # the hump's standard deviation
# each level's relative error: its estimation noise and, at least, a chain's ripple (~0.65 dB)
FIT_RIPPLE = 0.15
FIT_MIN_BANDS = 6


@jit
def _one(gii: float, ri: float, bb: float) -> float:
    # least squares on one column alone, its coefficient non-negative; bb when infeasible
    if not gii > 0.0 or ri < 0.0:
        return bb
    return bb - ri * ri / gii


@jit
def _two(gii: float, gjj: float, gij: float, ri: float, rj: float, bb: float) -> float:
    # least squares on two columns, both coefficients positive; bb when infeasible
    det = gii * gjj - gij * gij
    if not det > 1e-12 * gii * gjj:
        return bb
    ci = (ri * gjj - rj * gij) / det
    cj = (rj * gii - ri * gij) / det
    if ci < 0.0 or cj < 0.0:
        return bb
    return bb - ci * ri - cj * rj


@jit
def _fit_context(df: float, band_lo: float, band_hi: float, fs: float) -> tuple[float, float, int]:
    """``(f_lo, f_hi, n_bands)``: the fit's context and its sixth-octave bands (0 if empty)."""
    f_lo = max(LOWEST_BIN * df, band_lo / 2.0**CONTEXT_OCTAVES)
    if band_lo < LOW_BAND_HZ:
        # below a low band the chain's high-pass and the ambient's knee make a hump of their own
        f_lo = max(LOWEST_BIN * df, band_lo)
    f_hi = min(TOP_OF_NYQUIST * fs / 2.0, band_hi * 2.0**CONTEXT_OCTAVES)
    if f_hi <= f_lo:
        return f_lo, f_hi, 0
    return f_lo, f_hi, max(1, math.floor(FIT_PER_OCTAVE * math.log2(f_hi / f_lo)))


@jit
def _fit_band(f_lo: float, f_hi: float, n_bands: int, b: int) -> tuple[float, float]:
    """The edges of the context's sixth-octave band ``b``."""
    return f_lo * (f_hi / f_lo) ** (b / n_bands), f_lo * (f_hi / f_lo) ** ((b + 1) / n_bands)


@jit
def _fit_levels(
    spectrum: np.ndarray,
    free: np.ndarray,
    df: float,
    band_lo: float,
    band_hi: float,
    fs: float,
    n_averages: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float]:
    """``(u, wt, ws, bands, u_lo, u_hi)`` of the fit: the sixth-octave bands' centres (log2
    Hz), weights (1 / relative standard error), weights over level (levels over their
    maximum) and indices among the context's bands (those holding no free power are left
    out), and the leak band's ends in log2 Hz. Empty arrays when the context holds no band."""
    nfreq = spectrum.size
    f_lo, f_hi, n_bands = _fit_context(df, band_lo, band_hi, fs)
    if n_bands == 0:
        return np.empty(0), np.empty(0), np.empty(0), np.empty(0, dtype=np.int64), 0.0, 0.0
    u = np.empty(n_bands)
    y = np.empty(n_bands)
    wt = np.empty(n_bands)
    bands = np.empty(n_bands, dtype=np.int64)
    used = 0
    k = math.ceil(f_lo / df - 1e-9)
    for b in range(n_bands):
        lo, hi = _fit_band(f_lo, f_hi, n_bands, b)
        acc = 0.0
        m = 0
        while k < nfreq and k * df < hi:
            if k * df >= lo and free[k]:
                acc += spectrum[k]
                m += 1
            k += 1
        if m == 0 or not acc > 0.0:
            continue
        u[used] = 0.5 * math.log2(lo * hi)
        y[used] = acc / m
        # relative standard error of a mean over m bins x n frames (Hann bins overlap)
        noise2 = HANN_ENBW_BINS / (m * max(n_averages, 1))
        wt[used] = 1.0 / math.sqrt(noise2 + FIT_RIPPLE * FIT_RIPPLE)
        bands[used] = b
        used += 1
    u_lo = math.log2(max(band_lo, f_lo))
    u_hi = math.log2(min(band_hi, TOP_OF_NYQUIST * fs / 2.0))
    if used == 0:
        return u[:0], wt[:0], y[:0], bands[:0], u_lo, u_hi
    # levels over their maximum: the fit is the same at any scale, and 1/level must not
    # overflow for samples as small as a float file may hold (powers down to ~1e-240)
    top = np.max(y[:used])
    ws = np.empty(used)
    for i in range(used):
        # rows scaled by weight / level: a relative error per band, the same at any gain
        ws[i] = wt[i] / (y[i] / top)
    return u[:used].copy(), wt[:used].copy(), ws, bands[:used].copy(), u_lo, u_hi


@jit
def _fit_shapes(
    u: np.ndarray, u_lo: float, u_hi: float, tilts: np.ndarray, widths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(humps, laws)`` at the band centres ``u``: ``humps[i, c * widths.size + w]`` the
    log-normal hump of each centre ``c`` (a quarter octave apart, from an octave under the
    leak band to half an octave over it) and width ``w``, ``laws[t, i]`` the power law of
    tilt ``t``, both 1 at their reference (unscaled: the grid multiplies them by ``ws``)."""
    n_centres = math.floor((u_hi - u_lo + 1.5) / FIT_CENTRE_STEP_OCTAVES + 1e-9) + 1
    humps = np.empty((u.size, n_centres * widths.size))
    for c in range(n_centres):
        uc = u_lo - 1.0 + c * FIT_CENTRE_STEP_OCTAVES
        for w in range(widths.size):
            for i in range(u.size):
                z = (u[i] - uc) / widths[w]
                humps[i, c * widths.size + w] = math.exp(-0.5 * z * z)
    laws = np.empty((tilts.size, u.size))
    for t in range(tilts.size):
        for i in range(u.size):
            laws[t, i] = 2.0 ** (-tilts[t] * (u[i] - u_lo))
    return humps, laws


@jit
def _context_shapes(
    df: float, band_lo: float, band_hi: float, fs: float, tilts: np.ndarray, widths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    # _fit_shapes at every band of the context (whether or not a spectrum fills it)
    f_lo, f_hi, n_bands = _fit_context(df, band_lo, band_hi, fs)
    u = np.empty(n_bands)
    for b in range(n_bands):
        lo, hi = _fit_band(f_lo, f_hi, n_bands, b)
        u[b] = 0.5 * math.log2(lo * hi)
    u_lo = math.log2(max(band_lo, f_lo))
    u_hi = math.log2(min(band_hi, TOP_OF_NYQUIST * fs / 2.0))
    return _fit_shapes(u, u_lo, u_hi, tilts, widths)


@lru_cache(maxsize=16)
def fit_shapes(
    df: float, band_lo: float, band_hi: float, fs: float
) -> tuple[np.ndarray, np.ndarray]:
    """The hump fit's humps and power laws (``FIT_WIDTHS_OCTAVES``, ``FIT_TILTS``) at every
    sixth-octave band of the context of ``band_lo``-``band_hi`` at this resolution and rate:
    ``hump_fit_kernel``'s last two arguments. Once per configuration (two thousand
    exponentials are half the fit's time); shared between calls: the kernel only reads them."""
    return _context_shapes(df, band_lo, band_hi, fs, FIT_TILTS, FIT_WIDTHS_OCTAVES)


@jit
def _fit_grid(
    u: np.ndarray,
    wt: np.ndarray,
    ws: np.ndarray,
    u_lo: float,
    u_hi: float,
    tilts: np.ndarray,
    widths: np.ndarray,
) -> float:
    """``_fit_grid_shapes`` with the humps and laws of the bands at ``u``."""
    humps, laws = _fit_shapes(u, u_lo, u_hi, tilts, widths)
    return _fit_grid_shapes(wt, ws, np.arange(u.size), humps, laws)


@jit
def _fit_grid_shapes(
    wt: np.ndarray, ws: np.ndarray, bands: np.ndarray, humps: np.ndarray, laws: np.ndarray
) -> float:
    """The drop in least ``|G c - wt|^2`` (``c >= 0``) from the background's columns (a power
    law of each tilt, a white floor) to the background's plus a hump's (each centre x width),
    rows scaled by ``ws``: the best over the grid of each. Row ``i`` is band ``bands[i]`` of
    ``humps`` and ``laws`` (``_fit_shapes``).

    Each 2- or 3-column problem is convex: when the unconstrained optimum is feasible it is
    the answer, else the best feasible optimum of the column subsets (at a subset's optimum
    the cost is ``b^T b - c^T r``). Every Gram entry but law.hump depends on the tilt alone or
    the hump alone, so only that one is summed per (tilt, hump) pair, over all humps at once
    (a vectorised loop); the subsets without the law (floor+hump, hump) are solved once per
    hump and those without the hump once per tilt, and only if some pair needs them. Signs
    are read off Cramer's numerators (the same as the coefficients' unless a quotient
    underflows): the result is bit for bit the per-pair evaluation's, same formulas."""
    used = wt.size
    bb = 0.0
    g11 = 0.0
    r1 = 0.0
    for i in range(used):
        bb += wt[i] * wt[i]
        g11 += ws[i] * ws[i]
        r1 += ws[i] * wt[i]
    n_humps = humps.shape[1]
    hump = np.empty((used, n_humps))  # band-major: the pair loop runs along humps
    for i in range(used):
        for h in range(n_humps):
            hump[i, h] = humps[bands[i], h] * ws[i]
    g22 = np.empty(n_humps)
    g12 = np.empty(n_humps)
    r2 = np.empty(n_humps)
    m00 = np.empty(n_humps)  # the 3x3 cofactors and numerators that do not involve the law
    a1 = np.empty(n_humps)
    a2 = np.empty(n_humps)
    for h in range(n_humps):
        s22 = 0.0
        s12 = 0.0
        s2 = 0.0
        for i in range(used):
            v = hump[i, h]
            s22 += v * v
            s12 += v * ws[i]
            s2 += v * wt[i]
        g22[h] = s22
        g12[h] = s12
        r2[h] = s2
        m00[h] = g11 * s22 - s12 * s12
        a1[h] = r1 * s22 - s12 * s2
        a2[h] = r1 * s12 - g11 * s2
    # g11 r2 - r1 g12 (n2's cofactor term that does not involve the law), once per hump
    c2 = np.empty(n_humps)
    for h in range(n_humps):
        c2[h] = g11 * r2[h] - r1 * g12[h]
    law = np.empty(used)
    g02 = np.empty(n_humps)
    # each pair's determinant, Cramer numerators and n . r, for all humps in one branch-free
    # (vectorised) loop; the decisions, which depend on the best so far, read them after
    det_h = np.empty(n_humps)
    n0_h = np.empty(n_humps)
    n1_h = np.empty(n_humps)
    n2_h = np.empty(n_humps)
    nr_h = np.empty(n_humps)
    feasible = np.empty(n_humps, dtype=np.bool_)
    subsets = np.zeros(n_humps, dtype=np.bool_)  # a pair with this hump needs its subsets
    best0 = bb
    best1 = bb
    slack = 1e-12 * bb
    for t in range(laws.shape[0]):
        g00 = 0.0
        g01 = 0.0
        r0 = 0.0
        for i in range(used):
            law[i] = laws[t, bands[i]] * ws[i]
            g00 += law[i] * law[i]
            g01 += law[i] * ws[i]
            r0 += law[i] * wt[i]
        background = _two(g00, g11, g01, r0, r1, bb)
        if not background < bb:
            background = min(_one(g00, r0, bb), _one(g11, r1, bb))
        best0 = min(best0, max(background, 0.0))
        g02[:] = 0.0
        for i in range(used):
            li = law[i]
            for h in range(n_humps):
                g02[h] += li * hump[i, h]
        tiny = 1e-12 * g00 * g11
        for h in range(n_humps):
            gl = g02[h]
            m01 = g01 * g22[h] - g12[h] * gl
            m02 = g01 * g12[h] - g11 * gl
            det_h[h] = g00 * m00[h] - g01 * m01 + gl * m02
            n0 = r0 * m00[h] - g01 * a1[h] + gl * a2[h]
            b2 = g01 * r2[h] - r1 * gl
            n1 = g00 * a1[h] - r0 * m01 + gl * b2
            n2 = g00 * c2[h] - g01 * b2 + r0 * m02
            n0_h[h] = n0
            n1_h[h] = n1
            n2_h[h] = n2
            nr_h[h] = n0 * r0 + n1 * r1 + n2 * r2[h]
            # a regular system whose optimum has no negative coefficient
            feasible[h] = (det_h[h] > tiny * g22[h]) & (n0 >= 0.0) & (n1 >= 0.0) & (n2 >= 0.0)
        need_background = False
        for h in range(n_humps):
            if feasible[h]:
                # the cost is bb - (n . r) / det; dividing each coefficient first (below)
                # moves it by a few ulps of bb at most, so the slack keeps every pair that
                # could beat the best
                det = det_h[h]
                if nr_h[h] > (bb - best1 - slack) * det:
                    c0 = n0_h[h] / det
                    c1 = n1_h[h] / det
                    c2h = n2_h[h] / det
                    best1 = min(best1, max(bb - c0 * r0 - c1 * r1 - c2h * r2[h], 0.0))
                continue
            subsets[h] = True
            need_background = True
            gl = g02[h]
            det2 = g00 * g22[h] - gl * gl
            if det2 > 1e-12 * g00 * g22[h]:
                n0 = r0 * g22[h] - r2[h] * gl
                n2 = r2[h] * g00 - r0 * gl
                if n0 >= 0.0 and n2 >= 0.0 and n0 * r0 + n2 * r2[h] > (bb - best1 - slack) * det2:
                    best1 = min(best1, max(_two(g00, g22[h], gl, r0, r2[h], bb), 0.0))
        if need_background:
            cost = min(_two(g00, g11, g01, r0, r1, bb), _one(g00, r0, bb), _one(g11, r1, bb))
            best1 = min(best1, max(cost, 0.0))
    for h in range(n_humps):
        if subsets[h]:
            cost = min(_two(g11, g22[h], g12[h], r1, r2[h], bb), _one(g22[h], r2[h], bb))
            best1 = min(best1, max(cost, 0.0))
    return max(best0 - best1, 0.0)


@jit
def hump_fit_kernel(
    spectrum: np.ndarray,
    free: np.ndarray,
    df: float,
    band_lo: float,
    band_hi: float,
    fs: float,
    n_averages: int,
    humps: np.ndarray,
    laws: np.ndarray,
) -> float:
    """``hump_fit`` of a one-sided ``spectrum`` (bins ``k * df``, each an average of
    ``n_averages`` frames; only bins where ``free`` is set are read): see above. ``humps`` and
    ``laws`` are ``fit_shapes(df, band_lo, band_hi, fs)``. NaN (no evidence) when the context
    holds fewer than ``FIT_MIN_BANDS`` sixth-octave bands."""
    u, wt, ws, bands, _, _ = _fit_levels(spectrum, free, df, band_lo, band_hi, fs, n_averages)
    if u.size < FIT_MIN_BANDS:
        return math.nan
    return _fit_grid_shapes(wt, ws, bands, humps, laws)
