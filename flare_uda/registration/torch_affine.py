"""Affine registration as a batched gradient solver on grids (torch, CPU or GPU).

The map is parametrised in *normalised physical* coordinates
``q = (p - c) / s`` (``p`` in mm, ``c`` the fixed centre of mass, ``s`` half
the fixed image's largest physical extent), so that the 3x3 part and the
translation are both of order 1 and Adam treats them alike, and so that
anisotropic voxels are handled in mm, not in index space. For each pyramid
level the physical map is converted into ``affine_grid``'s normalised grid
coordinates through each image's index -> physical matrix::

    theta = (A_m N_m)^-1  T  (A_f N_f)        ((z, y, x), then reversed to (x, y, z))

with ``N`` the [-1, 1] -> voxel index map of ``align_corners=True``. The loss
is the paper's L2 data term (MSE, no regulariser) over the fixed voxels that
map inside the moving image (as ITK's metric does). Written by hand because
neither MONAI nor torch ships a batched multi-resolution affine solver in
physical coordinates (MONAI's ``AffineTransform`` warps, it does not fit).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from flare_uda.registration.base import REGISTRARS, Registrar, RegistrarConfig
from flare_uda.registration.pyramid import Level, centre_of_mass, level_grids, normalised_frame
from flare_uda.volume import Volume

OPTIMIZERS = ("adam", "lbfgs")


def _check_inputs(moving, fixed, moving_affine, fixed_affine, device):
    """Features as float32 tensors on ``device`` and affines as ``"b 4 4"`` float64, checked."""
    mov = torch.as_tensor(moving, dtype=torch.float32, device=device)
    fix = torch.as_tensor(fixed, dtype=torch.float32, device=device)
    if mov.ndim != 5 or fix.ndim != 5 or mov.shape[:2] != fix.shape[:2]:
        raise ValueError(
            f"expected moving and fixed as 'b c z y x' with equal b and c, got "
            f"{tuple(mov.shape)} and {tuple(fix.shape)}"
        )
    if min(mov.shape[2:]) < 2 or min(fix.shape[2:]) < 2:
        raise ValueError(
            f"expected >= 2 voxels per axis, got {tuple(mov.shape)}, {tuple(fix.shape)}"
        )
    b = mov.shape[0]
    a_m = torch.as_tensor(np.asarray(moving_affine), dtype=torch.float64).reshape(-1, 4, 4)
    a_f = torch.as_tensor(np.asarray(fixed_affine), dtype=torch.float64).reshape(-1, 4, 4)
    if a_m.shape[0] != b or a_f.shape[0] != b:
        raise ValueError(f"expected {b} affines each, got {a_m.shape[0]} and {a_f.shape[0]}")
    return mov, fix, a_m.expand(b, 4, 4), a_f.expand(b, 4, 4)


def _matrix(d_m: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The normalised-frame affine ``"b 4 4"`` of the parameters (identity + d_m, t)."""
    b = d_m.shape[0]
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], device=d_m.device).expand(b, 1, 4)
    eye = torch.eye(3, device=d_m.device)
    return torch.cat([torch.cat([eye + d_m, t[..., None]], 2), bottom], 1)


def _loss(level: Level, d_m: torch.Tensor, t: torch.Tensor, opt=None) -> torch.Tensor:
    """The masked MSE of one level, back-propagated into ``d_m`` and ``t``."""
    if opt is not None:
        opt.zero_grad(set_to_none=True)
    theta = (level.left @ _matrix(d_m, t) @ level.right)[:, :3]
    if level.points is None:
        grid = F.affine_grid(theta, list(level.fix.shape), align_corners=True)
        target = level.fix
    else:  # the same grid at the sampled voxels only: "b 1 1 n 3"
        grid = torch.einsum("bij,nj->bni", theta, level.points[0])[:, None, None]
        target = level.points[1][:, :, None, None]
    warped = F.grid_sample(level.mov, grid, mode="bilinear", align_corners=True)
    # like ITK, score only fixed voxels that sample inside the moving image: zero
    # padding would otherwise pull the map towards cropped edges.
    inside = (grid.abs() <= 1).all(-1, keepdim=True).movedim(-1, 1).to(warped.dtype)
    sq = ((warped - target) ** 2 * inside).flatten(1).sum(1)
    loss = (sq / (inside.flatten(1).sum(1) * warped.shape[1]).clamp(min=1)).sum()
    loss.backward()
    return loss


def _optimise(level, params, n_iter: int, j: int, optimizer: str, lr: float, adam) -> None:
    """``n_iter`` L-BFGS iterations, or Adam steps at level ``j``'s decaying rate."""
    d_m, t = params
    if optimizer == "lbfgs":
        lbfgs = torch.optim.LBFGS(
            params,
            lr=1.0,
            max_iter=n_iter,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
        )
        lbfgs.step(partial(_loss, level, d_m, t, opt=lbfgs))
        return
    for i in range(n_iter):
        # level j starts at lr / 2**j and decays linearly to a tenth of that, so the
        # estimate settles instead of jittering at Adam's step size.
        for group in adam.param_groups:
            group["lr"] = lr * 0.5**j * (1 - 0.9 * i / max(1, n_iter - 1))
        _loss(level, d_m, t, opt=adam)
        adam.step()


def register_batch(
    moving: np.ndarray | torch.Tensor,
    fixed: np.ndarray | torch.Tensor,
    moving_affine: np.ndarray,
    fixed_affine: np.ndarray,
    *,
    shrink_factors: tuple[int, ...] = (4, 2, 1),
    iterations: tuple[int, ...] = (40, 20, 10),
    lr: float = 0.02,
    init: str = "com",
    device: str | torch.device = "cpu",
    optimizer: str = "lbfgs",
    sample_fraction: float = 1.0,
) -> np.ndarray:
    """Fit one affine per pair of a batch by Adam on the MSE, coarse to fine.

    Parameters
    ----------
    moving : array, shape "b c zm ym xm"
        Moving features (all pairs share one moving shape; pad otherwise).
    fixed : array, shape "b c zf yf xf"
        Fixed features, same channel count.
    moving_affine, fixed_affine : array, shape "b 4 4"
        Index (z, y, x) -> physical (mm) matrices, i.e. ``Volume.affine``.
    shrink_factors : tuple of int
        Pyramid levels, coarse to fine, in multiples of the finest spacing
        (per-axis pooling adapts to anisotropic voxels; the first pair's
        spacing sets the pooling of the whole batch).
    iterations : tuple of int
        Optimiser iterations per level (L-BFGS ``max_iter`` or Adam steps).
    lr : float
        Adam only: initial learning rate (normalised units; 0.01 ~ 1% of the half
        extent). Level ``j`` starts at ``lr / 2**j`` and decays linearly to a
        tenth of that.
    init : {"com", "identity"}
        Centre-of-mass alignment or the identity map.
    device : str or torch.device
        Where to compute ("cpu", "cuda", ...).
    optimizer : {"adam", "lbfgs"}
        Adam (``iterations`` = steps) or L-BFGS with a strong-Wolfe line
        search (``iterations`` = its ``max_iter``; one shared step per batch).
    sample_fraction : float
        In (0, 1]: the MSE over this random fraction of each level's fixed
        voxels (seeded per level; :mod:`~flare_uda.registration.points`), as
        ITK's metric sampling percentage. 1 uses every voxel.

    Returns
    -------
    np.ndarray, shape "b 4 4"
        Fixed physical -> moving physical maps (mm, z y x).
    """
    if len(shrink_factors) != len(iterations) or not shrink_factors:
        raise ValueError(
            f"expected one iteration count per level, got {len(iterations)} counts for "
            f"{len(shrink_factors)} levels"
        )
    if init not in ("com", "identity"):
        raise ValueError(f"init must be 'com' or 'identity', got {init!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {optimizer!r}")
    if not 0.0 < sample_fraction <= 1.0:
        raise ValueError(f"sample_fraction must be in (0, 1], got {sample_fraction}")
    mov, fix, a_m, a_f = _check_inputs(moving, fixed, moving_affine, fixed_affine, device)
    b = mov.shape[0]
    # Normalised physical frame q = (p - c_f) / s, shared by both spaces.
    frame, c_f = normalised_frame(fix, a_f)
    s = 1.0 / frame[:, 0, 0]
    t0 = (centre_of_mass(mov.cpu(), a_m) - c_f) / s[:, None] if init == "com" else torch.zeros(b, 3)
    d_m = torch.zeros(b, 3, 3, device=device, requires_grad=True)
    t = t0.to(torch.float32).to(device).clone().requires_grad_(True)
    adam = torch.optim.Adam([d_m, t], lr=lr)
    for j, (level, n_iter) in enumerate(zip(shrink_factors, iterations, strict=True)):
        if n_iter == 0:
            continue
        grids = level_grids(mov, fix, a_m, a_f, frame, level, j, sample_fraction, device)
        _optimise(grids, [d_m, t], n_iter, j, optimizer, lr, adam)
    with torch.no_grad():
        q = _matrix(d_m, t).cpu().double()
    return (torch.linalg.inv(frame) @ q @ frame).numpy()


@dataclass(frozen=True)
class TorchAffineConfig(RegistrarConfig):
    """Options of :class:`TorchAffineRegistrar`; see :func:`register_batch`."""

    shrink_factors: tuple[int, ...] = (4, 2, 1)
    iterations: tuple[int, ...] = (40, 20, 10)
    lr: float = 0.02
    init: str = "com"
    device: str = "cpu"
    optimizer: str = "lbfgs"
    sampling_percentage: float = 1.0  # a fraction, named as in the SimpleITK registrar

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.sampling_percentage <= 1.0:
            raise ValueError(
                f"sampling_percentage must be in (0, 1], got {self.sampling_percentage}"
            )
        if len(self.shrink_factors) != len(self.iterations) or not self.iterations:
            raise ValueError(
                f"expected one iteration count per level, got {self.iterations} for "
                f"{self.shrink_factors}"
            )
        if min(self.shrink_factors) < 1 or min(self.iterations) < 0:
            raise ValueError(f"expected shrink factors >= 1, got {self.shrink_factors}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.init not in ("com", "identity"):
            raise ValueError(f"init must be 'com' or 'identity', got {self.init!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")


@REGISTRARS.register("torch")
class TorchAffineRegistrar(Registrar):
    """Gradient-descent affine solver on grids (see :func:`register_batch`)."""

    config_class = TorchAffineConfig

    def estimate(
        self, moving_features: np.ndarray, moving: Volume, fixed_features: np.ndarray, fixed: Volume
    ) -> np.ndarray:
        cfg = self.config
        return register_batch(
            moving_features[None],
            fixed_features[None],
            moving.affine[None],
            fixed.affine[None],
            shrink_factors=cfg.shrink_factors,
            iterations=cfg.iterations,
            lr=cfg.lr,
            init=cfg.init,
            device=cfg.device,
            optimizer=cfg.optimizer,
            sample_fraction=cfg.sampling_percentage,
        )[0]
