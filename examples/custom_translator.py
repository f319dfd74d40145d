"""A user translator: CT -> MR by histogram (quantile) matching, used by the pipeline.

The translator is a plug-in (flare_uda.plugin): its options are a frozen
dataclass, it is registered once, and the pipeline's YAML names it and sets
its options; the whole config is checked before any stage runs.

Run: .venv/bin/python examples/custom_translator.py [--preset tiny] [--out runs/custom_translator]
"""

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flare_uda.pipeline import UDAConfig, get_preset
from flare_uda.pipeline.demo import run_demo
from flare_uda.translation import TRANSLATORS, Translator


@dataclass(frozen=True)
class HistogramOptions:
    quantiles: int = 101  # points of the two intensity distributions that are matched

    def __post_init__(self) -> None:
        if self.quantiles < 2:
            raise ValueError(f"quantiles must be >= 2, got {self.quantiles}")


@TRANSLATORS.register("histogram")
class HistogramTranslator(Translator):
    """Map each domain's pooled intensity quantiles onto the other's (monotone, no learning)."""

    config_class = HistogramOptions

    def _fit(self, source, target) -> None:
        q = np.linspace(0.0, 1.0, self.config.quantiles)
        self.source_q_ = np.quantile(np.concatenate([v.array.ravel() for v in source]), q)
        self.target_q_ = np.quantile(np.concatenate([v.array.ravel() for v in target]), q)

    def _translate(self, volume, direction: str) -> np.ndarray:
        src, dst = (self.source_q_, self.target_q_)[:: 1 if direction == "to_target" else -1]
        return np.interp(volume.array, src, dst).astype(np.float32)

    def _save_state(self, directory) -> None:  # lets the pipeline's cache reload it
        np.savez(directory / "quantiles.npz", source=self.source_q_, target=self.target_q_)

    def _load_state(self, directory) -> None:
        q = np.load(directory / "quantiles.npz")
        self.source_q_, self.target_q_ = q["source"], q["target"]


CONFIG = """
# the method's translator slot (the "asit" setting) takes the user translator
translation: {name: histogram, options: {quantiles: 51}}
ablation: [only_ct, asit]
"""

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/custom_translator")
    parser.add_argument("--preset", default="tiny")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "custom.yaml").write_text(CONFIG)
    config = UDAConfig.from_yaml(Path(args.out) / "custom.yaml", base=get_preset(args.preset))
    _, report = run_demo(config, args.out)
    print(f"report: {report}")
