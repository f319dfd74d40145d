"""One array layout for every scan: axes permuted and flipped to follow the physical axes.

Scans arrive in several layouts (the shared real data alone has LAS, LPS and
RAS files: docs/results.md, "Real data: diagnosis"); a network trained without
mirroring learns left and right from the array, so a mirrored layout puts the
right kidney where the left one was seen in training. Networks therefore see
every scan in the *canonical* layout, where array axis ``i`` runs along
physical axis ``i`` (z, y, x) in the positive direction (an identity direction
matrix for axis-aligned scans: SimpleITK's LPS). Only axes are permuted and
flipped: no voxel is interpolated, and the physical position of every voxel is
kept, so labels return to the input grid exactly.

Written here rather than with ``SimpleITK.DICOMOrient`` because the same
permutation must also apply to torch tensors on the device and to the
geometry-only placeholder volumes of the inference path.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np

from flare_uda.volume import Volume


def canonical_axes(direction: np.ndarray) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """``(order, flips)``: new array axis ``i`` is old axis ``order[i]``, reversed if ``flips[i]``.

    Parameters
    ----------
    direction : np.ndarray, shape (3, 3)
        A volume's direction (column ``j``: physical direction of array axis ``j``, in
        (z, y, x) components). For an oblique scan the axis closest to each physical
        axis is chosen (the permutation with the largest ``sum |D[i, order[i]]|``).
    """
    d = np.asarray(direction, dtype=float)
    if d.shape != (3, 3):
        raise ValueError(f"direction must be a 3x3 matrix, got shape {d.shape}")
    order = max(permutations(range(3)), key=lambda p: sum(abs(d[i, p[i]]) for i in range(3)))
    flips = tuple(bool(d[i, order[i]] < 0) for i in range(3))
    return tuple(int(o) for o in order), flips  # type: ignore[return-value]


def is_canonical(volume: Volume) -> bool:
    """Whether ``volume`` is already in the canonical layout (nothing to permute or flip)."""
    order, flips = canonical_axes(volume.direction)
    return order == (0, 1, 2) and not any(flips)


def to_canonical(volume: Volume) -> Volume:
    """``volume`` with its array axes permuted and flipped into the canonical layout.

    The voxels keep their physical positions (the origin moves to the new first
    voxel, the direction's columns follow the axes); ``volume`` itself is returned
    when it is canonical already. Works on geometry-only placeholder arrays too.
    """
    order, flips = canonical_axes(volume.direction)
    if order == (0, 1, 2) and not any(flips):
        return volume
    array = np.transpose(volume.array, order)
    array = array[tuple(slice(None, None, -1) if f else slice(None) for f in flips)]
    first = np.zeros(3)  # old index of the new voxel (0, 0, 0)
    for axis, flip in zip(order, flips, strict=True):
        if flip:
            first[axis] = volume.shape[axis] - 1
    signs = np.where(flips, -1.0, 1.0)
    if 0 in volume.array.strides:  # a geometry-only placeholder: keep it one
        array = np.broadcast_to(volume.array.flat[0], array.shape)
    else:
        array = np.ascontiguousarray(array)
    return Volume(
        array,
        spacing=tuple(volume.spacing[a] for a in order),
        origin=tuple(volume.index_to_physical(first).tolist()),
        direction=volume.direction[:, list(order)] * signs,
    )


def canonical_tensor(tensor, direction: np.ndarray):
    """A ``"z y x"`` torch tensor permuted and flipped as :func:`to_canonical` would its volume."""
    order, flips = canonical_axes(direction)
    if order == (0, 1, 2) and not any(flips):
        return tensor
    out = tensor.permute(*order)
    dims = [i for i, f in enumerate(flips) if f]
    return out.flip(dims) if dims else out
