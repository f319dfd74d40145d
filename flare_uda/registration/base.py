"""The registration stage's two plug-in kinds: :class:`Matcher` and :class:`Registrar`.

A matcher pairs each query case (worse MR sub-domain) with one pool case
(better sub-domain); a registrar estimates an affine map between two volumes
and moves images or labels onto the fixed grid. Each kind has one registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flare_uda._validation import require_choice
from flare_uda.plugin import Plugin
from flare_uda.registration.affine import require_affine
from flare_uda.registration.features import FEATURES, LABEL_ENCODINGS, to_features
from flare_uda.registration.warp import require_displacement, resample_deformed
from flare_uda.registry import Registry
from flare_uda.volume import Case, Volume

MATCHERS: Registry[type[Matcher]] = Registry("matcher")
REGISTRARS: Registry[type[Registrar]] = Registry("registrar")


def _checked(query_cases: Sequence[Case], pool_cases: Sequence[Case]) -> tuple[list, list]:
    query, pool = list(query_cases), list(pool_cases)
    if not query or not pool:
        raise ValueError(
            f"expected at least one query and one pool case, got {len(query)} and {len(pool)}"
        )
    for c in query + pool:
        if not isinstance(c, Case):
            raise TypeError(f"expected Case objects, got {type(c).__name__}")
    return query, pool


class Matcher(Plugin, ABC):
    """Pairs every query case with one pool case."""

    kind = "matcher"

    def match(
        self, query_cases: Sequence[Case], pool_cases: Sequence[Case]
    ) -> list[tuple[str, str]]:
        """Return ``(query case_id, pool case_id)`` for every query case, in query order.

        Raises
        ------
        ValueError
            If either list is empty.
        """
        query, pool = _checked(query_cases, pool_cases)
        idx = self.match_indices(query, pool)
        return [(q.case_id, pool[int(i)].case_id) for q, i in zip(query, idx, strict=True)]

    @abstractmethod
    def match_indices(self, query: list[Case], pool: list[Case]) -> np.ndarray:
        """Index into ``pool`` of the match of each query case, shape ``(len(query),)``."""

    def best(self, query_cases: Sequence[Case], pool_cases: Sequence[Case], k: int) -> np.ndarray:
        """Indices into ``pool`` of the ``k`` best matches of each query, best first, ``(q, k)``.

        ``k = 1`` is :meth:`match_indices`; more needs :meth:`rank_indices`.

        Raises
        ------
        ValueError
            If either list is empty or ``k`` is not in ``1..len(pool)``.
        """
        query, pool = _checked(query_cases, pool_cases)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(pool):
            raise ValueError(f"expected 1 <= k <= {len(pool)} (the pool's size), got k={k!r}")
        if k == 1:
            return np.asarray(self.match_indices(query, pool))[:, None]
        return np.asarray(self.rank_indices(query, pool))[:, :k]

    def rank_indices(self, query: list[Case], pool: list[Case]) -> np.ndarray:
        """Every pool index for each query, best match first, ``(len(query), len(pool))``."""
        raise NotImplementedError(
            f"{type(self).__name__} gives only its best match (match_indices); "
            "k > 1 atlases need rank_indices"
        )


@dataclass(frozen=True)
class RegistrarConfig:
    """What every registrar compares.

    Parameters
    ----------
    features : {"image", "labels"}
        ``"image"``: intensities clipped to the 0.5/99.5 percentiles, scaled to
        [0, 1]. ``"labels"``: the inputs are label maps, turned into one smooth
        channel per organ (see :func:`~flare_uda.registration.features.label_channels`).
    organs : tuple of int
        Organs encoded when ``features="labels"`` (default all 13 FLARE labels).
    sigma_mm : float
        Smoothing (mm) of the label channels.
    encoding : {"blur", "sdt"}
        Label channel encoding.
    channel_weights : {"balanced", "equal"}
        ``"balanced"``: label channel ``c`` of both volumes is scaled by
        ``sqrt(mean_v / v_c)``, ``v_c`` the organ's voxel count in the FIXED
        label, so every organ weighs alike in the L2 term (as in a mean Dice)
        instead of the liver dominating. ``"equal"``: unscaled.
    """

    features: str = "image"
    organs: tuple[int, ...] = tuple(range(1, 14))
    sigma_mm: float = 3.0
    encoding: str = "blur"
    channel_weights: str = "balanced"

    def __post_init__(self) -> None:
        require_choice(self.features, FEATURES, "features")
        require_choice(self.channel_weights, ("balanced", "equal"), "channel_weights")
        require_choice(self.encoding, LABEL_ENCODINGS, "encoding")
        organs = tuple(int(o) for o in self.organs)
        if not organs or min(organs) < 1:
            raise ValueError(f"organs must be non-empty positive labels, got {self.organs}")
        object.__setattr__(self, "organs", organs)
        if self.sigma_mm <= 0:
            raise ValueError(f"sigma_mm must be > 0, got {self.sigma_mm}")


def balanced_weights(label: np.ndarray, organs: tuple[int, ...]) -> np.ndarray:
    """``sqrt(mean_v / v_c)`` per organ from voxel counts ``v_c`` (absent organs: the mean)."""
    counts = np.bincount(label.ravel().astype(np.int64), minlength=max(organs) + 1)
    v = counts[list(organs)].astype(float)
    present = v > 0
    if not present.any():
        return np.ones(len(organs), np.float32)
    mean = v[present].mean()
    v[~present] = mean
    return np.sqrt(mean / v).astype(np.float32)


class Registrar(Plugin, ABC):
    """Estimates an affine map (and optionally a displacement) between two volumes.

    ``fit`` learns ``matrix_`` (4x4, fixed physical (z, y, x) mm -> moving
    physical mm; see :mod:`flare_uda.registration.affine`), ``displacement_``
    (``None`` for affine registrars; a deformable one's ``"3 z y x"`` field in
    mm on the fixed grid, :mod:`flare_uda.registration.warp`: ``T(p) = A (p +
    u(p))``) and keeps the fixed grid in ``fixed_``; ``transform`` moves any
    volume on the moving grid onto the fixed grid (labels by nearest
    neighbour). Options: a :class:`RegistrarConfig` subclass as ``config_class``.
    """

    kind = "registrar"
    config_class = RegistrarConfig

    def fit(self, moving: Volume, fixed: Volume) -> Registrar:
        """Register ``moving`` onto ``fixed``; returns ``self``."""
        for name, v in (("moving", moving), ("fixed", fixed)):
            if not isinstance(v, Volume):
                raise TypeError(f"{name} must be a Volume, got {type(v).__name__}")
        cfg = self.config
        feats = [
            to_features(v, cfg.features, cfg.organs, cfg.sigma_mm, cfg.encoding)
            for v in (moving, fixed)
        ]
        if feats[1].max(initial=0) <= 0 or feats[0].max(initial=0) <= 0:
            raise ValueError(
                f"expected non-empty {cfg.features} in both volumes, got an all-zero "
                f"{'fixed' if feats[1].max(initial=0) <= 0 else 'moving'} volume"
            )
        if cfg.features == "labels" and cfg.channel_weights == "balanced":
            weights = balanced_weights(fixed.array, cfg.organs)[:, None, None, None]
            for f in feats:  # in place: these are fresh arrays, "c z y x" of full size
                f *= weights.astype(f.dtype)
        self.matrix_ = require_affine(self.estimate(feats[0], moving, feats[1], fixed), "estimate")
        field = self.deform(feats[0], moving, feats[1], fixed, self.matrix_)
        self.displacement_ = None if field is None else require_displacement(field, fixed)
        self.fixed_ = fixed.with_array(np.zeros(fixed.shape, np.uint8))
        return self

    @abstractmethod
    def estimate(
        self, moving_features: np.ndarray, moving: Volume, fixed_features: np.ndarray, fixed: Volume
    ) -> np.ndarray:
        """The 4x4 fixed -> moving affine from features ``"c z y x"`` on each volume's grid."""

    def deform(
        self,
        moving_features: np.ndarray,
        moving: Volume,
        fixed_features: np.ndarray,
        fixed: Volume,
        matrix: np.ndarray,
    ) -> np.ndarray | None:
        """A displacement ``"3 z y x"`` (mm) on the fixed grid after ``matrix``; None: affine."""
        return None

    def transform(self, volume: Volume, is_label: bool = False) -> Volume:
        """``volume`` (on the moving grid) resampled onto the fixed grid of the last ``fit``."""
        if not hasattr(self, "matrix_"):
            raise RuntimeError(
                f"{type(self).__name__} is not fitted: call fit(moving, fixed) first"
            )
        return resample_deformed(
            volume, self.matrix_, self.displacement_, self.fixed_, is_label=is_label
        )


def get_registrar(name: str, **options: Any) -> Registrar:
    """A registrar by registry name (``"sitk"``, ``"torch"``) with its options."""
    return Registrar.from_config({"name": name, "options": options})


def get_matcher(name: str, **options: Any) -> Matcher:
    """A matcher by registry name (``"volume"``) with its options."""
    return Matcher.from_config({"name": name, "options": options})
