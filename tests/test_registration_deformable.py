"""Deformable registrars: a known smooth deformation recovered, the map convention, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flare_uda.registration import get_registrar
from flare_uda.registration.deformable import (
    DeformableConfig,
    bending_energy,
    control_shape,
    register_deformable,
)
from flare_uda.registration.demons import DemonsConfig
from flare_uda.registration.mdm import mean_dice
from flare_uda.registration.warp import (
    affine_plausibility,
    jacobian_determinant,
    mapped_points,
    require_displacement,
    resample_deformed,
)
from flare_uda.volume import Volume

SPACING = (4.0, 2.5, 2.5)
ORGANS = (  # centre offset (mm, z y x), radii (mm)
    ((0, -12, -14), (18, 16, 20)),
    ((4, 14, 16), (12, 10, 10)),
    ((-8, 12, -20), (10, 8, 8)),
    ((6, -16, 22), (10, 9, 8)),
)


def subject(shape=(16, 40, 40)) -> Volume:
    """Four ellipsoid organs (labels 1..4) on an anisotropic grid."""
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, SPACING, strict=True)]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    lab = np.zeros(shape, np.uint8)
    for k, (off, rad) in enumerate(ORGANS):
        m = sum(((g - o) / r) ** 2 for g, o, r in zip((z, y, x), off, rad, strict=True)) <= 1
        lab[m] = k + 1
    return Volume(lab, SPACING, (-20.0, 10.0, 5.0))


def smooth_field(reference: Volume, amplitude: float = 5.0) -> np.ndarray:
    """A smooth known displacement "3 z y x" (mm): sines over the field of view."""
    idx = np.stack(np.meshgrid(*(np.arange(n) for n in reference.shape), indexing="ij"), -1)
    p = reference.index_to_physical(idx)
    lo, hi = p.reshape(-1, 3).min(0), p.reshape(-1, 3).max(0)
    q = (p - lo) / (hi - lo)  # [0, 1] per axis
    u = np.zeros((3, *reference.shape), np.float32)
    u[2] = amplitude * np.sin(np.pi * q[..., 1]) * np.cos(np.pi * q[..., 0])
    u[1] = amplitude * np.sin(np.pi * q[..., 2])
    return u


@pytest.fixture(scope="module")
def deformed():
    """(moving label, fixed label, true field): fixed(p) = moving(p + u(p))."""
    moving = subject()
    true = smooth_field(moving)
    fixed = resample_deformed(moving, np.eye(4), true, moving, is_label=True)
    return moving, fixed, true


LABELS = {"features": "labels", "organs": (1, 2, 3, 4), "shrink_factors": (8, 4, 2)}


def _fit(name: str, moving: Volume, fixed: Volume, **options):
    reg = get_registrar(name, **LABELS, **options).fit(moving, fixed)
    dice = mean_dice(reg.transform(moving, is_label=True).array, fixed.array, (1, 2, 3, 4))
    return reg, dice


def _map_error(reg, fixed: Volume, true: np.ndarray) -> float:
    """RMS distance (mm) over the fixed organs between the found and the true map."""
    found = mapped_points(reg.matrix_, reg.displacement_, fixed)
    expected = mapped_points(np.eye(4), true, fixed)
    return float(np.sqrt(((found - expected) ** 2).sum(-1)[fixed.array > 0].mean()))


def test_deformable_recovers_a_known_smooth_deformation(deformed):
    moving, fixed, true = deformed
    before = mean_dice(moving.array, fixed.array, (1, 2, 3, 4))
    affine, affine_dice = _fit("torch", moving, fixed)
    reg, dice = _fit("deformable", moving, fixed, grid_spacing_mm=10.0, smoothness=0.01)
    assert affine.displacement_ is None and reg.displacement_.shape == (3, *fixed.shape)
    assert before < 0.85 and affine_dice < 0.9  # the affine alone cannot undo the sines
    assert dice > 0.94 and dice > affine_dice + 0.05
    error, affine_error = _map_error(reg, fixed, true), _map_error(affine, fixed, true)
    assert error < 0.7 and error < 0.75 * affine_error  # mm; the field amplitude is 5 mm
    assert jacobian_determinant(reg.displacement_, fixed.spacing).min() > 0  # no folding


def test_demons_recovers_the_deformation_too(deformed):
    moving, fixed, _ = deformed
    _, affine_dice = _fit("torch", moving, fixed)
    _, dice = _fit("demons", moving, fixed)
    assert dice > 0.9 and dice > affine_dice + 0.03


def test_a_zero_field_is_the_affine_registrar(deformed):
    moving, fixed, _ = deformed
    affine, _ = _fit("torch", moving, fixed)
    reg, _ = _fit("deformable", moving, fixed, deform_iterations=(0, 0, 0))
    np.testing.assert_allclose(reg.matrix_, affine.matrix_)
    assert not reg.displacement_.any()
    np.testing.assert_array_equal(
        reg.transform(moving, is_label=True).array, affine.transform(moving, is_label=True).array
    )


def test_the_map_is_affine_after_displacement():
    """T(p) = A (p + u(p)): a constant shift u then a scaling A, checked on one voxel."""
    arr = np.zeros((10, 20, 20), np.uint8)
    arr[3:6, 5:9, 5:9] = 1
    vol = Volume(arr, (2.0, 1.0, 1.0))
    scale = np.diag([1.0, 1.0, 2.0, 1.0])
    u = np.zeros((3, 10, 20, 20), np.float32)
    u[2] = 2.0
    out = resample_deformed(vol, scale, u, vol, is_label=True)
    xs = np.unique(np.argwhere(out.array == 1)[:, 2])
    np.testing.assert_array_equal(xs, [1, 2])  # 2 (x + 2) in [5, 8]; (2 x + 2 would give 2, 3)
    assert mapped_points(scale, u, vol)[0, 0, 1, 2] == pytest.approx(6.0)
    images = resample_deformed(vol.with_array(arr.astype(np.float32)), scale, None, vol)
    assert images.array.dtype == np.float32


def test_jacobian_of_a_linear_field_and_affine_plausibility():
    vol = subject((6, 8, 8))
    grad = np.array([[0.1, 0.0, 0.0], [0.0, -0.2, 0.05], [0.0, 0.0, 0.3]])
    p = mapped_points(np.eye(4), None, vol)
    u = np.moveaxis(p @ grad.T, -1, 0).astype(np.float32)
    np.testing.assert_allclose(
        jacobian_determinant(u, vol.spacing), np.linalg.det(np.eye(3) + grad), rtol=1e-5
    )
    stretch = np.diag([2.0, 1.0, 0.8, 1.0])
    assert affine_plausibility(stretch) == pytest.approx((2.0, 0.0))
    shear = np.eye(4)
    shear[1, 2] = 0.5
    scale, skew = affine_plausibility(shear)
    assert skew > 0.2 and scale > 1.2


def test_bending_energy_is_zero_for_linear_fields_only():
    z, y, x = torch.meshgrid(*(torch.arange(4.0),) * 3, indexing="ij")
    linear = torch.stack([z + 2 * y, x, 0.5 * z])[None]
    assert bending_energy(linear).item() == pytest.approx(0.0, abs=1e-10)
    assert bending_energy(linear**2).item() > 0.1
    assert control_shape(subject(), 15.0) == (5, 8, 8)  # 60 / 97.5 / 97.5 mm extents


def test_deformable_errors():
    vol = subject((6, 8, 8))
    with pytest.raises(ValueError, match=r"expected a displacement '3 z y x' = \(3, 6, 8, 8\)"):
        require_displacement(np.zeros((3, 6, 8, 7), np.float32), vol)
    with pytest.raises(ValueError, match="must hold finite floats"):
        require_displacement(np.full((3, 6, 8, 8), np.nan, np.float32), vol)
    with pytest.raises(ValueError, match="must hold finite floats"):
        require_displacement(np.zeros((3, 6, 8, 8), np.int16), vol)
    with pytest.raises(TypeError, match="expected Volumes"):
        resample_deformed(vol.array, np.eye(4), np.zeros((3, 6, 8, 8), np.float32), vol)
    with pytest.raises(ValueError, match="a label map must hold integers"):
        resample_deformed(
            vol.with_array(vol.array * 1.0), np.eye(4), np.zeros((3, 6, 8, 8)), vol, True
        )
    with pytest.raises(ValueError, match=r"expected a displacement '3 z y x', got shape \(2,"):
        jacobian_determinant(np.zeros((2, 6, 8, 8)), vol.spacing)
    with pytest.raises(ValueError, match=r"expected >= 2 voxels per axis, got \(1, 8, 8\)"):
        jacobian_determinant(np.zeros((3, 1, 8, 8)), vol.spacing)
    with pytest.raises(ValueError, match="expected >= 3 points per axis"):
        bending_energy(torch.zeros(1, 3, 2, 4, 4))
    with pytest.raises(ValueError, match="with equal c"):
        register_deformable(
            np.zeros((2, 6, 8, 8)), np.zeros((1, 6, 8, 8)), vol.affine, vol.affine, np.eye(4),
            (3, 3, 3),
        )  # fmt: skip
    with pytest.raises(ValueError, match="one field iteration count per level"):
        register_deformable(
            np.zeros((1, 6, 8, 8)), np.zeros((1, 6, 8, 8)), vol.affine, vol.affine, np.eye(4),
            (3, 3, 3), shrink_factors=(2,), iterations=(1, 1),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("config", "options", "message"),
    [
        (DeformableConfig, {"grid_spacing_mm": 0.0}, "grid_spacing_mm must be > 0"),
        (DeformableConfig, {"deform_iterations": (3,)}, "one deform iteration count per level"),
        (DeformableConfig, {"deform_shrink_factors": (0, 1, 1)}, "deform shrink factors >= 1"),
        (DeformableConfig, {"smoothness": -1.0}, "smoothness must be >= 0"),
        (DemonsConfig, {"demons_iterations": (3,)}, "one demons iteration count per level"),
        (DemonsConfig, {"demons_iterations": (3, -1)}, "demons shrink factors >= 1 and"),
        (DemonsConfig, {"field_sigma_mm": 0.0}, "field_sigma_mm must be > 0"),
    ],
)
def test_deformable_option_errors(config, options, message):
    with pytest.raises(ValueError, match=message):
        config(**options)
