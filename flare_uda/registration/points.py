"""Random subsets of a fixed grid's voxels, for a sampled L2 data term.

ITK's registration metrics take a sampling percentage for the same reason:
the mean squared difference over a random fraction of the fixed voxels is an
unbiased estimate of the full one at a fraction of the cost. torch has no such
option in ``affine_grid``/``grid_sample``, so the points are built here.
"""

from __future__ import annotations

import torch

MIN_POINTS = 4096


def grid_points(
    shape: tuple[int, int, int], fraction: float, seed: int, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset of the voxels of a ``"z y x"`` grid.

    Parameters
    ----------
    shape : 3 ints
        The grid (``"z y x"``).
    fraction : float
        In (0, 1]; at least ``MIN_POINTS`` points (or all) are kept.
    seed : int
    device : str or torch.device

    Returns
    -------
    base : torch.Tensor, float32, "n 4"
        ``(x, y, z, 1)`` in ``affine_grid``'s normalised coordinates
        (``align_corners=True``), so that ``base @ theta.T`` is the sampling grid.
    flat : torch.Tensor, int64, "n"
        Flat (z-major) voxel indices of the points, sorted.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"sample fraction must be in (0, 1], got {fraction}")
    total = int(shape[0]) * int(shape[1]) * int(shape[2])
    n = min(total, max(MIN_POINTS, int(round(total * fraction))))
    flat = torch.arange(total)
    if n < total:
        gen = torch.Generator().manual_seed(int(seed))
        flat = torch.randperm(total, generator=gen)[:n].sort().values
    d, h, w = (int(s) for s in shape)
    z, y, x = flat // (h * w), (flat // w) % h, flat % w
    coords = [2.0 * c.float() / max(size - 1, 1) - 1.0 for c, size in ((x, w), (y, h), (z, d))]
    base = torch.stack([*coords, torch.ones(n)], 1)
    return base.to(device), flat.to(device)
