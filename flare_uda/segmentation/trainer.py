"""nnU-Net-style training of a :class:`NetworkSegmenter` on a list of cases.

SGD (Nesterov, momentum 0.99, weight decay 3e-5) or Adam, lr 0.01 with
nnU-Net's poly decay stepped per iteration (or by the elapsed fraction of a
wall-clock budget, :mod:`.schedule`), gradient norm clipped at 12,
deep-supervision weights ``1/2**i`` (lowest dropped, normalised), the marginal
partial-label loss (:mod:`.losses`), foreground oversampling (optionally
weighted towards poorly segmented organs, :mod:`.organ_sampling`) and nnU-Net's
augmentations. With a ``work_dir`` the run checkpoints and resumes
(:mod:`.checkpoint`); batches depend only on ``(seed, iteration)`` (and, with
adaptive class sampling, on the run so far), so a resumed step-count run
matches an uninterrupted one on CPU. bf16 autocast where the device has it
(:mod:`.precision`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from flare_uda._atomic import write_json
from flare_uda._device import resolve_device
from flare_uda.segmentation import distributed  # torchrun (issue #18): hooks marked "torchrun"
from flare_uda.segmentation.augment import build_transforms, initial_patch_size
from flare_uda.segmentation.base import SegmentationPlan
from flare_uda.segmentation.batches import batch_stream, default_workers
from flare_uda.segmentation.checkpoint import (
    FINAL,
    LATEST,
    data_fingerprint,
    load_checkpoint,
    load_initial_weights,
    save_checkpoint,
)
from flare_uda.segmentation.config import TrainConfig
from flare_uda.segmentation.data import check_training_cases, fit_preprocessor, prepare_cases
from flare_uda.segmentation.losses import deep_supervision_loss
from flare_uda.segmentation.network_segmenter import NetworkSegmenter
from flare_uda.segmentation.networks import build_network, deep_supervision_weights
from flare_uda.segmentation.organ_sampling import AdaptiveClassWeights
from flare_uda.segmentation.precision import autocast, resolve_precision
from flare_uda.segmentation.schedule import TrainingClock, build_optimizer, poly_lr
from flare_uda.segmentation.validation import validation_dice
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
        in_channels=1,
        normalization=scheme,
        intensity_stats=dict(pre.stats_) if scheme == "ct" else {},
        head=config.head,
        canonical=config.canonical,
    )
    return pre, plan


class _Run:
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
        net = build_network(config.network, self.topology, 1, config.num_classes)
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


def train_segmenter(
    cases: Sequence[Case],
    config: TrainConfig,
    work_dir: str | os.PathLike | None = None,
    val_cases: Sequence[Case] | None = None,
    progress: bool = True,
    device: str | torch.device = "auto",
    num_workers: int | None = None,
    init_from=None,
) -> NetworkSegmenter:
    """Train a U-Net on labelled ``cases`` and return it as a segmenter.

    Parameters
    ----------
    cases : list of Case
        Labelled training cases (FLARE labels; ``Case.annotated`` marks
        partial labels). All share one modality unless ``config.normalization``
        is explicit.
    config : TrainConfig
        E.g. :func:`~flare_uda.segmentation.config.get_preset` ``("quick")``.
    work_dir : path-like, optional
        Checkpoints, ``history.json`` and, at the end, the saved model
        (:meth:`NetworkSegmenter.load` reads it). Resumes when it holds a
        checkpoint made with the same configuration on the same data; a
        checkpoint of another configuration or other data is an error.
    val_cases : list of Case, optional
        Held-out labelled cases scored every ``config.val_every`` iterations
        (validation time does not count against a time budget).
    progress : bool
        tqdm bar with the running loss.
    device : str or torch.device
        ``"auto"``: CUDA when available, else the CPU.
    num_workers : int, optional
        Processes cutting and augmenting batches (:mod:`.batches`); default 0
        on the CPU, up to 8 spare cores on a GPU machine.
    init_from : NetworkSegmenter, model folder, state dict, optional
        Warm start: initial weights from a network of the same configuration
        (e.g. the previous stage's model); a mismatch is a ``ValueError``.

    Returns
    -------
    NetworkSegmenter
        In eval mode, on ``device``. ``segmenter.history_`` holds the loss per
        step, validation scores, time spent cutting batches and in network
        steps, the precision used and the number of steps done.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    check_training_cases(cases, config.num_classes)
    if val_cases is not None:
        check_training_cases(val_cases, config.num_classes, "val_cases")
    dev = resolve_device(device)
    ranks, dev = distributed.start(dev, config.batch_size)  # torchrun: join, this rank's device
    progress = progress and distributed.is_main(ranks)
    run = _Run(cases, config, work_dir, dev, init_from, ranks)
    train = prepare_cases(cases, run.pre, config.seed, progress)
    val = prepare_cases(val_cases, run.pre, config.seed, progress) if val_cases else []
    workers = default_workers(dev) if num_workers is None else num_workers
    n_out = run.topology.n_stages - 1 if config.network.deep_supervision else 1
    loss_weights = deep_supervision_weights(n_out).tolist() if n_out > 1 else None
    in_plane = config.network.spatial_dims == 2  # slice-wise nets: 2D augmentation
    crop = initial_patch_size(config.patch_size, config.augment, in_plane)
    transform = build_transforms(config.patch_size, config.augment, in_plane)
    history, clock = run.history, run.clock
    done = run.start
    if not clock.finished(done):
        batches = distributed.batches(  # torchrun: this rank's share of each batch
            ranks, train, config, crop, transform, run.start, config.iterations, run.class_weights
        )
        stream = batch_stream(batches, workers, pin_memory=dev.type == "cuda")
        with distributed.summing(ranks):  # torchrun: losses of the global batch
            done = _loop(run, stream, val, loss_weights, progress)
    run.network.eval()
    history["iterations_done"] = done
    run.segmenter.history_ = history
    if run.work is not None and distributed.is_main(ranks):  # torchrun: rank 0 writes
        run.checkpoint(FINAL, done)
        run.segmenter.save(run.work)
    distributed.barrier(ranks)  # torchrun: the others wait until it is written
    return run.segmenter


def _loop(run: _Run, stream, val, loss_weights, progress: bool) -> int:
    """The training loop; returns the number of steps done when it stops."""
    config, history, clock, dev = run.config, run.history, run.clock, run.device
    run.network.train()
    total = config.iterations if config.time_budget_minutes is None else None
    bar = tqdm(desc="training", disable=not progress, initial=run.start, total=total)
    done = run.start
    clock.pause()
    try:
        for it, x, y, mask in stream:
            x, y, mask = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True), mask.to(dev)
            t_batch = clock.tick()
            history["loss"].append(run.step(it, x, y, mask, loss_weights))
            t_step = clock.tick()
            history["seconds"]["step"] += t_step - t_batch
            done = it + 1
            postfix = {"loss": f"{np.mean(history['loss'][-10:]):.3f}"}
            finished = clock.finished(done)
            if val and (done % config.val_every == 0 or finished):
                score = validation_dice(run.segmenter, val)
                history["val"].append({"iteration": done, **score})
                postfix["val"] = f"{score['mean']:.3f}"
                run.network.train()
            if done % config.checkpoint_every == 0 or done % config.val_every == 0:
                run.checkpoint(LATEST, done)
            if config.time_budget_minutes is not None:
                postfix["min"] = f"{clock.elapsed / 60:.1f}/{config.time_budget_minutes:g}"
            bar.set_postfix(postfix)
            bar.update()
            clock.pause()  # validation and checkpoints do not count
            if finished:
                break
    finally:
        bar.close()
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    history["seconds"]["batch"] = clock.elapsed - history["seconds"]["step"]
    return done


class Trainer:
    """Thin class around :func:`train_segmenter` (scikit-learn style).

    Parameters
    ----------
    config : TrainConfig
    work_dir : path-like, optional
        Checkpoints and the saved model; resumes from it.
    progress : bool

    Attributes
    ----------
    segmenter_ : NetworkSegmenter
        Set by :meth:`fit`.
    history_ : dict
        Loss per iteration, validation DSC per epoch, seconds spent cutting and
        augmenting batches (``batch``) against network steps (``step``).
    """

    def __init__(
        self,
        config: TrainConfig,
        work_dir: str | os.PathLike | None = None,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.work_dir = work_dir
        self.progress = progress

    def fit(self, cases: Sequence[Case], val_cases: Sequence[Case] | None = None) -> Trainer:
        """Train on labelled ``cases``; returns self."""
        self.segmenter_ = train_segmenter(
            cases, self.config, self.work_dir, val_cases, self.progress
        )
        self.history_ = self.segmenter_.history_
        return self
