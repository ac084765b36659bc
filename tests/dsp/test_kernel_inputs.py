"""Kernels see one array type whatever the caller passes: a strided or read-only array must not
make numba compile another signature at call time (warm-up compiles only the C-contiguous one,
and a compile in a daemon worker holds the GIL for seconds)."""

import numpy as np

from dsp.correlate import _gcc_kernel, gcc_tdoa
from dsp.features import compute_features
from dsp.spectra import _frame_psd_kernel, welch_psd


def _arrays(dispatcher):
    return [t for sig in dispatcher.signatures for t in sig if hasattr(t, "layout")]


def test_strided_and_read_only_inputs_reuse_the_contiguous_signature():
    x = np.random.default_rng(3).standard_normal(2 * 8192)
    read_only = x[:8192].copy()
    read_only.flags.writeable = False
    strided = x[::2]
    for arr in (read_only, strided):
        compute_features(arr, 4096.0, band_hz=(200.0, 1500.0))
        welch_psd(arr, 4096.0, 1024)
        gcc_tdoa(arr, arr, 4096.0, max_lag_s=0.05, band_hz=(200.0, 1500.0))
    for dispatcher in (_frame_psd_kernel, _gcc_kernel):
        arrays = _arrays(dispatcher)
        assert arrays, dispatcher
        assert all(t.layout == "C" and t.mutable for t in arrays), dispatcher.signatures
    assert not read_only.flags.writeable  # the caller's array is left as it was
