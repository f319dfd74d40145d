"""A user registrar: align the feature centres of mass (translation only), used by MDM.

The registrar is a plug-in: its options extend RegistrarConfig (which MDM
reads: ``features``, ``organs``), it is registered once, and the YAML names it
and sets its options under ``mdm.registrar``.

Run: .venv/bin/python examples/custom_registrar.py [--preset tiny] [--out runs/custom_registrar]
"""

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flare_uda.pipeline import UDAConfig, get_preset
from flare_uda.pipeline.demo import run_demo
from flare_uda.registration import REGISTRARS, Registrar, RegistrarConfig


@dataclass(frozen=True)
class CentroidOptions(RegistrarConfig):
    max_shift_mm: float = 50.0  # larger shifts are clipped (a sanity bound)


@REGISTRARS.register("centroid")
class CentroidRegistrar(Registrar):
    """Shift the moving volume so that the feature centres of mass coincide."""

    config_class = CentroidOptions

    def estimate(self, moving_features, moving, fixed_features, fixed) -> np.ndarray:
        def centre_mm(features, volume):
            weight = features.sum(axis=0)  # "c z y x" -> "z y x"
            index = np.argwhere(weight > 0)
            centre = np.average(index, axis=0, weights=weight[weight > 0])
            return volume.index_to_physical(centre)

        shift = centre_mm(moving_features, moving) - centre_mm(fixed_features, fixed)
        matrix = np.eye(4)  # fixed physical (z, y, x) -> moving physical
        matrix[:3, 3] = np.clip(shift, -self.config.max_shift_mm, self.config.max_shift_mm)
        return matrix


CONFIG = """
mdm:
  registrar: {name: centroid, options: {max_shift_mm: 30.0}}
ablation: [asit_mdm]
"""

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/custom_registrar")
    parser.add_argument("--preset", default="tiny")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "custom.yaml").write_text(CONFIG)
    config = UDAConfig.from_yaml(Path(args.out) / "custom.yaml", base=get_preset(args.preset))
    _, report = run_demo(config, args.out)
    print(f"report: {report}")
