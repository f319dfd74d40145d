"""The output head: summed window logits -> a label map (softmax argmax or the paper's sigmoid)."""

from __future__ import annotations

import math

import numpy as np
import torch

from flare_uda._validation import require_choice
from flare_uda.inference.segmenter import HEADS


def logits_to_labels(
    logits: torch.Tensor,
    head: str = "softmax",
    threshold: float = 0.5,
    weight: torch.Tensor | None = None,
    as_tensor: bool = False,
) -> np.ndarray | torch.Tensor:
    """Apply the output head to (summed or averaged) logits.

    Parameters
    ----------
    logits : torch.Tensor, "k z y x"
        Channel 0 is background.
    head : {"softmax", "sigmoid"}
        ``"softmax"``: argmax over all ``k`` channels. ``"sigmoid"`` (the paper):
        channel 0 is ignored; a voxel takes the organ ``1..k-1`` with the
        largest logit if its sigmoid exceeds ``threshold``, else 0.
    weight : torch.Tensor, "z y x", optional
        Window weight sums when ``logits`` are sums: the sigmoid test becomes
        ``sum > logit(threshold) * weight`` (no division needed).
    as_tensor : bool
        Return a uint8 tensor on the logits' device instead of a numpy array.

    Returns
    -------
    np.ndarray (or torch.Tensor) of uint8, "z y x"
    """
    require_choice(head, HEADS, "head")
    if logits.ndim != 4:
        raise ValueError(f"expected logits 'k z y x' (4D), got shape {tuple(logits.shape)}")
    if head == "softmax":
        labels = logits.argmax(0).to(torch.uint8)
        return labels if as_tensor else labels.cpu().numpy()
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    best, idx = logits[1:].float().max(0)
    cut = math.log(threshold / (1.0 - threshold))
    cut = cut * weight.float() if weight is not None else torch.full_like(best, cut)
    labels = torch.where(best > cut, idx + 1, torch.zeros_like(idx)).to(torch.uint8)
    return labels if as_tensor else labels.cpu().numpy()
