"""Running a trained generator over a whole volume, on its exact grid.

2D: every axial slice goes through the generator in one piece (slices stacked
as a batch with einops), padded to a multiple of the downsampling factor and
cropped back. 3D: MONAI's sliding-window inference with Gaussian blending.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from monai.inferers import sliding_window_inference
from torch import nn


def _pad_to_multiple(x: torch.Tensor, factor: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Replicate-pad the spatial axes of ``"b c y x"`` up to multiples of ``factor``."""
    sizes = x.shape[2:]
    extra = [(-s) % factor for s in sizes]
    pad: list[int] = []
    for e in reversed(extra):  # F.pad wants the last axis first
        pad += [e // 2, e - e // 2]
    return (F.pad(x, pad, mode="replicate") if any(extra) else x), tuple(extra)


@torch.no_grad()
def translate_slices(
    generator: nn.Module, array: np.ndarray, factor: int, chunk: int = 16
) -> np.ndarray:
    """Apply a 2D generator to every axial slice of ``array``.

    Parameters
    ----------
    generator : nn.Module
        ``"b 1 y x" -> "b 1 y x"``; sizes must be multiples of ``factor``.
    array : np.ndarray, "z y x"
        Network-space image.
    factor : int
        ``2 ** n_downsampling``.
    chunk : int
        Slices per forward pass.

    Returns
    -------
    np.ndarray of float32, "z y x"
        Same shape as ``array``.
    """
    device = next(generator.parameters()).device
    volume = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    slices = rearrange(volume, "b c z y x -> (b z) c y x")
    out = []
    for start in range(0, slices.shape[0], chunk):
        x, extra = _pad_to_multiple(slices[start : start + chunk].to(device), factor)
        y = generator(x)
        (ey, ex), (h, w) = extra, y.shape[2:]
        out.append(y[:, :, ey // 2 : h - (ey - ey // 2), ex // 2 : w - (ex - ex // 2)].cpu())
    result = rearrange(torch.cat(out), "(b z) c y x -> b c z y x", b=1)
    return result[0, 0].numpy().astype(np.float32)


@torch.no_grad()
def translate_patches(
    generator: nn.Module, array: np.ndarray, patch_size: tuple[int, int, int], batch: int = 2
) -> np.ndarray:
    """Apply a 3D generator to ``array`` ("z y x") with Gaussian-blended sliding windows.

    Windows of ``patch_size`` overlap by half; a volume smaller than a window
    is padded by MONAI and cropped back. Returns float32 ``"z y x"``.
    """
    device = next(generator.parameters()).device
    volume = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    result = sliding_window_inference(
        volume.to(device),
        roi_size=patch_size,
        sw_batch_size=batch,
        predictor=generator,
        overlap=0.5,
        mode="gaussian",
        padding_mode="replicate",
    )
    return result[0, 0].cpu().numpy().astype(np.float32)
