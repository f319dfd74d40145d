"""Stages 2 and 3 as pipeline stages: MDM, and self-training with pseudo-label filtering.

:class:`MDM` moves better-sequence pseudo-labels onto worse-sequence cases
(:func:`~flare_uda.registration.run_mdm`); :class:`SelfTraining` runs the K
rounds (:func:`~flare_uda.pseudolabel.run_self_training`), reusing the model
already trained on the MDM labels as round 1, and hands over the kept cases
with their fused labels. Both use the runner's executor for per-case work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flare_uda.data.datasets import read_dataset, write_dataset
from flare_uda.data.io import read_label
from flare_uda.pipeline.config import SegmentationConfig
from flare_uda.pipeline.runner import Runner, Stage
from flare_uda.pipeline.stages import (
    Cases,
    Predictor,
    cases_of,
    train_model,
    train_units,
    training_length,
    with_labels,
)
from flare_uda.plugin import PluginSpec
from flare_uda.pseudolabel import SelfTrainingConfig, run_self_training
from flare_uda.pseudolabel.self_training import STATE_FILE
from flare_uda.registration import MDMConfig, run_mdm
from flare_uda.volume import Case


class MDM(Stage):
    """Pseudo-labels of ``pseudo`` on ``cases``, worse-sequence labels replaced by moved ones."""

    name = "mdm"

    def __init__(self, config: MDMConfig, cases: Stage, pseudo: Stage, name: str = "mdm") -> None:
        if not isinstance(config, MDMConfig):
            raise TypeError(f"expected an MDMConfig, got {type(config).__name__}")
        self.name = name  # several MDM stages in one run (e.g. mdm_multi) need their own names
        self.mdm = config
        self.cases = cases
        self.upstream = (cases, pseudo)

    def config(self) -> Any:
        from flare_uda.options import to_plain

        return to_plain(self.mdm)

    def describe(self) -> str:
        return (
            f"match {self.mdm.worse} to {self.mdm.better} cases ({self.mdm.matcher.name}), "
            f"register ({self.mdm.registrar.name}), move labels"
        )

    def check(self) -> None:
        """Both sequences must be among the input cases (when they are known now)."""
        if not isinstance(self.cases, Cases):
            return
        found = sorted({str(c.sequence) for c in self.cases.cases})
        for what in ("better", "worse"):
            if getattr(self.mdm, what) not in found:
                raise ValueError(
                    f"mdm.{what} is {getattr(self.mdm, what)!r}, but no {self.cases.name} case "
                    f"has that sequence (found {found})"
                )

    def run(self, runner: Runner, folder: Path, cases: Any, pseudo: dict) -> list[Case]:
        cases = with_labels(cases_of(cases), pseudo)
        results = run_mdm(cases, self.mdm, executor=runner.executor)
        moved = {r.case_id: r.label for r in results if r.label is not None}
        self.notes_ = {
            r.case_id: {"matched": r.matched_id, "kept": r.label is not None} for r in results
        }
        out = [c.with_label(moved[c.case_id]) if c.case_id in moved else c for c in cases]
        write_dataset(out, folder / "cases", progress=False)
        return out

    def load(self, runner: Runner, folder: Path) -> list[Case]:
        return read_dataset(folder / "cases")

    def info(self, result: list[Case]) -> dict:
        return {"transfers": getattr(self, "notes_", {})}


class SelfTraining(Stage):
    """K rounds of train -> pseudo-label from the MDM labels; the kept cases, labels fused.

    Round 1's model is ``first_model`` (trained on the MDM labels with ``section``,
    as the ASIT + MDM setting's); rounds 2..K train with ``section`` in this
    stage's folder, from scratch (the paper) or, with ``warm_start``, from the
    previous round's weights. Predictions use ``inferer`` on the real images.
    """

    name = "self_training"

    def __init__(
        self,
        config: SelfTrainingConfig,
        cases: Stage,
        first_model: Stage,
        section: SegmentationConfig,
        inferer: PluginSpec,
        warm_start: bool = False,
        source: Stage | None = None,
        name: str = "self_training",
    ) -> None:
        if not isinstance(config, SelfTrainingConfig):
            raise TypeError(f"expected a SelfTrainingConfig, got {type(config).__name__}")
        self.name = name
        self.st, self.section, self.inferer = config, section, inferer
        self.warm_start = bool(warm_start)
        self.cases = cases
        self.upstream = (cases, first_model)
        if self.st.filter is not None and self.st.filter.build().learns_from_source:
            if source is None:
                raise ValueError(
                    f"the {self.st.filter.name!r} filter learns a prior from the labelled source "
                    "cases: pass source= (the CT cases stage)"
                )
            self.upstream = (cases, first_model, source)

    def config(self) -> Any:
        from flare_uda.options import to_plain

        return {
            **to_plain(self.st),
            "train": self.section.train_config().to_dict(),
            "inferer": self.inferer.to_dict(),
            **({"warm_start": True} if self.warm_start else {}),
        }

    def describe(self) -> str:
        length = training_length(self.section.train_config())
        return f"{self.st.rounds} self-training rounds ({length} each), filter and ensemble"

    def work(self) -> tuple[str, float]:
        c = self.section.train_config()
        return "train", (self.st.rounds - 1) * train_units(c)

    def max_seconds(self) -> float | None:
        budget = self.section.train_config().time_budget_minutes
        return None if budget is None else 60.0 * budget * (self.st.rounds - 1)

    def run(
        self, runner: Runner, folder: Path, cases: Any, first_model: Any, source: Any = None
    ) -> list[Case]:
        cases = cases_of(cases)
        label_filter = self.st.filter.build() if self.st.filter is not None else None
        if label_filter is not None and label_filter.learns_from_source:
            label_filter.fit(cases_of(source))
        config = self.section.train_config()

        previous = [first_model]

        def train_fn(train_cases: list[Case], round_index: int):
            if round_index == 1:  # round 1 trains on the MDM labels: that model exists
                return first_model
            where = folder / f"train_round{round_index}"
            init = previous[-1] if self.warm_start else None
            model = train_model(
                runner, where, train_cases, config, True, f"round {round_index}", init
            )
            previous.append(model)
            return model

        result = run_self_training(
            train_fn,
            Predictor(self.inferer),
            cases,
            rounds=self.st.rounds,
            work_dir=folder,
            executor=runner.executor,
            label_filter=label_filter,
            ensembler=self.st.ensembler.build(),
        )
        self.notes_ = {
            "uncertainty": result.uncertainty,
            "kept": result.kept,
            "organs": {cid: list(o) for cid, o in result.organs.items()},
        }
        return [
            c.with_label(result.labels[c.case_id], result.organs[c.case_id])
            for c in cases
            if c.case_id in result.labels
        ]

    def load(self, runner: Runner, folder: Path) -> list[Case]:
        labels = {p.name.removesuffix(".nii.gz"): p for p in (folder / "final").glob("*.nii.gz")}
        state = json.loads((folder / STATE_FILE).read_text()).get("final", {})
        organs = state.get("organs", {})  # caches older than organ-wise filters: every organ
        cases = cases_of(runner.get(self.cases))
        return [
            c.with_label(
                c.image.with_array(read_label(labels[c.case_id]).array),
                organs.get(c.case_id, range(1, 14)),
            )
            for c in cases
            if c.case_id in labels
        ]

    def info(self, result: list[Case]) -> dict:
        return getattr(self, "notes_", {})
