"""Pure helpers for sliding windows: placement, weights, padding, body masks.

Window placement and the gaussian importance map are nnU-Net's own
(:func:`nnunetv2.inference.sliding_window_prediction.compute_steps_for_sliding_window`
and ``compute_gaussian``), so that our windows and nnUNetPredictor's coincide.
What is added here: a box-sum test that tells, for every window at once, whether
it holds any body voxel (nnU-Net and MONAI run every window), and an Otsu body
mask (SimpleITK's filter).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
import torch
from nnunetv2.inference.sliding_window_prediction import (
    compute_gaussian,
    compute_steps_for_sliding_window,
)

from flare_uda._validation import require_choice

WEIGHTINGS = ("gaussian", "constant")


def window_starts(shape: Sequence[int], patch_size: Sequence[int], step: float) -> np.ndarray:
    """Start corners of the windows tiling ``shape`` (nnU-Net's placement).

    Parameters
    ----------
    shape : 3 ints
        Image shape (z, y, x); every axis must be >= the patch (pad first).
    patch_size : 3 ints
        Window shape (z, y, x).
    step : float
        Step as a fraction of the patch, in (0, 1]; 0.5 is nnU-Net's default
        (50 % overlap), 1.0 tiles without overlap wherever the shape allows.

    Returns
    -------
    np.ndarray, "n 3"
        Window corners (z, y, x), z slowest.
    """
    if not 0.0 < step <= 1.0:
        raise ValueError(f"step must be in (0, 1], got {step}")
    if any(s < p for s, p in zip(shape, patch_size, strict=True)):
        raise ValueError(f"expected an image at least the patch {tuple(patch_size)}, got {shape}")
    steps = compute_steps_for_sliding_window(tuple(shape), tuple(patch_size), step)
    return np.asarray(list(itertools.product(*steps)), dtype=np.int64).reshape(-1, 3)


def window_weights(
    patch_size: Sequence[int],
    weighting: str = "gaussian",
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Importance map of one window, shape ``"z y x"`` == ``patch_size``, max 1.

    ``"gaussian"`` is nnU-Net's map (sigma = patch / 8, no zeros);
    ``"constant"`` is all ones.
    """
    require_choice(weighting, WEIGHTINGS, "weighting")
    patch = tuple(int(p) for p in patch_size)
    if weighting == "constant":
        return torch.ones(patch, dtype=dtype, device=device)
    return compute_gaussian(
        patch,
        sigma_scale=1.0 / 8,
        value_scaling_factor=1.0,
        dtype=dtype,
        device=torch.device(device),
    )


def pad_to_patch(array: np.ndarray, patch_size: Sequence[int]) -> tuple[np.ndarray, tuple]:
    """Pad ``"c z y x"`` symmetrically with zeros up to at least ``patch_size``.

    Returns
    -------
    padded : np.ndarray, "c z' y' x'"
    crop : tuple of slice
        Slices (z, y, x) that recover the unpadded region from the padded one.
    """
    shape = array.shape[1:]
    before = [max(p - s, 0) // 2 for s, p in zip(shape, patch_size, strict=True)]
    after = [max(p - s, 0) - b for s, p, b in zip(shape, patch_size, before, strict=True)]
    crop = tuple(slice(b, b + s) for b, s in zip(before, shape, strict=True))
    if not any(before) and not any(after):
        return array, crop
    padded = np.pad(array, [(0, 0)] + list(zip(before, after, strict=True)), mode="constant")
    return padded, crop


def otsu_body_mask(array: np.ndarray) -> np.ndarray:
    """Voxels above an Otsu threshold of ``array`` ("z y x"): the body, not the air.

    The threshold is the lower of two-class Otsu and the lowest threshold of
    three-class Otsu (SimpleITK's filters), so that a bright organ class does
    not push the air/body cut into the body (skipping must stay conservative).
    A constant array has no body/air split; every voxel then counts as body.
    """
    arr = np.asarray(array, dtype=np.float32)
    if float(arr.max()) <= float(arr.min()):
        return np.ones(arr.shape, dtype=bool)
    image = sitk.GetImageFromArray(arr)
    otsu = sitk.OtsuThresholdImageFilter()
    otsu.SetInsideValue(0)
    otsu.SetOutsideValue(1)
    otsu.SetNumberOfHistogramBins(256)
    otsu.Execute(image)
    multi = sitk.OtsuMultipleThresholdsImageFilter()
    multi.SetNumberOfThresholds(2)
    multi.SetNumberOfHistogramBins(256)
    multi.Execute(image)
    return arr > min(otsu.GetThreshold(), *multi.GetThresholds())


def windows_with_body(
    mask: np.ndarray, starts: np.ndarray, patch_size: Sequence[int]
) -> np.ndarray:
    """Which windows hold at least one ``mask`` voxel, via one summed-volume table.

    Parameters
    ----------
    mask : np.ndarray of bool, "z y x"
    starts : np.ndarray, "n 3"
    patch_size : 3 ints

    Returns
    -------
    np.ndarray of bool, "n"
    """
    table = np.zeros(tuple(s + 1 for s in mask.shape), dtype=np.int64)
    table[1:, 1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1).cumsum(2)
    a = starts
    b = starts + np.asarray(patch_size)[None, :]
    total = np.zeros(len(starts), dtype=np.int64)
    # inclusion-exclusion over the 8 corners of each box
    for corner in itertools.product((0, 1), repeat=3):
        idx = tuple(np.where(c, b[:, i], a[:, i]) for i, c in enumerate(corner))
        sign = (-1) ** (3 - sum(corner))
        total += sign * table[idx]
    return total > 0


def bounding_box(mask: np.ndarray, margin: Sequence[int] = (0, 0, 0)) -> tuple[slice, ...] | None:
    """Slices (z, y, x) of the box around ``mask`` grown by ``margin`` voxels, or None if empty."""
    if not mask.any():
        return None
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        lo = max(int(hit[0]) - int(margin[axis]), 0)
        hi = min(int(hit[-1]) + 1 + int(margin[axis]), mask.shape[axis])
        box.append(slice(lo, hi))
    return tuple(box)
