"""Normalised surface Dice (NSD) on surface elements with their areas.

The method is the one FLARE's official evaluation uses (DeepMind's
``surface-distance``: ``compute_surface_distances`` then
``compute_surface_dice_at_tolerance``), and MONAI's
``compute_surface_dice(..., use_subvoxels=True)``:

1. every 2x2x2 neighbourhood of voxels gets an 8-bit code; codes other than 0
   and 255 are surface elements ("surfels") sitting on the voxel corners;
2. each surfel's area (mm^2) comes from a 256-entry table built from the
   marching-cubes normals and the spacing (MONAI's normals and rule, kept as
   data in :mod:`._surfel_normals` so that no torch import is needed);
3. the distance (mm) from every surfel of one mask to the nearest surfel of
   the other; NSD is the surfel area within the tolerance, on both sides,
   over the total surfel area.

What is written here, and why: MONAI and DeepMind work on the whole (or
foreground-cropped) volume with one-hot float tensors. Here a mask is cut to
the union bounding box of both masks plus one voxel (all surfels lie inside
it, so distances between surfels are exact there), the neighbourhood code is
built with three shifted additions instead of a convolution, surfels common
to both masks are at distance 0 without a search, and only the others are
looked up in a KD-tree that stops at the tolerance.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from flare_uda._validation import as_triplet, require_choice
from flare_uda.metrics._surfel_normals import neighbour_code_normals
from flare_uda.metrics.overlap import mask_pair

Box = tuple[slice, slice, slice]
SEARCHES = ("auto", "kdtree", "offsets")
MAX_OFFSETS = 1500
"""Above this many grid offsets in the tolerance ellipsoid, ``search="auto"`` uses a KD-tree."""


@functools.lru_cache(maxsize=64)
def surfel_area_table(spacing: tuple[float, float, float]) -> np.ndarray:
    """Area in mm^2 of the surface element of each 8-bit neighbourhood code.

    Parameters
    ----------
    spacing : tuple of 3 float
        Voxel size in mm, (z, y, x).

    Returns
    -------
    np.ndarray of float64, shape (256,)
        ``table[code]``, for codes built by :func:`neighbour_codes`.
    """
    sz, sy, sx = (float(s) for s in spacing)
    # MONAI's rule (create_table_neighbour_code_to_surface_area): scale each normal's
    # components by the face areas of the voxel, sum the lengths of a code's normals
    scaled = neighbour_code_normals() * np.array([sy * sx, sz * sx, sz * sy])
    table = np.linalg.norm(scaled, axis=-1).sum(axis=-1)
    table.setflags(write=False)
    return table


def neighbour_codes(mask: np.ndarray) -> np.ndarray:
    """8-bit code of every 2x2x2 neighbourhood, the mask zero-padded by one voxel.

    The bit of neighbour ``(a, b, c)`` (offsets 0/1 along z, y, x) is
    ``2 ** (7 - 4a - 2b - c)``, MONAI's ``ENCODING_KERNEL[3]``.

    Parameters
    ----------
    mask : np.ndarray of bool, shape (z, y, x)

    Returns
    -------
    np.ndarray of uint8, shape (z+1, y+1, x+1)
        Code at each voxel corner; corner ``i`` covers voxels ``i-1`` and ``i``.
    """
    p = np.pad(np.asarray(mask, dtype=np.uint8), 1)
    # three shifted additions build the 8-bit code (faster than a 2x2x2 convolution)
    a = (p[:, :, :-1] << 1) | p[:, :, 1:]
    b = (a[:, :-1] << 2) | a[:, 1:]
    return (b[:-1] << 4) | b[1:]


def surfels(mask: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Surface elements of ``mask``: their corner indices and areas.

    Parameters
    ----------
    mask : np.ndarray of bool, shape (z, y, x)
    spacing : sequence of 3 float
        Voxel size in mm, (z, y, x).

    Returns
    -------
    codes_grid : np.ndarray of uint8, shape (z+1, y+1, x+1)
        Neighbourhood codes (see :func:`neighbour_codes`).
    areas : np.ndarray of float64, shape (z+1, y+1, x+1)
        Surfel area in mm^2, 0 where there is no surfel.
    """
    codes = neighbour_codes(mask)
    return codes, surfel_area_table(as_triplet(spacing, "spacing", positive=True))[codes]


def union_box(shape: Sequence[int], *boxes: Box | None, margin: int = 0) -> Box | None:
    """Bounding box covering ``boxes`` (``None`` ones skipped), grown by ``margin``, clipped."""
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    return tuple(
        slice(
            max(0, min(b[d].start for b in boxes) - margin),
            min(int(shape[d]), max(b[d].stop for b in boxes) + margin),
        )
        for d in range(3)
    )  # type: ignore[return-value]


def mask_box(mask: np.ndarray) -> Box | None:
    """Bounding box of the non-zero voxels of ``mask``, ``None`` when empty."""
    if not mask.any():
        return None
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        box.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return tuple(box)  # type: ignore[return-value]


def surface_overlap(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: Sequence[float],
    tolerance_mm: float,
    search: str = "auto",
) -> tuple[float, float]:
    """Surfel area within tolerance and total surfel area, both masks together.

    The masks should already be cut to a box around both (with one voxel of
    background margin or touching the array border: outside is background).

    Parameters
    ----------
    pred, ref : np.ndarray of bool, shape (z, y, x)
    spacing : sequence of 3 float
        Voxel size in mm, (z, y, x).
    tolerance_mm : float
        Largest accepted distance in mm.
    search : {"auto", "kdtree", "offsets"}
        How surfels within tolerance are found (same result, different speed):
        a KD-tree of the other surface, or a look-up of every grid offset inside
        the tolerance ellipsoid (fast for few offsets, i.e. coarse grids).

    Returns
    -------
    (float, float)
        ``(area within tolerance, total area)`` in mm^2; NSD is their ratio.
    """
    spacing = as_triplet(spacing, "spacing", positive=True)
    require_choice(search, SEARCHES, "search")
    table = surfel_area_table(spacing)
    code_p, code_r = neighbour_codes(pred), neighbour_codes(ref)
    border_p = (code_p != 0) & (code_p != 255)
    border_r = (code_r != 0) & (code_r != 255)
    total = float(table[code_p[border_p]].sum() + table[code_r[border_r]].sum())
    if not border_p.any() or not border_r.any():
        return 0.0, total
    # surfels present in both masks are at distance 0 from each other
    both = border_p & border_r
    within = float(table[code_p[both]].sum() + table[code_r[both]].sum())
    for border, code, other in ((border_p, code_p, border_r), (border_r, code_r, border_p)):
        only = border & ~both
        if only.any():
            near = _near(np.argwhere(only), other, spacing, tolerance_mm, search)
            within += float(table[code[only]][near].sum())
    return within, total


@functools.lru_cache(maxsize=256)
def ball_offsets(spacing: tuple[float, float, float], tolerance_mm: float) -> np.ndarray:
    """Grid offsets (z, y, x) within ``tolerance_mm`` of the origin, nearest first, origin left out.

    Returns
    -------
    np.ndarray of int64, shape (n, 3)
    """
    sp = np.asarray(spacing, dtype=float)
    r = np.floor(tolerance_mm / sp).astype(int)
    grid = np.stack(
        np.meshgrid(*(np.arange(-k, k + 1) for k in r), indexing="ij"), axis=-1
    ).reshape(-1, 3)
    dist = np.sqrt(((grid * sp) ** 2).sum(axis=1))
    keep = (dist <= tolerance_mm) & (dist > 0)
    out = grid[keep][np.argsort(dist[keep], kind="stable")]
    out.setflags(write=False)
    return out


def _near(
    points: np.ndarray, other: np.ndarray, spacing: tuple, tolerance_mm: float, search: str
) -> np.ndarray:
    """Which ``points`` (n, 3) have a True voxel of ``other`` within ``tolerance_mm``."""
    offsets = ball_offsets(spacing, float(tolerance_mm))
    # the offset look-up was the faster one on the FLARE tolerances and spacings measured
    # (benchmarks/bench_metrics.py); very fine grids give thousands of offsets, each a
    # numpy step: the KD-tree then (MAX_OFFSETS is a guard, not a measured crossover)
    if search == "kdtree" or (search == "auto" and len(offsets) > MAX_OFFSETS):
        scale = np.asarray(spacing)
        tree = cKDTree(np.argwhere(other) * scale)
        # bound a little above the tolerance so that distances equal to it are found;
        # the comparison below is the exact one (<= tolerance)
        dist, _ = tree.query(points * scale, k=1, distance_upper_bound=tolerance_mm * 1.001 + 1e-9)
        return dist <= tolerance_mm
    near = np.zeros(len(points), dtype=bool)
    if len(offsets) == 0:
        return near
    pad = np.abs(offsets).max(axis=0)
    padded = np.pad(other.astype(bool, copy=False), [(int(k), int(k)) for k in pad])
    # points with no surfel in the box around them are far: drop them before the loop
    boxed = padded.view(np.uint8)
    for axis, k in enumerate(pad):
        if k:
            boxed = ndimage.maximum_filter1d(boxed, 2 * int(k) + 1, axis=axis, mode="constant")
    mult = np.array([padded.shape[1] * padded.shape[2], padded.shape[2], 1])
    flat = (points + pad) @ mult
    padded = padded.ravel()
    remaining = np.flatnonzero(boxed.ravel()[flat])
    for delta in offsets @ mult:
        found = padded[flat[remaining] + delta]
        if found.any():
            near[remaining[found]] = True
            remaining = remaining[~found]
            if remaining.size == 0:
                break
    return near


def surface_dice(
    pred_mask: np.ndarray,
    ref_mask: np.ndarray,
    spacing: Sequence[float],
    tolerance_mm: float,
    empty_score: float = 1.0,
    search: str = "auto",
) -> float:
    """Normalised surface Dice of two binary masks at ``tolerance_mm``.

    Parameters
    ----------
    pred_mask, ref_mask : np.ndarray of bool, shape (z, y, x)
        Same shape.
    spacing : sequence of 3 float
        Voxel size in mm, (z, y, x).
    tolerance_mm : float
        Largest accepted surface distance in mm (>= 0).
    empty_score : float
        Returned when both masks are empty (FLARE: 1). One empty gives 0.
    search : {"auto", "kdtree", "offsets"}
        See :func:`surface_overlap`.

    Returns
    -------
    float
        Surfel area within tolerance (both directions) over total surfel area.
    """
    pred, ref = mask_pair(pred_mask, ref_mask)
    spacing = as_triplet(spacing, "spacing", positive=True)
    if not np.isfinite(tolerance_mm) or tolerance_mm < 0:
        raise ValueError(f"tolerance_mm must be a finite number >= 0, got {tolerance_mm}")
    box = union_box(pred.shape, mask_box(pred), mask_box(ref))
    if box is None:
        return float(empty_score)
    within, total = surface_overlap(pred[box], ref[box], spacing, tolerance_mm, search)
    return within / total if total > 0 else float(empty_score)
