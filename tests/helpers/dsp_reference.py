"""``dsp.features`` computed with scipy and numpy only: the parity reference the feature tests
check against and ``benchmarks/dsp.py`` times as its baseline (one copy, so the benchmark
measures the same work the tests prove equal). scipy is test/bench-only.
"""

from __future__ import annotations

import numpy as np
import scipy.signal
import scipy.stats

from dsp.features import octave_bands

__all__ = ["scipy_features"]


def scipy_features(
    x: np.ndarray,
    fs: float,
    nperseg: int,
    band: tuple[float, float],
    margin: float = 2.0,
    cv: float = 0.5,
) -> dict[str, object]:
    """The features ``compute_features`` returns (``bands``: octave-band levels in dB)."""
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
    for _ in range(2):
        order = np.argsort(lev, kind="stable")
        basis = in_band[order[: min(max(quiet.sum(), 8), len(lev))]]
        core = basis.std(axis=0) < cv * basis.mean(axis=0)
        tonal = core.copy()
        for j in np.nonzero(core)[0]:
            tonal[max(0, j - 3) : j + 4] = True
        if (~tonal).any():
            lev = levels(tonal)
        quiet = lev <= np.percentile(lev, 10) + margin
    qmean = in_band[quiet].mean(axis=0)
    idx = np.arange(nb)
    free = np.interp(idx, idx[~tonal], qmean[~tonal]).sum() * df
    bands = [10 * np.log10(psd[(f >= lo) & (f < hi)].sum() * df) for lo, hi in octave_bands(fs)]
    return {
        "level_db": 10 * np.log10(psd[sel].sum() * df),
        "l10_db": l10,
        "l90_db": l90,
        "spread_db": l10 - l90,
        "quiet_level_db": 10 * np.log10(free),
        "peak_hz": f[sel][np.argmax(psd[sel])],
        "flatness": scipy.stats.gmean(psd[sel]) / psd[sel].mean(),
        "tonality_db": 10 * np.log10(qmean.sum() * df / free),
        "bands": bands,
    }
