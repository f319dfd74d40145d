"""Per-image intensity scaling to [-1, 1], the range of the generators' tanh output.

Why local: the GAN needs each image on a fixed bounded range independent of
modality (CT in HU, MR in arbitrary units), whereas the segmentation
normalisation of :mod:`flare_uda.data.preprocess` is a z-score (unbounded).
The recipe is the usual robust one: clip each image to its own
``percentiles`` (default 0.5 and 99.5), then map the clipped range linearly
onto [-1, 1].
"""

from __future__ import annotations

import numpy as np

from flare_uda._validation import require_finite


def robust_scale(array: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)) -> np.ndarray:
    """Clip ``array`` to its own percentiles and scale it linearly to [-1, 1].

    Parameters
    ----------
    array : np.ndarray, "z y x"
        One image, any intensity unit.
    percentiles : (low, high)
        Clip percentiles in [0, 100].

    Returns
    -------
    np.ndarray of float32, "z y x"
        Values in [-1, 1]; a constant image maps to all -1.
    """
    arr = np.asarray(array, dtype=np.float32)
    require_finite(arr, "image to scale")
    lo, hi = np.percentile(arr, percentiles)
    if hi <= lo:
        return np.full(arr.shape, -1.0, dtype=np.float32)
    out = (np.clip(arr, lo, hi) - lo) / (hi - lo) * 2.0 - 1.0
    return out.astype(np.float32)


def unit_to_symmetric(array: np.ndarray) -> np.ndarray:
    """Map [0, 1] (e.g. a Sobel magnitude) onto [-1, 1]."""
    return (np.asarray(array, dtype=np.float32) * 2.0 - 1.0).astype(np.float32)


def symmetric_to_unit(array: np.ndarray) -> np.ndarray:
    """Map [-1, 1] back onto [0, 1] (clipped)."""
    return np.clip((np.asarray(array, dtype=np.float32) + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)
