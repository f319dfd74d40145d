"""Why each ablation row moves: the pseudo-labels a setting trained on, against the truth.

For every setting, the cases its final model trained on (the stage upstream of
its last ``Train``) are compared with the true labels of the MR adaptation
cases, which the pipeline strips before any stage sees them and keeps for
this diagnosis only (the phantom has them; real data may not). Per case:
the organs the label *holds* (annotated and present), the mean Dice of
those organs, and the mean Dice over all 13 organs with an organ not held
scoring 0. Settings trained on fake MR (CT labels) have no pseudo-labels to
diagnose. The ASIT pseudo-labels that MDM starts from get a row of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from flare_uda.pipeline.runner import Runner, Stage, walk
from flare_uda.volume import Case, Volume

ORGANS = tuple(range(1, 14))
MDM_INPUT = "mdm_input"
"""The diagnosis key of the pseudo-labels MDM starts from (the ASIT segmenter's)."""


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    denom = int(a.sum()) + int(b.sum())
    return 2.0 * float(np.logical_and(a, b).sum()) / denom if denom else 1.0


def case_diagnosis(label: Volume, annotated: Sequence[int], truth: Volume) -> dict[str, Any]:
    """``{"held": [organs], "dsc_held": mean Dice of those (None if none), "dsc_all": mean
    over the 13 organs, 0 for an organ not held}``."""
    if label.shape != truth.shape:
        raise ValueError(f"pseudo-label shape {label.shape} differs from the truth's {truth.shape}")
    present = set(np.unique(label.array).tolist())
    held = [o for o in ORGANS if o in annotated and o in present]
    scores = {o: _dice(label.array == o, truth.array == o) for o in held}
    return {
        "held": held,
        "dsc_held": float(np.mean(list(scores.values()))) if scores else None,
        "dsc_all": float(sum(scores.values()) / len(ORGANS)),
    }


def summarize_cases(
    labels: Mapping[str, tuple[Volume, Sequence[int]]], truth: Mapping[str, Volume]
) -> dict[str, Any] | None:
    """Mean and minimum organs held, mean Dice (held, all 13) over the cases with a truth;
    None when no case has one."""
    rows = {
        cid: case_diagnosis(lab, ann, truth[cid])
        for cid, (lab, ann) in labels.items()
        if cid in truth
    }
    if not rows:
        return None
    held = [len(r["held"]) for r in rows.values()]
    dsc_held = [r["dsc_held"] for r in rows.values() if r["dsc_held"] is not None]
    return {
        "cases": len(rows),
        "organs_mean": float(np.mean(held)),
        "organs_min": int(min(held)),
        "dsc_held": float(np.mean(dsc_held)) if dsc_held else None,
        "dsc_all": float(np.mean([r["dsc_all"] for r in rows.values()])),
        "per_case": rows,
    }


def training_cases(final: Stage) -> Stage | None:
    """The stage whose cases trained ``final``'s model (``Predict`` <- ``Train`` <- it)."""
    from flare_uda.pipeline.stages import Train

    model = final.upstream[0] if final.upstream else None
    return model.upstream[0] if isinstance(model, Train) else None


def _as_labels(result: Any) -> dict[str, tuple[Volume, Sequence[int]]]:
    """Labels with their annotated organs from a stage result (cases, or labels per case)."""
    from flare_uda.pipeline.stages import cases_of

    if isinstance(result, Mapping):  # a Predict stage: every organ it predicts counts
        return {cid: (lab, ORGANS) for cid, lab in result.items()}
    out = {}
    for c in cases_of(result):
        if isinstance(c, Case) and c.label is not None:
            out[c.case_id] = (c.label, c.annotated)
    return out


def diagnose(
    runner: Runner, finals: Mapping[str, Stage], truth: Mapping[str, Volume]
) -> dict[str, dict[str, Any]]:
    """Per setting that ran (and for :data:`MDM_INPUT`), :func:`summarize_cases` of its
    training labels against ``truth``. Only results the runner already holds are read."""
    from flare_uda.pipeline.adaptation import MDM

    out: dict[str, dict[str, Any]] = {}
    if not truth:
        return out
    for name, final in finals.items():
        stage = training_cases(final)
        if stage is None or not runner.has(stage):
            continue
        summary = summarize_cases(_as_labels(runner.get(stage)), truth)
        if summary is not None:
            out[name] = summary
    for stage in walk(finals.values()):
        if isinstance(stage, MDM) and runner.has(stage.upstream[1]):
            summary = summarize_cases(_as_labels(runner.get(stage.upstream[1])), truth)
            if summary is not None:
                out[MDM_INPUT] = summary
    return out
