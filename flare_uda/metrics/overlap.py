"""Dice similarity coefficient (DSC) of binary masks."""

from __future__ import annotations

import numpy as np

from flare_uda._validation import require_ndim


def dice_from_counts(
    intersection: int, pred_count: int, ref_count: int, empty_score: float
) -> float:
    """``2 |P & R| / (|P| + |R|)``, or ``empty_score`` when both are empty."""
    total = int(pred_count) + int(ref_count)
    return 2.0 * int(intersection) / total if total > 0 else float(empty_score)


def mask_pair(pred_mask: np.ndarray, ref_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as bool arrays (z, y, x) of one shape, or ``ValueError``."""
    pred, ref = np.asarray(pred_mask), np.asarray(ref_mask)
    require_ndim(pred, 3, "pred_mask")
    require_ndim(ref, 3, "ref_mask")
    if pred.shape != ref.shape:
        raise ValueError(
            f"pred_mask and ref_mask must have the same shape, got {pred.shape} and {ref.shape}"
        )
    return pred.astype(bool, copy=False), ref.astype(bool, copy=False)


def dice(pred_mask: np.ndarray, ref_mask: np.ndarray, empty_score: float = 1.0) -> float:
    """Dice similarity coefficient of two binary masks.

    Parameters
    ----------
    pred_mask, ref_mask : np.ndarray of bool, shape (z, y, x)
        Same shape; non-zero is foreground.
    empty_score : float
        Returned when both masks are empty (FLARE: 1). One empty gives 0.

    Returns
    -------
    float
        ``2 |P & R| / (|P| + |R|)``.
    """
    pred, ref = mask_pair(pred_mask, ref_mask)
    return dice_from_counts(
        np.count_nonzero(pred & ref), np.count_nonzero(pred), np.count_nonzero(ref), empty_score
    )
