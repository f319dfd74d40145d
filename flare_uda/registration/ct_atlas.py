"""The CT atlas: labelled CT cases as a further matching domain, filling organs MR labels lack.

The paper's MDM moves better-sequence MR labels onto worse-sequence cases,
which lack the same organs when the first segmenter never found them. Here
the labelled CT cases (all 13 organs) are the atlases. Per MR case:

1. **Trusted organs**: those of its current pseudo-label that a filter plug-in
   keeps (default: the organ-wise filter's prior alone, which works on one
   round); the others, and organs the label lacks, are to be filled.
2. **Atlases**: the ``fusion.atlases`` CT cases closest by eq. 5, on the
   trusted organs' foreground volume (``measure: label``) or on the body
   volume (``measure: body``).
3. **Registration** of each CT case onto the MR case: in anatomy space
   (``features: image``, Sobel of both) or on the trusted organs of both
   labels (``features: labels``); the CT label (all organs) is moved.
4. **Gate** per atlas: the affine's largest scale and shear within bounds
   (:func:`~flare_uda.registration.warp.affine_plausibility`), no folding of a
   deformable field (Jacobian > ``min_jacobian``), and a mean Dice of at least
   ``gate_dice`` between the moved CT organs and the trusted MR organs.
5. **Fusion** of the atlases that passed (:mod:`flare_uda.registration.fusion`),
   then **filling**: untrusted organs are removed from the MR label, and every
   organ to fill is written where the fused CT label has it and the MR label
   is background. Trusted organs are never overwritten.

The case's ``annotated`` organs become the trusted and the filled ones:
organs neither trusted nor filled are unknown (ignored by the partial-label
loss), not background.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from flare_uda._validation import require_choice
from flare_uda.data.labels import keep_organs
from flare_uda.executor import Executor, get_executor
from flare_uda.plugin import PluginSpec, plugin_field, resolve_plugin_fields
from flare_uda.registration.fusion import FusionConfig, as_fusion, fuse_moved
from flare_uda.registration.matching import label_volumes_mm3, rank_by_volume
from flare_uda.registration.mdm import mean_dice, pair_registrar, view
from flare_uda.registration.warp import affine_plausibility, jacobian_determinant
from flare_uda.volume import Case, Volume

MEASURES = ("label", "body")
ORGANS = tuple(range(1, 14))


@dataclass(frozen=True)
class CTAtlasConfig:
    """Options of the CT atlas stage (the pipeline's ``ct_atlas`` section).

    Parameters
    ----------
    registrar : plug-in spec
        Registers each CT case onto the MR case. Default: the deformable
        registrar on the trusted organs' label maps (on phantom MR with 5 of 13
        organs, it filled the 8 others at a DSC of 0.50 with 3 atlases, where
        CT -> MR registration of anatomy-space images reached 0.34 and its
        gates rejected most atlases; docs/results.md).
    fusion : FusionConfig
        ``atlases``: the k CT cases moved onto each MR case (at most the CT
        cohort), fused by a locally weighted vote.
    measure : {"label", "body"}
        Eq. 5 on the trusted organs' volume, or on the Otsu body volume.
    filter : plug-in spec or None
        Decides which organs of the current pseudo-label are trusted, from that
        label alone (one round); ``None`` trusts every organ present.
    gate_dice : float or None
        Minimum mean Dice of the moved CT organs against the trusted MR organs
        (an MR case without trusted organs fails it); ``None``: no overlap gate.
    max_scale, max_shear : float
        Bounds of the affine part (:func:`~flare_uda.registration.warp.affine_plausibility`).
    min_jacobian : float
        A deformable field's Jacobian determinant must stay above this everywhere.
    """

    registrar: PluginSpec = plugin_field(
        "registrar",
        "deformable",
        features="labels",
        shrink_factors=(8, 4, 2),
        deform_shrink_factors=(4, 2),
        deform_iterations=(30, 30),
    )
    fusion: FusionConfig = field(default_factory=lambda: FusionConfig(atlases=3))
    measure: str = "label"
    filter: PluginSpec | None = plugin_field("filter", "organ_wise", threshold=None)
    gate_dice: float | None = 0.5
    max_scale: float = 1.5
    max_shear: float = 0.3
    min_jacobian: float = 0.0

    def __post_init__(self) -> None:
        resolve_plugin_fields(self)
        object.__setattr__(self, "fusion", as_fusion(self.fusion))
        require_choice(self.measure, MEASURES, "measure")
        if self.gate_dice is not None and not 0 <= self.gate_dice <= 1:
            raise ValueError(f"gate_dice must be in [0, 1] or None, got {self.gate_dice}")
        if not self.max_scale >= 1:
            raise ValueError(f"max_scale must be >= 1, got {self.max_scale}")
        if not self.max_shear >= 0:
            raise ValueError(f"max_shear must be >= 0, got {self.max_shear}")


@dataclass(frozen=True)
class AtlasResult:
    """One MR case after the CT atlas.

    ``label``: its new label (on its grid); ``annotated``: trusted + filled
    organs; ``trusted``, ``filled``: organ tuples; ``atlases``: the CT cases
    tried, best match first; ``kept``: those that passed the gate; ``gate``:
    per tried atlas, ``"ok"`` or why it failed.
    """

    case_id: str
    label: Volume
    annotated: tuple[int, ...]
    trusted: tuple[int, ...]
    filled: tuple[int, ...]
    atlases: tuple[str, ...]
    kept: tuple[str, ...]
    gate: dict[str, str]


def rank_atlases(
    case: Case, trusted: Sequence[int], ct: Sequence[Case], measure: str
) -> np.ndarray:
    """Indices into ``ct``, closest first by eq. 5 on ``measure`` (see :class:`CTAtlasConfig`)."""
    if measure == "body":
        from flare_uda.inference.boxes import otsu_body_mask

        def body(c: Case) -> float:
            return float(otsu_body_mask(c.image.array).sum()) * c.image.voxel_volume_mm3

        return rank_by_volume(np.array([body(case)]), np.array([body(c) for c in ct]))[0]
    organs = tuple(trusted) or ORGANS
    query = label_volumes_mm3(case.label, organs).sum()
    return rank_by_volume(
        np.array([query]), [label_volumes_mm3(c.label, organs).sum() for c in ct]
    )[0]


def _gate(reg, moved: Volume, own: Volume, trusted, config: CTAtlasConfig) -> str:
    """``"ok"`` or why an atlas fails (plausibility of the map, then overlap)."""
    scale, shear = affine_plausibility(reg.matrix_)
    if scale > config.max_scale or shear > config.max_shear:
        return f"implausible affine: scale {scale:.2f} (max {config.max_scale}), shear {shear:.2f}"
    if reg.displacement_ is not None:
        jac = float(jacobian_determinant(reg.displacement_, own.spacing).min())
        if not jac > config.min_jacobian:
            return f"folding field: Jacobian {jac:.2f} <= {config.min_jacobian}"
    if config.gate_dice is not None:
        dice = mean_dice(moved.array, own.array, trusted) if trusted else float("nan")
        if not dice >= config.gate_dice:
            return f"Dice {dice:.3f} on the trusted organs < {config.gate_dice}"
    return "ok"


def fill_case(
    case: Case, ct: Sequence[Case], trusted: Sequence[int], config: CTAtlasConfig
) -> AtlasResult:
    """The CT atlas for one MR case whose pseudo-label is ``case.label`` (steps 2-5)."""
    if case.label is None:
        raise ValueError(f"case {case.case_id!r} needs a pseudo-label for the CT atlas, got None")
    trusted = tuple(sorted(int(o) for o in trusted))
    own = case.label.with_array(keep_organs(case.label.array, trusted))
    missing = tuple(o for o in ORGANS if o not in trusted)
    k = min(config.fusion.atlases, len(ct))
    atlases = [ct[int(i)] for i in rank_atlases(case, trusted, ct, config.measure)[:k]]
    features = config.registrar.options.features
    if features == "labels" and not trusted:  # nothing to register the labels on
        gate = {a.case_id: "no trusted organ to register on" for a in atlases}
        ids = tuple(gate)
        return AtlasResult(case.case_id, own, trusted, trusted, (), ids, (), gate)
    target_case = case.with_label(own)
    fixed = view(target_case, features)
    moved, regs, views, gate = [], [], [], {}
    for atlas in atlases:
        if features == "labels":  # the trusted organs only, as in the MR label
            moving = atlas.label.with_array(keep_organs(atlas.label.array, trusted))
        else:
            moving = view(atlas, features)
        reg = pair_registrar(config.registrar, moving, fixed).build().fit(moving, fixed)
        label = case.image.with_array(reg.transform(atlas.label, is_label=True).array)
        gate[atlas.case_id] = _gate(reg, label, own, trusted, config)
        if gate[atlas.case_id] == "ok":
            moved.append(label)
            regs.append(reg)
            views.append(moving)
    out = own.array.copy()
    filled: list[int] = []
    if moved and missing:
        fused = fuse_moved(moved, regs, views, fixed, config.fusion)
        for organ in missing:
            where = (fused == organ) & (out == 0)
            if where.any():
                out[where] = organ
                filled.append(organ)
    label = case.image.with_array(out)
    annotated = tuple(sorted(set(trusted) | set(filled)))
    kept = tuple(a for a, why in gate.items() if why == "ok")
    ids = tuple(a.case_id for a in atlases)
    return AtlasResult(case.case_id, label, annotated, trusted, tuple(filled), ids, kept, gate)


def run_ct_atlas(
    cases: Sequence[Case],
    ct_cases: Sequence[Case],
    config: CTAtlasConfig | None = None,
    executor: str | Executor | None = None,
) -> list[AtlasResult]:
    """The CT atlas over MR cases carrying their current pseudo-labels; one result per case.

    Raises
    ------
    ValueError
        Without MR or CT cases, or a CT case without a label.
    """
    cfg = config if config is not None else CTAtlasConfig()
    cases, ct = list(cases), list(ct_cases)
    if not cases or not ct:
        raise ValueError(f"expected MR and labelled CT cases, got {len(cases)} and {len(ct)}")
    unlabelled = [c.case_id for c in ct if c.label is None]
    if unlabelled:
        raise ValueError(f"CT atlases need labels; these have none: {unlabelled[:5]}")
    missing = [c.case_id for c in cases if c.label is None]
    if missing:
        raise ValueError(f"MR cases need a pseudo-label for the CT atlas; none for {missing[:5]}")
    trusted = {c.case_id: tuple(int(o) for o in np.unique(c.label.array) if o > 0) for c in cases}
    if cfg.filter is not None:
        label_filter = cfg.filter.build()
        if label_filter.learns_from_source:
            label_filter.fit(ct)
        history = {c.case_id: [c.label] for c in cases}
        kept = label_filter.select_organs(history, {c.case_id: c.image for c in cases})
        trusted = {cid: kept.get(cid, ()) for cid in trusted}
    jobs = [(c, trusted[c.case_id]) for c in cases]
    return get_executor(executor).map(partial(_fill_job, ct=ct, config=cfg), jobs, desc="CT atlas")


def _fill_job(job: tuple[Case, tuple[int, ...]], ct: list[Case], config: CTAtlasConfig):
    return fill_case(job[0], ct, job[1], config)
