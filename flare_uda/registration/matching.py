"""The paper's volume matcher (eq. 5): pair cases whose pseudo-label volumes are closest.

Volumes are physical (mm^3 = voxel count x voxel volume), so cases with
different spacings compare correctly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flare_uda._validation import require_choice
from flare_uda.registration.base import MATCHERS, Matcher
from flare_uda.volume import Case, Volume

METRICS = ("l1", "l2")


def label_volumes_mm3(label: Volume, organs: tuple[int, ...] | None = None) -> np.ndarray:
    """Physical volumes (mm^3) of a label map.

    Parameters
    ----------
    label : Volume of int
    organs : tuple of int or None
        ``None``: the whole foreground (label > 0), returns shape ``(1,)``;
        otherwise one volume per organ, shape ``(len(organs),)``.
    """
    arr = label.array
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"label must hold integers, got dtype {arr.dtype}")
    if organs is None:
        return np.array([np.count_nonzero(arr)], float) * label.voxel_volume_mm3
    counts = np.bincount(arr.ravel().astype(np.int64), minlength=max(organs) + 1)
    return counts[list(organs)].astype(float) * label.voxel_volume_mm3


def match_by_volume(
    query_volumes: np.ndarray, pool_volumes: np.ndarray, metric: str = "l1"
) -> np.ndarray:
    """For each query, the index of the pool entry with the closest volume (eq. 5).

    The first column of :func:`rank_by_volume`.

    Parameters
    ----------
    query_volumes : np.ndarray, shape (q,) or (q, k)
        Foreground volume (or per-organ volume vectors) of each query case.
    pool_volumes : np.ndarray, shape (p,) or (p, k)
        The same for the pool.
    metric : {"l1", "l2"}
        Distance between volume vectors (identical for scalar volumes).

    Returns
    -------
    np.ndarray of int, shape (q,)
        ``argmin_j d(query_i, pool_j)``. Ties go to the lowest pool index.
    """
    return rank_by_volume(query_volumes, pool_volumes, metric)[:, 0]


def rank_by_volume(
    query_volumes: np.ndarray, pool_volumes: np.ndarray, metric: str = "l1"
) -> np.ndarray:
    """For each query, every pool index from the closest volume to the farthest (eq. 5).

    Same parameters as :func:`match_by_volume`; returns ``(q, p)`` ints, ties
    in pool order.
    """
    require_choice(metric, METRICS, "metric")
    q = np.asarray(query_volumes, dtype=float)
    p = np.asarray(pool_volumes, dtype=float)
    q = q[:, None] if q.ndim == 1 else q
    p = p[:, None] if p.ndim == 1 else p
    if q.ndim != 2 or p.ndim != 2 or q.shape[1] != p.shape[1]:
        raise ValueError(
            f"expected volume arrays (q,) / (p,) or (q, k) / (p, k), got {np.shape(query_volumes)} "
            f"and {np.shape(pool_volumes)}"
        )
    if q.shape[0] == 0 or p.shape[0] == 0:
        raise ValueError(f"expected non-empty query and pool, got {q.shape[0]} and {p.shape[0]}")
    if not (np.isfinite(q).all() and np.isfinite(p).all()):
        raise ValueError("volumes must be finite")
    diff = np.abs(q[:, None, :] - p[None, :, :])
    dist = diff.sum(-1) if metric == "l1" else np.sqrt((diff**2).sum(-1))
    return np.argsort(dist, axis=1, kind="stable")  # stable: lowest index wins ties


@dataclass(frozen=True)
class VolumeMatcherOptions:
    """Options of :class:`VolumeMatcher`.

    Parameters
    ----------
    organs : tuple of int or None
        ``None`` (the paper): total foreground volume. Otherwise match on the
        vector of these organs' volumes.
    metric : {"l1", "l2"}
        Distance between per-organ vectors.
    """

    organs: tuple[int, ...] | None = None
    metric: str = "l1"

    def __post_init__(self) -> None:
        require_choice(self.metric, METRICS, "metric")
        if self.organs is not None and (not self.organs or min(self.organs) < 1):
            raise ValueError(f"organs must be None or positive labels, got {self.organs}")


@MATCHERS.register("volume")
class VolumeMatcher(Matcher):
    """Match on the pseudo-label (``Case.label``) foreground volume, or per-organ vector."""

    config_class = VolumeMatcherOptions

    def _volumes(self, cases: list[Case]) -> np.ndarray:
        for c in cases:
            if c.label is None:
                raise ValueError(f"case {c.case_id!r} has no pseudo-label to measure, got None")
        return np.stack([label_volumes_mm3(c.label, self.config.organs) for c in cases])

    def match_indices(self, query: list[Case], pool: list[Case]) -> np.ndarray:
        return self.rank_indices(query, pool)[:, 0]

    def rank_indices(self, query: list[Case], pool: list[Case]) -> np.ndarray:
        return rank_by_volume(self._volumes(query), self._volumes(pool), self.config.metric)
