"""Image resampling to a target spacing with torch, on the device the network runs on.

Same output grid as :func:`flare_uda.data.resampling.resample_volume` (nnU-Net's
shape, spacing and origin, :func:`~flare_uda.data.resampling.resampled_geometry`)
and the same separate-z rule, with other interpolation kernels:

============================  ==============================  ==============================
case                          nnU-Net (``resample_volume``)   here
============================  ==============================  ==============================
separate z (anisotropic)      per slice: cubic B-spline;      per slice: bicubic convolution
                              z: nearest (order 0)            (``F.interpolate``); z: nearest
full 3D                       cubic B-spline                  trilinear
============================  ==============================  ==============================

Why by hand: nnU-Net's resampler is scipy/skimage on the CPU, one slice at a
time; on a 100x400x400 MR it takes more than the whole sliding window on a GPU,
and an order of magnitude more than this module (docs/benchmarks.md, "Steps
around the network"). ``torch.nn.functional.interpolate`` runs where the
image already is, but torch has no tricubic mode and MONAI's ``Spacing`` goes
through the same kernels, so this module only maps nnU-Net's rule onto them.
The kernels differ from nnU-Net's splines by interpolation error only; what
that does to labels is measured in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from flare_uda._validation import as_triplet
from flare_uda.data.resampling import resampled_geometry, separate_z_axis
from flare_uda.volume import Volume


def resample_image_torch(
    image: Volume,
    spacing: Sequence[float] | float,
    device: torch.device | str = "cpu",
    data: torch.Tensor | None = None,
) -> tuple[torch.Tensor, Volume]:
    """``image`` at ``spacing``, as a float32 tensor on ``device``.

    Parameters
    ----------
    image : Volume
        Image, array "z y x" (any real dtype); with ``data``, only its
        geometry is used.
    spacing : 3 floats or float
        Target spacing (z, y, x) mm.
    device : torch.device or str
        Ignored with ``data`` (the result stays on ``data``'s device).
    data : torch.Tensor, "z y x", optional
        The image's values already as a tensor (e.g. normalised on the GPU);
        its shape must be ``image.shape``.

    Returns
    -------
    array : torch.Tensor, "z' y' x'" float32 on ``device``
        ``z' = round(z * spacing_z / target_z)`` etc. (nnU-Net's shape).
    grid : Volume
        The output grid (spacing, origin, direction) holding a zero-size
        placeholder array of ``uint8`` broadcast to the output shape; pass it
        to :meth:`Volume.with_array` to attach data.
    """
    if not isinstance(image, Volume):
        raise TypeError(f"image must be a Volume, got {type(image).__name__}")
    if data is None:
        if np.issubdtype(image.array.dtype, np.integer) or image.array.dtype == bool:
            raise TypeError(
                f"resample_image_torch resamples images; got a {image.array.dtype} array "
                "(resample label maps with resample_volume(..., is_label=True))"
            )
        x = torch.from_numpy(np.ascontiguousarray(image.array, dtype=np.float32)).to(device)
    elif not isinstance(data, torch.Tensor) or not data.is_floating_point():
        raise TypeError(f"data must be a floating-point torch.Tensor, got {_describe(data)}")
    elif tuple(data.shape) != image.shape:
        raise ValueError(f"data must have the image's shape {image.shape}, got {tuple(data.shape)}")
    else:
        x = data.float()
    target = as_triplet(spacing, "target spacing", positive=True)
    shape, new_spacing, origin = resampled_geometry(image, target)
    if shape != image.shape:
        axis = separate_z_axis(image.spacing, target)
        x = _interpolate(x, shape, axis)
    placeholder = np.broadcast_to(np.zeros((), dtype=np.uint8), shape)
    return x, Volume(placeholder, new_spacing, origin, image.direction.copy())


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor"
    return type(value).__name__


def _interpolate(x: torch.Tensor, shape: tuple[int, int, int], axis: int | None) -> torch.Tensor:
    """Resize "z y x" to ``shape``.

    With ``axis``: 2D bicubic per slice across it, then nearest along it;
    without: 3D trilinear.
    """
    if axis is None:
        out = F.interpolate(x[None, None], size=shape, mode="trilinear", align_corners=False)
        return out[0, 0]
    moved = x.movedim(axis, 0)  # slices along the low-resolution axis first
    in_plane = tuple(s for a, s in enumerate(shape) if a != axis)
    if tuple(moved.shape[1:]) != in_plane:
        moved = F.interpolate(moved[:, None], size=in_plane, mode="bicubic", align_corners=False)[
            :, 0
        ]
    if moved.shape[0] != shape[axis]:
        # nnU-Net: map_coordinates(order=0) at scale * (i + 0.5) - 0.5, i.e. "nearest-exact"
        n_in, n_out = moved.shape[0], shape[axis]
        idx = torch.floor((torch.arange(n_out, device=x.device) + 0.5) * (n_in / n_out))
        moved = moved[idx.clamp_(0, n_in - 1).long()]
    return moved.movedim(0, axis).contiguous()
