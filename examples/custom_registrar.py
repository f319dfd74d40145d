"""A user registrar: align the label centroids (translation only), used by MDM in a pipeline.

Run: .venv/bin/python examples/custom_registrar.py [--out runs/custom_registrar]
"""

import argparse

import numpy as np

from flare_uda.pipeline import get_preset
from flare_uda.pipeline.demo import run_demo
from flare_uda.registration import REGISTRARS, Registrar, RegistrarConfig


@REGISTRARS.register("centroid")
class CentroidRegistrar(Registrar):
    """Shift the moving volume so that the feature centres of mass coincide."""

    def __init__(self, **options) -> None:
        self.config = RegistrarConfig(**options)

    def estimate(self, moving_features, moving, fixed_features, fixed) -> np.ndarray:
        def centre_mm(features, volume):
            weight = features.sum(axis=0)  # "c z y x" -> "z y x"
            index = np.argwhere(weight > 0)
            centre = np.average(index, axis=0, weights=weight[weight > 0])
            return volume.index_to_physical(centre)

        matrix = np.eye(4)  # fixed physical (z, y, x) -> moving physical
        matrix[:3, 3] = centre_mm(moving_features, moving) - centre_mm(fixed_features, fixed)
        return matrix


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/custom_registrar")
    parser.add_argument("--preset", default="tiny")
    args = parser.parse_args()
    config = get_preset(args.preset)
    config = type(config).from_dict(
        {
            **config.to_dict(),
            "pseudolabel": {**config.to_dict()["pseudolabel"], "registrar": "centroid"},
            "ablation": ["asit_mdm"],
        }
    )
    _, report = run_demo(config, args.out)
    print(f"report: {report}")
