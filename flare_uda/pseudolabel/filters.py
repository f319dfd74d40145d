"""Filters that decide which pseudo-labelled cases are trusted.

- :class:`UncertaintyFilter`: eq. 7 below a threshold and/or the most certain fraction;
- :class:`VolumePriorFilter`: organ volumes within ``[low, high] x`` the source-domain mean.

Compose them with :class:`~flare_uda.pseudolabel.base.AllOf`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flare_uda._validation import as_triplet, require_choice
from flare_uda.pseudolabel.base import FILTERS, History, PseudoLabelFilter
from flare_uda.pseudolabel.uncertainty import uncertainties
from flare_uda.volume import Case, Volume


@dataclass(frozen=True)
class UncertaintyOptions:
    """Options of :class:`UncertaintyFilter`.

    Parameters
    ----------
    threshold : float or None
        Keep ``u <= threshold``.
    keep_fraction : float in (0, 1] or None
        Keep the ``ceil(keep_fraction * n)`` most certain cases (after the
        threshold when both are given). Ties keep the earlier case in history
        order. Cases with ``u = inf`` are never kept.

    At least one of the two is required.
    """

    threshold: float | None = None
    keep_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.threshold is None and self.keep_fraction is None:
            raise ValueError("expected threshold and/or keep_fraction, got neither")
        if self.threshold is not None and not self.threshold >= 0:
            raise ValueError(f"threshold must be >= 0, got {self.threshold}")
        if self.keep_fraction is not None and not 0 < self.keep_fraction <= 1:
            raise ValueError(f"keep_fraction must be in (0, 1], got {self.keep_fraction}")


@FILTERS.register("uncertainty")
class UncertaintyFilter(PseudoLabelFilter):
    """Keep cases whose eq. 7 uncertainty is low (see :class:`UncertaintyOptions`).

    Attributes
    ----------
    uncertainties_ : dict case_id -> float
        Eq. 7 of every case of the last history seen.
    """

    config_class = UncertaintyOptions

    def keep(self, history: History) -> list[str]:
        u = uncertainties(history)
        self.uncertainties_ = u
        threshold, keep_fraction = self.config.threshold, self.config.keep_fraction
        ids = [cid for cid in history if math.isfinite(u[cid])]
        if threshold is not None:
            ids = [cid for cid in ids if u[cid] <= threshold]
        if keep_fraction is not None:
            n = math.ceil(keep_fraction * len(ids))
            ids = sorted(ids, key=lambda cid: u[cid])[:n]  # stable: ties keep history order
        return ids


def source_volume_stats(cases: Sequence[Case]) -> dict[int, float]:
    """Mean organ volume (mm^3) over labelled source cases, per FLARE label.

    An organ counts only in cases that annotate it (``Case.annotated``).
    """
    sums: dict[int, list[float]] = {}
    for c in cases:
        if c.label is None:
            raise ValueError(f"source case {c.case_id!r} has no label, got None")
        counts = np.bincount(c.label.array.ravel().astype(np.int64), minlength=14)
        for organ in c.annotated:
            sums.setdefault(organ, []).append(float(counts[organ]) * c.label.voxel_volume_mm3)
    if not sums:
        raise ValueError("expected at least one labelled source case, got none")
    return {organ: float(np.mean(v)) for organ, v in sorted(sums.items())}


@dataclass(frozen=True)
class VolumePriorOptions:
    """Options of :class:`VolumePriorFilter`.

    Parameters
    ----------
    mean_volumes : dict int -> float
        Source-domain mean volume in mm^3 per organ (:func:`source_volume_stats`).
    low, high : float
        Ratios; the paper rejects ``> 1.8x`` and ``< 0.2x``.
    missing : {"reject", "ignore"}
        An organ absent from the pseudo-label (volume 0): reject the case
        (as the ratio rule implies) or skip that organ.
    round_index : int
        Which round's label is checked (default the latest, ``-1``).
    spacing : tuple of 3 float or None
        (z, y, x) mm, needed only when the history holds bare arrays.
    """

    mean_volumes: dict[int, float]
    low: float = 0.2
    high: float = 1.8
    missing: str = "reject"
    round_index: int = -1
    spacing: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if not self.mean_volumes:
            raise ValueError("expected source mean volumes for at least one organ, got none")
        if any(not v > 0 for v in self.mean_volumes.values()):
            raise ValueError(f"mean volumes must be > 0 mm^3, got {dict(self.mean_volumes)}")
        if not 0 <= self.low < self.high:
            raise ValueError(f"expected 0 <= low < high, got low={self.low}, high={self.high}")
        require_choice(self.missing, ("reject", "ignore"), "missing")
        volumes = {int(k): float(v) for k, v in self.mean_volumes.items()}
        object.__setattr__(self, "mean_volumes", volumes)
        if self.spacing is not None:
            object.__setattr__(self, "spacing", as_triplet(self.spacing, "spacing", positive=True))


@FILTERS.register("volume_prior")
class VolumePriorFilter(PseudoLabelFilter):
    """Reject cases with an organ volume outside ``[low, high] x`` its source-domain mean.

    See :class:`VolumePriorOptions`.
    """

    config_class = VolumePriorOptions

    def ratios(self, label: Volume | np.ndarray) -> dict[int, float]:
        """Volume / source mean per organ of one label map."""
        cfg = self.config
        if isinstance(label, Volume):
            arr, voxel = label.array, label.voxel_volume_mm3
        elif cfg.spacing is None:
            raise ValueError(
                "expected Volume labels or a spacing, got bare arrays and spacing=None"
            )
        else:
            arr, voxel = np.asarray(label), float(np.prod(cfg.spacing))
        counts = np.bincount(arr.ravel().astype(np.int64), minlength=max(cfg.mean_volumes) + 1)
        return {o: counts[o] * voxel / m for o, m in cfg.mean_volumes.items()}

    def keep(self, history: History) -> list[str]:
        cfg = self.config
        kept = []
        for cid, labels in history.items():
            ratios = self.ratios(list(labels)[cfg.round_index])
            ok = all(
                (r == 0 and cfg.missing == "ignore") or cfg.low <= r <= cfg.high
                for r in ratios.values()
            )
            if ok:
                kept.append(cid)
        return kept
