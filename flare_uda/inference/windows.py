"""Pure helpers for sliding windows: placement, weights, padding, body masks.

Window placement and the gaussian importance map are nnU-Net's own
(:func:`nnunetv2.inference.sliding_window_prediction.compute_steps_for_sliding_window`
and ``compute_gaussian``), so that our windows and nnUNetPredictor's coincide.
What is added here: a test that tells which windows hold any body voxel
(nnU-Net and MONAI run every window), and an Otsu body mask from one histogram.
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


def otsu_body_mask(array: np.ndarray | torch.Tensor, bins: int = 256) -> np.ndarray | torch.Tensor:
    """Voxels above an Otsu threshold of ``array`` ("z y x"): the body, not the air.

    The threshold is the lower of two-class Otsu and the lowest threshold of
    three-class Otsu, so that a bright organ class does not push the air/body
    cut into the body (skipping must stay conservative). A constant array has
    no body/air split; every voxel then counts as body.

    Written by hand (SimpleITK has both filters, but each rescans the whole
    image on the CPU): both thresholds come from one ``bins``-bin histogram,
    which ``torch.histc`` computes on whatever device ``array`` lives on.

    Returns
    -------
    Boolean mask of the same kind as ``array`` (numpy array or tensor, same device).
    """
    is_tensor = isinstance(array, torch.Tensor)
    x = array if is_tensor else torch.from_numpy(np.asarray(array, dtype=np.float32))
    x = x.float()
    lo, hi = (float(v) for v in torch.aminmax(x))
    if hi <= lo:
        mask = torch.ones(x.shape, dtype=torch.bool, device=x.device)
    else:
        hist = torch.histc(x, bins=bins, min=lo, max=hi).double().cpu().numpy()
        cut = min(_otsu_two_class(hist), _otsu_three_class_low(hist))
        # a bin's upper edge: every value of the lower class is <= it
        mask = x > lo + (cut + 1) * (hi - lo) / bins
    return mask if is_tensor else mask.numpy()


def _otsu_two_class(hist: np.ndarray) -> int:
    """Last bin of the lower class that maximises the between-class variance."""
    p = hist / hist.sum()
    w = np.cumsum(p)[:-1]
    mu = np.cumsum(p * np.arange(len(p)))
    m0 = mu[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * w - m0) ** 2 / (w * (1.0 - w))
    return int(np.nanargmax(np.where(np.isfinite(between), between, -np.inf)))


def _otsu_three_class_low(hist: np.ndarray) -> int:
    """Last bin of the lowest class in the best three-class split (maximal sum of w * m^2)."""
    p = hist / hist.sum()
    w = np.cumsum(p)
    mu = np.cumsum(p * np.arange(len(p)))
    k1, k2 = np.meshgrid(np.arange(len(p)), np.arange(len(p)), indexing="ij")
    valid = k1 < k2
    w0, w1, w2 = w[k1], w[k2] - w[k1], 1.0 - w[k2]
    m0, m1, m2 = mu[k1], mu[k2] - mu[k1], mu[-1] - mu[k2]
    with np.errstate(divide="ignore", invalid="ignore"):
        score = m0**2 / w0 + m1**2 / w1 + m2**2 / w2
    score = np.where(valid & np.isfinite(score), score, -np.inf)
    return int(np.unravel_index(np.argmax(score), score.shape)[0])


def windows_with_body(
    mask: np.ndarray | torch.Tensor, starts: np.ndarray, patch_size: Sequence[int]
) -> np.ndarray:
    """Which windows hold at least one ``mask`` voxel.

    One ``any()`` per window box, on the mask's own device: for the tens of
    windows of a volume this reads far less than a summed-volume table of the
    whole mask (0.011 s vs 0.28 s for 80 windows of a 92x525x525 mask on one
    CPU core, ``benchmarks/bench_preprocessing.py``).

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


def bounding_box(
    mask: np.ndarray | torch.Tensor, margin: Sequence[int] = (0, 0, 0)
) -> tuple[slice, ...] | None:
    """Slices (z, y, x) of the box around ``mask`` grown by ``margin`` voxels, or None if empty.

    A tensor mask is reduced on its own device; only its three axis
    projections (z + y + x booleans) cross to the CPU. (A CPU tensor is
    reduced by numpy: torch's CPU reductions over inner axes took 0.036 s
    against numpy's 0.002 s on a 100x400x400 mask, one core,
    ``benchmarks/bench_preprocessing.py``.)
    """
    if mask.ndim != 3:
        raise ValueError(f"expected a mask 'z y x' (3D), got shape {tuple(mask.shape)}")
    if isinstance(mask, torch.Tensor) and mask.device.type == "cpu":
        mask = mask.bool().numpy()
    projections = _projections_torch(mask) if isinstance(mask, torch.Tensor) else _projections(mask)
    if not projections[0].any():
        return None
    box = []
    for axis, projection in enumerate(projections):
        hit = np.flatnonzero(projection)
        lo = max(int(hit[0]) - int(margin[axis]), 0)
        hi = min(int(hit[-1]) + 1 + int(margin[axis]), mask.shape[axis])
        box.append(slice(lo, hi))
    return tuple(box)


def _projections(mask: np.ndarray) -> list[np.ndarray]:
    """Whether each z slice, y row, x column of ``mask`` holds a voxel (3 bool vectors)."""
    return [mask.any(axis=tuple(a for a in range(3) if a != axis)) for axis in range(3)]


def _projections_torch(mask: torch.Tensor) -> list[np.ndarray]:
    """:func:`_projections` reduced on ``mask``'s device, one transfer of z + y + x booleans."""
    mask = mask.bool()
    flat = torch.cat([mask.any(dim=(1, 2)), mask.any(dim=(0, 2)), mask.any(dim=(0, 1))])
    flat = flat.cpu().numpy()
    ends = np.cumsum([0, *mask.shape])
    return [flat[ends[a] : ends[a + 1]] for a in range(3)]
