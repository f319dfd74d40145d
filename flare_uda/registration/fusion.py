"""Multi-atlas label fusion: labels moved from k atlases, fused by a locally weighted vote.

Each atlas (a better-sequence MR case in MDM, a labelled CT case in the CT
atlas) is registered onto the target; its label, moved onto the target grid,
votes for its class at every voxel with a weight that says how well the
atlas agrees with the target *there*: the inverse of the Gaussian-windowed
squared difference between the moved atlas view and the target view (images
in anatomy space, or label maps as indicators), raised to ``power`` (the
local weighted voting of Artaechevarria et al., IEEE TMI 2009). The class with
the largest summed weight wins (background included), so ``k = 1`` gives the
moved label unchanged: the paper's MDM.

Written here because SimpleITK's ``LabelVotingImageFilter`` and MONAI's
``VoteEnsemble`` vote with equal weights only, and neither has locally
weighted voting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from flare_uda._validation import require_int
from flare_uda.registration.features import normalized_intensity
from flare_uda.volume import Volume

EPS = 1e-3
"""Added to the local squared difference: a perfect local match gets a finite weight."""


@dataclass(frozen=True)
class FusionConfig:
    """How labels of several atlases are combined.

    Parameters
    ----------
    atlases : int
        k, the number of best-matched atlases moved onto each target (1: the paper).
    sigma_mm : float
        Gaussian window (mm) of the local agreement.
    power : float
        Exponent of the inverse local squared difference (0: an unweighted majority vote).
    """

    atlases: int = 1
    sigma_mm: float = 6.0
    power: float = 1.0

    def __post_init__(self) -> None:
        require_int(self.atlases, "atlases", minimum=1)
        if not self.sigma_mm > 0:
            raise ValueError(f"sigma_mm must be > 0, got {self.sigma_mm}")
        if not self.power >= 0:
            raise ValueError(f"power must be >= 0, got {self.power}")


def as_fusion(value: FusionConfig | Mapping) -> FusionConfig:
    """A :class:`FusionConfig` from itself or a mapping of its fields (Python callers)."""
    if isinstance(value, Mapping):
        return FusionConfig(**value)
    if not isinstance(value, FusionConfig):
        raise TypeError(f"fusion must be a FusionConfig or a mapping, got {type(value).__name__}")
    return value


def weighted_vote(labels: Sequence[np.ndarray], weights: Sequence[np.ndarray] | None) -> np.ndarray:
    """Per voxel, the class with the largest summed weight of the atlases voting for it.

    Parameters
    ----------
    labels : sequence of k integer arrays, "z y x"
    weights : sequence of k float arrays "z y x" (> 0), or None for equal weights

    Returns
    -------
    np.ndarray, "z y x", the first label's dtype. Ties go to the lower class.
    """
    labels = [np.asarray(lab) for lab in labels]
    if not labels:
        raise ValueError("expected at least one label map to fuse, got none")
    if weights is None:
        weights = [np.ones(labels[0].shape, np.float32)] * len(labels)
    if len(weights) != len(labels):
        raise ValueError(
            f"expected one weight map per label map, got {len(weights)} and {len(labels)}"
        )
    for lab, w in zip(labels, weights, strict=True):
        if not np.issubdtype(lab.dtype, np.integer):
            raise ValueError(f"label maps must hold integers, got dtype {lab.dtype}")
        if lab.shape != labels[0].shape or np.shape(w) != labels[0].shape:
            raise ValueError(
                f"labels and weights must share one shape, got {labels[0].shape}, {lab.shape} "
                f"and {np.shape(w)}"
            )
    if len(labels) == 1:
        return labels[0].copy()
    best = np.full(labels[0].shape, -1.0)
    out = np.zeros(labels[0].shape, labels[0].dtype)
    for c in np.unique(np.concatenate([np.unique(lab) for lab in labels])):
        score = sum(np.where(lab == c, w, 0.0) for lab, w in zip(labels, weights, strict=True))
        better = score > best
        out[better], best[better] = c, score[better]
    return out


def local_agreement(
    moved: np.ndarray, target: np.ndarray, spacing, sigma_mm: float, power: float
) -> np.ndarray:
    """``(EPS + G_sigma * mean_c (moved - target)^2) ** -power``, "z y x".

    ``moved``, ``target``: features ``"c z y x"`` on one grid; ``spacing``: (z, y, x) mm.
    """
    if moved.shape != target.shape or moved.ndim != 4:
        raise ValueError(
            f"expected moved and target features 'c z y x' of one shape, got {moved.shape} and "
            f"{target.shape}"
        )
    sq = ((moved.astype(np.float32) - target.astype(np.float32)) ** 2).mean(0)
    local = ndimage.gaussian_filter(sq, sigma_mm / np.asarray(spacing, float))
    return ((EPS + local) ** -power).astype(np.float32)


def _features(view: Volume, organs: list[int] | None) -> np.ndarray:
    """Normalised intensities of an image, or indicators of ``organs`` in a label map."""
    if organs is None:
        return normalized_intensity(view)
    return np.stack([view.array == o for o in organs] or [view.array > 0]).astype(np.float32)


def fuse_moved(
    moved: Sequence[Volume],
    registrars: Sequence,
    views: Sequence[Volume],
    target: Volume,
    config: FusionConfig,
) -> np.ndarray:
    """Fuse labels moved from atlases: ``moved[j]`` was moved by ``registrars[j]`` (fitted).

    The weight of atlas j compares ``views[j]`` (what it was registered on, on
    its own grid) moved by its registrar with ``target``'s view: both images,
    or both label maps (then as indicators of the target view's organs).
    ``k = 1`` or ``power = 0``: no weights are computed.
    """
    arrays = [m.array for m in moved]
    if len(arrays) == 1 or config.power == 0:
        return weighted_vote(arrays, None)
    is_label = np.issubdtype(target.array.dtype, np.integer)
    organs = [int(o) for o in np.unique(target.array) if o > 0] if is_label else None
    fixed = _features(target, organs)
    weights = []
    for reg, view in zip(registrars, views, strict=True):
        feats = _features(reg.transform(view, is_label=is_label), organs)
        weights.append(local_agreement(feats, fixed, target.spacing, config.sigma_mm, config.power))
    return weighted_vote(arrays, weights)
