"""Deformable registration by SimpleITK's demons, after the torch affine solver.

The same affine as :class:`~flare_uda.registration.deformable.DeformableRegistrar`
(so the two deformable steps compare on equal footing), then ITK's fast
symmetric-forces demons (Vercauteren et al.) between the fixed features and
the moving features pulled through the affine, coarse to fine (``BinShrink``
levels, the field of one level initialising the next). Channels are collapsed
into one scalar image as in the SimpleITK affine registrar (demons compares
intensities). ITK's field ``D`` satisfies ``moving(A (p + D(p))) ~ fixed(p)``,
which is this package's displacement ``u`` (:mod:`flare_uda.registration.warp`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from flare_uda.data.io import to_sitk
from flare_uda.registration.affine import resample_affine
from flare_uda.registration.base import REGISTRARS
from flare_uda.registration.pyramid import _level_factors, check_levels
from flare_uda.registration.torch_affine import TorchAffineConfig, TorchAffineRegistrar
from flare_uda.volume import Volume


@dataclass(frozen=True)
class DemonsConfig(TorchAffineConfig):
    """Options of :class:`DemonsRegistrar`: the torch affine's, then the demons'.

    Parameters
    ----------
    demons_shrink_factors : tuple of int
        Levels, coarse to fine, in multiples of the finest spacing (per-axis
        ``BinShrink`` factors as the torch pyramid's).
    demons_iterations : tuple of int
        Demons iterations per level.
    field_sigma_mm : float
        Gaussian smoothing of the displacement after every iteration (mm,
        converted to ITK's per-axis voxel units at each level).
    """

    demons_shrink_factors: tuple[int, ...] = (4, 2)
    demons_iterations: tuple[int, ...] = (50, 50)
    field_sigma_mm: float = 6.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_levels(self.demons_shrink_factors, self.demons_iterations, "demons")
        if not self.field_sigma_mm > 0:
            raise ValueError(f"field_sigma_mm must be > 0, got {self.field_sigma_mm}")


def _scalar(features: np.ndarray, volume: Volume) -> sitk.Image:
    weights = (np.arange(features.shape[0], dtype=np.float32) + 1) / features.shape[0]
    return to_sitk(volume.with_array(np.tensordot(weights, features, axes=1).astype(np.float32)))


def _onto(field: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """A displacement field resampled (linearly, per component) onto ``reference``'s grid."""
    out = sitk.Resample(
        field, reference, sitk.Transform(), sitk.sitkLinear, 0.0, field.GetPixelID()
    )
    return sitk.Cast(out, sitk.sitkVectorFloat64)


@REGISTRARS.register("demons")
class DemonsRegistrar(TorchAffineRegistrar):
    """The torch affine solver, then SimpleITK's fast symmetric-forces demons."""

    config_class = DemonsConfig

    def deform(self, moving_features, moving, fixed_features, fixed, matrix) -> np.ndarray:
        cfg = self.config
        pulled = np.stack(
            [resample_affine(moving.with_array(ch), matrix, fixed).array for ch in moving_features]
        )
        fix_full, mov_full = _scalar(fixed_features, fixed), _scalar(pulled, fixed)
        field = None
        spacing = np.asarray(fixed.spacing)
        for level, n_iter in zip(cfg.demons_shrink_factors, cfg.demons_iterations, strict=True):
            factors = _level_factors(fixed.shape, spacing, level)[::-1]  # x y z for ITK
            fix, mov = (sitk.BinShrink(im, list(factors)) for im in (fix_full, mov_full))
            demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
            demons.SetNumberOfIterations(int(n_iter))
            demons.SetStandardDeviations([cfg.field_sigma_mm / s for s in fix.GetSpacing()])
            if field is None:
                field = demons.Execute(fix, mov)
            else:
                field = demons.Execute(fix, mov, _onto(field, fix))
        field = _onto(field, fix_full)
        vectors = sitk.GetArrayFromImage(field)  # "z y x 3", x y z components
        return np.moveaxis(vectors[..., ::-1], -1, 0).astype(np.float32)
