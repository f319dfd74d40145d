"""The grids of the batched affine solver: pyramid levels, the normalised frame, their maps.

Helpers of :func:`~flare_uda.registration.torch_affine.register_batch`: each
level average-pools both images to about ``level`` times the finest spacing
(per axis, so anisotropic voxels pool less along their long axis) and carries
the index -> physical matrices of the pooled grids; the solver's parameters live
in the normalised physical frame ``q = (p - c_f) / s`` of the fixed image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from flare_uda.registration.points import grid_points

REVERSE = torch.tensor(np.eye(4)[[2, 1, 0, 3]], dtype=torch.float64)
"""Permutes homogeneous (z, y, x, 1) into (x, y, z, 1) (``affine_grid``'s order)."""
MIN_LEVEL_SIZE = 4


def check_levels(shrink_factors: tuple, iterations: tuple, what: str) -> None:
    """One iteration count (>= 0) per pyramid level (>= 1), at least one level, or raise."""
    if len(shrink_factors) != len(iterations) or not iterations:
        raise ValueError(
            f"expected one {what} iteration count per level, got {iterations} for {shrink_factors}"
        )
    if min(shrink_factors) < 1 or min(iterations) < 0:
        raise ValueError(
            f"expected {what} shrink factors >= 1 and iterations >= 0, got {shrink_factors} "
            f"and {iterations}"
        )


def _level_factors(shape: tuple[int, ...], spacing: np.ndarray, level: int) -> tuple[int, ...]:
    """Per-axis pooling factors giving ~``level * min(spacing)`` voxels, >= 4 voxels per axis."""
    target = level * spacing.min()
    out = []
    for n, s in zip(shape, spacing, strict=True):
        f = max(1, int(round(target / s)))
        while f > 1 and n // f < MIN_LEVEL_SIZE:
            f -= 1
        out.append(f)
    return tuple(out)


def _pool(x: torch.Tensor, affine: torch.Tensor, factors: tuple[int, ...]):
    """Average-pool ``"b c z y x"`` and return the pooled grid's index -> physical matrices."""
    if all(f == 1 for f in factors):
        return x, affine
    d = torch.eye(4, dtype=torch.float64)
    for i, f in enumerate(factors):
        d[i, i] = f
        d[i, 3] = (f - 1) / 2
    return F.avg_pool3d(x, factors, factors), affine @ d


def _norm_to_index(shape: tuple[int, ...]) -> torch.Tensor:
    n = torch.eye(4, dtype=torch.float64)
    for i, size in enumerate(shape):
        n[i, i] = (size - 1) / 2
        n[i, 3] = (size - 1) / 2
    return n


def centre_of_mass(x: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """Physical centre of mass ``"b 3"`` of the channel-summed, non-negative features."""
    w = x.clamp(min=0).sum(1).double()
    total = w.flatten(1).sum(1).clamp(min=1e-12)
    idx = []
    for axis in range(3):
        other = tuple(a + 1 for a in range(3) if a != axis)
        marg = w.sum(other)
        idx.append((marg * torch.arange(marg.shape[1], dtype=torch.float64)).sum(1) / total)
    idx_h = torch.stack(idx + [torch.ones_like(idx[0])], 1)
    return (affine @ idx_h[..., None])[:, :3, 0]


def normalised_frame(fix: torch.Tensor, a_f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The frame ``q = (p - c_f) / s`` ("b 4 4") and the fixed centres of mass ``c_f``."""
    b = fix.shape[0]
    c_f = centre_of_mass(fix.cpu(), a_f)
    corners = torch.tensor(
        [[i, j, k, 1.0] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=torch.float64
    ) * torch.tensor([*(n - 1 for n in fix.shape[2:]), 1.0], dtype=torch.float64)
    phys = torch.einsum("bij,nj->bni", a_f, corners)[..., :3]
    s = (phys.amax(1) - phys.amin(1)).amax(1) / 2
    frame = torch.eye(4, dtype=torch.float64).repeat(b, 1, 1)
    frame[:, :3, :3] /= s[:, None, None]
    frame[:, :3, 3] = -c_f / s[:, None]
    return frame, c_f


@dataclass
class Level:
    """One pyramid level: pooled images and the maps between grid and normalised frame."""

    mov: torch.Tensor
    fix: torch.Tensor
    left: torch.Tensor
    right: torch.Tensor
    points: tuple[torch.Tensor, torch.Tensor] | None


def level_grids(mov, fix, a_m, a_f, frame, level: int, j: int, sample_fraction: float, device):
    """Pool both images for pyramid ``level`` (index ``j``); sample fixed voxels if asked."""
    spacing_m = torch.linalg.norm(a_m[0, :3, :3], dim=0).numpy()
    spacing_f = torch.linalg.norm(a_f[0, :3, :3], dim=0).numpy()
    mov_l, am_l = _pool(mov, a_m, _level_factors(tuple(mov.shape[2:]), spacing_m, level))
    fix_l, af_l = _pool(fix, a_f, _level_factors(tuple(fix.shape[2:]), spacing_f, level))
    left = torch.linalg.inv(am_l @ _norm_to_index(tuple(mov_l.shape[2:]))) @ torch.linalg.inv(frame)
    right = frame @ af_l @ _norm_to_index(tuple(fix_l.shape[2:]))
    points = None
    if sample_fraction < 1.0:
        base, flat = grid_points(tuple(fix_l.shape[2:]), sample_fraction, j, device)
        points = (base, fix_l.flatten(2)[:, :, flat])
    return Level(
        mov_l,
        fix_l,
        (REVERSE @ left).to(torch.float32).to(device),
        (right @ REVERSE).to(torch.float32).to(device),
        points,
    )
