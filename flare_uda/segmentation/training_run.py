"""One training run's state: network, optimiser, clock, history, checkpoints, the step.

Split from :mod:`.trainer` (which drives the loop) to keep each module to one
idea; :class:`TrainingRun` builds the network (optionally from earlier
weights), resumes from a checkpoint in ``work_dir``, and takes one optimiser
step at a time with the poly schedule of its wall-clock or step budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from flare_uda._atomic import write_json
from flare_uda.segmentation import distributed  # torchrun (issue #18): hooks marked "torchrun"
from flare_uda.segmentation.base import SegmentationPlan
from flare_uda.segmentation.checkpoint import (
    data_fingerprint,
    load_checkpoint,
    load_initial_weights,
    save_checkpoint,
)
from flare_uda.segmentation.config import TrainConfig
from flare_uda.segmentation.data import fit_preprocessor
from flare_uda.segmentation.losses import deep_supervision_loss
from flare_uda.segmentation.network_segmenter import NetworkSegmenter
from flare_uda.segmentation.networks import build_network
from flare_uda.segmentation.organ_sampling import AdaptiveClassWeights
from flare_uda.segmentation.precision import autocast, resolve_precision
from flare_uda.segmentation.schedule import TrainingClock, build_optimizer, poly_lr
from flare_uda.volume import Case

GRAD_CLIP = 12.0  # nnU-Net's clip_grad_norm_


def _as_float(outputs):
    """Network outputs (a tensor or the deep-supervision list) in float32 for the loss."""
    if isinstance(outputs, (list, tuple)):
        return [o.float() for o in outputs]
    return outputs.float()


def _plan_for(cases: Sequence[Case], config: TrainConfig):
    """The fitted preprocessor and the :class:`SegmentationPlan` of a run."""
    modalities = sorted({c.modality for c in cases})
    if config.normalization == "auto" and len(modalities) > 1:
        raise ValueError(
            f"normalization 'auto' needs one modality, got cases of {modalities}; set "
            f"config.normalization explicitly"
        )
    pre = fit_preprocessor(cases, config.spacing, config.normalization, config.canonical)
    scheme = pre.scheme_for(cases[0].modality)
    plan = SegmentationPlan(
        patch_size=config.patch_size,
        spacing=config.spacing,
        num_classes=config.num_classes,
        in_channels=2 * config.neighbour_slices + 1,  # one image with its neighbour slices
        normalization=scheme,
        intensity_stats=dict(pre.stats_) if scheme == "ct" else {},
        head=config.head,
        canonical=config.canonical,
        neighbour_slices=config.neighbour_slices,
    )
    return pre, plan


class TrainingRun:
    """The state of one training run: network, optimiser, clock, history, checkpoints."""

    def __init__(self, cases, config: TrainConfig, work_dir, device, init_from, ranks=None) -> None:
        self.config = config
        self.ranks = ranks  # torchrun: this process's ranks, None without torchrun
        self.device = device
        self.work = Path(work_dir) if work_dir is not None else None
        self.topology = config.network.topology(config.patch_size, config.spacing)
        self.pre, self.plan = _plan_for(cases, config)
        self.precision, self.precision_note = resolve_precision(config.precision, device)
        self.fingerprint = data_fingerprint(cases)
        torch.manual_seed(config.seed)
        net = build_network(
            config.network, self.topology, self.plan.in_channels, config.num_classes
        )
        if init_from is not None:
            load_initial_weights(net, init_from)
        if config.channels_last:
            net = net.to(memory_format=torch.channels_last_3d)
        self.network = net.to(device)
        self.model = distributed.wrap(self.network, ranks, device)  # torchrun: DDP, else network
        self.segmenter = NetworkSegmenter.from_network(
            self.network, self.plan, config.network, self.topology
        )
        self.optimizer = build_optimizer(self.network.parameters(), config)
        self.class_weights = (
            AdaptiveClassWeights(config.num_classes)
            if config.class_sampling == "adaptive"
            else None
        )
        self.history: dict = {
            "loss": [],
            "val": [],
            "seconds": {"batch": 0.0, "step": 0.0},
            "precision": self.precision_note,
        }
        self.start, elapsed = 0, 0.0
        state = self._resume_state()
        if state is not None:
            self.network.load_state_dict(state["network"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.history, self.start = state["history"], int(state["iteration"])
            elapsed = float(state.get("elapsed", 0.0))
            if self.class_weights is not None and "class_weights" in state:
                self.class_weights.load_state_dict(state["class_weights"])
        budget = config.time_budget_minutes
        self.clock = TrainingClock(
            config.iterations, None if budget is None else budget * 60, elapsed
        )
        self.clock = distributed.clock(self.clock, ranks)  # torchrun: rank 0's elapsed time

    def _resume_state(self) -> dict | None:
        if self.work is None:
            return None
        return load_checkpoint(self.work, self.config.to_dict(), self.fingerprint)

    def checkpoint(self, name: str, iteration: int) -> None:
        if self.work is None or not distributed.is_main(self.ranks):  # torchrun: rank 0 writes
            return
        state = {
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "iteration": iteration,
            "elapsed": self.clock.elapsed,
            "config": self.config.to_dict(),
            "plan": self.plan.to_dict(),
            "history": self.history,
            "data_fingerprint": self.fingerprint,
        }
        if self.class_weights is not None:
            state["class_weights"] = self.class_weights.state_dict()
        save_checkpoint(self.work / name, state)
        write_json(self.work / "history.json", self.history)

    def step(self, it: int, x, y, mask, loss_weights) -> float:
        """One optimiser step on a batch; returns the loss."""
        cfg = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = poly_lr(
                self.clock.progress(it), cfg.learning_rate, cfg.poly_exponent, cfg.warmup
            )
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.precision, self.device):
            outputs = self.model(x)
        outputs = _as_float(outputs)
        loss = deep_supervision_loss(outputs, y, mask, loss_weights, cfg.head)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} at iteration {it}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), GRAD_CLIP)
        self.optimizer.step()
        if self.class_weights is not None:
            full = outputs[0] if isinstance(outputs, list) else outputs
            self.class_weights.update(full.detach(), y)
        return float(loss.detach())
