"""Cached stage runners: each wraps one stage's public API and its on-disk cache.

Every function takes a :class:`~flare_uda.pipeline.cache.Stage`; when the stage
is already done its outputs are read back instead of recomputed. Case lists are
stored in nnU-Net raw layout (:mod:`flare_uda.data.datasets`), models by their
own ``save``/``load``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from flare_uda.data.datasets import read_dataset, write_dataset
from flare_uda.data.io import read_label, write_volume
from flare_uda.executor import Executor, get_executor
from flare_uda.pipeline.cache import Stage
from flare_uda.pipeline.config import InferenceConfig
from flare_uda.segmentation import NetworkSegmenter, train_segmenter
from flare_uda.translation import Translator
from flare_uda.volume import Case, Volume


def cached_cases(stage: Stage, build: Callable[[], list[Case]], name: str = "cases") -> list[Case]:
    """Cases from ``stage.dir/name`` if the stage is done, else ``build()`` them and store."""
    folder = stage.dir / name
    if stage.done:
        return read_dataset(folder)
    cases = build()
    write_dataset(cases, folder, progress=False)
    return cases


def translate_cases(
    stage: Stage, translator: Translator, source: Sequence[Case], target: Sequence[Case]
) -> tuple[Translator, list[Case]]:
    """Fit ``translator`` on unpaired source/target cases; return it and the fake targets.

    Fake cases keep the source labels and grids, are marked ``MR`` (they stand
    for target-domain images) and keep the source ``annotated`` organs.
    """
    model_dir = stage.dir / "model"
    if stage.done:
        translator = type(translator).load(model_dir, device=translator.device)
        return translator, read_dataset(stage.dir / "fake")
    translator.fit(source, target)
    translator.save(model_dir)
    fake = [
        replace(c, image=translator.to_target(c.image), modality="MR", sequence="fake")
        for c in source
    ]
    write_dataset(fake, stage.dir / "fake", progress=False)
    stage.mark_done({"method": translator.name, "n_cases": len(fake)})
    return translator, fake


def train(
    stage: Stage, cases: Sequence[Case], config, progress: bool = True, device="cpu"
) -> NetworkSegmenter:
    """Train (or resume, or load) a segmenter on labelled ``cases`` in ``stage.dir``.

    ``device`` (a resolved ``torch.device`` or its name) is where it trains and
    where the returned segmenter lives.
    """
    model_dir = stage.dir / "model"
    if stage.done:
        return NetworkSegmenter.load(model_dir, device=device)
    segmenter = train_segmenter(
        cases, config, work_dir=stage.dir / "work", progress=progress, device=device
    )
    segmenter.save(model_dir)
    stage.mark_done({"n_cases": len(cases), "iterations": config.iterations})
    return segmenter


class Predictor:
    """Picklable ``(segmenter, case) -> label`` for the executor seam.

    ``space`` maps a real image into the space the segmenter was trained in
    (e.g. ASIT's anatomy space); ``None`` keeps the image.
    """

    def __init__(
        self,
        space: Callable[[Volume], Volume] | None = None,
        inference: InferenceConfig | None = None,
    ) -> None:
        if inference is not None and not isinstance(inference, InferenceConfig):
            raise TypeError(f"expected an InferenceConfig, got {type(inference).__name__}")
        self.space = space
        self.inference = inference or InferenceConfig()

    def __call__(self, segmenter: NetworkSegmenter, case: Case) -> Volume:
        image = self.space(case.image) if self.space is not None else case.image
        return self.inference.inferer()(image, segmenter)


def predict(
    stage: Stage,
    segmenter: NetworkSegmenter,
    cases: Sequence[Case],
    predictor: Predictor,
    executor: str | Executor | None = None,
) -> dict[str, Volume]:
    """Label every case (cached as ``stage.dir/labels/{id}.nii.gz``)."""
    folder = stage.dir / "labels"
    if stage.done:
        return {c.case_id: read_label(folder / f"{c.case_id}.nii.gz") for c in cases}

    def one(case: Case) -> Volume:
        return predictor(segmenter, case)

    labels = get_executor(executor, progress=True).map(one, cases, desc=f"predict {stage.name}")
    out = {}
    for case, label in zip(cases, labels, strict=True):
        write_volume(label, folder / f"{case.case_id}.nii.gz", is_label=True)
        out[case.case_id] = label
    stage.mark_done({"n_cases": len(cases)})
    return out


def with_labels(cases: Sequence[Case], labels: dict[str, Volume]) -> list[Case]:
    """Cases carrying ``labels`` (all organs annotated); cases without one are dropped."""
    return [c.with_label(labels[c.case_id], range(1, 14)) for c in cases if c.case_id in labels]
