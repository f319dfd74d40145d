"""Appearance statistics of an MR scan: noise floor, texture and intensity histogram shape.

Used to find MR sub-domains (sequences) without headers
(:mod:`flare_uda.pipeline.subdomains`). Every statistic is invariant to the
scanner's arbitrary intensity scale: intensities are divided by the median
inside the body first (the median, not a high percentile: T2's soft tissue is
dark next to its fat, so noise relative to the median separates T2 from T1
better, measured on the phantom).

``noise``      log of the median background level (air farther than two voxels
               from anything, arms included), a noise floor relative to the body
``texture``    log of the median absolute in-plane neighbour difference inside the
               (eroded) body: noise and fine texture
``q25``, ``q99`` (log), ``skewness``, ``cv``
               the shape of the intensity histogram inside the body
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from flare_uda.volume import Volume

FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "noise": ("noise",),
    "texture": ("texture",),
    "histogram": ("q25", "q99", "skewness", "cv"),
}
"""Feature names by group (clustering weighs groups, see ``SubDomainOptions``)."""
FEATURES = tuple(name for group in FEATURE_GROUPS.values() for name in group)
_TINY = 1e-6
SCALE_PERCENTILE = 50


def foreground_mask(array: np.ndarray) -> np.ndarray:
    """Everything that is not air ("z y x" bool): the Otsu foreground, closed, holes filled."""
    from flare_uda.inference.boxes import otsu_body_mask

    mask = ndimage.binary_closing(otsu_body_mask(np.asarray(array, dtype=np.float32)))
    return np.stack([ndimage.binary_fill_holes(s) for s in mask])


def body_mask(foreground: np.ndarray) -> np.ndarray:
    """The largest connected part of a :func:`foreground_mask` (the trunk, not the arms).

    An empty foreground (a constant image) makes every voxel body.
    """
    labels, n = ndimage.label(foreground)
    if n > 1:
        sizes = ndimage.sum(foreground, labels, range(1, n + 1))
        return labels == 1 + int(np.argmax(sizes))
    return foreground if foreground.any() else np.ones(foreground.shape, dtype=bool)


def appearance_features(volume: Volume) -> dict[str, float]:
    """The statistics of the module docstring for one scan (finite floats).

    Raises
    ------
    ValueError
        If the body holds no signal (95th percentile <= 0).
    """
    array = np.asarray(volume.array, dtype=np.float32)
    foreground = foreground_mask(array)
    body = body_mask(foreground)
    values = array[body]
    scale = float(np.percentile(values, SCALE_PERCENTILE))
    if not scale > 0:
        raise ValueError(
            f"expected an MR scan with signal in the body, got a 95th percentile of {scale:g}"
        )
    x = values / scale
    background = array[~ndimage.binary_dilation(foreground, iterations=2)] / scale
    noise = float(np.median(np.abs(background))) if background.size else 0.0
    inner = ndimage.binary_erosion(body)
    pairs = inner[:, :, 1:] & inner[:, :, :-1]
    steps = np.abs(np.diff(array, axis=2))[pairs] / scale
    texture = float(np.median(steps)) if steps.size else 0.0
    mean, std = float(x.mean()), float(x.std())
    centred = (x - mean) / max(std, _TINY)
    return {
        "noise": float(np.log(noise + _TINY)),
        "texture": float(np.log(texture + _TINY)),
        "q25": float(np.percentile(x, 25)),
        "q99": float(np.log(np.percentile(x, 99) + _TINY)),
        "skewness": float(np.mean(centred**3)),
        "cv": std / max(mean, _TINY),
    }
