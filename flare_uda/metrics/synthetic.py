"""Synthetic 13-organ label maps and perturbed copies, to test and benchmark metrics.

Organs are lumpy ellipsoids placed like an abdominal CT: centres and
semi-axes are fractions of the field of view, calibrated on a
100 x 512 x 512 scan at (2.5, 0.8, 0.8) mm (250 x 410 x 410 mm), so every
organ has a realistic size there and shrinks in proportion on smaller grids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from flare_uda._validation import as_triplet
from flare_uda.data.labels import NUM_ORGANS

_FOV_MM = np.array([250.0, 410.0, 410.0])
# FLARE label: (centre z, y, x as fractions of the FOV), (semi-axes z, y, x in mm at _FOV_MM)
_ORGANS: dict[int, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    1: ((0.55, 0.45, 0.30), (75, 80, 65)),  # liver
    11: ((0.62, 0.40, 0.66), (50, 45, 45)),  # stomach
    3: ((0.60, 0.58, 0.78), (50, 40, 25)),  # spleen
    2: ((0.40, 0.64, 0.30), (50, 30, 25)),  # right kidney
    13: ((0.40, 0.64, 0.70), (50, 30, 25)),  # left kidney
    12: ((0.42, 0.47, 0.44), (20, 12, 35)),  # duodenum
    4: ((0.50, 0.52, 0.56), (15, 12, 55)),  # pancreas
    9: ((0.45, 0.33, 0.30), (30, 15, 15)),  # gallbladder
    5: ((0.50, 0.62, 0.53), (115, 11, 11)),  # aorta
    6: ((0.50, 0.60, 0.43), (105, 11, 13)),  # inferior vena cava
    10: ((0.85, 0.62, 0.50), (40, 7, 7)),  # esophagus
    7: ((0.64, 0.60, 0.37), (15, 5, 8)),  # right adrenal gland
    8: ((0.64, 0.60, 0.63), (15, 5, 8)),  # left adrenal gland
}


def organ_phantom(
    shape: Sequence[int], spacing: Sequence[float], seed: int = 0, lumpiness: float = 0.12
) -> np.ndarray:
    """A label map with all 13 FLARE organs as lumpy ellipsoids.

    Parameters
    ----------
    shape : sequence of 3 int
        Array shape (z, y, x).
    spacing : sequence of 3 float
        Voxel size in mm, (z, y, x).
    seed : int
        Seeds the jitter of centres and the lumps.
    lumpiness : float
        Relative amplitude of the low-frequency radius modulation.

    Returns
    -------
    np.ndarray of uint8, shape (z, y, x)
        FLARE labels; an organ may vanish on a very coarse grid.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 4:
        raise ValueError(f"shape must be 3 sizes >= 4 (z, y, x), got {shape}")
    spacing = np.asarray(as_triplet(spacing, "spacing", positive=True))
    fov = np.asarray(shape) * spacing
    rng = np.random.default_rng(seed)
    out = np.zeros(shape, dtype=np.uint8)
    for label, (centre_frac, axes_mm) in _ORGANS.items():
        centre = (np.asarray(centre_frac) + rng.normal(0, 0.01, 3)) * fov  # mm
        axes = np.asarray(axes_mm) * fov / _FOV_MM  # mm
        lo = np.clip(np.floor((centre - 1.2 * axes) / spacing).astype(int), 0, shape)
        hi = np.clip(np.ceil((centre + 1.2 * axes) / spacing).astype(int) + 1, 0, shape)
        if (hi <= lo).any():
            continue
        grids = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
        u = [(g * s - c) / a for g, s, c, a in zip(grids, spacing, centre, axes, strict=True)]
        phase = rng.uniform(0, 2 * np.pi, 3)
        bump = (
            1.0
            + lumpiness
            * (
                np.sin(2.0 * u[0] + phase[0]) * np.sin(3.0 * u[1] + phase[1])
                + np.sin(2.5 * u[2] + phase[2])
            )
            / 2.0
        )
        inside = u[0] ** 2 + u[1] ** 2 + u[2] ** 2 <= bump**2
        region = out[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
        region[inside] = label
    return out


def perturb(label: np.ndarray, seed: int = 0, drop: Sequence[int] = ()) -> np.ndarray:
    """A plausible "prediction" of ``label``: each organ eroded, dilated, shifted or
    given a rough border.

    Parameters
    ----------
    label : np.ndarray of int, shape (z, y, x)
        FLARE labels.
    seed : int
        Seeds the choice of change per organ.
    drop : sequence of int
        Organs removed from the prediction.

    Returns
    -------
    np.ndarray of uint8, shape (z, y, x)
    """
    label = np.asarray(label)
    rng = np.random.default_rng(seed)
    out = np.zeros(label.shape, dtype=np.uint8)
    boxes = ndimage.find_objects(label.astype(np.uint8), max_label=NUM_ORGANS)
    for organ, box in enumerate(boxes, start=1):
        if box is None or organ in drop:
            continue
        big = tuple(
            slice(max(0, s.start - 3), min(n, s.stop + 3))
            for s, n in zip(box, label.shape, strict=True)
        )
        mask = label[big] == organ
        kind = rng.integers(0, 4)
        if kind == 0:
            mask = ndimage.binary_erosion(mask)
        elif kind == 1:
            mask = ndimage.binary_dilation(mask)
        elif kind == 2:
            axis = int(rng.integers(0, 3))
            mask = np.roll(mask, int(rng.choice([-2, -1, 1, 2])), axis=axis)
        else:
            # a rough border: boundary voxels removed or added at random
            inner = ndimage.binary_erosion(mask)
            outer = ndimage.binary_dilation(mask)
            noise = rng.random(mask.shape) < 0.3
            mask = (mask & ~(noise & ~inner)) | (outer & ~mask & noise)
        out[big][mask] = organ
    return out
