"""Scanner side of the phantom: grid placement, CT noise, MR bias field and Rician noise.

CT: one of three contrast phases, tissue texture, noise correlated in-plane
(a reconstruction kernel), integer HU clipped at -1024. MR: a smooth
multiplicative bias field, Rician noise (magnitude of complex Gaussian noise),
and an arbitrary global intensity scale; T2 gets more noise and a stronger
bias field than T1, so it is the harder sequence to segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from flare_uda.data.phantom.config import PhantomConfig
from flare_uda.data.phantom.intensity import CT_PHASES
from flare_uda.data.phantom.render import separable_field

# relative Rician noise level and bias-field strength (std of the log-field) per sequence
MR_NOISE = {"T1": 0.02, "T2": 0.06}
MR_BIAS = {"T1": 0.10, "T2": 0.20}
TEXTURE_SCALE = {"CT": 8.0, "MR": 0.03}


@dataclass(frozen=True)
class Acquisition:
    """Where and how one volume is sampled; all triplets (z, y, x)."""

    modality: str
    sequence: str | None
    phase: str | None
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    start: tuple[float, float, float]  # body-frame position of voxel (0, 0, 0), mm
    origin: tuple[float, float, float]  # physical (scanner) position of voxel (0, 0, 0), mm


def sample_acquisition(
    cfg: PhantomConfig, modality: str, sequence: str | None, rng: np.random.Generator
) -> Acquisition:
    """Draw spacing, field of view placement, origin and (CT) contrast phase."""
    if modality == "CT":
        shape, inplane, slab = cfg.ct_shape, cfg.ct_inplane, cfg.ct_slice
        centre = np.array([rng.normal(14, 6), rng.normal(4, 4), rng.normal(0, 4)])
        table = np.array([rng.uniform(-650, -350), rng.uniform(120, 200), rng.uniform(-15, 15)])
        phase = str(rng.choice(CT_PHASES, p=[0.2, 0.3, 0.5]))
    else:
        shape, inplane = cfg.mr_shape, cfg.mr_inplane
        slab = cfg.t1_slice if sequence == "T1" else cfg.t2_slice
        centre = np.array([rng.normal(22, 10), rng.normal(4, 6), rng.normal(0, 6)])
        table = np.array([rng.uniform(-100, 100), rng.uniform(-30, 30), rng.uniform(-10, 10)])
        phase = None
    dxy = rng.uniform(*inplane)
    spacing = np.array([rng.uniform(*slab), dxy, dxy])
    if modality == "CT" and cfg.ct_cover is not None:
        shape = (max(1, round(rng.uniform(*cfg.ct_cover) / spacing[0])), *shape[1:])
    start = centre - (np.asarray(shape) - 1) / 2 * spacing
    return Acquisition(
        modality,
        sequence,
        phase,
        tuple(int(s) for s in shape),
        tuple(float(s) for s in np.round(spacing, 4)),
        tuple(float(s) for s in start),
        tuple(float(s) for s in np.round(table + start, 3)),
    )


def _smooth_noise(rng: np.random.Generator, shape, sigma_vox) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox)
    return noise / max(float(noise.std()), 1e-6)


def _texture(mean: np.ndarray, amp: np.ndarray, acq: Acquisition, rng) -> np.ndarray:
    sigma = [max(0.5, 4.0 / s) for s in acq.spacing]  # ~4 mm grain
    return mean + amp * TEXTURE_SCALE[acq.modality] * _smooth_noise(rng, mean.shape, sigma)


def ct_image(mean: np.ndarray, amp: np.ndarray, acq: Acquisition, rng) -> np.ndarray:
    """CT in HU (int16) from the partial-volume mean, texture amplitude and noise."""
    img = _texture(mean, amp, acq, rng)
    sd = rng.uniform(8.0, 20.0)
    img = img + sd * _smooth_noise(rng, img.shape, (0.0, 0.6, 0.6))
    return np.clip(np.rint(img), -1024, 3071).astype(np.int16)


def mr_image(mean: np.ndarray, amp: np.ndarray, acq: Acquisition, rng) -> np.ndarray:
    """MR magnitude (float32) with bias field, Rician noise and an arbitrary scale."""
    img = _texture(mean, amp, acq, rng)
    axes = [
        np.arange(n) * s + s0 for n, s, s0 in zip(acq.shape, acq.spacing, acq.start, strict=True)
    ]
    coef = rng.normal(0.0, 1.0, (4, 4, 4))
    log_bias = separable_field(coef, axes, step=120.0, sigma=110.0)
    log_bias *= MR_BIAS[acq.sequence] / max(float(log_bias.std()), 1e-6)
    img = img * np.exp(log_bias)
    sd = MR_NOISE[acq.sequence]
    real = img + sd * rng.standard_normal(img.shape).astype(np.float32)
    imag = sd * rng.standard_normal(img.shape).astype(np.float32)
    scale = np.exp(rng.uniform(np.log(200.0), np.log(3000.0)))
    return (np.sqrt(real**2 + imag**2) * scale).astype(np.float32)
