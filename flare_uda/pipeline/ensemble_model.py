"""The :class:`EnsembleModel` stage: the models of several training stages as one segmenter.

>>> from flare_uda.pipeline.ensemble_model import EnsembleModel
>>> # a, b: Train stages of one network shape (e.g. two seeds)
>>> model = EnsembleModel("synth", (a, b))  # doctest: +SKIP
>>> Predict("synth", model, test_cases, config.inference)  # doctest: +SKIP

Nothing is written: the stage only joins its members' models (each cached by
its own training stage) into an
:class:`~flare_uda.inference.ensemble_segmenter.EnsembleSegmenter`, so it is not
cached and its key is its members' keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flare_uda.inference.ensemble_segmenter import EnsembleSegmenter
from flare_uda.pipeline.runner import Runner, Stage


class EnsembleModel(Stage):
    """Mean probability of the models of ``members`` (stages that yield segmenters).

    Parameters
    ----------
    name : str
        Log name, prefixed ``ensemble_``.
    members : sequence of Stage
        At least two stages whose results are segmenters with one plan (e.g.
        :class:`~flare_uda.pipeline.stages.Train` stages with different seeds).

    Attributes
    ----------
    members : tuple of Stage
        The member stages; ``members[0]`` gives a warm start its weights (an
        ensemble has no single set of weights to start from).
    """

    cached = False

    def __init__(self, name: str, members: Sequence[Stage]) -> None:
        members = tuple(members)
        bad = [type(m).__name__ for m in members if not isinstance(m, Stage)]
        if bad:
            raise TypeError(f"ensemble members must be stages, got {bad}")
        if len(members) < 2:
            raise ValueError(
                f"an ensemble model needs at least 2 member stages, got {len(members)} "
                "(use the one stage itself)"
            )
        self.name, self.members, self.upstream = f"ensemble_{name}", members, members

    def config(self) -> Any:
        return {"members": len(self.members), "combine": "mean_probability"}

    def describe(self) -> str:
        return f"average the probabilities of {len(self.members)} networks"

    def run(self, runner: Runner, folder: Path | None, *models: Any) -> EnsembleSegmenter:
        return EnsembleSegmenter(models)


def warm_start_stage(model: Stage) -> Stage:
    """The stage whose weights a warm start from ``model`` takes: an ensemble's first member,
    else ``model`` itself."""
    return model.members[0] if isinstance(model, EnsembleModel) else model
