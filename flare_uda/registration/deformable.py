"""Deformable registration: the torch affine solver, then a smooth displacement on a control grid.

After the affine ``A`` (:func:`~flare_uda.registration.torch_affine.register_batch`),
the fixed -> moving map becomes ``T(p) = A (p + u(p))``
(:mod:`flare_uda.registration.warp`). ``u`` (mm, physical (z, y, x)
components) lives on a coarse control grid spanning the fixed image, at most
``grid_spacing_mm`` apart along every axis (so it is about isotropic in mm
whatever the voxels), and is interpolated trilinearly onto the voxels (a
first-order B-spline free-form deformation). It minimises the affine solver's
masked L2 data term plus ``smoothness`` times the bending energy of the
control displacements (in control-point units, :func:`bending_energy`), coarse to fine over the
feature pyramid, with L-BFGS.

Written by hand because neither MONAI nor torch ships an optimiser-based
(not learned) deformable registration; MONAI's ``Warp`` and ``DVF2DDF`` warp
with a field in voxel units of one grid, where ours maps between two grids of
different geometry, so sampling goes through ``grid_sample`` with the physical
maps of :mod:`flare_uda.registration.pyramid`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from flare_uda.registration.base import REGISTRARS
from flare_uda.registration.pyramid import (
    REVERSE,
    _level_factors,
    _norm_to_index,
    _pool,
    check_levels,
)
from flare_uda.registration.torch_affine import TorchAffineConfig, TorchAffineRegistrar
from flare_uda.volume import Volume

MIN_CONTROL_POINTS = 3  # second differences need 3 points per axis


def bending_energy(field: torch.Tensor) -> torch.Tensor:
    """Mean squared second differences of a ``"b c z y x"`` field (grid units), mixed ones twice.

    MONAI has ``BendingEnergyLoss`` with the same stencils, but MONAI 1.6 indexes
    tensors with lists there, which torch 2.13 deprecates (a warning on every
    call, and a change of meaning announced), so the few lines are here.
    """
    if min(field.shape[2:]) < MIN_CONTROL_POINTS:
        raise ValueError(f"expected >= 3 points per axis, got {tuple(field.shape[2:])}")
    total = field.new_zeros(())
    for a in (2, 3, 4):
        n = field.shape[a]
        pure = field.narrow(a, 2, n - 2) - 2 * field.narrow(a, 1, n - 2) + field.narrow(a, 0, n - 2)
        total = total + (pure**2).mean()
    for a, b in ((2, 3), (2, 4), (3, 4)):
        total = total + 2 * (field.diff(dim=a).diff(dim=b) ** 2).mean()
    return total


def control_shape(fixed: Volume, grid_spacing_mm: float) -> tuple[int, int, int]:
    """Control points per axis: at most ``grid_spacing_mm`` apart over the fixed extent, >= 3."""
    extent = (np.asarray(fixed.shape) - 1) * np.asarray(fixed.spacing)
    n = np.ceil(extent / grid_spacing_mm).astype(int) + 1
    return tuple(int(max(MIN_CONTROL_POINTS, k)) for k in n)


def control_coords(shape, factors, full_shape) -> torch.Tensor:
    """Where each voxel of a grid pooled by ``factors`` from ``full_shape`` sits in the control
    grid, in ``grid_sample`` coordinates (``"1 z y x 3"``, x y z order, ``align_corners=True``):
    the control grid's corners are the full grid's corner voxels."""
    axes = []
    for n, f, size in zip(shape, factors, full_shape, strict=True):
        centre = torch.arange(n, dtype=torch.float64) * f + (f - 1) / 2  # full-resolution index
        axes.append(2 * centre / max(size - 1, 1) - 1)
    z, y, x = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([x, y, z], -1)[None].float()


def dense_field(control: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """The displacement ``"1 3 z y x"`` at ``coords`` (:func:`control_coords`), trilinear."""
    return F.grid_sample(
        control, coords, mode="bilinear", padding_mode="border", align_corners=True
    )


@dataclass
class _Level:
    """One pyramid level: pooled images, the affine-only sampling grid and the field's map."""

    mov: torch.Tensor  # "1 c z y x"
    fix: torch.Tensor
    base: torch.Tensor  # "1 z y x 3": moving grid coordinates (x y z) of A p
    linear: torch.Tensor  # "3 3": mm displacement (z y x) -> moving grid coordinates (x y z)
    coords: torch.Tensor  # "1 z y x 3": the level's voxels in the control grid


def _level(mov, fix, a_m, a_f, matrix, level: int, device) -> _Level:
    """Pool both feature maps for pyramid ``level``; the sampling grid of ``matrix`` there."""
    spacing_m = torch.linalg.norm(a_m[:3, :3], dim=0).numpy()
    spacing_f = torch.linalg.norm(a_f[:3, :3], dim=0).numpy()
    f_fix = _level_factors(tuple(fix.shape[2:]), spacing_f, level)
    mov_l, am_l = _pool(mov, a_m[None], _level_factors(tuple(mov.shape[2:]), spacing_m, level))
    fix_l, af_l = _pool(fix, a_f[None], f_fix)
    to_grid = REVERSE @ torch.linalg.inv(am_l[0] @ _norm_to_index(tuple(mov_l.shape[2:])))
    shape = tuple(fix_l.shape[2:])
    idx = torch.meshgrid(*(torch.arange(n, dtype=torch.float64) for n in shape), indexing="ij")
    points = torch.stack([*idx, torch.ones_like(idx[0])], -1)  # "z y x 4"
    base = (points @ (to_grid @ matrix @ af_l[0]).T)[None, ..., :3]
    coords = control_coords(shape, f_fix, tuple(fix.shape[2:]))
    linear = (to_grid @ matrix)[:3, :3]
    return _Level(mov_l, fix_l, *(t.float().to(device) for t in (base, linear, coords)))


def _data_term(level: _Level, control: torch.Tensor) -> torch.Tensor:
    """Masked MSE of the moving features pulled through ``A (p + u(p))`` (as the affine solver)."""
    u = dense_field(control, level.coords)  # "1 3 z y x", mm
    grid = level.base + torch.einsum("ij,bjzyx->bzyxi", level.linear, u)
    warped = F.grid_sample(level.mov, grid, mode="bilinear", align_corners=True)
    inside = (grid.abs() <= 1).all(-1, keepdim=True).movedim(-1, 1).to(warped.dtype)
    sq = ((warped - level.fix) ** 2 * inside).sum()
    return sq / (inside.sum() * warped.shape[1]).clamp(min=1)


def register_deformable(
    moving: np.ndarray,
    fixed: np.ndarray,
    moving_affine: np.ndarray,
    fixed_affine: np.ndarray,
    matrix: np.ndarray,
    control: tuple[int, int, int],
    shrink_factors: tuple[int, ...] = (4, 2, 1),
    iterations: tuple[int, ...] = (30, 30, 20),
    smoothness: float = 0.1,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """The displacement ``"3 z y x"`` (mm, on the fixed grid) after the affine ``matrix``.

    Parameters
    ----------
    moving, fixed : np.ndarray, "c z y x"
        Features of each volume on its own grid (same channels).
    moving_affine, fixed_affine : np.ndarray, shape (4, 4)
        Index (z, y, x) -> physical (mm) matrices (``Volume.affine``).
    matrix : np.ndarray, shape (4, 4)
        The affine, fixed physical -> moving physical.
    control : 3 ints
        Control points per axis (:func:`control_shape`).
    shrink_factors, iterations : tuple of int
        Pyramid levels (multiples of the finest spacing), coarse to fine, and the
        L-BFGS ``max_iter`` of each.
    smoothness : float
        Weight of the bending energy of the control displacements.
    device : str or torch.device
        Where to compute.
    """
    check_levels(tuple(shrink_factors), tuple(iterations), "field")
    mov = torch.as_tensor(moving, dtype=torch.float32, device=device)[None]
    fix = torch.as_tensor(fixed, dtype=torch.float32, device=device)[None]
    if mov.ndim != 5 or fix.ndim != 5 or mov.shape[1] != fix.shape[1]:
        raise ValueError(
            f"expected moving and fixed features 'c z y x' with equal c, got "
            f"{tuple(moving.shape)} and {tuple(fixed.shape)}"
        )
    a_m, a_f, a = (
        torch.as_tensor(np.asarray(m), dtype=torch.float64)
        for m in (moving_affine, fixed_affine, matrix)
    )
    # the control displacements in control-point units, so the bending energy has no scale
    step = (
        torch.tensor(
            [float(n - 1) / max(c - 1, 1) for n, c in zip(fixed.shape[1:], control, strict=True)]
        )
        * torch.linalg.norm(a_f[:3, :3], dim=0).float()
    )
    step = step.to(device)
    params = torch.zeros(1, 3, *control, device=device, requires_grad=True)

    def mm(p: torch.Tensor) -> torch.Tensor:
        return p * step.view(1, 3, 1, 1, 1)

    for level_size, n_iter in zip(shrink_factors, iterations, strict=True):
        if n_iter == 0:
            continue
        level = _level(mov, fix, a_m, a_f, a, level_size, device)
        opt = torch.optim.LBFGS(
            [params], lr=1.0, max_iter=n_iter, history_size=20, line_search_fn="strong_wolfe"
        )

        def closure(level=level, opt=opt) -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            loss = _data_term(level, mm(params)) + smoothness * bending_energy(params)
            loss.backward()
            return loss

        opt.step(closure)
    with torch.no_grad():
        shape = tuple(fixed.shape[1:])
        u = dense_field(mm(params), control_coords(shape, (1, 1, 1), shape).to(device))
    return u[0].cpu().numpy().astype(np.float32)


@dataclass(frozen=True)
class DeformableConfig(TorchAffineConfig):
    """Options of :class:`DeformableRegistrar`: the torch affine's, then the field's.

    Parameters
    ----------
    grid_spacing_mm : float
        Largest distance between control points of the displacement (mm).
    deform_shrink_factors, deform_iterations : tuple of int
        The field's pyramid (multiples of the finest spacing) and L-BFGS
        iterations per level. The default ends at full resolution, which images
        need (on phantom images a pyramid ending at 2 left 0.8 mm of error
        where (4, 2, 1) left 0.2 mm; docs/benchmarks.md); blurred label
        channels do as well with ``(4, 2)`` at a third of the time.
    smoothness : float
        Weight of the bending energy (0: none).
    """

    grid_spacing_mm: float = 20.0
    deform_shrink_factors: tuple[int, ...] = (4, 2, 1)
    deform_iterations: tuple[int, ...] = (30, 30, 20)
    smoothness: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.grid_spacing_mm > 0:
            raise ValueError(f"grid_spacing_mm must be > 0, got {self.grid_spacing_mm}")
        check_levels(self.deform_shrink_factors, self.deform_iterations, "deform")
        if not self.smoothness >= 0:
            raise ValueError(f"smoothness must be >= 0, got {self.smoothness}")


@REGISTRARS.register("deformable")
class DeformableRegistrar(TorchAffineRegistrar):
    """The torch affine solver, then a smooth displacement (:func:`register_deformable`)."""

    config_class = DeformableConfig

    def deform(self, moving_features, moving, fixed_features, fixed, matrix) -> np.ndarray:
        cfg = self.config
        return register_deformable(
            moving_features,
            fixed_features,
            moving.affine,
            fixed.affine,
            matrix,
            control_shape(fixed, cfg.grid_spacing_mm),
            cfg.deform_shrink_factors,
            cfg.deform_iterations,
            cfg.smoothness,
            cfg.device,
        )
