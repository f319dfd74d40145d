"""Optimiser, learning-rate schedule and the training clock (steps or wall time).

nnU-Net decays the learning rate as ``lr0 * (1 - it / iterations) ** 0.9``
(``PolyLRScheduler``). A run with a wall-clock budget decays it by the elapsed
fraction of the budget instead, so "train for 10 minutes" ends at lr 0 just as
"train 1000 steps" does; the step count then depends on the machine, and the
run stops when the budget is spent. An optional linear warm-up ramps the rate
from 0 over the first ``warmup`` fraction of the run.
"""

from __future__ import annotations

import time

import torch

OPTIMIZERS = ("sgd", "adam", "adamw")


def build_optimizer(parameters, config) -> torch.optim.Optimizer:
    """The optimiser a :class:`~flare_uda.segmentation.config.TrainConfig` names.

    ``"sgd"``: SGD with Nesterov momentum (nnU-Net); ``"adam"``: Adam with L2
    weight decay; ``"adamw"``: AdamW (decoupled weight decay).
    """
    name = config.optimizer
    # foreach: one kernel per operation over all parameters; torch picks it only
    # on CUDA by default, and the per-tensor loop costs ~5 ms a CPU step here.
    if name == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=config.learning_rate,
            momentum=config.momentum,
            nesterov=True,
            weight_decay=config.weight_decay,
            foreach=True,
        )
    if name == "adam":
        return torch.optim.Adam(
            parameters, lr=config.learning_rate, weight_decay=config.weight_decay, foreach=True
        )
    if name == "adamw":
        return torch.optim.AdamW(
            parameters, lr=config.learning_rate, weight_decay=config.weight_decay, foreach=True
        )
    raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}")


def poly_lr(progress: float, base_lr: float, exponent: float, warmup: float = 0.0) -> float:
    """Learning rate at ``progress`` in [0, 1]: linear warm-up, then poly decay.

    >>> poly_lr(0.0, 0.01, 0.9)
    0.01
    >>> poly_lr(1.0, 0.01, 0.9)
    0.0
    >>> round(poly_lr(0.05, 0.01, 0.9, warmup=0.1), 6)
    0.005
    """
    p = min(max(float(progress), 0.0), 1.0)
    if warmup > 0 and p < warmup:
        return base_lr * p / warmup
    return base_lr * (1.0 - p) ** exponent


class TrainingClock:
    """Progress of a run by steps, or by wall time when a budget is set.

    Parameters
    ----------
    iterations : int
        The step count (with a budget: the most steps the run may take).
    budget_seconds : float or None
        Wall-clock budget of the training loop; ``None``: steps only.
    elapsed : float
        Seconds already spent (a resumed run carries them over).
    """

    def __init__(self, iterations: int, budget_seconds: float | None, elapsed: float = 0.0):
        self.iterations = int(iterations)
        self.budget = None if budget_seconds is None else float(budget_seconds)
        self.elapsed = float(elapsed)
        self._mark = time.perf_counter()

    def tick(self) -> float:
        """Add the wall time since the last tick (or creation) and return the total."""
        now = time.perf_counter()
        self.elapsed += now - self._mark
        self._mark = now
        return self.elapsed

    def pause(self) -> None:
        """Do not count the time until the next tick (validation, checkpoints)."""
        self._mark = time.perf_counter()

    def progress(self, iteration: int) -> float:
        """Fraction of the run done before ``iteration``, in [0, 1]."""
        by_steps = iteration / self.iterations
        if self.budget is None:
            return min(by_steps, 1.0)
        return min(max(by_steps, self.elapsed / self.budget), 1.0)

    def finished(self, done: int) -> bool:
        """True once ``done`` steps reach ``iterations`` or the budget is spent."""
        if done >= self.iterations:
            return True
        return self.budget is not None and self.elapsed >= self.budget
