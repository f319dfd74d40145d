"""Pure geometry for affine registration: matrices, resampling, error measures.

Convention
----------
Every affine is a 4x4 matrix ``T`` acting on homogeneous *physical* points in
mm, written (z, y, x) like the rest of flare_uda. ``T`` maps a point of the
FIXED image's space to the corresponding point of the MOVING image's space
(the "pull" direction used by resampling, ITK's and ``grid_sample``'s).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from flare_uda.data.io import from_sitk, to_sitk
from flare_uda.volume import Volume

_REVERSE = np.eye(4)[[2, 1, 0, 3]]
"""Permutes homogeneous (z, y, x, 1) into (x, y, z, 1); its own inverse."""


def require_affine(matrix: np.ndarray, what: str = "affine") -> np.ndarray:
    """Return ``matrix`` as a finite, invertible 4x4 float array or raise ``ValueError``."""
    m = np.asarray(matrix, dtype=float)
    if m.shape != (4, 4) or not np.isfinite(m).all():
        raise ValueError(f"{what} must be a finite 4x4 matrix, got shape {m.shape}")
    if not np.allclose(m[3], [0, 0, 0, 1]) or abs(np.linalg.det(m[:3, :3])) < 1e-8:
        raise ValueError(f"{what} must be an invertible affine with last row (0, 0, 0, 1)")
    return m


def to_sitk_transform(matrix: np.ndarray) -> sitk.AffineTransform:
    """The SimpleITK transform ((x, y, z) points) equal to the (z, y, x) ``matrix``."""
    m = _REVERSE @ require_affine(matrix) @ _REVERSE
    tx = sitk.AffineTransform(3)
    tx.SetMatrix(tuple(m[:3, :3].ravel().tolist()))
    tx.SetTranslation(tuple(m[:3, 3].tolist()))
    return tx


def from_sitk_transform(transform: sitk.Transform) -> np.ndarray:
    """The (z, y, x) 4x4 matrix of any affine SimpleITK transform (composite included).

    Found from the images of the origin and the unit vectors, which is exact for
    an affine map and independent of how ITK stores its centre and offsets.
    """
    points = [(0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)]
    images = np.array([transform.TransformPoint(p) for p in points])
    m = np.eye(4)
    m[:3, 3] = images[0]
    m[:3, :3] = (images[1:] - images[0]).T
    return _REVERSE @ m @ _REVERSE


def resample_affine(
    volume: Volume, matrix: np.ndarray, reference: Volume, is_label: bool = False
) -> Volume:
    """Resample ``volume`` onto ``reference``'s grid through ``matrix`` (fixed -> moving).

    Parameters
    ----------
    volume : Volume
        The moving image or label map.
    matrix : np.ndarray, shape (4, 4)
        Maps reference (fixed) physical points to ``volume``'s physical points.
    reference : Volume
        Defines the output grid (shape, spacing, origin, direction).
    is_label : bool
        Nearest neighbour (labels keep their dtype) instead of linear (float32).

    Returns
    -------
    Volume on ``reference``'s grid; points outside ``volume`` get 0.
    """
    if not isinstance(volume, Volume) or not isinstance(reference, Volume):
        raise TypeError(
            f"expected Volumes, got {type(volume).__name__} and {type(reference).__name__}"
        )
    array = volume.array
    if is_label:
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"a label map must hold integers, got dtype {array.dtype}")
        src = volume.with_array(array.astype(np.int32))
        interp = sitk.sitkNearestNeighbor
    else:
        src = volume.with_array(array.astype(np.float32))
        interp = sitk.sitkLinear
    ref = to_sitk(reference.with_array(np.zeros(reference.shape, np.uint8)))
    out = sitk.Resample(to_sitk(src), ref, to_sitk_transform(matrix), interp, 0.0)
    res = from_sitk(out)
    arr = res.array.astype(array.dtype) if is_label else res.array.astype(np.float32)
    return reference.with_array(arr)


def grid_points(reference: Volume, step: int = 1) -> np.ndarray:
    """Physical points (mm, z y x) of ``reference``'s voxels (every ``step``-th), ``(n, 3)``."""
    axes = [np.arange(0, n, step) for n in reference.shape]
    idx = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return reference.index_to_physical(idx)


def displacement_rms(
    matrix_a: np.ndarray, matrix_b: np.ndarray, reference: Volume, in_voxels: bool = True
) -> float:
    """Root mean square distance between where two affines send ``reference``'s voxels.

    Distances are measured in the moving space, in voxels of ``reference``
    (per-axis mm divided by its spacing) when ``in_voxels``, else in mm.
    """
    a, b = require_affine(matrix_a, "matrix_a"), require_affine(matrix_b, "matrix_b")
    pts = grid_points(reference, step=max(1, min(reference.shape) // 8))
    pts = np.c_[pts, np.ones(len(pts))]
    diff = (pts @ (a - b).T)[:, :3]
    if in_voxels:
        diff = diff / np.asarray(reference.spacing)
    return float(np.sqrt((diff**2).sum(axis=1).mean()))
