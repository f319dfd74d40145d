"""Resampling to a target spacing (nnU-Net's rules) and back onto an original grid.

Forward (:func:`resample_volume`) reuses nnU-Net v2's
``resample_data_or_seg``: images by third-order spline, and when the data (or
the target) is anisotropic (max/min spacing > 3) the low-resolution axis
separately, by nearest neighbour ("separate z"). Labels are resampled by
nearest neighbour (``order=0``) in all axes. nnU-Net itself resamples labels
one-hot with ``order=1`` (one pass per label, then argmax); on a 12-organ AMOS
label that was several times slower, with per-organ Dice >= 0.96 between the two
results and no better round trip (docs/benchmarks.md, "Label resampling"), and
nearest neighbour keeps every label value exact, so flare_uda keeps nearest.
Where voxel centres go: nnU-Net's resize maps the
*edges* of the old grid onto the edges of the new one (``align_corners=False``),
so the physical extent ``shape * spacing`` is preserved exactly; the new shape
is ``round(old_shape * old_spacing / target)``, hence the new spacing is
``old_extent / new_shape``, equal to the target up to that rounding (relative
difference <= 0.5 / new_shape); the origin (centre of voxel 0) moves by half
the change in voxel size along each axis's direction.

Backward (:func:`resample_to_reference`) uses SimpleITK's ResampleImageFilter
in physical space onto exactly the reference's geometry.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from flare_uda._validation import as_triplet
from flare_uda.volume import Volume

ANISOTROPY_THRESHOLD = 3.0
"""nnU-Net's ``ANISO_THRESHOLD``: max/min spacing above it triggers separate-z resampling."""

MAX_RESAMPLED_VOXELS = 1024**3
"""Largest resampled grid (4 GiB as float32); beyond it a spacing is wrong, not the scan."""


def _require_volume(volume: object, what: str) -> Volume:
    if not isinstance(volume, Volume):
        raise TypeError(f"{what} must be a Volume, got {type(volume).__name__}")
    return volume


def separate_z_axis(
    spacing: tuple[float, float, float], target: tuple[float, float, float]
) -> int | None:
    """The axis nnU-Net resamples separately (order 0), or ``None`` for full 3D.

    Follows ``nnunetv2.preprocessing.resampling.default_resampling.
    determine_do_sep_z_and_axis`` with ``force_separate_z=None``: the source
    spacing decides first, then the target; an ambiguous low-resolution axis
    (two axes share the largest spacing) means no separate axis.

    Parameters
    ----------
    spacing, target : tuple of 3 float
        Current and target spacing, (z, y, x) mm.
    """
    from nnunetv2.preprocessing.resampling.default_resampling import (
        determine_do_sep_z_and_axis,
    )

    do_separate, axis = determine_do_sep_z_and_axis(
        None, np.asarray(spacing), np.asarray(target), ANISOTROPY_THRESHOLD
    )
    return int(axis) if do_separate else None


def target_shape(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    target: tuple[float, float, float],
) -> tuple[int, int, int]:
    """nnU-Net's new shape, ``round(shape * spacing / target)``, at least 1 per axis.

    Raises
    ------
    ValueError
        If the new grid would exceed :data:`MAX_RESAMPLED_VOXELS` (checked
        before anything is allocated; e.g. a broken 1e5 mm spacing).
    """
    extent = np.asarray(shape, dtype=float) * np.asarray(spacing, dtype=float)
    voxels = float(np.prod(np.maximum(np.rint(extent / np.asarray(target, dtype=float)), 1)))
    if not voxels <= MAX_RESAMPLED_VOXELS:
        raise ValueError(
            f"resampling a {tuple(shape)} volume with spacing {tuple(spacing)} mm to "
            f"{tuple(target)} mm would make {voxels:.3g} voxels; expected at most "
            f"{MAX_RESAMPLED_VOXELS:.3g} (is a spacing wrong?)"
        )
    from nnunetv2.preprocessing.resampling.default_resampling import compute_new_shape

    new = compute_new_shape(shape, spacing, target)
    return tuple(max(1, int(n)) for n in new)  # type: ignore[return-value]


def resample_volume(
    volume: Volume, spacing: tuple[float, float, float] | float, is_label: bool = False
) -> Volume:
    """Resample ``volume`` to ``spacing`` with nnU-Net's default rules.

    Parameters
    ----------
    volume : Volume
        Image (any real dtype) or integer label map, array "z y x".
    spacing : tuple of 3 float, or float
        Target spacing (z, y, x) in mm.
    is_label : bool
        Nearest neighbour in all axes (values kept exactly) instead of cubic
        spline with nnU-Net's separate-z rule.

    Returns
    -------
    Volume
        Array "z' y' x'" with ``z' = round(z * spacing_z / target_z)`` etc.; float32
        for images, the input dtype for labels. Same direction and physical
        extent; spacing ``extent / new_shape`` (the target up to rounding).
    """
    _require_volume(volume, "volume")
    target = as_triplet(spacing, "target spacing", positive=True)
    new_shape, new_spacing, origin = resampled_geometry(volume, target)
    if new_shape == volume.shape:
        array = volume.array if is_label else volume.array.astype(np.float32)
        return volume.with_array(array)
    from nnunetv2.preprocessing.resampling.default_resampling import resample_data_or_seg

    axis = None if is_label else separate_z_axis(volume.spacing, target)
    if is_label:
        if not np.issubdtype(volume.array.dtype, np.integer):
            raise TypeError(f"label volume must hold integers, got {volume.array.dtype}")
        data = volume.array[None]
        order = 0
    else:
        data = volume.array.astype(np.float32)[None]
        order = 3
    out = resample_data_or_seg(
        data,
        new_shape,
        is_seg=is_label,
        axis=axis,
        order=order,
        do_separate_z=axis is not None,
        order_z=0,
    )[0]
    return Volume(out, new_spacing, origin, volume.direction.copy())


def resampled_geometry(
    volume: Volume, target: tuple[float, float, float]
) -> tuple[tuple[int, int, int], tuple[float, ...], tuple[float, ...]]:
    """Shape, spacing and origin of ``volume`` resampled to ``target`` (nnU-Net's grid).

    The shape is :func:`target_shape`; the grids are edge-aligned, so the
    spacing is ``extent / new_shape`` and voxel 0's centre moves by half the
    change in voxel size. Shared by every resampler that must land on the
    same grid (:func:`resample_volume`, :mod:`flare_uda.data.torch_resampling`).
    """
    new_shape = target_shape(volume.shape, volume.spacing, target)
    old_spacing = np.asarray(volume.spacing)
    new_spacing = old_spacing * np.asarray(volume.shape) / np.asarray(new_shape)
    origin = np.asarray(volume.origin) + volume.direction @ ((new_spacing - old_spacing) / 2)
    return new_shape, tuple(new_spacing.tolist()), tuple(origin.tolist())


def resample_to_reference(volume: Volume, reference: Volume, is_label: bool = True) -> Volume:
    """Put ``volume`` back onto ``reference``'s grid (the inverse of :func:`resample_volume`).

    Works in physical space with SimpleITK, so any geometry works (another
    spacing, origin or direction); points outside ``volume`` get 0.

    Parameters
    ----------
    volume : Volume
        Label map (integers) or image, array "z y x".
    reference : Volume
        The grid to land on; only its geometry is used.
    is_label : bool
        Nearest neighbour (labels; values kept) or linear interpolation (images).

    Returns
    -------
    Volume
        Array of ``reference.shape`` with exactly ``reference``'s spacing,
        origin and direction; the dtype of ``volume`` for labels, float32 for images.
    """
    _require_volume(volume, "volume")
    _require_volume(reference, "reference")
    from flare_uda.data.io import to_sitk

    if is_label and not np.issubdtype(volume.array.dtype, np.integer):
        raise TypeError(f"label volume must hold integers, got {volume.array.dtype}")
    source = volume.array if is_label else volume.array.astype(np.float32)
    moving = to_sitk(volume.with_array(source))
    ref_image = to_sitk(reference.with_array(np.zeros(reference.shape, dtype=np.uint8)))
    resampler = sitk.ResampleImageFilter()
    resampler.SetReferenceImage(ref_image)
    resampler.SetInterpolator(sitk.sitkNearestNeighbor if is_label else sitk.sitkLinear)
    resampler.SetDefaultPixelValue(0)
    resampler.SetOutputPixelType(moving.GetPixelID())
    array = sitk.GetArrayFromImage(resampler.Execute(moving))
    return Volume(array, reference.spacing, reference.origin, reference.direction.copy())
