"""``dsp.features`` computed with scipy and numpy only: the parity reference the feature tests
check against and ``benchmarks/dsp.py`` times as its baseline (one copy, so the benchmark
measures the same work the tests prove equal). scipy is test/bench-only.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import scipy.signal
import scipy.spatial
import scipy.stats

from dsp.features import octave_bands

__all__ = ["hump_fit_per_pair", "hump_fit_reference", "scipy_features", "shape_reference"]


def _lower_hull(u: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The lower convex hull of (u, y) evaluated at u, with scipy's ConvexHull (Qhull)."""
    if u.size == 2:
        return y.copy()
    hull = scipy.spatial.ConvexHull(np.column_stack([u, y]), qhull_options="QJ Pp")
    verts = np.unique(hull.vertices)
    # the lower hull: the vertices on or below the chord between the two ends
    ends = [int(np.argmin(u)), int(np.argmax(u))]
    verts = np.union1d(verts, ends)
    vu, vy = u[verts], y[verts]
    order = np.argsort(vu)
    vu, vy = vu[order], vy[order]
    keep = [0]
    for i in range(1, vu.size):
        while len(keep) >= 2:
            a, b = keep[-2], keep[-1]
            if (vu[b] - vu[a]) * (vy[i] - vy[a]) - (vy[b] - vy[a]) * (vu[i] - vu[a]) <= 0:
                keep.pop()
            else:
                break
        keep.append(i)
    return np.interp(u, vu[keep], vy[keep])


def shape_reference(
    spectrum: np.ndarray, df: float, band: tuple[float, float], fs: float, n_averages: int
) -> tuple[float, float]:
    """``dsp.shape.shape_kernel`` in plain numpy/scipy: (prominence_db, slope_db_per_octave)."""
    f = np.arange(spectrum.size) * df
    f_lo = max(3 * df, band[0] / 2.0)
    f_hi = min(0.75 * fs / 2.0, band[1] * 2.0)
    if f_hi <= f_lo:
        return 0.0, 0.0
    n_bands = max(1, int(np.floor(3 * np.log2(f_hi / f_lo))))
    edges = f_lo * (f_hi / f_lo) ** (np.arange(n_bands + 1) / n_bands)
    u, level, raised, count = [], [], [], []
    for lo, hi in itertools.pairwise(edges):
        sel = (f >= lo) & (f < hi)
        m = int(sel.sum())
        if m == 0:
            continue
        typical = np.median(spectrum[sel]) if m >= 3 else np.mean(spectrum[sel])
        sigma = 10 / np.log(10) * np.sqrt(2.0 / (2.0 * m * max(n_averages, 1) / 1.5))
        u.append(0.5 * np.log2(lo * hi))
        level.append(10 * np.log10(max(typical, 1e-300)))
        raised.append(level[-1] + 2.0 * sigma)
        count.append(m)
    u, level, raised, count = (np.array(v, dtype=float) for v in (u, level, raised, count))
    if u.size < 2:
        return 0.0, 0.0
    inside = (u >= np.log2(band[0])) & (u <= np.log2(band[1]))
    if not inside.any():
        return 0.0, 0.0
    # the band's power over the hull of the whole context
    hull = _lower_hull(u, raised)
    top = np.sum(count[inside] * 10 ** (level[inside] / 10))
    bottom = np.sum(count[inside] * 10 ** (hull[inside] / 10))
    power_over_hull = 10 * np.log10(top / bottom)
    # the highest band over the hull from the low maximum on (bands reaching below 60 Hz)
    start = 0
    if band[0] < 60.0:
        low = np.nonzero(u <= np.log2(band[0]) + 1.0)[0]
        if low.size:
            start = int(low[np.argmax(level[low])])
    peak = 0.0
    if u.size - start >= 2 and inside[start:].any():
        peak_hull = _lower_hull(u[start:], raised[start:])
        peak = float(np.max((level[start:] - peak_hull)[inside[start:]]))
    slope = np.polyfit(u[inside], level[inside], 1)[0] if inside.sum() >= 2 else 0.0
    return float(0.5 * (power_over_hull + peak)), float(slope)


def _lines(spectrum: np.ndarray, factor: float = 4.0, half: int = 8) -> np.ndarray:
    """Bins over ``factor`` x the median of their ``half`` neighbours either side (DC and the
    bin itself left out, four neighbours at least), and one bin either side of each."""
    padded = np.pad(spectrum.astype(float), half, constant_values=np.nan)
    padded[half] = np.nan  # DC is nobody's neighbour
    neighbours = np.delete(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), half, 1)
    enough = np.sum(~np.isnan(neighbours), axis=1) >= 4
    with np.errstate(invalid="ignore"):
        core = enough & (spectrum > factor * np.nanmedian(neighbours, axis=1))
    core[0] = False
    out = core.copy()
    out[1:] |= core[:-1]
    out[:-1] |= core[1:]
    return out


def _nnls_costs(cols: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least ``|cols[n] @ c - b|^2`` over ``c >= 0`` for each stack ``n`` of columns
    (``cols``: (N, P, K)): every column subset solved by the pseudo-inverse, the feasible best."""
    n, _, k = cols.shape
    best = np.full(n, float(b @ b))
    for size in range(1, k + 1):
        for subset in itertools.combinations(range(k), size):
            g = cols[:, :, list(subset)]
            c = np.einsum(
                "nkl,nl->nk",
                np.linalg.pinv(np.einsum("npk,npl->nkl", g, g)),
                np.einsum("npk,p->nk", g, b),
            )
            res = np.einsum("npk,nk->np", g, c) - b
            cost = np.einsum("np,np->n", res, res)
            best = np.where(np.all(c >= 0.0, axis=1) & (cost < best), cost, best)
    return np.maximum(best, 0.0)


def hump_fit_reference(
    spectrum: np.ndarray,
    free: np.ndarray,
    df: float,
    band: tuple[float, float],
    fs: float,
    n_avg: int,
) -> float:
    """``dsp.shape.hump_fit_kernel`` in plain numpy: the drop in relative weighted squared error
    of sixth-octave levels when a log-normal hump joins a power law plus a white floor."""
    lo_band, hi_band = band
    f_lo = max(3 * df, lo_band / 2.0 if lo_band >= 60.0 else lo_band)
    f_hi = min(0.75 * fs / 2.0, hi_band * 2.0)
    if f_hi <= f_lo:
        return math.nan
    n_bands = max(1, math.floor(6 * math.log2(f_hi / f_lo)))
    edges = f_lo * (f_hi / f_lo) ** (np.arange(n_bands + 1) / n_bands)
    f = np.arange(spectrum.size) * df
    u, y, m = [], [], []
    for lo, hi in itertools.pairwise(edges):
        sel = (f >= lo) & (f < hi) & free
        if sel.any() and spectrum[sel].sum() > 0:
            u.append(0.5 * math.log2(lo * hi))
            y.append(spectrum[sel].mean())
            m.append(sel.sum())
    if len(u) < 6:
        return math.nan
    u, y, m = np.array(u), np.array(y), np.array(m)
    y = y / y.max()  # the fit is the same at any scale; 1 / level must not overflow
    wt = 1.0 / np.sqrt(1.5 / (m * max(n_avg, 1)) + 0.15**2)
    ws = wt / y
    u_lo = math.log2(max(lo_band, f_lo))
    u_hi = math.log2(min(hi_band, 0.75 * fs / 2.0))
    tilts = np.arange(0.0, 4.0 + 1e-9, 0.1)
    centres = u_lo - 1.0 + 0.25 * np.arange(math.floor((u_hi - u_lo + 1.5) / 0.25 + 1e-9) + 1)
    widths = np.array([0.5, 0.75, 1.0, 1.5, 2.0, 2.5])
    law = 2.0 ** (-tilts[:, None] * (u - u_lo))  # (tilts, P)
    hump = np.exp(-0.5 * ((u - centres[:, None, None]) / widths[None, :, None]) ** 2)
    hump = hump.reshape(-1, u.size)  # (humps, P)
    nt, nh = law.shape[0], hump.shape[0]
    background = np.stack([law, np.ones_like(law)], axis=-1) * ws[None, :, None]
    full = np.concatenate(
        [
            np.repeat(background, nh, axis=0),
            np.tile(hump, (nt, 1))[:, :, None] * ws[None, :, None],
        ],
        axis=-1,
    )
    return float(max(_nnls_costs(background, wt).min() - _nnls_costs(full, wt).min(), 0.0))


def _nnls_per_pair(cols: list[list[float]], b: list[float]) -> float:
    """Least ``|G c - b|^2`` over ``c >= 0`` for 2 or 3 columns, in plain floats: the Gram
    matrix summed over the rows, the unconstrained optimum by Cramer's rule if it is
    feasible, else the best feasible optimum of the column subsets."""
    k = len(cols)
    g = [
        [math.fsum(x * y for x, y in zip(cols[i], cols[j], strict=True)) for j in range(k)]
        for i in range(k)
    ]
    r = [math.fsum(x * y for x, y in zip(cols[i], b, strict=True)) for i in range(k)]
    bb = math.fsum(x * x for x in b)

    def solve(idx: tuple[int, ...]) -> float:
        m = np.array([[g[i][j] for j in idx] for i in idx])
        det = float(np.linalg.det(m))
        if not det > 1e-12 * float(np.prod(np.diag(m))):
            return bb
        c = np.linalg.solve(m, [r[i] for i in idx])
        if np.any(c < 0.0):
            return bb
        return bb - float(sum(c[n] * r[i] for n, i in enumerate(idx)))

    whole = solve(tuple(range(k)))
    if whole < bb:
        return max(whole, 0.0)
    subsets = [s for size in range(1, k) for s in itertools.combinations(range(k), size)]
    return max(min(solve(s) for s in subsets), 0.0)


def hump_fit_per_pair(
    u: np.ndarray,
    wt: np.ndarray,
    ws: np.ndarray,
    u_lo: float,
    u_hi: float,
    tilts: np.ndarray,
    widths: np.ndarray,
) -> float:
    """``dsp.shape._fit_grid`` evaluated the straightforward way: every (tilt, hump) pair's
    columns built and its non-negative least squares solved on its own."""
    b = [float(v) for v in wt]
    floor = [float(v) for v in ws]
    n_centres = math.floor((u_hi - u_lo + 1.5) / 0.25 + 1e-9) + 1
    humps = [
        [
            math.exp(-0.5 * ((ui - (u_lo - 1.0 + 0.25 * c)) / w) ** 2) * si
            for ui, si in zip(u, ws, strict=True)
        ]
        for c in range(n_centres)
        for w in widths
    ]
    best0 = best1 = math.fsum(x * x for x in b)
    for t in tilts:
        law = [2.0 ** (-t * (ui - u_lo)) * si for ui, si in zip(u, ws, strict=True)]
        best0 = min(best0, _nnls_per_pair([law, floor], b))
        for hump in humps:
            best1 = min(best1, _nnls_per_pair([law, floor, hump], b))
    return max(best0 - best1, 0.0)


def scipy_features(
    x: np.ndarray,
    fs: float,
    nperseg: int,
    band: tuple[float, float],
    margin: float = 2.0,
    cv: float = 0.5,
    *,
    hump_fit: bool = True,
) -> dict[str, object]:
    """The features ``compute_features`` returns (``bands``: octave-band levels in dB);
    ``hump_fit`` NaN without its fit (``hump_fit=False``: the benchmark times it apart)."""
    kw = {"window": "hann", "nperseg": nperseg, "noverlap": nperseg // 2, "detrend": "constant"}
    f, psd = scipy.signal.welch(x, fs, **kw)
    _, _, spec = scipy.signal.spectrogram(x, fs, **kw)
    frames = spec.T
    df = f[1]
    sel = (f >= band[0] - 1e-9 * df) & (f <= band[1] + 1e-9 * df)
    in_band = frames[:, sel]
    nb = in_band.shape[1]

    def levels(skip: np.ndarray) -> np.ndarray:
        return 10 * np.log10(in_band[:, ~skip].sum(axis=1) * df * nb / max((~skip).sum(), 1))

    lev_full = levels(np.zeros(nb, bool))
    l90, l10 = np.percentile(lev_full, 10), np.percentile(lev_full, 90)
    lev = lev_full
    quiet = lev <= np.percentile(lev, 10) + margin
    tonal = np.zeros(f.size, bool)
    for _ in range(2):
        order = np.argsort(lev, kind="stable")
        nv = min(max(quiet.sum(), 8), len(lev))
        core = np.zeros(f.size, bool)
        if nv >= 8:
            basis = frames[order[:nv]]
            core = basis.std(axis=0) < cv * basis.mean(axis=0)
        tonal = core.copy()
        tonal[1:] |= core[:-1]
        tonal[:-1] |= core[1:]
        if (~tonal[sel]).any():
            lev = levels(tonal[sel])
        quiet = lev <= np.percentile(lev, 10) + margin
    qmean = frames[quiet].mean(axis=0)
    tonal |= _lines(qmean)
    idx = np.arange(f.size)
    log_f = np.log(np.maximum(idx, 0.5))
    log_q = np.log(np.maximum(qmean, 1e-300))
    filled = np.exp(np.interp(log_f, log_f[~tonal], log_q[~tonal]))  # along a power law
    filled[~tonal] = qmean[~tonal]
    free_in_band = int((~tonal[sel]).sum())
    free = filled[sel].sum() * df
    expected = 1.2816 * 10 / np.log(10) * np.sqrt(1.5 / max(free_in_band, 1))
    prominence, slope = shape_reference(filled, df, band, fs, int(quiet.sum()))
    fit = (
        hump_fit_reference(filled, ~tonal, df, band, fs, int(quiet.sum())) if hump_fit else math.nan
    )
    bands = [10 * np.log10(psd[(f >= lo) & (f < hi)].sum() * df) for lo, hi in octave_bands(fs)]
    envelope = envelope_slope_reference(frames, f, band, fs, ~tonal)
    return {
        "level_db": 10 * np.log10(psd[sel].sum() * df),
        "l10_db": l10,
        "l90_db": l90,
        "spread_db": l10 - l90,
        "quiet_level_db": 10 * np.log10(free),
        "peak_hz": f[sel][np.argmax(psd[sel])],
        "flatness": scipy.stats.gmean(psd[sel]) / psd[sel].mean(),
        "tonality_db": 10 * np.log10(qmean[sel].sum() * df / free),
        "bands": bands,
        "prominence_db": prominence,
        "slope_db_per_octave": slope,
        "unsteadiness_db": np.percentile(lev, 50) - np.percentile(lev, 10) - expected,
        "quiet_share": quiet.mean(),
        "envelope_slope": envelope,
        "hump_fit": fit,
    }


def envelope_slope_reference(
    frames: np.ndarray, f: np.ndarray, band: tuple[float, float], fs: float, free: np.ndarray
) -> float:
    """``Features.envelope_slope`` from a spectrogram's frames (rows) at bin frequencies ``f``
    and the tone-free bins ``free``: the in-band frame level's slope on the mean swing of the
    third-octaves outside the band, over the frames where that swing is in its quietest 60 %."""
    if frames.shape[0] < 8:
        return math.nan
    df = f[1]
    top = 0.75 * fs / 2
    in_band = (f >= band[0] - 1e-9 * df) & (f <= min(band[1], top) + 1e-9 * df) & free
    if in_band.sum() < 4:
        return math.nan
    db = 10 / np.log(10)
    swings, noise = [], []
    for k in range(-30, 40):
        lo, hi = 1000 * 2 ** ((k - 0.5) / 3), 1000 * 2 ** ((k + 0.5) / 3)
        if lo < 10 or hi > top or not (hi <= band[0] or lo >= band[1]):
            continue
        sel = (f >= lo) & (f < hi) & free
        if sel.sum() >= 4:
            level = 10 * np.log10(frames[:, sel].sum(axis=1) + 1e-300)
            swings.append(level - level.mean())
            noise.append(db**2 * 1.5 / sel.sum())
    if len(swings) < 3:
        return math.nan
    x = np.mean(swings, axis=0)
    quiet = x <= np.percentile(x, 60)
    if quiet.sum() < 8:
        return math.nan
    x = x[quiet]
    y = 10 * np.log10(frames[quiet][:, in_band].sum(axis=1) + 1e-300)
    vx = x.var() - np.sum(noise) / len(noise) ** 2
    if not vx > 0.25:
        return math.nan
    return float(np.mean((x - x.mean()) * (y - y.mean())) / vx)
