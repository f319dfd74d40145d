"""nnU-Net-style training of a :class:`NetworkSegmenter` on a list of cases.

SGD (Nesterov, momentum 0.99, weight decay 3e-5), lr 0.01 with nnunetv2's
``PolyLRScheduler`` (exponent 0.9) stepped per iteration, gradient norm clipped
at 12, deep-supervision weights ``1/2**i`` (lowest dropped, normalised), the
marginal partial-label loss (:mod:`~flare_uda.segmentation.losses`),
foreground oversampling and nnU-Net's augmentations. With a ``work_dir`` the
run checkpoints (``checkpoint_latest.pt`` every ``checkpoint_every`` steps and
at each validation, ``checkpoint_final.pt`` at the end, atomically) and
resumes from the latest checkpoint; batches depend only on ``(seed,
iteration)``, so a resumed run matches an uninterrupted one on CPU, with any
number of batch workers. On CUDA the network runs under bf16 autocast.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from flare_uda._atomic import atomic_path, write_json
from flare_uda._device import resolve_device
from flare_uda.segmentation.augment import build_transforms, initial_patch_size
from flare_uda.segmentation.base import SegmentationPlan
from flare_uda.segmentation.batches import BatchStream, batch_stream, default_workers
from flare_uda.segmentation.config import TrainConfig
from flare_uda.segmentation.data import (
    check_training_cases,
    fit_preprocessor,
    prepare_cases,
)
from flare_uda.segmentation.losses import deep_supervision_loss
from flare_uda.segmentation.network_segmenter import NetworkSegmenter
from flare_uda.segmentation.networks import (
    build_network,
    deep_supervision_weights,
    plan_topology,
)
from flare_uda.segmentation.validation import validation_dice
from flare_uda.volume import Case

LATEST, FINAL = "checkpoint_latest.pt", "checkpoint_final.pt"
# Fields that may change between a run and its resumption.
RESUMABLE = {"iterations", "val_every", "checkpoint_every"}
GRAD_CLIP = 12.0  # nnU-Net's clip_grad_norm_


def _as_float(outputs):
    """Network outputs (a tensor or the deep-supervision list) in float32 for the loss."""
    if isinstance(outputs, (list, tuple)):
        return [o.float() for o in outputs]
    return outputs.float()


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(work_dir: Path, config: TrainConfig) -> dict | None:
    path = work_dir / FINAL if (work_dir / FINAL).exists() else work_dir / LATEST
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    old = {k: v for k, v in state["config"].items() if k not in RESUMABLE}
    new = {k: v for k, v in config.to_dict().items() if k not in RESUMABLE}
    if old != new:
        diff = sorted(k for k in new if old.get(k) != new[k])
        raise ValueError(
            f"the checkpoint in {work_dir} was made with another configuration (differs in "
            f"{diff}); expected the same config to resume, or use a fresh work_dir"
        )
    return state


def train_segmenter(
    cases: Sequence[Case],
    config: TrainConfig,
    work_dir: str | os.PathLike | None = None,
    val_cases: Sequence[Case] | None = None,
    progress: bool = True,
    device: str | torch.device = "auto",
    num_workers: int | None = None,
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
        checkpoint made with the same configuration.
    val_cases : list of Case, optional
        Held-out labelled cases scored every ``config.val_every`` iterations.
    progress : bool
        tqdm bar with the running loss.
    device : str or torch.device
        ``"auto"``: CUDA when available, else the CPU.
    num_workers : int, optional
        Processes cutting and augmenting batches (:mod:`.batches`); default 0
        on the CPU, up to 8 spare cores on a GPU machine.

    Returns
    -------
    NetworkSegmenter
        In eval mode, on ``device``.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    check_training_cases(cases, config.num_classes)
    if val_cases is not None:
        check_training_cases(val_cases, config.num_classes, "val_cases")
    topology = plan_topology(config.patch_size, config.spacing, config.network.max_downsamplings)
    modalities = sorted({c.modality for c in cases})
    if config.normalization == "auto" and len(modalities) > 1:
        raise ValueError(
            f"normalization 'auto' needs one modality, got cases of {modalities}; set "
            f"config.normalization explicitly"
        )
    pre = fit_preprocessor(cases, config.spacing, config.normalization)
    scheme = pre.scheme_for(cases[0].modality)
    plan = SegmentationPlan(
        patch_size=config.patch_size,
        spacing=config.spacing,
        num_classes=config.num_classes,
        in_channels=1,
        normalization=scheme,
        intensity_stats=dict(pre.stats_) if scheme == "ct" else {},
        head=config.head,
    )
    train = prepare_cases(cases, pre, config.seed, progress)
    val = prepare_cases(val_cases, pre, config.seed, progress) if val_cases else []

    dev = resolve_device(device)
    workers = default_workers(dev) if num_workers is None else num_workers
    torch.manual_seed(config.seed)
    network = build_network(config.network, topology, 1, config.num_classes).to(dev)
    segmenter = NetworkSegmenter.from_network(network, plan, config.network, topology)
    if config.optimizer == "adam":
        optimizer = torch.optim.Adam(
            network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.SGD(
            network.parameters(),
            lr=config.learning_rate,
            momentum=config.momentum,
            nesterov=True,
            weight_decay=config.weight_decay,
        )
    from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler

    scheduler = PolyLRScheduler(
        optimizer, config.learning_rate, config.iterations, config.poly_exponent
    )
    history: dict = {"loss": [], "val": [], "seconds": {"batch": 0.0, "step": 0.0}}
    start = 0
    work = Path(work_dir) if work_dir is not None else None
    if work is not None:
        state = _load_checkpoint(work, config)
        if state is not None:
            network.load_state_dict(state["network"])
            optimizer.load_state_dict(state["optimizer"])
            history, start = state["history"], int(state["iteration"])
    n_out = topology.n_stages - 1 if config.network.deep_supervision else 1
    weights = deep_supervision_weights(n_out).tolist() if n_out > 1 else None
    crop = initial_patch_size(config.patch_size, config.augment)
    transform = build_transforms(config.patch_size, config.augment)

    def checkpoint(name: str, iteration: int) -> None:
        if work is not None:
            _save_checkpoint(
                work / name,
                {
                    "network": network.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "iteration": iteration,
                    "config": config.to_dict(),
                    "plan": plan.to_dict(),
                    "history": history,
                },
            )
            write_json(work / "history.json", history)

    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if dev.type == "cuda"
        else contextlib.nullcontext()
    )
    stream = batch_stream(
        BatchStream(train, config, crop, transform, start, config.iterations),
        workers,
        pin_memory=dev.type == "cuda",
    )
    network.train()
    bar = tqdm(
        desc="training",
        disable=not progress,
        initial=start,
        total=config.iterations,
    )
    t0 = time.perf_counter()
    for it, x, y, mask in stream:
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        mask = mask.to(dev)
        t1 = time.perf_counter()
        scheduler.step(it)
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            outputs = network(x)
        loss = deep_supervision_loss(_as_float(outputs), y, mask, weights, config.head)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} at iteration {it}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), GRAD_CLIP)
        optimizer.step()
        t2 = time.perf_counter()
        history["seconds"]["batch"] += t1 - t0
        history["seconds"]["step"] += t2 - t1
        history["loss"].append(float(loss.detach()))
        bar.set_postfix(loss=f"{np.mean(history['loss'][-10:]):.3f}")
        done = it + 1
        if val and (done % config.val_every == 0 or done == config.iterations):
            score = validation_dice(segmenter, val)
            history["val"].append({"iteration": done, **score})
            bar.set_postfix(
                loss=f"{np.mean(history['loss'][-10:]):.3f}", val=f"{score['mean']:.3f}"
            )
            network.train()
        if done % config.checkpoint_every == 0 or done % config.val_every == 0:
            checkpoint(LATEST, done)
        bar.update()
        t0 = time.perf_counter()
    bar.close()
    network.eval()
    segmenter.history_ = history
    if work is not None:
        checkpoint(FINAL, config.iterations)
        segmenter.save(work)
    return segmenter


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
