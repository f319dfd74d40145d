"""Patch sampling with nnU-Net's foreground oversampling.

nnU-Net's loader forces the last third of each batch to be centred on a voxel
of a randomly chosen class present in the case; the rest are uniform. Voxel
positions per class are precomputed once per case (at most
``max_locations`` per class, like nnU-Net's ``class_locations``). Written here
because nnU-Net's version is tied to its on-disk dataset classes.
"""

from __future__ import annotations

import numpy as np

MAX_LOCATIONS = 10000


def class_locations(
    label: np.ndarray, rng: np.random.Generator, max_locations: int = MAX_LOCATIONS
) -> dict[int, np.ndarray]:
    """Voxel indices of each foreground class of ``label`` ``"z y x"``.

    Returns
    -------
    dict
        class -> int array ``"n 3"`` (z, y, x), at most ``max_locations`` rows.
    """
    out: dict[int, np.ndarray] = {}
    for c in np.unique(label):
        if c <= 0:
            continue
        idx = np.argwhere(label == c)
        if len(idx) > max_locations:
            idx = idx[rng.choice(len(idx), max_locations, replace=False)]
        out[int(c)] = idx
    return out


def forced_foreground(sample_index: int, batch_size: int, oversample: float) -> bool:
    """nnU-Net's rule: the last ``round(batch_size * oversample)`` samples are foreground."""
    return not sample_index < round(batch_size * (1.0 - oversample))


def choose_center(
    shape: tuple[int, int, int],
    locations: dict[int, np.ndarray],
    foreground: bool,
    rng: np.random.Generator,
    class_weights: np.ndarray | None = None,
) -> np.ndarray:
    """A patch centre (z, y, x): on a voxel of a present class, or uniform.

    Parameters
    ----------
    class_weights : np.ndarray, "k", optional
        Relative weight of each class when a foreground centre is drawn
        (:mod:`.organ_sampling`); ``None``: every present class equally
        likely (nnU-Net).

    A case without any foreground gets a uniform centre (there is nothing to
    oversample; nnU-Net does the same).
    """
    if foreground and locations:
        classes = sorted(locations)
        if class_weights is None:
            cls = rng.choice(classes)
        else:
            w = np.asarray([float(class_weights[c]) for c in classes])
            cls = classes[int(rng.choice(len(classes), p=w / w.sum()))]
        locs = locations[int(cls)]
        return locs[rng.integers(len(locs))].copy()
    return np.array([rng.integers(s) for s in shape])


def crop_padded(
    image: np.ndarray, label: np.ndarray, center: np.ndarray, size: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``size`` around ``center``; outside the volume image 0, label -1.

    Parameters
    ----------
    image : np.ndarray, "c z y x"
    label : np.ndarray, "z y x"

    Returns
    -------
    (np.ndarray "c z y x" float32, np.ndarray "1 z y x" int16)
    """
    shape = np.asarray(label.shape)
    size_a = np.asarray(size)
    lo = np.asarray(center) - size_a // 2
    hi = lo + size_a
    src_lo = np.maximum(lo, 0)
    src_hi = np.minimum(hi, shape)
    dst_lo = src_lo - lo
    dst_hi = dst_lo + np.maximum(src_hi - src_lo, 0)
    img = np.zeros((image.shape[0], *size), dtype=np.float32)
    seg = np.full((1, *size), -1, dtype=np.int16)
    if (src_hi > src_lo).all():
        s = tuple(slice(a, b) for a, b in zip(src_lo, src_hi, strict=True))
        d = tuple(slice(a, b) for a, b in zip(dst_lo, dst_hi, strict=True))
        img[(slice(None), *d)] = image[(slice(None), *s)]
        seg[(0, *d)] = label[s]
    return img, seg
