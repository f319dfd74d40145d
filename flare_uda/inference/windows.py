"""Pure helpers for sliding windows: placement, weights, padding, body masks.

Window placement and the gaussian importance map are nnU-Net's own
(:func:`nnunetv2.inference.sliding_window_prediction.compute_steps_for_sliding_window`
and ``compute_gaussian``), so that our windows and nnUNetPredictor's coincide.
What is added here: a test that tells which windows hold any body voxel
(nnU-Net and MONAI run every window); the body mask is :mod:`~flare_uda.inference.boxes`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
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


def pad_to_patch(
    array: np.ndarray | torch.Tensor, patch_size: Sequence[int]
) -> tuple[np.ndarray | torch.Tensor, tuple]:
    """Pad ``"c z y x"`` symmetrically with zeros (False) up to at least ``patch_size``.

    Returns
    -------
    padded : np.ndarray or torch.Tensor (as ``array``, same device), "c z' y' x'"
    crop : tuple of slice
        Slices (z, y, x) that recover the unpadded region from the padded one.
    """
    shape = array.shape[1:]
    before = [max(p - s, 0) // 2 for s, p in zip(shape, patch_size, strict=True)]
    after = [max(p - s, 0) - b for s, p, b in zip(shape, patch_size, before, strict=True)]
    crop = tuple(slice(b, b + s) for b, s in zip(before, shape, strict=True))
    if not any(before) and not any(after):
        return array, crop
    if isinstance(array, torch.Tensor):  # F.pad lists the last axis first
        pads = [v for b, a in zip(before[::-1], after[::-1], strict=True) for v in (b, a)]
        return torch.nn.functional.pad(array, pads), crop
    padded = np.pad(array, [(0, 0)] + list(zip(before, after, strict=True)), mode="constant")
    return padded, crop


def windows_with_body(
    mask: np.ndarray | torch.Tensor, starts: np.ndarray, patch_size: Sequence[int]
) -> np.ndarray:
    """Which windows hold at least one ``mask`` voxel.

    One ``any()`` per window box, on the mask's own device: for the tens of
    windows of a volume this reads far less than a summed-volume table of the
    whole mask (measured in docs/benchmarks.md, "Steps around the network").

    Parameters
    ----------
    mask : np.ndarray or torch.Tensor of bool, "z y x"
    starts : np.ndarray, "n 3"
    patch_size : 3 ints

    Returns
    -------
    np.ndarray of bool, "n"
    """
    pz, py, px = (int(p) for p in patch_size)
    hits = [mask[z : z + pz, y : y + py, x : x + px].any() for z, y, x in np.asarray(starts)]
    if isinstance(mask, torch.Tensor):
        return torch.stack(hits).cpu().numpy() if hits else np.zeros(0, dtype=bool)
    return np.array(hits, dtype=bool)
