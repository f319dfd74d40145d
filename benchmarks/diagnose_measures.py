"""Measurements behind ``diagnose_real_data.py``: labels, edges, orientation, grid.

Every function takes :class:`~flare_uda.volume.Volume` objects as the library
reads them (arrays "z y x", physical coordinates LPS: x grows towards the
patient's left, y towards the back, z towards the head) and returns plain
numbers, so that they can be checked on synthetic volumes with known answers.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from flare_uda.data.anatomy import to_anatomy_space
from flare_uda.data.appearance import body_mask, foreground_mask
from flare_uda.data.labels import NUM_ORGANS
from flare_uda.data.resampling import resample_volume
from flare_uda.volume import Volume

_LETTERS = (("I", "S"), ("A", "P"), ("R", "L"))
"""Physical components (z, y, x) of LPS: the letter for a negative and a positive step."""
_IN_PLANE = ndimage.generate_binary_structure(2, 1)[None]
_ALONG_Z = np.ones((3, 1, 1), dtype=bool)


def orientation_code(direction: np.ndarray) -> str:
    """Where the array index grows, as a 3-letter code in (x, y, z) axis order.

    The convention of SimpleITK's ``DICOMOrientImageFilter`` ("LPS" is the
    identity direction): letter ``k`` names the anatomical direction towards
    which index ``k`` (x, then y, then z) increases.

    Parameters
    ----------
    direction : np.ndarray, shape (3, 3)
        A :class:`Volume` direction (columns = array axes z, y, x; rows =
        physical components z, y, x).
    """
    d = np.asarray(direction, dtype=float)
    if d.shape != (3, 3):
        raise ValueError(f"direction must be 3x3, got shape {d.shape}")
    letters = []
    for axis in (2, 1, 0):  # array x, y, z
        column = d[:, axis]
        component = int(np.argmax(np.abs(column)))
        letters.append(_LETTERS[component][int(column[component] > 0)])
    return "".join(letters)


def organ_volumes(label: Volume) -> dict[int, tuple[int, float]]:
    """FLARE organ -> (voxel count, volume in mL) for every organ present in ``label``."""
    counts = np.bincount(np.asarray(label.array).ravel(), minlength=NUM_ORGANS + 1)
    ml = label.voxel_volume_mm3 / 1000.0
    return {
        o: (int(counts[o]), float(counts[o]) * ml) for o in range(1, NUM_ORGANS + 1) if counts[o]
    }


def centroid_index(label: Volume, organ: int) -> np.ndarray | None:
    """Mean voxel index (z, y, x) of ``organ``, or ``None`` when it is absent."""
    idx = np.argwhere(np.asarray(label.array) == organ)
    return idx.mean(0) if idx.size else None


def centroid_world(label: Volume, organ: int) -> np.ndarray | None:
    """Physical centroid (mm, z y x LPS) of ``organ``, or ``None`` when it is absent."""
    idx = centroid_index(label, organ)
    return None if idx is None else label.index_to_physical(idx)


def side_check(label: Volume, right: int = 2, left: int = 13) -> dict[str, float] | None:
    """Where a right-side organ sits relative to its left partner (kidneys by default).

    Returns
    -------
    dict or None
        ``world_dx``: LPS x of ``right`` minus x of ``left`` (mm; negative when
        the right organ is on the patient's right, as it must be);
        ``index_dx``: the same difference in array x index (what a network
        sees: negative when the right organ is at the low-x side of the array).
        ``None`` when either organ is absent.
    """
    wr, wl = centroid_world(label, right), centroid_world(label, left)
    if wr is None or wl is None:
        return None
    ir, il = centroid_index(label, right), centroid_index(label, left)
    return {"world_dx": float(wr[2] - wl[2]), "index_dx": float(ir[2] - il[2])}


def posterior_check(label: Volume, back: int = 2, front: int = 1) -> float | None:
    """LPS y of ``back`` minus y of ``front`` (mm; positive when ``back`` lies behind).

    The kidneys lie behind the liver's centroid, so the default is positive
    when the header's y axis is right; ``None`` when either organ is absent.
    """
    wb, wf = centroid_world(label, back), centroid_world(label, front)
    return None if wb is None or wf is None else float(wb[1] - wf[1])


def _erode(mask: np.ndarray, in_plane: int, along_z: int) -> np.ndarray:
    out = mask
    if in_plane:
        out = ndimage.binary_erosion(out, _IN_PLANE, iterations=in_plane)
    if along_z and out.shape[0] > 2:
        out = ndimage.binary_erosion(out, _ALONG_Z, iterations=along_z)
    return out


def _crop(mask: np.ndarray, pad: int = 3) -> tuple[slice, ...]:
    idx = np.argwhere(mask)
    lo, hi = np.maximum(idx.min(0) - pad, 0), idx.max(0) + pad + 1
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def organ_regions(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(boundary, interior) of a boolean organ mask "z y x".

    Boundary: organ voxels with an in-plane neighbour outside the organ.
    Interior: organ voxels at least 3 voxels in plane and 2 slices from its
    surface, beyond the 3x3x3 Sobel footprint of any edge.
    """
    return mask & ~_erode(mask, 1, 0), _erode(mask, 3, 2)


def edge_statistics(
    image: Volume,
    label: Volume,
    organs: tuple[int, ...],
    mode: str = "3d",
    window: tuple[float, float] | None = None,
    scale: str = "percentile",
) -> dict[str, float]:
    """Medians of the anatomy-space map (:func:`to_anatomy_space`) by region.

    Parameters
    ----------
    image, label : Volume
        One scan and its FLARE label on the same grid.
    organs : tuple of int
        FLARE organs to measure (absent ones are skipped).
    mode : {"3d", "2d"}
        Sobel mode (ASIT's default is "3d").
    window : (float, float), optional
        Intensity window before the Sobel map (ASIT's CT window), ``None``: none.
    scale : {"percentile", "rank"}
        How the map is brought to [0, 1] (ASIT's ``edge_scale``).

    Returns
    -------
    dict
        ``outline``: median on the body's outline (body voxels with an
        in-plane neighbour outside the body, the body being the library's
        Otsu foreground, largest part); ``saturated``: percent of voxels at
        1 (at or above the 99.5th percentile of the magnitude) and
        ``saturated_outside_organs``: percent of those outside every labelled
        organ's boundary band; ``{organ}_boundary`` / ``{organ}_interior``:
        medians on the organ's boundary and interior (:func:`organ_regions`).
    """
    image.require_same_geometry(label, "image and label")
    edges = to_anatomy_space(image, mode, window=window, scale=scale).array
    lab = np.asarray(label.array)
    body = body_mask(foreground_mask(image.array))
    outline = body & ~_erode(body, 1, 0)
    saturated = edges >= 1.0
    near_organ = ndimage.binary_dilation(lab > 0, _IN_PLANE, iterations=2)
    stats = {
        "outline": float(np.median(edges[outline])) if outline.any() else float("nan"),
        "saturated": 100.0 * float(saturated.mean()),
        "saturated_outside_organs": 100.0
        * float((saturated & ~near_organ).sum() / max(int(saturated.sum()), 1)),
    }
    for organ in organs:
        mask = lab == organ
        if not mask.any():
            continue
        box = _crop(mask)
        boundary, interior = organ_regions(mask[box])
        crop = edges[box]
        stats[f"{organ}_boundary"] = float(np.median(crop[boundary]))
        stats[f"{organ}_interior"] = (
            float(np.median(crop[interior])) if interior.any() else float("nan")
        )
    return stats


def grid_survival(label: Volume, spacing: tuple[float, float, float]) -> dict:
    """``label`` resampled (nearest neighbour, as training does) to ``spacing``.

    Returns
    -------
    dict
        ``shape``: the resampled shape (z, y, x); ``counts``: organ -> voxels
        at ``spacing``; ``kept``: organ -> resampled volume / original volume
        (mL over mL; 1 when nearest neighbour neither loses nor gains voxels).
    """
    native = organ_volumes(label)
    coarse = resample_volume(label, spacing, is_label=True)
    at_grid = organ_volumes(coarse)
    per_slice = [set(np.unique(s).tolist()) for s in np.asarray(coarse.array)]
    return {
        "shape": coarse.shape,
        "spacing": coarse.spacing,
        "counts": {o: at_grid.get(o, (0, 0.0))[0] for o in native},
        "kept": {o: at_grid.get(o, (0, 0.0))[1] / native[o][1] for o in native},
        "slices": {o: sum(o in s for s in per_slice) for o in native},
    }
