"""MDM, multi-domain matching: move better-sequence pseudo-labels onto worse-sequence cases.

MR cases are split into a better and a worse sub-domain (by ``Case.sequence``,
or by a pseudo-label quality score when sequences are unknown). A matcher
plug-in pairs each worse-domain case with a better-domain case (the paper's:
closest pseudo-label volume, eq. 5), a registrar plug-in aligns that case onto
it by an affine map, and its pseudo-label is moved onto the worse case's grid
by nearest neighbour. What is registered follows the registrar's own
``features`` option: ``"image"``, the two MR images in Sobel anatomy space (as
the paper registers images), or ``"labels"``, their pseudo-labels as smooth
channels. An optional quality gate keeps a transferred label only when it
agrees with the case's own pseudo-label on reliable organs (kidneys).
Per-pair work goes through the executor seam.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from flare_uda.executor import Executor, get_executor
from flare_uda.plugin import PluginSpec, plugin_field, resolve_plugin_fields
from flare_uda.volume import Case, Volume


@dataclass(frozen=True)
class MDMConfig:
    """Options of the MDM stage (the pipeline's ``mdm`` section).

    Parameters
    ----------
    better, worse : str
        Sequences (``Case.sequence``) of the better and the worse sub-domain
        (default T1 better than T2).
    matcher : plug-in spec
        A registered matcher (default ``volume``: eq. 5, total foreground volume).
    registrar : plug-in spec
        A registered registrar and its options. Default: ``torch`` on the
        anatomy-space images, pyramid (8, 4, 2) (``benchmarks/bench_registration.py``
        measured the same DSC as (4, 2, 1) at a third of the time). With
        ``features: labels`` the pseudo-labels are registered instead, encoded
        for the organs of its ``organs`` option present in either label.
    gate_organs : tuple of int
        Organs checked by the quality gate (default the kidneys, 2 and 13).
    gate_dice : float or None
        Minimum mean Dice on ``gate_organs``; ``None`` (default, the paper) disables the gate.
    better_fraction : float
        With quality scores: the fraction of highest-scoring cases forming the better domain.
    """

    better: str = "T1"
    worse: str = "T2"
    matcher: PluginSpec = plugin_field("matcher", "volume")
    registrar: PluginSpec = plugin_field("registrar", "torch", shrink_factors=(8, 4, 2))
    gate_organs: tuple[int, ...] = (2, 13)
    gate_dice: float | None = None
    better_fraction: float = 0.5

    def __post_init__(self) -> None:
        resolve_plugin_fields(self)
        for name in ("better", "worse"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a sequence name, got {getattr(self, name)!r}")
        if self.better == self.worse:
            raise ValueError(f"better and worse sequences must differ, got {self.better!r} twice")
        if self.gate_dice is not None and not 0 <= self.gate_dice <= 1:
            raise ValueError(f"gate_dice must be in [0, 1] or None, got {self.gate_dice}")
        if not 0 < self.better_fraction < 1:
            raise ValueError(f"better_fraction must be in (0, 1), got {self.better_fraction}")


@dataclass(frozen=True)
class MDMResult:
    """One worse-domain case after MDM.

    ``label`` is the transferred label on the case's grid (``None`` when the
    gate rejected it); ``gate_dice`` is the mean Dice on the gate organs (nan
    when none of them is present in either label, which fails the gate).
    """

    case_id: str
    matched_id: str
    label: Volume | None
    gate_dice: float | None
    matrix: np.ndarray


def split_by_sequence(
    cases: Sequence[Case], better: str, worse: str
) -> tuple[list[Case], list[Case]]:
    """(better-domain, worse-domain) cases by ``Case.sequence``; other sequences are left out.

    Raises
    ------
    ValueError
        If a case has no sequence (use :func:`split_by_quality`).
    """
    unknown = [c.case_id for c in cases if c.sequence is None]
    if unknown:
        raise ValueError(
            f"expected a sequence on every case, got None for {unknown[:5]}; pass quality "
            "scores to split by pseudo-label quality instead"
        )
    return [c for c in cases if c.sequence == better], [c for c in cases if c.sequence == worse]


def split_by_quality(
    cases: Sequence[Case], scores: Mapping[str, float], better_fraction: float = 0.5
) -> tuple[list[Case], list[Case]]:
    """(better, worse): the ``ceil(better_fraction * n)`` highest scores form the better domain.

    ``scores`` is any per-case pseudo-label quality where higher is better,
    e.g. minus the eq. 7 uncertainty. Ties keep input order.
    """
    missing = [c.case_id for c in cases if c.case_id not in scores]
    if missing:
        raise ValueError(f"expected a quality score for every case, missing {missing[:5]}")
    order = sorted(range(len(cases)), key=lambda i: -float(scores[cases[i].case_id]))
    n_better = math.ceil(better_fraction * len(cases))
    better = set(order[:n_better])
    return (
        [c for i, c in enumerate(cases) if i in better],
        [c for i, c in enumerate(cases) if i not in better],
    )


def mean_dice(a: np.ndarray, b: np.ndarray, organs: Sequence[int]) -> float:
    """Mean Dice over ``organs`` present in ``a`` or ``b``; nan when none is present."""
    scores = []
    for o in organs:
        ma, mb = a == o, b == o
        denom = int(ma.sum()) + int(mb.sum())
        if denom:
            scores.append(2.0 * np.logical_and(ma, mb).sum() / denom)
    return float(np.mean(scores)) if scores else float("nan")


def transfer_label(pair: tuple[Case, Case], config: MDMConfig) -> MDMResult:
    """Register ``better`` onto ``worse`` (a ``(worse, better)`` pair) and move its label.

    Both cases need pseudo-labels in ``Case.label``.
    """
    worse, better = pair
    for c in (worse, better):
        if c.label is None:
            raise ValueError(f"case {c.case_id!r} needs a pseudo-label for MDM, got None")
    options = config.registrar.options
    if options.features == "labels":
        present = set(np.unique(better.label.array)) | set(np.unique(worse.label.array))
        organs = tuple(o for o in options.organs if o in present) or options.organs
        options = replace(options, organs=organs)
        moving, fixed = better.label, worse.label
    else:
        from flare_uda.data.anatomy import to_anatomy_space

        moving, fixed = to_anatomy_space(better.image), to_anatomy_space(worse.image)
    reg = config.registrar.plugin_class()(options).fit(moving, fixed)
    moved = reg.transform(better.label, is_label=True)
    moved = worse.image.with_array(moved.array)
    dice = None
    keep = True
    if config.gate_dice is not None:
        dice = mean_dice(moved.array, worse.label.array, config.gate_organs)
        keep = bool(dice >= config.gate_dice)  # nan fails
    return MDMResult(worse.case_id, better.case_id, moved if keep else None, dice, reg.matrix_)


def run_mdm(
    cases: Sequence[Case],
    config: MDMConfig | None = None,
    scores: Mapping[str, float] | None = None,
    executor: str | Executor | None = None,
) -> list[MDMResult]:
    """The MDM stage over MR cases carrying pseudo-labels; one result per worse-domain case.

    Parameters
    ----------
    cases : sequence of Case
        MR cases with ``Case.label`` = their own pseudo-label.
    config : MDMConfig or None
    scores : dict case_id -> float or None
        Quality scores; when given, split by quality instead of by sequence.
    executor : str, Executor or None
        Engine for the per-pair registrations.

    Raises
    ------
    ValueError
        If either sub-domain is empty.
    """
    cfg = config if config is not None else MDMConfig()
    cases = list(cases)
    if scores is None:
        better, worse = split_by_sequence(cases, cfg.better, cfg.worse)
    else:
        better, worse = split_by_quality(cases, scores, cfg.better_fraction)
    if not better or not worse:
        raise ValueError(
            f"expected cases in both sub-domains, got {len(better)} better ({cfg.better}) "
            f"and {len(worse)} worse ({cfg.worse})"
        )
    index = cfg.matcher.build().match_indices(worse, better)
    pairs = [(w, better[int(i)]) for w, i in zip(worse, index, strict=True)]
    return get_executor(executor).map(partial(transfer_label, config=cfg), pairs, desc="MDM")
