"""Affine registration with SimpleITK's framework: the reference solver.

MeanSquares (the paper's L2 data term, no regulariser), an ``AffineTransform``
initialised by ``CenteredTransformInitializer`` (moments or geometry), a
multi-resolution pyramid, regular-step gradient descent or L-BFGS-B.
SimpleITK's registration takes scalar images only, so label channels are
collapsed into one smooth image: ``sum_c w_c * channel_c`` with ``w_c = (c + 1) / C``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from flare_uda._validation import require_choice
from flare_uda.data.io import to_sitk
from flare_uda.registration.affine import from_sitk_transform
from flare_uda.registration.base import REGISTRARS, Registrar, RegistrarConfig
from flare_uda.volume import Volume

OPTIMIZERS = ("gd", "lbfgsb")
INITIALIZERS = ("moments", "geometry")


@dataclass(frozen=True)
class SitkAffineConfig(RegistrarConfig):
    """Options of :class:`SitkAffineRegistrar` (and the feature options of the base).

    Parameters
    ----------
    shrink_factors, smoothing_sigmas : tuple
        Pyramid levels, coarse to fine; sigmas in voxels of each level.
    iterations : int
        Maximum optimiser iterations per level.
    optimizer : {"gd", "lbfgsb"}
        Regular-step gradient descent (physical-shift scales) or L-BFGS-B.
    initializer : {"moments", "geometry"}
    sampling_percentage : float
        Fraction of fixed voxels the metric samples (1.0: all).
    seed : int
    """

    shrink_factors: tuple[int, ...] = (4, 2, 1)
    smoothing_sigmas: tuple[float, ...] = (2.0, 1.0, 0.0)
    iterations: int = 200
    optimizer: str = "gd"
    initializer: str = "moments"
    sampling_percentage: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice(self.optimizer, OPTIMIZERS, "optimizer")
        require_choice(self.initializer, INITIALIZERS, "initializer")
        if len(self.shrink_factors) != len(self.smoothing_sigmas) or not self.shrink_factors:
            raise ValueError(
                f"expected as many smoothing sigmas as shrink factors, got "
                f"{len(self.smoothing_sigmas)} and {len(self.shrink_factors)}"
            )
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if not 0 < self.sampling_percentage <= 1:
            raise ValueError(
                f"sampling_percentage must be in (0, 1], got {self.sampling_percentage}"
            )


def _scalar_image(features: np.ndarray, volume: Volume) -> sitk.Image:
    weights = (np.arange(features.shape[0], dtype=np.float32) + 1) / features.shape[0]
    scalar = np.tensordot(weights, features, axes=1).astype(np.float32)
    return to_sitk(volume.with_array(scalar))


@REGISTRARS.register("sitk")
class SitkAffineRegistrar(Registrar):
    """SimpleITK ``ImageRegistrationMethod`` affine solver (see :class:`SitkAffineConfig`)."""

    config_class = SitkAffineConfig

    def estimate(
        self, moving_features: np.ndarray, moving: Volume, fixed_features: np.ndarray, fixed: Volume
    ) -> np.ndarray:
        cfg = self.config
        mov, fix = _scalar_image(moving_features, moving), _scalar_image(fixed_features, fixed)
        init_mode = (
            sitk.CenteredTransformInitializerFilter.MOMENTS
            if cfg.initializer == "moments"
            else sitk.CenteredTransformInitializerFilter.GEOMETRY
        )
        initial = sitk.CenteredTransformInitializer(fix, mov, sitk.AffineTransform(3), init_mode)
        reg = sitk.ImageRegistrationMethod()
        reg.SetMetricAsMeanSquares()
        if cfg.sampling_percentage < 1:
            reg.SetMetricSamplingStrategy(reg.RANDOM)
            reg.SetMetricSamplingPercentage(cfg.sampling_percentage, cfg.seed)
        reg.SetInterpolator(sitk.sitkLinear)
        if cfg.optimizer == "gd":
            reg.SetOptimizerAsRegularStepGradientDescent(
                learningRate=1.0,
                minStep=1e-4,
                numberOfIterations=cfg.iterations,
                relaxationFactor=0.5,
                gradientMagnitudeTolerance=1e-8,
            )
            reg.SetOptimizerScalesFromPhysicalShift()
        else:
            reg.SetOptimizerAsLBFGSB(numberOfIterations=cfg.iterations)
            reg.SetOptimizerScalesFromPhysicalShift()
        reg.SetShrinkFactorsPerLevel(list(cfg.shrink_factors))
        reg.SetSmoothingSigmasPerLevel(list(cfg.smoothing_sigmas))
        reg.SetInitialTransform(initial, inPlace=False)
        result = reg.Execute(fix, mov)
        return from_sitk_transform(result)
