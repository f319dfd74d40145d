"""The CT atlas as a pipeline stage: fill the organs MR pseudo-labels lack from labelled CT.

:class:`CTAtlas` takes MR cases carrying pseudo-labels (e.g. the :class:`~flare_uda.pipeline.
adaptation.MDM` stage's) and the labelled CT cases, runs
:func:`~flare_uda.registration.ct_atlas.run_ct_atlas` through the runner's
executor and hands over the cases with their filled labels; each case's
``annotated`` organs are the trusted and filled ones (the others are unknown).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flare_uda.data.datasets import read_dataset, write_dataset
from flare_uda.pipeline.runner import Runner, Stage
from flare_uda.pipeline.stages import cases_of
from flare_uda.registration.ct_atlas import CTAtlasConfig, run_ct_atlas
from flare_uda.volume import Case


class CTAtlas(Stage):
    """MR cases of ``cases`` with the organs their pseudo-labels lack moved in from ``ct``."""

    name = "ct_atlas"

    def __init__(self, config: CTAtlasConfig, cases: Stage, ct: Stage) -> None:
        if not isinstance(config, CTAtlasConfig):
            raise TypeError(f"expected a CTAtlasConfig, got {type(config).__name__}")
        self.atlas = config
        self.upstream = (cases, ct)

    def config(self) -> Any:
        from flare_uda.options import to_plain

        return to_plain(self.atlas)

    def describe(self) -> str:
        return (
            f"fill missing organs from the {self.atlas.fusion.atlases} closest CT cases "
            f"({self.atlas.registrar.name})"
        )

    def run(self, runner: Runner, folder: Path, cases: Any, ct: Any) -> list[Case]:
        cases = cases_of(cases)
        results = run_ct_atlas(cases, cases_of(ct), self.atlas, executor=runner.executor)
        by_id = {r.case_id: r for r in results}
        out = [c.with_label(by_id[c.case_id].label, by_id[c.case_id].annotated) for c in cases]
        self.notes_ = {
            r.case_id: {
                "trusted": list(r.trusted),
                "filled": list(r.filled),
                "atlases": list(r.atlases),
                "gate": r.gate,
            }
            for r in results
        }
        write_dataset(out, folder / "cases", progress=False)  # the manifest keeps `annotated`
        return out

    def load(self, runner: Runner, folder: Path) -> list[Case]:
        return read_dataset(folder / "cases")

    def info(self, result: list[Case]) -> dict:
        return {"cases": getattr(self, "notes_", {})}
