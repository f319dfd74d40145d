"""The pipeline's stages: inputs, translation, training, prediction, MDM, self-training.

Each wraps one part of the public API (``Translator.fit``, ``train_segmenter``,
an inferer, ``run_mdm``, ``run_self_training``) as a
:class:`~flare_uda.pipeline.runner.Stage`: chained by passing upstream stages
to the constructor, run and cached by a
:class:`~flare_uda.pipeline.runner.Runner`. Case lists are stored in nnU-Net
raw layout (:mod:`flare_uda.data.datasets`), models by their own
``save``/``load``, labels as NIfTI files. Per-case work goes through the
runner's executor with picklable callables (:class:`Predictor`).

>>> from flare_uda.pipeline.stages import Cases, Predict, Train, Translate
>>> # ct, mr, test: lists of Case; config: a UDAConfig
>>> translate = Translate(config.translation, Cases("ct", ct), Cases("mr", mr))  # doctest: +SKIP
>>> model = Train("train_asit", config.segmentation, translate)  # doctest: +SKIP
>>> labels = Runner("runs/x").get(Predict("asit", model, Cases("test", test),
...                               config.inference, space=translate))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from flare_uda.data.datasets import read_dataset, write_dataset
from flare_uda.data.io import read_label, write_volume
from flare_uda.pipeline.config import SegmentationConfig
from flare_uda.pipeline.runner import Runner, Stage
from flare_uda.plugin import PluginSpec
from flare_uda.volume import Case, Volume


class NoPseudoLabels(RuntimeError):
    """Every pseudo-label of a stage is empty: nothing to train the next stage on."""


def usable(cases: Sequence[Case], stage: str) -> list[Case]:
    """Cases whose label holds foreground; raises :class:`NoPseudoLabels` if none does.

    An empty pseudo-label says "no organ anywhere", which would teach a network
    to predict background; such cases are left out of training.
    """
    kept = [c for c in cases if c.label is not None and c.label.array.any()]
    if not cases:
        raise NoPseudoLabels(f"{stage}: no case left to train on (a filter kept none)")
    if not kept:
        raise NoPseudoLabels(
            f"{stage}: all {len(cases)} pseudo-labels are empty (the segmenter predicts no "
            "organ on any MR case); train the earlier stages longer"
        )
    return kept


def with_labels(cases: Sequence[Case], labels: dict[str, Volume]) -> list[Case]:
    """Cases carrying ``labels`` (all organs annotated); cases without one are dropped."""
    return [c.with_label(labels[c.case_id], range(1, 14)) for c in cases if c.case_id in labels]


def cases_of(result: Any) -> list[Case]:
    """The case list in an upstream result (a list of cases, or a :class:`Translated`)."""
    return list(result.cases if isinstance(result, Translated) else result)


def _units(iterations: int, batch: int, patch: Sequence[int]) -> float:
    return float(iterations * batch * np.prod(patch))


def training_length(config) -> str:
    """How long a training runs, in words: its steps, its wall-clock budget, or both."""
    budget = getattr(config, "time_budget_minutes", None)
    if budget is None:
        return f"{config.iterations} iterations"
    if config.iterations >= 1_000_000:  # a budget with no real step cap
        return f"for {budget:g} min"
    return f"{config.iterations} iterations, at most {budget:g} min"


def train_units(config) -> float:
    """Work of a training, for time estimates: iterations x batch size x patch voxels."""
    return _units(config.iterations, config.batch_size, config.patch_size)


class Cases(Stage):
    """The run's input cases (not cached: keyed by their ids, modalities and shapes).

    ``data`` is any JSON-able description of where they come from (e.g. the
    phantom's data section), part of the key.
    """

    cached = False

    def __init__(self, name: str, cases: Sequence[Case], data: Any = None) -> None:
        self.name, self.cases, self.data = name, list(cases), data

    def config(self) -> Any:
        ids = [(c.case_id, c.modality, c.sequence, list(c.image.shape)) for c in self.cases]
        return {"cases": ids, "data": self.data}

    def run(self, runner: Runner, folder: Path | None) -> list[Case]:
        return self.cases


@dataclass
class Translated:
    """A fitted translator and the fake target cases (source labels, source grids)."""

    translator: Any
    cases: list[Case]


class Translate(Stage):
    """Fit a translator plug-in on source and target cases; fake target cases of the source."""

    def __init__(self, translator: PluginSpec, source: Stage, target: Stage) -> None:
        self.spec, self.name = translator, f"translate_{translator.name}"
        self.upstream = (source, target)

    def config(self) -> Any:
        return {"translator": self.spec.to_dict()}

    def describe(self) -> str:
        return f"fit the {self.spec.name} translator, CT -> fake MR"

    def work(self) -> tuple[str, float] | None:
        opts = self.spec.options
        if not all(hasattr(opts, k) for k in ("iterations", "batch_size", "patch_size")):
            return None
        return "translate", _units(opts.iterations, opts.batch_size, opts.patch_size)

    def run(self, runner: Runner, folder: Path, source: Any, target: Any) -> Translated:
        translator = self.spec.build(
            work_dir=folder / "work", device=str(runner.device), progress=runner.progress
        )
        source, target = cases_of(source), cases_of(target)
        translator.fit(source, target).save(folder / "model")
        images = runner.executor.map(translator.to_target, [c.image for c in source], self.name)
        fake = [
            replace(c, image=image, modality="MR", sequence="fake")
            for c, image in zip(source, images, strict=True)
        ]
        write_dataset(fake, folder / "fake", progress=False)
        return Translated(translator, fake)

    def load(self, runner: Runner, folder: Path) -> Translated:
        translator = self.spec.plugin_class().load(folder / "model", device=str(runner.device))
        return Translated(translator, read_dataset(folder / "fake"))

    def info(self, result: Translated) -> dict:
        return {"translator": self.spec.name, "n_cases": len(result.cases)}


class Train(Stage):
    """Train a segmenter on the labelled cases of ``cases`` (a case list or a :class:`Translate`).

    ``drop_empty``: leave out cases with empty (pseudo-)labels, and raise
    :class:`NoPseudoLabels` when none is left. ``init``: a stage whose model
    gives the initial weights (a warm start, ``train_segmenter(init_from=...)``).
    """

    def __init__(
        self,
        name: str,
        section: SegmentationConfig,
        cases: Stage,
        drop_empty: bool = False,
        init: Stage | None = None,
    ) -> None:
        if not isinstance(section, SegmentationConfig):
            raise TypeError(f"expected a SegmentationConfig, got {type(section).__name__}")
        self.name, self.section, self.drop_empty = name, section, drop_empty
        self.train_config = section.train_config()
        self.upstream = (cases,) if init is None else (cases, init)

    def config(self) -> Any:
        return {"train": self.train_config.to_dict(), "drop_empty": self.drop_empty}

    def describe(self) -> str:
        return f"train a segmenter ({training_length(self.train_config)})"

    def work(self) -> tuple[str, float]:
        return "train", train_units(self.train_config)

    def max_seconds(self) -> float | None:
        budget = getattr(self.train_config, "time_budget_minutes", None)
        return None if budget is None else 60.0 * budget

    def run(self, runner: Runner, folder: Path, cases: Any, init: Any = None):
        return train_model(
            runner, folder, cases_of(cases), self.train_config, self.drop_empty, self.name, init
        )

    def load(self, runner: Runner, folder: Path):
        from flare_uda.segmentation import NetworkSegmenter

        return NetworkSegmenter.load(folder / "model", device=runner.device)


def train_model(
    runner: Runner,
    folder: Path,
    cases: list[Case],
    config,
    drop_empty: bool,
    what: str,
    init: Any = None,
):
    """Train (or resume) in ``folder/work`` and save to ``folder/model``; the segmenter.

    ``init``: initial weights (a segmenter, see ``train_segmenter``'s ``init_from``).
    With ``runner.train_processes`` > 1 the training runs under torchrun.
    """
    from flare_uda.segmentation import train_segmenter
    from flare_uda.segmentation.launch import launch_training

    if drop_empty:
        cases = usable(cases, what)
    if runner.train_processes > 1:  # torchrun on this machine, DDP
        n, work = runner.train_processes, folder / "work"
        segmenter = launch_training(cases, config, work, n, runner.device, init, runner.progress)
    else:
        segmenter = train_segmenter(
            cases,
            config,
            work_dir=folder / "work",
            progress=runner.progress,
            device=runner.device,
            init_from=init,
        )
    segmenter.save(folder / "model")
    return segmenter


class Predictor:
    """Picklable ``(segmenter, case) -> label``: the executor seam's per-case prediction.

    ``space`` maps a real image into the space the segmenter was trained in
    (e.g. ASIT's anatomy space, ``Translator.to_space``); ``None`` keeps it.
    """

    def __init__(self, inferer: PluginSpec, space: Callable[[Volume], Volume] | None = None):
        if not isinstance(inferer, PluginSpec) or inferer.kind != "inferer":
            raise TypeError(f"expected an inferer plug-in spec, got {inferer!r}")
        self.inferer, self.space = inferer.build(), space

    def __call__(self, segmenter: Any, case: Case) -> Volume:
        image = self.space(case.image) if self.space is not None else case.image
        return self.inferer(image, segmenter)


class Predict(Stage):
    """Label every case of ``cases`` with the model of ``model`` (``labels/{id}.nii.gz``).

    ``space``: a :class:`Translate` whose translator's ``to_space`` the images go through.
    """

    def __init__(
        self,
        name: str,
        model: Stage,
        cases: Stage,
        inferer: PluginSpec,
        space: Translate | None = None,
    ) -> None:
        self.name, self.inferer, self.space = f"predict_{name}", inferer, space
        self.upstream = (model, cases) if space is None else (model, cases, space)

    def config(self) -> Any:
        return {"inferer": self.inferer.to_dict()}

    def describe(self) -> str:
        return f"label cases with the {self.inferer.name} inferer"

    def run(self, runner: Runner, folder: Path, model, cases, space=None) -> dict[str, Volume]:
        to_space = space.translator.to_space if space is not None else None
        cases = cases_of(cases)
        one = partial(Predictor(self.inferer, to_space), model)
        labels = runner.executor.map(one, cases, desc=self.name)
        for case, label in zip(cases, labels, strict=True):
            write_volume(label, folder / "labels" / f"{case.case_id}.nii.gz", is_label=True)
        return {c.case_id: label for c, label in zip(cases, labels, strict=True)}

    def load(self, runner: Runner, folder: Path) -> dict[str, Volume]:
        files = sorted((folder / "labels").glob("*.nii.gz"))
        return {p.name.removesuffix(".nii.gz"): read_label(p) for p in files}

    def info(self, result: dict) -> dict:
        return {"n_cases": len(result)}
