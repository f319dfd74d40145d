"""The UDA pipeline: the ablation settings of a config, composed, run, evaluated.

:class:`UDAPipeline` only wires things: it turns the input cases into input
stages, asks each setting of ``config.ablation`` for its stage graph
(:mod:`flare_uda.pipeline.settings`), checks the whole plan before any work,
and lets a :class:`~flare_uda.pipeline.runner.Runner` compute the graphs
(shared stages once, finished ones from the cache, per-case work through the
configured executor). Every stage is cached under the run folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from flare_uda._atomic import write_json
from flare_uda._device import resolve_device
from flare_uda.metrics import MetricRow, evaluate_cases
from flare_uda.pipeline.config import UDAConfig
from flare_uda.pipeline.diagnosis import diagnose
from flare_uda.pipeline.runner import Runner, Stage, StageRecord
from flare_uda.pipeline.settings import SETTINGS, Inputs
from flare_uda.pipeline.stages import Cases, NoPseudoLabels, usable  # noqa: F401 (re-export)
from flare_uda.volume import Case, Volume


@dataclass
class UDAResult:
    """Predictions on the test cases and their metric rows, per setting.

    ``stages`` lists how every stage was obtained (ran or cached, wall time);
    ``notes`` holds settings that did not run (``"skipped"``) and stage facts
    (``"mdm"``, ``"self_training"``, ``"ct_atlas"``; the settings beyond the paper add
    ``"mdm_multi"``, ``"self_training_plf_organ"``, ``"self_training_atlas_plf"``); ``diagnosis``
    the pseudo-labels each setting trained on against the MR cases' true labels,
    when the MR adaptation cases came with labels
    (:mod:`flare_uda.pipeline.diagnosis`).
    """

    predictions: dict[str, dict[str, Volume]] = field(default_factory=dict)
    rows: dict[str, list[MetricRow]] = field(default_factory=dict)
    notes: dict[str, dict] = field(default_factory=dict)
    stages: list[StageRecord] = field(default_factory=list)
    diagnosis: dict[str, dict] = field(default_factory=dict)


class UDAPipeline:
    """Runs the method (and its ablation) from one :class:`UDAConfig`.

    Parameters
    ----------
    config : UDAConfig
    run_dir : path-like
        Stage caches, ``config.yaml`` and the report go here.
    progress : bool
        Progress bars and a log line per stage.
    device : str or torch.device
        Where networks train and run: ``"auto"`` (CUDA when available), ``"cpu"``,
        ``"cuda"``. Not part of the config: the same YAML runs anywhere, and
        cached stages are reused across devices.
    train_processes : int
        Processes (ranks) each training stage runs on: > 1 launches it with
        ``torchrun`` on this machine (one GPU per rank on CUDA). Not part of the
        config either: the model of a training stage is cached whatever trained it.
    """

    def __init__(
        self,
        config: UDAConfig,
        run_dir: str | os.PathLike,
        progress: bool = True,
        device: str = "auto",
        train_processes: int = 1,
    ):
        if not isinstance(config, UDAConfig):
            raise TypeError(f"config must be a UDAConfig, got {type(config).__name__}")
        self.device = resolve_device(device)
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.train_processes = train_processes

    def runner(self) -> Runner:
        """A runner on this run folder, device and the config's executor (whose progress
        bars, when it has a ``progress`` option, follow ``progress``)."""
        spec = self.config.executor
        quiet = (
            {} if self.progress or not hasattr(spec.options, "progress") else {"progress": False}
        )
        executor = spec.plugin_class()(spec.options, **quiet)
        return Runner(
            self.run_dir, self.device, executor, self.progress, train_processes=self.train_processes
        )

    def inputs(
        self, ct: list[Case], mr: list[Case], mr_test: list[Case], data: object = None
    ) -> Inputs:
        """The input stages (``data``: how the cases were made, part of their cache key)."""
        if not ct or not mr or not mr_test:
            raise ValueError(
                f"expected CT, MR and MR-test cases, got {len(ct)}, {len(mr)} and {len(mr_test)}"
            )
        missing = [c.case_id for c in list(ct) + list(mr_test) if c.label is None]
        if missing:
            raise ValueError(f"CT and MR-test cases need labels; these have none: {missing}")
        labelled = [c for c in mr if c.label is not None]
        return Inputs(
            ct=Cases("ct", ct, data),
            mr=Cases("mr", [c.with_label(None) for c in mr], data),
            mr_labelled=Cases("mr_labelled", labelled, data),
            test=Cases("mr_test", mr_test, data),
        )

    def settings(self, inputs: Inputs) -> dict[str, Stage]:
        """The final stage of every setting of ``config.ablation``."""
        return {name: SETTINGS.get(name)(self.config, inputs) for name in self.config.ablation}

    def run(
        self, ct: list[Case], mr: list[Case], mr_test: list[Case], data: object = None
    ) -> UDAResult:
        """Run every setting of ``config.ablation``; evaluate them on ``mr_test``.

        Parameters
        ----------
        ct : labelled CT cases (source)
        mr : MR cases used for adaptation; their labels, if any, are only used by ``oracle``
            and to diagnose the pseudo-labels (never by the adaptation itself)
        mr_test : labelled MR cases, held out, for evaluation only
        data : JSON-able, optional
            Where the cases come from (e.g. the phantom's data section), keyed with them.
        """
        inputs = self.inputs(ct, mr, mr_test, data)
        finals = self.settings(inputs)
        runner = self.runner()
        runner.plan(list(finals.values()))  # every stage is checked before any work
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config.to_yaml(self.run_dir / "config.yaml")
        truth = {c.case_id: c.label for c in mr if c.label is not None}
        result = self.execute(finals, runner, truth)
        self.evaluate(result, mr_test, runner)
        return result

    def execute(
        self, finals: dict[str, Stage], runner: Runner, truth: dict | None = None
    ) -> UDAResult:
        """Compute the final stage of each setting (a setting whose pseudo-labels are all
        empty is noted as skipped, not raised); the stage records and MDM/self-training facts.

        ``finals`` come from :meth:`settings` (or any stages yielding test-case labels);
        ``runner`` should have planned them (:meth:`Runner.plan`), so that every stage
        was checked before any work. ``truth`` (case id -> true label of adaptation MR
        cases, optional) diagnoses each setting's pseudo-labels.
        """
        result = UDAResult()
        for name, final in finals.items():
            try:
                result.predictions[name] = runner.get(final)
            except NoPseudoLabels as err:  # reported, never silent: see report.md
                result.notes.setdefault("skipped", {})[name] = str(err)
                runner.log(f"skipped {name}: {err}")
        result.diagnosis = diagnose(runner, finals, truth or {})
        if result.diagnosis:
            write_json(self.run_dir / "diagnosis.json", result.diagnosis)
        result.stages = runner.summary()
        for record in result.stages:
            noted = record.name.startswith(("mdm", "self_training", "ct_atlas"))
            if noted and record.status != "not run":
                result.notes[record.name] = runner.cache.folder(record.name, record.key).info()
        for name, notes in result.notes.items():
            if name.startswith("self_training"):  # self_training.json, self_training_plf_organ.json
                write_json(self.run_dir / f"{name}.json", notes)
        return result

    def evaluate(self, result: UDAResult, refs: list[Case], runner: Runner) -> None:
        """Score every setting's predictions of the labelled cases ``refs`` into ``result.rows``.

        Each reference is scored on the organs its label map annotates (partial
        real labels, e.g. CHAOS: liver, kidneys, spleen), so labels in several
        maps (CHAOS T2 beside a TotalSegmentator MR) are each scored in full.
        """
        groups: dict[tuple[int, ...], dict] = {}  # annotated organs -> {case: label}
        for c in refs:
            groups.setdefault(tuple(sorted(c.annotated)), {})[c.case_id] = c.label
        for name, preds in result.predictions.items():
            rows = []
            for organs, labels in groups.items():
                part, _ = evaluate_cases(preds, labels, executor=runner.executor, organs=organs)
                rows += part
            result.rows[name] = sorted(rows, key=lambda r: r.case)  # stable: organs stay in order
