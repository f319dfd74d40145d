"""Appearance randomisation: a random smooth intensity curve per training sample.

Written here because batchgeneratorsv2 (nnU-Net's augmentations) has gamma and
contrast changes of one shape only. A random look-up curve (a monotone or
non-monotone piecewise-linear map through ``knots`` random control points)
changes which tissues look bright and by how much, as a change of modality
does, so a network trained on one modality leans on shape and context rather
than on its intensities (the idea behind SynthSeg's random contrasts, applied
to images instead of label maps). The sample keeps its mean and standard
deviation.
"""

from __future__ import annotations

import torch
from batchgeneratorsv2.transforms.base.basic_transform import ImageOnlyTransform


class RandomCurveTransform(ImageOnlyTransform):
    """Map each channel through a random piecewise-linear curve on its [min, max] range.

    Parameters
    ----------
    knots : int
        Inner control points of the curve (>= 1); the curve's values at the
        ``knots + 2`` evenly spaced points are uniform in [0, 1].
    """

    def __init__(self, knots: int = 4) -> None:
        super().__init__()
        if isinstance(knots, bool) or not isinstance(knots, int) or knots < 1:
            raise ValueError(f"knots must be an int >= 1, got {knots!r}")
        self.knots = knots

    def get_parameters(self, **data_dict) -> dict:
        img: torch.Tensor = data_dict["image"]
        return {"values": torch.rand(img.shape[0], self.knots + 2, dtype=torch.float32)}

    def _apply_to_image(self, img: torch.Tensor, **params) -> torch.Tensor:
        """``img``: ``(c, *spatial)``; each channel mapped, its mean and std kept."""
        out = torch.empty_like(img)
        for c in range(img.shape[0]):
            out[c] = curve(img[c], params["values"][c])
        return out


def curve(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``x`` through the piecewise-linear curve with ``values`` at evenly spaced points
    of its own [min, max]; the result has the mean and std of ``x``."""
    lo, hi = x.min(), x.max()
    if not hi > lo:
        return x.clone()
    n = values.numel() - 1
    t = (x - lo) / (hi - lo) * n  # position on the curve, in [0, n]
    i = t.floor().clamp(max=n - 1).long()
    frac = (t - i).to(values.dtype)
    y = values[i] * (1 - frac) + values[i + 1] * frac
    std = y.std()
    if not std > 0:
        return x.clone()
    return ((y - y.mean()) / std * x.std() + x.mean()).to(x.dtype)
