"""The self-training loop: K rounds of train -> pseudo-label, then filter and ensemble.

Trainers and inferers are injected as callables, so the loop runs with any of
them::

    train_fn(cases_with_pseudo_labels: list[Case], round_index: int) -> segmenter
    predict_fn(segmenter, case: Case) -> label Volume on case.image's grid

Round ``k`` (1-based) trains on the labels of round ``k - 1`` (round 1 on the
labels the input cases carry, e.g. the MDM pseudo-labels) and writes every
case's new label to ``work_dir/round_{k}/{case_id}.nii.gz``. ``state.json``
records finished rounds, so a run killed at any point resumes at the first
unfinished round (a half-written round is redone: its model is lost).
Prediction is per case, through the executor seam.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from flare_uda._atomic import write_json
from flare_uda.data.io import read_label, write_volume
from flare_uda.data.labels import keep_organs
from flare_uda.executor import Executor, get_executor
from flare_uda.plugin import PluginSpec, plugin_field, resolve_plugin_fields
from flare_uda.pseudolabel.base import ALL_ORGANS, Ensembler, PseudoLabelFilter, get_ensembler
from flare_uda.pseudolabel.uncertainty import pseudo_label_uncertainty
from flare_uda.volume import Case, Volume

STATE_FILE = "state.json"


@dataclass(frozen=True)
class SelfTrainingConfig:
    """Options of self-training with pseudo-label filtering (the pipeline's ``self_training``).

    Parameters
    ----------
    rounds : int
        K >= 2 rounds (eq. 7 compares consecutive rounds).
    filter : plug-in spec or None
        A registered pseudo-label filter (default ``uncertainty``, keeping the
        75 % most certain cases); ``None`` keeps every case.
    ensembler : plug-in spec
        A registered ensembler fusing each kept case's K labels (default ``union``, the paper).
    """

    rounds: int = 2
    filter: PluginSpec | None = plugin_field("filter", "uncertainty", keep_fraction=0.75)
    ensembler: PluginSpec = plugin_field("ensembler", "union")

    def __post_init__(self) -> None:
        resolve_plugin_fields(self)
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 2:
            raise ValueError(
                f"rounds must be an int >= 2 (eq. 7 compares consecutive rounds), "
                f"got {self.rounds!r}"
            )


@dataclass(frozen=True)
class SelfTrainingResult:
    """What the loop produced.

    Attributes
    ----------
    history : dict case_id -> list of Path
        Label files of rounds 1..K per case.
    uncertainty : dict case_id -> float
        Eq. 7 over the K rounds.
    kept : list of str
        Case ids the filter kept (all when no filter).
    labels : dict case_id -> Volume
        The ensembled label of each kept case (also in ``work_dir/final``),
        holding only its trusted organs.
    organs : dict case_id -> tuple of int
        The organs the filter trusts in each kept case (every organ for a
        case-wise filter); the others are *unknown* there, not background.
    """

    history: dict[str, list[Path]]
    uncertainty: dict[str, float]
    kept: list[str]
    labels: dict[str, Volume]
    organs: dict[str, tuple[int, ...]] = field(default_factory=dict)


def _label_path(work_dir: Path, round_index: int, case_id: str) -> Path:
    return work_dir / f"round_{round_index}" / f"{case_id}.nii.gz"


def _load_label(path: Path, case: Case) -> Volume:
    """Read a stored label onto the case's exact grid (NIfTI stores geometry in float32)."""
    label = read_label(path)
    if label.shape != case.image.shape:
        raise ValueError(
            f"stored label {path} has shape {label.shape}, expected the image's {case.image.shape}"
        )
    return case.image.with_array(label.array)


def _load_history(history: dict[str, list[Path]], case: Case) -> tuple[list[Volume], float]:
    """One case's labels of every round and their eq. 7 uncertainty (per-case work)."""
    labels = [_load_label(p, case) for p in history[case.case_id]]
    return labels, pseudo_label_uncertainty(labels)


def _predict_one(predict_fn: Callable, segmenter: Any, out_dir: Path, case: Case) -> str:
    label = predict_fn(segmenter, case)
    if not isinstance(label, Volume):
        raise TypeError(f"predict_fn must return a label Volume, got {type(label).__name__}")
    if label.shape != case.image.shape:
        raise ValueError(
            f"predict_fn returned shape {label.shape} for case {case.case_id!r}, expected the "
            f"image's {case.image.shape}"
        )
    path = out_dir / f"{case.case_id}.nii.gz"
    write_volume(case.image.with_array(label.array), path, is_label=True)
    return str(path)


def _read_state(work_dir: Path, case_ids: list[str]) -> dict:
    path = work_dir / STATE_FILE
    if not path.exists():
        return {"case_ids": case_ids, "completed": []}
    state = json.loads(path.read_text())
    if state.get("case_ids") != case_ids:
        raise ValueError(
            f"{path} records a run on other cases: expected {case_ids[:5]}..., got "
            f"{state.get('case_ids', [])[:5]}...; use a fresh work_dir"
        )
    return state


def run_self_training(
    train_fn: Callable[[list[Case], int], Any],
    predict_fn: Callable[[Any, Case], Volume],
    cases: Sequence[Case],
    rounds: int,
    work_dir: str | os.PathLike,
    executor: str | Executor | None = None,
    label_filter: PseudoLabelFilter | None = None,
    ensembler: str | Ensembler = "union",
) -> SelfTrainingResult:
    """Run (or resume) ``rounds`` rounds of self-training, then filter and ensemble.

    Parameters
    ----------
    train_fn, predict_fn : callables
        See the module docstring. ``predict_fn`` must pickle for a process executor.
    cases : sequence of Case
        Target cases; ``Case.label`` holds the initial pseudo-label (or None).
    rounds : int
        K >= 2 (eq. 7 needs two rounds).
    work_dir : path-like
        Holds ``round_{k}/``, ``final/`` and ``state.json``.
    executor : str, Executor or None
        Per-case prediction engine (:func:`flare_uda.executor.get_executor`).
    label_filter : PseudoLabelFilter or None
        Selects trusted cases, and in each the trusted organs
        (:meth:`~flare_uda.pseudolabel.PseudoLabelFilter.select_organs`, given
        the cases' images), from the history; None keeps all. A filter that
        :attr:`~flare_uda.pseudolabel.PseudoLabelFilter.learns_from_source`
        must be fitted already.
    ensembler : str or Ensembler
        Fuses the K labels of each kept case (``"union"`` by default, the paper).
    """
    if int(rounds) != rounds or rounds < 2:
        raise ValueError(f"rounds must be an integer >= 2 (eq. 7 compares rounds), got {rounds}")
    cases = list(cases)
    if not cases:
        raise ValueError("expected at least one case, got none")
    ids = [c.case_id for c in cases]
    if len(set(ids)) != len(ids):
        raise ValueError(f"case ids must be unique, got duplicates in {ids}")
    if label_filter is not None and not isinstance(label_filter, PseudoLabelFilter):
        raise TypeError(
            f"label_filter must be a PseudoLabelFilter, got {type(label_filter).__name__}"
        )
    ens = get_ensembler(ensembler) if isinstance(ensembler, str) else ensembler
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    state = _read_state(work, ids)
    run = get_executor(executor)

    for k in range(1, int(rounds) + 1):
        if k in state["completed"]:
            continue
        if k == 1:
            train_cases = cases
        else:
            train_cases = [
                c.with_label(_load_label(_label_path(work, k - 1, c.case_id), c)) for c in cases
            ]
        segmenter = train_fn(train_cases, k)
        fn = partial(_predict_one, predict_fn, segmenter, work / f"round_{k}")
        run.map(fn, cases, desc=f"pseudo-labels round {k}")
        state["completed"] = sorted(set(state["completed"]) | {k})
        write_json(work / STATE_FILE, state)

    history = {
        c.case_id: [_label_path(work, k, c.case_id) for k in range(1, int(rounds) + 1)]
        for c in cases
    }
    summaries = run.map(partial(_load_history, history), cases, desc="uncertainty")
    loaded = {c.case_id: labs for c, (labs, _) in zip(cases, summaries, strict=True)}
    uncertainty = {c.case_id: u for c, (_, u) in zip(cases, summaries, strict=True)}
    organs = {cid: ALL_ORGANS for cid in ids}
    if label_filter is not None:
        organs = label_filter.select_organs(loaded, {c.case_id: c.image for c in cases})
    kept = list(organs)
    fused = {cid: only(ens(loaded[cid]), organs[cid]) for cid in kept}
    for cid, lab in fused.items():
        write_volume(lab, work / "final" / f"{cid}.nii.gz", is_label=True)
    state["final"] = {
        "rounds": int(rounds),
        "kept": kept,
        "uncertainty": uncertainty,
        "organs": {cid: list(o) for cid, o in organs.items()},
    }
    write_json(work / STATE_FILE, state)
    return SelfTrainingResult(history, uncertainty, kept, fused, organs)


def only(label: Volume, organs: tuple[int, ...]) -> Volume:
    """``label`` with every organ outside ``organs`` set to 0 (unknown once left out of
    ``Case.annotated``)."""
    if set(organs) >= set(ALL_ORGANS):
        return label
    return label.with_array(keep_organs(label.array, organs))
