"""flare_uda.pseudolabel: uncertainty (eq. 7), case- and organ-wise filters, ensembling, the
self-training loop."""

from flare_uda.pseudolabel.base import (
    ENSEMBLERS,
    FILTERS,
    AllOf,
    Ensembler,
    PseudoLabelFilter,
    get_ensembler,
    get_filter,
)
from flare_uda.pseudolabel.ensemble import (
    MajorityEnsembler,
    UnionEnsembler,
    majority_vote,
    union_ensemble,
)
from flare_uda.pseudolabel.filters import UncertaintyFilter, VolumePriorFilter, source_volume_stats
from flare_uda.pseudolabel.organs import OrganWiseFilter, OrganWiseOptions
from flare_uda.pseudolabel.prior import OrganStats, learn_organ_prior
from flare_uda.pseudolabel.self_training import (
    SelfTrainingConfig,
    SelfTrainingResult,
    run_self_training,
)
from flare_uda.pseudolabel.uncertainty import (
    organ_uncertainties,
    organ_uncertainty,
    pseudo_label_uncertainty,
    uncertainties,
)

__all__ = [
    "ENSEMBLERS",
    "FILTERS",
    "AllOf",
    "Ensembler",
    "MajorityEnsembler",
    "OrganStats",
    "OrganWiseFilter",
    "OrganWiseOptions",
    "PseudoLabelFilter",
    "SelfTrainingConfig",
    "SelfTrainingResult",
    "UncertaintyFilter",
    "UnionEnsembler",
    "VolumePriorFilter",
    "get_ensembler",
    "get_filter",
    "learn_organ_prior",
    "majority_vote",
    "organ_uncertainties",
    "organ_uncertainty",
    "pseudo_label_uncertainty",
    "run_self_training",
    "source_volume_stats",
    "uncertainties",
    "union_ensemble",
]
