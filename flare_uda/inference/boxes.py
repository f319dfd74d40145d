"""Where the body is, and boxes around it: Otsu body mask, bounding boxes, box transfer.

Used by the inferers to skip windows without body voxels and to crop a
region of interest; every function takes a numpy array or a tensor and
computes on the tensor's own device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from flare_uda.volume import Volume


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


def bounding_box(
    mask: np.ndarray | torch.Tensor, margin: Sequence[int] = (0, 0, 0)
) -> tuple[slice, ...] | None:
    """Slices (z, y, x) of the box around ``mask`` grown by ``margin`` voxels, or None if empty.

    A tensor mask is reduced on its own device; only its three axis
    projections (z + y + x booleans) cross to the CPU. (A CPU tensor is
    reduced by numpy, faster than torch's CPU reductions over inner axes:
    docs/benchmarks.md, "Steps around the network".)
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


def box_to_grid(box: Sequence[slice], source: Volume, target: Volume) -> tuple[slice, ...]:
    """Map a voxel box of ``source`` onto ``target``'s voxel grid (same direction assumed).

    The box's corners are taken to physical space and back, rounded outwards
    and clipped to ``target``'s shape.
    """
    lo = np.array([b.start for b in box], dtype=float) - 0.5
    hi = np.array([b.stop for b in box], dtype=float) - 0.5
    inv = np.linalg.inv(target.direction * np.asarray(target.spacing)[None, :])
    corners = [source.index_to_physical(c) for c in (lo, hi)]
    idx = [inv @ (c - np.asarray(target.origin)) for c in corners]
    t_lo = np.floor(np.minimum(idx[0], idx[1]) + 0.5).astype(int)
    t_hi = np.ceil(np.maximum(idx[0], idx[1]) + 0.5).astype(int)
    return tuple(
        slice(int(max(a, 0)), int(min(b, n)))
        for a, b, n in zip(t_lo, t_hi, target.shape, strict=True)
    )
