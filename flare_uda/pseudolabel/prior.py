"""A per-organ prior learned from labelled source (CT) cases: volume and place in the body.

For every organ the prior holds the source cases' mean and spread of its
volume (mm^3) and of its centroid's *position in the body*: the centroid
minus the body's centroid, divided by the body's spread (the standard
deviation of the body voxels' physical coordinates), per physical axis
(z, y, x). The body is the Otsu body mask of the image
(:func:`~flare_uda.inference.boxes.otsu_body_mask`), so CT and MR use the same
code. A pseudo-labelled organ fits the prior when its volume is within
``volume_range`` times the source mean (the paper's case-wise rule, per
organ) and its position within ``position_tolerance`` body spreads of the
source mean along ``position_axes`` (default y and x: the scans' z ranges
differ between domains, so the z position is not comparable).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flare_uda.volume import Case, Volume


@dataclass(frozen=True)
class BodyFrame:
    """Where the body is: its physical centroid and spread (mm, z y x)."""

    centre: np.ndarray
    spread: np.ndarray


def body_frame(image: Volume) -> BodyFrame:
    """The centroid and per-axis spread (mm) of ``image``'s Otsu body mask.

    Raises
    ------
    ValueError
        If the body mask is empty or flat along an axis.
    """
    from flare_uda.inference.boxes import otsu_body_mask

    mask = otsu_body_mask(image.array)
    centre, cov = _moments(mask, image)
    spread = np.sqrt(np.diag(cov))
    if not mask.any() or not (spread > 0).all():
        raise ValueError(
            f"expected a body in the image (an Otsu mask with extent along every axis), got "
            f"{int(mask.sum())} body voxels with spread {np.round(spread, 2).tolist()} mm"
        )
    return BodyFrame(centre, spread)


def _moments(mask: np.ndarray, grid: Volume) -> tuple[np.ndarray, np.ndarray]:
    """Physical centroid and covariance (mm, z y x) of a mask's voxels (zeros when empty)."""
    idx = np.argwhere(mask).astype(np.float64)
    if len(idx) < 2:
        return grid.index_to_physical(idx.mean(0) if len(idx) else np.zeros(3)), np.zeros((3, 3))
    lin = grid.direction * np.asarray(grid.spacing)[None, :]
    return grid.index_to_physical(idx.mean(0)), lin @ np.cov(idx.T, bias=True) @ lin.T


def organ_measures(label: Volume, frame: BodyFrame) -> dict[int, tuple[float, np.ndarray]]:
    """``{organ: (volume mm^3, position in the body "3")}`` for every organ in ``label``."""
    arr = label.array
    out = {}
    for organ in (int(o) for o in np.unique(arr) if o > 0):
        mask = arr == organ
        centre, _ = _moments(mask, label)
        out[organ] = (
            float(mask.sum()) * label.voxel_volume_mm3,
            (centre - frame.centre) / frame.spread,
        )
    return out


@dataclass(frozen=True)
class OrganStats:
    """One organ's prior: mean volume (mm^3), mean and std of its position in the body."""

    volume: float
    position: tuple[float, float, float]
    position_std: tuple[float, float, float]
    cases: int


def learn_organ_prior(cases: Sequence[Case]) -> dict[int, OrganStats]:
    """The prior of every organ annotated and present in some labelled ``cases``.

    Raises
    ------
    ValueError
        Without cases, or for a case without a label.
    """
    cases = list(cases)
    if not cases:
        raise ValueError("expected labelled source cases to learn the organ prior from, got none")
    seen: dict[int, list[tuple[float, np.ndarray]]] = {}
    for c in cases:
        if c.label is None:
            raise ValueError(f"source case {c.case_id!r} has no label, got None")
        for organ, m in organ_measures(c.label, body_frame(c.image)).items():
            if organ in c.annotated:
                seen.setdefault(organ, []).append(m)
    return {
        organ: OrganStats(
            float(np.mean([v for v, _ in ms])),
            tuple(float(x) for x in np.mean([p for _, p in ms], 0)),
            tuple(float(x) for x in np.std([p for _, p in ms], 0)),
            len(ms),
        )
        for organ, ms in sorted(seen.items())
    }


def prior_failures(
    measures: dict[int, tuple[float, np.ndarray]],
    prior: dict[int, OrganStats],
    volume_range: tuple[float, float],
    position_tolerance: float,
    position_axes: tuple[int, ...],
) -> dict[int, str]:
    """``{organ: why}`` for every measured organ outside the prior (organs the prior lacks
    fail too: nothing says where they belong)."""
    out = {}
    for organ, (volume, position) in measures.items():
        stats = prior.get(organ)
        if stats is None:
            out[organ] = "not in the source labels"
            continue
        ratio = volume / stats.volume
        offset = np.abs(position - np.asarray(stats.position))[list(position_axes)]
        if not volume_range[0] <= ratio <= volume_range[1]:
            out[organ] = f"volume {ratio:.2f}x the source mean"
        elif (offset > position_tolerance).any():
            out[organ] = f"{offset.max():.2f} body spreads from its source position"
    return out
