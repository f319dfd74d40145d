"""A user translator: CT -> MR by histogram (quantile) matching, used in a pipeline.

Run: .venv/bin/python examples/custom_translator.py [--out runs/custom_translator]
"""

import argparse

import numpy as np

from flare_uda.pipeline import get_preset
from flare_uda.pipeline.demo import run_demo
from flare_uda.translation import TRANSLATORS, Translator

QUANTILES = np.linspace(0.0, 1.0, 101)


@TRANSLATORS.register("histogram")
class HistogramTranslator(Translator):
    """Map each domain's pooled intensity quantiles onto the other's (monotone, no learning)."""

    method = "histogram"

    def _fit(self, source, target) -> None:
        self.source_q_ = np.quantile(np.concatenate([v.array.ravel() for v in source]), QUANTILES)
        self.target_q_ = np.quantile(np.concatenate([v.array.ravel() for v in target]), QUANTILES)

    def _translate(self, volume, direction: str) -> np.ndarray:
        src, dst = (self.source_q_, self.target_q_)[:: 1 if direction == "to_target" else -1]
        return np.interp(volume.array, src, dst).astype(np.float32)

    def _save_state(self, directory) -> None:  # lets the pipeline's cache reload it
        np.savez(directory / "quantiles.npz", source=self.source_q_, target=self.target_q_)

    def _load_state(self, directory) -> None:
        q = np.load(directory / "quantiles.npz")
        self.source_q_, self.target_q_ = q["source"], q["target"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/custom_translator")
    parser.add_argument("--preset", default="tiny")
    args = parser.parse_args()
    base = get_preset(args.preset).to_dict()
    base["translation"]["method"] = "histogram"  # the method's translator slot ("asit" setting)
    base["ablation"] = ["only_ct", "asit"]
    _, report = run_demo(type(get_preset(args.preset)).from_dict(base), args.out)
    print(f"report: {report}")
