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

import numpy as np
import torch
from tqdm.auto import tqdm

from flare_uda._device import resolve_device
from flare_uda.segmentation import distributed  # torchrun (issue #18): hooks marked "torchrun"
from flare_uda.segmentation.augment import build_transforms, initial_patch_size
from flare_uda.segmentation.batches import batch_stream, default_workers
from flare_uda.segmentation.checkpoint import FINAL, LATEST
from flare_uda.segmentation.config import TrainConfig
from flare_uda.segmentation.data import check_training_cases, prepare_cases
from flare_uda.segmentation.network_segmenter import NetworkSegmenter
from flare_uda.segmentation.networks import deep_supervision_weights
from flare_uda.segmentation.training_run import TrainingRun
from flare_uda.segmentation.validation import validation_dice
from flare_uda.volume import Case


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
    run = TrainingRun(cases, config, work_dir, dev, init_from, ranks)
    k = config.neighbour_slices
    train = prepare_cases(cases, run.pre, config.seed, progress, k)
    val = prepare_cases(val_cases, run.pre, config.seed, progress, k) if val_cases else []
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


def _loop(run: TrainingRun, stream, val, loss_weights, progress: bool) -> int:
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
