"""Batch sums over the ranks of a torchrun launch (the hook the losses call).

The losses and the adaptive class weights pass the batch sums they are made
of through :func:`across_ranks`. Outside :func:`summing` (every run without
torchrun) it returns its argument; inside it (a training under torchrun, see
:mod:`flare_uda.segmentation.distributed`) it sums over the ranks, so each
rank computes the loss of the global batch. Kept apart from ``distributed``
so that the losses import nothing but torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.distributed as dist

_SUMMING: list[bool] = [False]


@contextlib.contextmanager
def summing(ranks: object | None) -> Iterator[None]:
    """While active, :func:`across_ranks` sums over the ranks; ``ranks``: this process's
    :class:`~flare_uda.segmentation.distributed.Ranks`, ``None`` outside torchrun (no sums)."""
    before = _SUMMING[0]
    _SUMMING[0] = ranks is not None
    try:
        yield
    finally:
        _SUMMING[0] = before


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) whose backward all-reduces the gradients (each rank's copy of
    the sum feeds every rank's summand)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def across_ranks(x: torch.Tensor) -> torch.Tensor:
    """``x`` summed over the ranks inside :func:`summing`, else ``x`` itself.

    Differentiable: the gradient reaching each rank's ``x`` is the sum of the
    ranks' gradients of the sum; with DDP's average over ranks, the parameters
    get the gradient of the global batch's loss.
    """
    if not _SUMMING[0]:
        return x
    if x.requires_grad:
        return _SumOverRanks.apply(x)
    out = x.detach().clone()
    dist.all_reduce(out)
    return out
