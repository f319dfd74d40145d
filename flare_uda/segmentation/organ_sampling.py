"""Patch sampling aware of the organs the network still gets wrong.

nnU-Net centres a third of its patches on a voxel of a class drawn uniformly
among the classes present in the case. On a short budget that spends as many
patches on the liver, learned in a few hundred steps, as on an adrenal gland,
which needs thousands. :class:`AdaptiveClassWeights` keeps a running
(exponential moving average) hard Dice per class, measured on the training
batches the network has just seen, and weights each class's share of the
foreground centres by ``max(1 - dice, floor)``: classes the network already
segments well are still visited, those it misses are visited more.

The weights live in a shared-memory tensor, so batch workers in other
processes read the current values (with workers the batches then depend on
the timing of those reads; with none, as on the CPU, a run is reproducible).
"""

from __future__ import annotations

import numpy as np
import torch

from flare_uda.segmentation.rank_sums import across_ranks

CLASS_SAMPLINGS = ("uniform", "adaptive")


class AdaptiveClassWeights:
    """Running per-class Dice on training batches and the sampling weights it gives.

    Parameters
    ----------
    num_classes : int
        Output channels including background (channel 0 never sampled by weight).
    momentum : float
        EMA momentum of the Dice per class, in [0, 1).
    floor : float
        Smallest weight of a class, in (0, 1].
    """

    def __init__(self, num_classes: int, momentum: float = 0.9, floor: float = 0.05) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not 0.0 < floor <= 1.0:
            raise ValueError(f"floor must be in (0, 1], got {floor}")
        self.momentum, self.floor = float(momentum), float(floor)
        self.dice = torch.zeros(num_classes, dtype=torch.float64).share_memory_()

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Fold the hard Dice of one batch into the running Dice of each class it holds.

        Parameters
        ----------
        logits : torch.Tensor, "b k z y x"
            Full-resolution output of the training step.
        target : torch.Tensor, "b 1 z y x"
            Integer classes; negative values are ignored.
        """
        k = self.dice.numel()
        if logits.ndim != 5 or logits.shape[1] != k:
            raise ValueError(f"expected logits 'b {k} z y x', got shape {tuple(logits.shape)}")
        with torch.no_grad():
            t = target[:, 0]
            valid = t >= 0
            pred = logits.argmax(1)[valid]
            ref = t[valid].long()
            hits = ref[pred == ref]
            counts = [torch.bincount(v, minlength=k)[:k].double() for v in (hits, pred, ref)]
            # the global batch's counts under torchrun (rank_sums), else these
            tp, n_pred, n_ref = (across_ranks(c).cpu() for c in counts)
        present = n_ref > 0
        batch_dice = 2 * tp / (n_pred + n_ref).clamp_min(1)
        m = self.momentum
        self.dice[present] = m * self.dice[present] + (1 - m) * batch_dice[present]

    def weights(self) -> np.ndarray:
        """Sampling weight of each class, ``"k"``: ``max(1 - running Dice, floor)``."""
        return np.maximum(1.0 - self.dice.numpy(), self.floor)

    def state_dict(self) -> dict:
        """For checkpoints: the running Dice per class."""
        return {"dice": self.dice.tolist()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (same number of classes)."""
        dice = torch.as_tensor(state["dice"], dtype=torch.float64)
        if dice.shape != self.dice.shape:
            raise ValueError(
                f"expected running Dice of {self.dice.numel()} classes, got {dice.numel()}"
            )
        self.dice.copy_(dice)
