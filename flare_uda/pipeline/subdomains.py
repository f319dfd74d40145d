"""MR sub-domains without sequence names: cluster by appearance, rank by pseudo-label quality.

Two steps, so that the clusters can key the stage cache like sequence names do:

1. :func:`cluster_cases`, before any stage: the appearance statistics of every
   target scan (:mod:`flare_uda.data.appearance`), z-scored over the cohort,
   each group (noise, texture, histogram shape) weighted by how cleanly it alone
   splits the cohort in two (:func:`group_weights`), split in two by Ward's
   hierarchical clustering (deterministic). The clusters become the cases'
   sequences, ``auto1`` and ``auto2`` (``auto1`` holds the first case id).
2. :class:`RankSubDomains`, a stage: which cluster is the "better" MDM domain.
   Round 1 is the ASIT model's pseudo-labels, round 2 those of a probe model
   trained on them; per case, stability is eq. 7 over the two rounds and
   plausibility the mean ``|log(volume / CT mean volume)|`` of the organs the
   CT labels annotate (ratios clipped to [0.05, 20]). A cluster scores the
   median over its cases of each; the clusters are ranked by each criterion
   and the lower sum of ranks wins (ties: stability, then plausibility).

No fixed weighting fits all data: on the phantom the noise floor separates T1
from T2 (Fisher ratio 18-32 over 36 cases) and the histogram shape hardly does
(<= 4); on the shared real MR it is the other way round (TotalSegmentator's
T1-like scan against CHAOS T2 has a far lower q25 and skewness, while the
CHAOS noise floors spread widely). Weighting each group by its own Dunn index
splits 78 of 80 phantom cohorts (tiny and quick presets, 4 or 8 cases) exactly
into T1 and T2 and the shared real MR into TotalSegmentator vs CHAOS; fixed
weights (1, 1, 0.5) also split 78 phantom cohorts but not the real MR.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flare_uda.data.appearance import FEATURE_GROUPS, FEATURES, appearance_features
from flare_uda.pipeline.runner import Runner, Stage
from flare_uda.pipeline.stages import cases_of, with_labels
from flare_uda.volume import Case, Volume

CLUSTERS = ("auto1", "auto2")
PLAUSIBLE_RATIO = (0.05, 20.0)


@dataclass(frozen=True)
class SubDomainOptions:
    """How ``--sequences auto`` clusters: prior weights of the appearance groups.

    Each group's weight in the clustering is its prior (1 for groups left out)
    times how cleanly it alone splits the cohort in two (:func:`group_weights`).
    """

    weights: dict[str, float] = field(
        default_factory=lambda: {"noise": 1.0, "texture": 1.0, "histogram": 1.0}
    )

    def __post_init__(self) -> None:
        weights = dict.fromkeys(FEATURE_GROUPS, 1.0)
        weights.update({str(k): float(v) for k, v in dict(self.weights).items()})
        unknown = sorted(set(weights) - set(FEATURE_GROUPS))
        if unknown or any(not w >= 0 for w in weights.values()) or not any(weights.values()):
            raise ValueError(
                f"weights must map feature groups {sorted(FEATURE_GROUPS)} to numbers >= 0, "
                f"not all 0; got {dict(self.weights)}"
            )
        object.__setattr__(self, "weights", weights)


def _ward_split(z: np.ndarray) -> np.ndarray:
    """Cluster numbers (1 or 2) of Ward's two-cluster cut of the rows of ``z`` ("n f")."""
    from scipy.cluster.hierarchy import fcluster, linkage

    groups = fcluster(linkage(z, method="ward"), 2, criterion="maxclust")
    if len(set(groups)) < 2:  # identical rows: split by order, never one cluster
        groups = np.array([1] * (len(z) // 2) + [2] * (len(z) - len(z) // 2))
    return groups


def dunn_index(z: np.ndarray, groups: np.ndarray) -> float:
    """Nearest distance between the two clusters over the widest cluster's diameter."""
    from scipy.spatial.distance import cdist, pdist

    a, b = z[groups == 1], z[groups == 2]
    between = float(cdist(a, b).min())
    within = max(float(pdist(c).max()) if len(c) > 1 else 0.0 for c in (a, b))
    return between / max(within, between * 1e-3, 1e-12)


def _standardized(features: Mapping[str, Mapping[str, float]]) -> tuple[list[str], np.ndarray]:
    ids = list(features)
    table = np.array([[features[c][f] for f in FEATURES] for c in ids], dtype=float)
    std = table.std(axis=0)
    return ids, (table - table.mean(axis=0)) / np.where(std > 0, std, 1.0)


def group_weights(
    features: Mapping[str, Mapping[str, float]], options: SubDomainOptions | None = None
) -> dict[str, float]:
    """Each group's weight: its prior times the Dunn index of its own two-cluster split.

    A group that splits the cohort cleanly in two (a gap between two tight
    clusters) counts; one whose values spread evenly hardly does. On the phantom
    that is the noise floor (T2 is noisier), on the shared real MR the histogram
    shape (CHAOS T2 against TotalSegmentator's T1-like scan).
    """
    options = options or SubDomainOptions()
    _, z = _standardized(features)
    out = {}
    for group, names in FEATURE_GROUPS.items():
        zz = z[:, [FEATURES.index(n) for n in names]]
        prior = options.weights.get(group, 0.0)
        out[group] = prior * dunn_index(zz, _ward_split(zz)) if prior else 0.0
    return out


def cluster_cases(
    features: Mapping[str, Mapping[str, float]], options: SubDomainOptions | None = None
) -> dict[str, str]:
    """Case id -> ``auto1``/``auto2``: Ward clustering of the statistics, groups weighted.

    Statistics are z-scored over the cohort; a group of ``k`` statistics counts
    ``weight / sqrt(k)`` per statistic (:func:`group_weights`), so that its share
    of the squared distance does not grow with ``k``.

    Raises
    ------
    ValueError
        With fewer than two cases.
    """
    if len(features) < 2:
        raise ValueError(
            f"--sequences auto needs at least two target cases to split, got {len(features)}"
        )
    weights = group_weights(features, options)
    ids, z = _standardized(features)
    scale = [weights[g] / math.sqrt(len(n)) for g, n in FEATURE_GROUPS.items() for _ in n]
    groups = _ward_split(z * np.asarray(scale))
    first = groups[ids.index(min(ids))]
    return {
        cid: CLUSTERS[0] if g == first else CLUSTERS[1] for cid, g in zip(ids, groups, strict=True)
    }


def case_features(cases: Sequence[Case], executor=None) -> dict[str, dict[str, float]]:
    """The appearance statistics of every case (through ``executor``), by case id."""
    from flare_uda.executor import get_executor

    images = [c.image for c in cases]
    values = get_executor(executor, progress=False).map(appearance_features, images)
    return {c.case_id: v for c, v in zip(cases, values, strict=True)}


def implausibility(label: Volume, mean_volumes: Mapping[int, float]) -> float:
    """Mean ``|log(volume / mean volume)|`` over the organs of ``mean_volumes`` (clipped ratios)."""
    counts = np.bincount(np.asarray(label.array, dtype=np.int64).ravel(), minlength=14)
    logs = [
        abs(math.log(np.clip(counts[o] * label.voxel_volume_mm3 / v, *PLAUSIBLE_RATIO)))
        for o, v in mean_volumes.items()
        if v > 0
    ]
    return float(np.mean(logs)) if logs else 0.0


def rank_clusters(
    clusters: Mapping[str, str],
    rounds: Sequence[Mapping[str, Volume]],
    mean_volumes: Mapping[int, float],
) -> dict[str, Any]:
    """Per-case and per-cluster stability and plausibility, the ranking and the choice (JSON)."""
    from flare_uda.pseudolabel.uncertainty import pseudo_label_uncertainty

    cases = {}
    for cid in clusters:
        labels = [r[cid] for r in rounds]
        cases[cid] = {
            "cluster": clusters[cid],
            "uncertainty": pseudo_label_uncertainty([lab.array for lab in labels]),
            "implausibility": implausibility(labels[-1], mean_volumes),
            "empty": not labels[-1].array.any(),
        }
    table = {}
    for name in sorted(set(clusters.values())):
        mine = [v for v in cases.values() if v["cluster"] == name]
        table[name] = {
            "cases": sorted(c for c, v in cases.items() if v["cluster"] == name),
            "uncertainty": float(np.median([v["uncertainty"] for v in mine])),
            "implausibility": float(np.median([v["implausibility"] for v in mine])),
        }
    for key in ("uncertainty", "implausibility"):
        order = sorted(table, key=lambda n, k=key: (table[n][k], n))
        for rank, name in enumerate(order, start=1):
            table[name][f"{key}_rank"] = rank
    order = sorted(
        table,
        key=lambda n: (
            table[n]["uncertainty_rank"] + table[n]["implausibility_rank"],
            table[n]["uncertainty"],
            table[n]["implausibility"],
            n,
        ),
    )
    return {
        "clusters": table,
        "cases": cases,
        "better": order[0],
        "worse": order[-1],
        "all_empty": all(v["empty"] for v in cases.values()),
    }


class WithLabels(Stage):
    """The cases of ``cases`` carrying the labels of ``labels`` (not cached: a join)."""

    cached = False

    def __init__(self, name: str, cases: Stage, labels: Stage) -> None:
        self.name, self.upstream = name, (cases, labels)

    def run(self, runner: Runner, folder: Path | None, cases: Any, labels: dict) -> list[Case]:
        return with_labels(cases_of(cases), labels)


class RankSubDomains(Stage):
    """Rank the target's ``auto`` clusters (their cases' sequences) for MDM (module doc).

    Upstream: the labelled CT cases (organ volumes), the MR cases, and the
    pseudo-labels of two rounds (``Predict`` stages).
    """

    name = "subdomains"

    def __init__(self, ct: Stage, mr: Stage, first: Stage, second: Stage) -> None:
        self.upstream = (ct, mr, first, second)

    def describe(self) -> str:
        return "rank the appearance clusters by pseudo-label stability and plausibility"

    def run(self, runner: Runner, folder: Path, ct, mr, first, second) -> dict:
        from flare_uda._atomic import write_json
        from flare_uda.pseudolabel.filters import source_volume_stats

        clusters = {c.case_id: str(c.sequence) for c in cases_of(mr)}
        ranking = rank_clusters(clusters, [first, second], source_volume_stats(cases_of(ct)))
        write_json(folder / "ranking.json", ranking)
        return ranking

    def load(self, runner: Runner, folder: Path) -> dict:
        import json

        return json.loads((folder / "ranking.json").read_text(encoding="utf-8"))

    def info(self, result: dict) -> dict:
        return {"better": result["better"], "worse": result["worse"]}
