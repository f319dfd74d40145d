"""The organ-wise pseudo-label filter: eq. 7 per organ, and a per-organ prior from the source.

Per case, an organ of the latest round's pseudo-label is trusted when

- its own eq. 7 uncertainty across rounds
  (:func:`~flare_uda.pseudolabel.uncertainty.organ_uncertainty`) is at most
  ``threshold``, and/or it is among the ``keep_fraction`` most certain cases
  holding that organ; and
- with ``prior``, its volume and its position in the body fit the prior
  learned from the labelled source cases (:mod:`flare_uda.pseudolabel.prior`).

Organs that fail, and organs the label lacks, are *unknown* in that case, not
background: the pipeline drops them from the label and from
``Case.annotated``, so the partial-label loss ignores them. A case keeps its
place while it holds ``min_organs`` trusted organs. With ``threshold`` and
``keep_fraction`` both ``None`` the filter checks the prior alone, which works
on a single round (the CT atlas stage uses it so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from flare_uda._validation import require_int
from flare_uda.pseudolabel.base import FILTERS, History, PseudoLabelFilter
from flare_uda.pseudolabel.prior import (
    OrganStats,
    body_frame,
    learn_organ_prior,
    organ_measures,
    prior_failures,
)
from flare_uda.pseudolabel.uncertainty import organ_uncertainties
from flare_uda.volume import Case, Volume


@dataclass(frozen=True)
class OrganWiseOptions:
    """Options of :class:`OrganWiseFilter` (see the module docstring).

    Parameters
    ----------
    threshold : float or None
        Keep an organ with per-organ eq. 7 ``u <= threshold``.
    keep_fraction : float in (0, 1] or None
        Per organ, keep the ``ceil(keep_fraction * n)`` most certain of the
        ``n`` cases holding it (after ``threshold``).
    prior : bool
        Check volume and position against the prior learned by :meth:`OrganWiseFilter.fit`.
    volume_range : (float, float)
        Accepted volume / source mean volume (on the phantom, true MR organs
        span 0.47-1.84 of the CT means; docs/design.md).
    position_tolerance : float
        Accepted distance, in body spreads, from the organ's mean source
        position, along each of ``position_axes`` (true phantom MR organs lie
        within 0.48; left and right kidneys are 1.9 apart).
    position_axes : tuple of int
        Physical axes compared (0 z, 1 y, 2 x).
    min_organs : int
        A case with fewer trusted organs is dropped.
    """

    threshold: float | None = 0.5
    keep_fraction: float | None = None
    prior: bool = True
    volume_range: tuple[float, float] = (0.3, 2.5)
    position_tolerance: float = 0.6
    position_axes: tuple[int, ...] = (1, 2)
    min_organs: int = 1

    def __post_init__(self) -> None:
        if self.threshold is None and self.keep_fraction is None and not self.prior:
            raise ValueError(
                "expected something to check: a threshold, a keep_fraction or prior=true, got none"
            )
        if self.threshold is not None and not self.threshold >= 0:
            raise ValueError(f"threshold must be >= 0, got {self.threshold}")
        if self.keep_fraction is not None and not 0 < self.keep_fraction <= 1:
            raise ValueError(f"keep_fraction must be in (0, 1], got {self.keep_fraction}")
        low, high = self.volume_range
        if not 0 <= low < high:
            raise ValueError(
                f"volume_range must be (low, high) with 0 <= low < high, got {low, high}"
            )
        if not self.position_tolerance > 0:
            raise ValueError(f"position_tolerance must be > 0, got {self.position_tolerance}")
        if not self.position_axes or not set(self.position_axes) <= {0, 1, 2}:
            raise ValueError(f"position_axes must be axes among 0, 1, 2, got {self.position_axes}")
        require_int(self.min_organs, "min_organs", minimum=1)


@FILTERS.register("organ_wise")
class OrganWiseFilter(PseudoLabelFilter):
    """Trust organs, not whole cases (see :class:`OrganWiseOptions`).

    Attributes
    ----------
    prior_ : dict organ -> OrganStats
        Learned by :meth:`fit` (needed when ``prior``).
    uncertainties_ : dict case_id -> dict organ -> float
        Per-organ eq. 7 of the last history seen (rounds >= 2 only).
    failures_ : dict case_id -> dict organ -> str
        Why each distrusted organ of the last history was dropped.
    """

    config_class = OrganWiseOptions

    @property
    def learns_from_source(self) -> bool:
        return self.config.prior

    def fit(self, source_cases: Sequence[Case]) -> OrganWiseFilter:
        """Learn the per-organ prior from labelled source (CT) cases."""
        if self.config.prior:
            self.prior_: dict[int, OrganStats] = learn_organ_prior(source_cases)
        return self

    def keep(self, history: History) -> list[str]:
        return list(self.keep_organs(history, None))

    def keep_organs(
        self, history: History, images: Mapping[str, Volume] | None
    ) -> dict[str, tuple[int, ...]]:
        cfg = self.config
        latest = {cid: list(labels)[-1] for cid, labels in history.items()}
        present = {cid: _organs(label) for cid, label in latest.items()}
        self.failures_: dict[str, dict[int, str]] = {cid: {} for cid in history}
        if cfg.threshold is not None or cfg.keep_fraction is not None:
            present = self._certain(history, present)
        if cfg.prior:
            present = self._plausible(latest, present, images)
        return {cid: o for cid, o in present.items() if len(o) >= cfg.min_organs}

    def _certain(self, history: History, present: dict[str, set]) -> dict[str, set]:
        """Organs within the eq. 7 threshold and the most certain fraction of cases."""
        cfg = self.config
        self.uncertainties_ = {cid: organ_uncertainties(list(h)) for cid, h in history.items()}
        out = {}
        for cid, organs in present.items():
            u = self.uncertainties_[cid]
            ok = {o for o in organs if math.isfinite(u[o])}
            if cfg.threshold is not None:
                ok = {o for o in ok if u[o] <= cfg.threshold}
            out[cid] = ok
        if cfg.keep_fraction is not None:
            for organ in set().union(*out.values()):
                holders = [cid for cid in history if organ in out[cid]]
                n = math.ceil(cfg.keep_fraction * len(holders))
                ranked = sorted(holders, key=lambda c: self.uncertainties_[c][organ])
                for cid in ranked[n:]:
                    out[cid].discard(organ)
        for cid, organs in present.items():
            for o in organs - out[cid]:
                self.failures_[cid][o] = f"eq. 7 uncertainty {self.uncertainties_[cid][o]:.3f}"
        return out

    def _plausible(self, latest, present: dict[str, set], images) -> dict[str, set]:
        """Organs whose volume and position in the body fit the source prior."""
        cfg = self.config
        if not hasattr(self, "prior_"):
            raise RuntimeError(
                "OrganWiseFilter(prior=true) has not learned its prior: call fit(source_cases) "
                "with the labelled CT cases first"
            )
        missing = [cid for cid in latest if images is None or cid not in images]
        if missing:
            raise ValueError(
                f"the organ prior needs each case's image (its body), got none for {missing[:5]}; "
                "pass images={case_id: Volume} to select_organs"
            )
        out = {}
        for cid, label in latest.items():
            image = images[cid]
            if not isinstance(label, Volume):
                label = image.with_array(np.asarray(label))
            failed = prior_failures(
                organ_measures(label, body_frame(image)),
                self.prior_,
                cfg.volume_range,
                cfg.position_tolerance,
                cfg.position_axes,
            )
            out[cid] = {o for o in present[cid] if o not in failed}
            self.failures_[cid].update({o: why for o, why in failed.items() if o in present[cid]})
        return out


def _organs(label) -> set[int]:
    arr = label.array if isinstance(label, Volume) else np.asarray(label)
    return {int(o) for o in np.unique(arr) if o > 0}
