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
agrees with the case's own pseudo-label on reliable organs (kidneys). With
``fusion.atlases = k > 1`` the k best matches are each registered and their
labels fused by a locally weighted vote (:mod:`flare_uda.registration.fusion`);
``k = 1`` is the paper's MDM. Per-case work goes through the executor seam.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np

from flare_uda.executor import Executor, get_executor
from flare_uda.plugin import PluginSpec, plugin_field, resolve_plugin_fields
from flare_uda.registration.fusion import FusionConfig, as_fusion, fuse_moved
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
    fusion : FusionConfig
        ``atlases``: how many best matches move their labels onto each case (1:
        the paper; at most the better domain's size), fused by a locally
        weighted vote (:mod:`flare_uda.registration.fusion`); the gate applies
        to each atlas before fusion.
    """

    better: str = "T1"
    worse: str = "T2"
    matcher: PluginSpec = plugin_field("matcher", "volume")
    registrar: PluginSpec = plugin_field("registrar", "torch", shrink_factors=(8, 4, 2))
    gate_organs: tuple[int, ...] = (2, 13)
    gate_dice: float | None = None
    better_fraction: float = 0.5
    fusion: FusionConfig = field(default_factory=FusionConfig)

    def __post_init__(self) -> None:
        resolve_plugin_fields(self)
        object.__setattr__(self, "fusion", as_fusion(self.fusion))
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

    ``label`` is the transferred (with several atlases: fused) label on the
    case's grid (``None`` when the gate rejected every atlas); ``gate_dice`` is
    its mean Dice on the gate organs (nan when none of them is present in either
    label, which fails the gate; when every atlas failed, the best atlas's).
    ``matched_id`` and ``matrix`` are the best match's; ``matched_ids`` all
    matches, best first, and ``kept_ids`` those that passed the gate.
    """

    case_id: str
    matched_id: str
    label: Volume | None
    gate_dice: float | None
    matrix: np.ndarray
    matched_ids: tuple[str, ...] = ()
    kept_ids: tuple[str, ...] = ()


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


def view(case: Case, features: str) -> Volume:
    """What a registrar with ``features`` compares: the pseudo-label, or the image in
    anatomy space (Sobel; a CT clipped to the soft-tissue window first, as ASIT's)."""
    if features == "labels":
        return case.label
    from flare_uda.data.anatomy import CT_SOFT_TISSUE_WINDOW, to_anatomy_space

    window = CT_SOFT_TISSUE_WINDOW if case.modality == "CT" else None
    return to_anatomy_space(case.image, window=window)


def pair_registrar(registrar: PluginSpec, moving: Volume, fixed: Volume) -> PluginSpec:
    """The registrar for one pair: on labels, only the organs present in either label."""
    options = registrar.options
    if options.features != "labels":
        return registrar
    present = set(np.unique(moving.array)) | set(np.unique(fixed.array))
    organs = tuple(o for o in options.organs if o in present) or options.organs
    return replace(registrar, options=replace(options, organs=organs))


def transfer_label(pair: tuple[Case, Case | Sequence[Case]], config: MDMConfig) -> MDMResult:
    """Register the better case(s) onto ``worse`` (a ``(worse, better)`` pair) and move labels.

    ``better`` is one case or the k best matches (best first), whose moved
    labels are gated one by one and fused. All cases need pseudo-labels in ``Case.label``.
    """
    worse, better = pair
    atlases = [better] if isinstance(better, Case) else list(better)
    for c in [worse, *atlases]:
        if c.label is None:
            raise ValueError(f"case {c.case_id!r} needs a pseudo-label for MDM, got None")
    features = config.registrar.options.features
    fixed = view(worse, features)
    moved, regs, dices, matrices = [], [], [], []
    for atlas in atlases:
        moving = view(atlas, features)
        reg = pair_registrar(config.registrar, moving, fixed).build().fit(moving, fixed)
        label = worse.image.with_array(reg.transform(atlas.label, is_label=True).array)
        matrices.append(reg.matrix_)
        if config.gate_dice is not None:
            dices.append(mean_dice(label.array, worse.label.array, config.gate_organs))
            if not dices[-1] >= config.gate_dice:  # nan fails
                continue
        moved.append(label)
        regs.append((reg, moving, atlas.case_id))
    fused = None
    if moved:
        weights_from = [r for r, _, _ in regs], [m for _, m, _ in regs]
        fused = worse.image.with_array(fuse_moved(moved, *weights_from, fixed, config.fusion))
    dice = None
    if config.gate_dice is not None:
        dice = (
            mean_dice(fused.array, worse.label.array, config.gate_organs) if moved else max(dices)
        )
    ids = tuple(a.case_id for a in atlases)
    kept = tuple(cid for _, _, cid in regs)
    return MDMResult(worse.case_id, ids[0], fused, dice, matrices[0], ids, kept)


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
    k = min(cfg.fusion.atlases, len(better))
    index = cfg.matcher.build().best(worse, better, k)
    pairs = [(w, [better[int(i)] for i in row]) for w, row in zip(worse, index, strict=True)]
    return get_executor(executor).map(partial(transfer_label, config=cfg), pairs, desc="MDM")
