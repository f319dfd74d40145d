"""Random training windows biased toward the body.

Crops are centred on voxels where the (scaled, [-1, 1]) intensity image is
above a body threshold, so that slices and patches show anatomy, not air.
The sampled images may differ from the one used for the body mask (ASIT
samples Sobel images at body centres of the intensity images).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_CENTRES = 20_000  # body voxels kept per image (a random subset; memory on big scans)


def body_centres(mask_image: np.ndarray, threshold: float, rng: np.random.Generator) -> np.ndarray:
    """Indices ``(n, 3)`` (z, y, x) of body voxels (``mask_image > threshold``).

    A random subset of at most :data:`MAX_CENTRES` is kept.

    Raises
    ------
    ValueError
        If no voxel is above ``threshold`` (e.g. a constant image).
    """
    idx = np.argwhere(mask_image > threshold)
    if len(idx) == 0:
        raise ValueError(
            f"expected body voxels above {threshold} in a training image, got none "
            f"(image range {float(mask_image.min()):.3g}..{float(mask_image.max()):.3g}); "
            "is it constant?"
        )
    if len(idx) > MAX_CENTRES:
        idx = idx[rng.choice(len(idx), MAX_CENTRES, replace=False)]
    return idx


def crop(array: np.ndarray, centre: Sequence[int], size: Sequence[int], fill: float) -> np.ndarray:
    """The window ``size`` (z, y, x) of ``array`` centred at ``centre``, padded with ``fill``."""
    out = np.full(tuple(size), fill, dtype=np.float32)
    src, dst = [], []
    for c, s, n in zip(centre, size, array.shape, strict=True):
        start = int(c) - s // 2
        lo, hi = max(start, 0), min(start + s, n)
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    out[tuple(dst)] = array[tuple(src)]
    return out


class PatchSampler:
    """Samples batches of windows ``"b 1 z y x"`` from a list of images.

    Parameters
    ----------
    images : sequence of np.ndarray, "z y x"
        Network-space images (values in [-1, 1]).
    body_images : sequence of np.ndarray, "z y x"
        Scaled intensity images that define the body (same shapes as ``images``).
    patch_size : (z, y, x)
        Window size; ``z == 1`` for slice-wise (2D) training.
    threshold : float
        Body threshold on ``body_images``.
    rng : np.random.Generator
    """

    def __init__(self, images, body_images, patch_size, threshold: float, rng) -> None:
        if len(images) == 0:
            raise ValueError("PatchSampler needs at least one image, got none")
        for a, b in zip(images, body_images, strict=True):
            if a.shape != b.shape:
                raise ValueError(f"image and body image shapes differ: {a.shape} vs {b.shape}")
        self.images = list(images)
        self.patch_size = tuple(int(p) for p in patch_size)
        self.rng = rng
        self.centres = [body_centres(b, threshold, rng) for b in body_images]

    def sample(self, batch_size: int) -> np.ndarray:
        """A batch ``"b 1 z y x"`` of float32 windows."""
        out = []
        for _ in range(batch_size):
            i = int(self.rng.integers(len(self.images)))
            centre = self.centres[i][int(self.rng.integers(len(self.centres[i])))]
            out.append(crop(self.images[i], centre, self.patch_size, fill=-1.0))
        return np.stack(out)[:, None]
