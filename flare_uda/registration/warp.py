"""Dense maps: an affine followed by a displacement field, resampling, and their checks.

Convention
----------
A deformable registrar learns, besides the affine ``A`` (4x4, fixed physical
mm -> moving physical mm, :mod:`flare_uda.registration.affine`), a
displacement ``u`` on the FIXED grid: an array ``"3 z y x"`` of physical
(z, y, x) components in mm. A fixed point ``p`` corresponds to the moving
point::

    T(p) = A (p + u(p))

so ``u = 0`` is the affine registrar's map, and the field corrects the affine
in the fixed image's own frame. Resampling goes through SimpleITK (the same
interpolators and edge rule as :func:`~flare_uda.registration.affine.resample_affine`).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from flare_uda.data.io import from_sitk, to_sitk
from flare_uda.registration.affine import require_affine, to_sitk_transform
from flare_uda.volume import Volume


def require_displacement(displacement: np.ndarray, reference: Volume) -> np.ndarray:
    """``displacement`` as a finite float ``"3 z y x"`` array on ``reference``'s grid, or raise."""
    u = np.asarray(displacement)
    if u.shape != (3, *reference.shape):
        raise ValueError(
            f"expected a displacement '3 z y x' = {(3, *reference.shape)} on the fixed grid, "
            f"got shape {u.shape}"
        )
    if not np.issubdtype(u.dtype, np.floating) or not np.isfinite(u).all():
        raise ValueError(f"displacement must hold finite floats (mm), got dtype {u.dtype}")
    return u


def displacement_transform(displacement: np.ndarray, reference: Volume) -> sitk.Transform:
    """The SimpleITK transform ``p -> p + u(p)`` of a ``"3 z y x"`` field on ``reference``."""
    u = require_displacement(displacement, reference)
    vectors = np.ascontiguousarray(np.moveaxis(u, 0, -1)[..., ::-1], dtype=np.float64)  # x y z
    image = sitk.GetImageFromArray(vectors, isVector=True)
    geometry = to_sitk(reference.with_array(np.zeros(reference.shape, np.uint8)))
    image.CopyInformation(geometry)
    return sitk.DisplacementFieldTransform(image)


def resample_deformed(
    volume: Volume,
    matrix: np.ndarray,
    displacement: np.ndarray | None,
    reference: Volume,
    is_label: bool = False,
) -> Volume:
    """Resample ``volume`` onto ``reference``'s grid through ``T(p) = A (p + u(p))``.

    Parameters
    ----------
    volume : Volume
        On the moving grid.
    matrix : np.ndarray, shape (4, 4)
        ``A``, fixed physical -> moving physical (mm, z y x).
    displacement : np.ndarray "3 z y x" or None
        ``u`` on ``reference``'s grid (mm, z y x components); None: the affine alone.
    reference : Volume
        The fixed grid.
    is_label : bool
        Nearest neighbour (dtype kept) instead of linear (float32).

    Returns
    -------
    Volume on ``reference``'s grid; points outside ``volume`` get 0.
    """
    from flare_uda.registration.affine import resample_affine

    if displacement is None:
        return resample_affine(volume, matrix, reference, is_label=is_label)
    if not isinstance(volume, Volume) or not isinstance(reference, Volume):
        raise TypeError(
            f"expected Volumes, got {type(volume).__name__} and {type(reference).__name__}"
        )
    array = volume.array
    if is_label and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"a label map must hold integers, got dtype {array.dtype}")
    # ITK's composite applies its LAST transform first: p -> p + u(p), then A.
    composite = sitk.CompositeTransform(
        [to_sitk_transform(require_affine(matrix)), displacement_transform(displacement, reference)]
    )
    src = volume.with_array(array.astype(np.int32 if is_label else np.float32))
    ref = to_sitk(reference.with_array(np.zeros(reference.shape, np.uint8)))
    interp = sitk.sitkNearestNeighbor if is_label else sitk.sitkLinear
    out = from_sitk(sitk.Resample(to_sitk(src), ref, composite, interp, 0.0)).array
    return reference.with_array(out.astype(array.dtype) if is_label else out.astype(np.float32))


def mapped_points(
    matrix: np.ndarray, displacement: np.ndarray | None, reference: Volume
) -> np.ndarray:
    """``T(p)`` for every voxel ``p`` of ``reference``: moving physical mm, ``"z y x 3"``."""
    a = require_affine(matrix)
    idx = np.stack(np.meshgrid(*(np.arange(n) for n in reference.shape), indexing="ij"), -1)
    points = reference.index_to_physical(idx)
    if displacement is not None:
        points = points + np.moveaxis(require_displacement(displacement, reference), 0, -1)
    return points @ a[:3, :3].T + a[:3, 3]


def jacobian_determinant(displacement: np.ndarray, spacing: tuple[float, float, float]):
    """``det(I + du/dp)`` per voxel (``"z y x"``) of a ``"3 z y x"`` field in mm.

    Values <= 0 mark folding (the map is not invertible there). Central
    differences inside, one-sided at the edges (``np.gradient``).
    """
    u = np.asarray(displacement, dtype=np.float64)
    if u.ndim != 4 or u.shape[0] != 3:
        raise ValueError(f"expected a displacement '3 z y x', got shape {u.shape}")
    jac = np.empty((*u.shape[1:], 3, 3))
    for i in range(3):
        grads = np.gradient(u[i], *spacing, edge_order=1) if min(u.shape[1:]) > 1 else None
        if grads is None:
            raise ValueError(f"expected >= 2 voxels per axis, got {u.shape[1:]}")
        for j in range(3):
            jac[..., i, j] = grads[j] + (i == j)
    return np.linalg.det(jac)


def affine_plausibility(matrix: np.ndarray) -> tuple[float, float]:
    """(largest scale factor, largest shear) of the linear part of a fixed -> moving affine.

    Scale: the singular values ``s`` of ``A[:3, :3]``, reported as
    ``max(s.max(), 1 / s.min())`` (1 for a rigid map; 2 means some direction is
    stretched or shrunk 2x). Shear: from the polar decomposition ``A = R S``
    (``R`` a rotation, ``S`` symmetric positive), the largest off-diagonal
    ``|S_ij| / sqrt(S_ii S_jj)`` (0 without shear).
    """
    lin = require_affine(matrix)[:3, :3]
    u_, s, vt = np.linalg.svd(lin)
    stretch = vt.T @ np.diag(s) @ vt  # S of the polar decomposition
    d = np.sqrt(np.abs(np.diag(stretch)))
    off = np.abs(stretch / np.outer(d, d) - np.eye(3))
    return float(max(s.max(), 1.0 / s.min())), float(off.max())
