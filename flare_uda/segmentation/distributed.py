"""Training on several processes (PyTorch DDP), launched by ``torchrun``.

``torchrun --nproc-per-node N -m flare_uda train ...`` starts N copies of a
training; :func:`start` finds the ranks torchrun set (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``) and joins the process group (gloo on the CPU, NCCL on CUDA,
one GPU per local rank). Outside torchrun nothing here changes a training.

What each rank does, so that N processes train like one at the same global batch:

* **Batches** (:class:`ShardedBatchStream`): sample ``i`` of iteration ``t``
  is drawn from its own generator, seeded by ``(seed, t, i)``
  (:func:`sample_rng`), and rank ``r`` of ``N`` makes samples
  ``r * B // N .. (r + 1) * B // N - 1`` of the global batch ``B``. The global
  batch is therefore the same for any N (also N = 1 under torchrun; a run
  without torchrun draws its batches from one generator per iteration
  instead, :func:`~flare_uda.segmentation.data.batch_rng`).
* **Loss** (:func:`across_ranks`, :func:`summing`): the batch sums the loss
  is made of (cross-entropy numerator and voxel count, Dice's true positives,
  predicted and reference volumes, the channels in use) are summed over the
  ranks with autograd-aware all-reduces, as nnU-Net's DDP Dice does, so every
  rank computes the loss of the global batch; with DDP's gradient average
  the update is the one-process update. The adaptive class weights are
  updated from the global batch's counts the same way.
* **Clock** (:class:`SharedClock`): with a wall-clock budget every rank uses
  rank 0's elapsed time, so the learning rate and the stop agree.
* **Checkpoints**: written by rank 0 only (:func:`is_main`); every rank resumes
  from them (the work folder must be on storage all ranks see).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from flare_uda.segmentation.batches import Batch, BatchStream
from flare_uda.segmentation.data import batch_rng, make_sample
from flare_uda.segmentation.losses import annotated_mask
from flare_uda.segmentation.rank_sums import across_ranks, summing  # noqa: F401 (re-export)
from flare_uda.segmentation.schedule import TrainingClock

TIMEOUT = datetime.timedelta(hours=2)
"""How long a rank waits for the others at a collective (e.g. rank 0 writing a checkpoint)."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in a torchrun launch."""

    rank: int
    world_size: int
    local_rank: int


def from_environment() -> Ranks | None:
    """The ranks torchrun set in the environment, or ``None`` outside torchrun.

    Raises
    ------
    ValueError
        If ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` are not integers with
        ``0 <= RANK < WORLD_SIZE``.
    """
    env = os.environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        local = int(env.get("LOCAL_RANK", rank))
    except ValueError:
        raise ValueError(
            "expected integer RANK, WORLD_SIZE and LOCAL_RANK (as torchrun sets them), got "
            f"{env.get('RANK')!r}, {env.get('WORLD_SIZE')!r}, {env.get('LOCAL_RANK')!r}"
        ) from None
    if not 0 <= rank < world:
        raise ValueError(f"expected 0 <= RANK < WORLD_SIZE, got RANK={rank}, WORLD_SIZE={world}")
    return Ranks(rank, world, local)


def is_main(ranks: Ranks | None = None) -> bool:
    """True on rank 0, or outside torchrun (``ranks`` default: from the environment)."""
    ranks = ranks if ranks is not None else from_environment()
    return ranks is None or ranks.rank == 0


def start(device: torch.device, batch_size: int) -> tuple[Ranks | None, torch.device]:
    """Join torchrun's process group (once per process); the ranks and this rank's device.

    On CUDA each local rank takes its own GPU (``cuda:LOCAL_RANK``) and NCCL;
    on the CPU the ranks talk through gloo.

    Raises
    ------
    ValueError
        If the global batch is smaller than the number of processes, or there
        are fewer GPUs than local ranks.
    """
    ranks = from_environment()
    if ranks is None:
        return None, device
    if batch_size < ranks.world_size:
        raise ValueError(
            f"batch_size {batch_size} is split across {ranks.world_size} processes; expected "
            f"a global batch of at least one sample per process (>= {ranks.world_size})"
        )
    backend = "gloo"
    if device.type == "cuda":
        if ranks.local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"local rank {ranks.local_rank} needs its own GPU, got "
                f"{torch.cuda.device_count()} GPU(s) on this node"
            )
        device, backend = torch.device("cuda", ranks.local_rank), "nccl"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=TIMEOUT)
    return ranks, device


def wrap(network: torch.nn.Module, ranks: Ranks | None, device: torch.device) -> torch.nn.Module:
    """``network`` in DDP under torchrun (gradients averaged over ranks), else itself."""
    if ranks is None:
        return network
    ids = [device.index] if device.type == "cuda" else None
    # unused parameters: the lowest deep-supervision head is left out of the loss
    return torch.nn.parallel.DistributedDataParallel(
        network, device_ids=ids, find_unused_parameters=True
    )


def barrier(ranks: Ranks | None) -> None:
    """Wait for every rank (e.g. until rank 0 has saved the model)."""
    if ranks is not None:
        dist.barrier()


# --------------------------------------------------------------------- batches
def sample_rng(seed: int, iteration: int, index: int) -> np.random.Generator:
    """The generator of sample ``index`` of iteration ``iteration``; also seeds numpy's
    and torch's global generators (the augmentations draw from them)."""
    return batch_rng(seed, iteration, index)


def shard(batch_size: int, ranks: Ranks) -> range:
    """The samples of the global batch that rank ``ranks.rank`` makes."""
    n = ranks.world_size
    return range(ranks.rank * batch_size // n, (ranks.rank + 1) * batch_size // n)


class ShardedBatchStream(BatchStream):
    """This rank's share of every global batch (see the module docstring)."""

    def __init__(self, *args, ranks: Ranks, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ranks = ranks

    def batch(self, it: int) -> Batch:
        cfg = self.config
        weights = None if self.class_weights is None else self.class_weights.weights()
        fixed = (self.crop, self.transform, cfg.oversample_foreground)
        samples = [
            make_sample(self.cases, i, sample_rng(cfg.seed, it, i), cfg.batch_size, *fixed, weights)
            for i in shard(cfg.batch_size, self.ranks)
        ]
        x, y, ann = zip(*samples, strict=True)
        return it, torch.stack(x), torch.stack(y), annotated_mask(list(ann), cfg.num_classes)


def batches(ranks: Ranks | None, *args, **kwargs) -> BatchStream:
    """The batch stream of a run: this rank's shards under torchrun, else whole batches."""
    if ranks is None:
        return BatchStream(*args, **kwargs)
    return ShardedBatchStream(*args, ranks=ranks, **kwargs)


# ----------------------------------------------------------------------- clock
class SharedClock(TrainingClock):
    """A :class:`TrainingClock` whose elapsed time is rank 0's at every tick."""

    def tick(self) -> float:
        super().tick()
        value = torch.tensor([self.elapsed], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            value = value.cuda()
        dist.broadcast(value, src=0)
        self.elapsed = float(value.item())
        return self.elapsed


def clock(clock: TrainingClock, ranks: Ranks | None) -> TrainingClock:
    """``clock`` shared by the ranks when a time budget makes it matter, else itself."""
    if ranks is None or clock.budget is None:
        return clock
    return SharedClock(clock.iterations, clock.budget, clock.elapsed)
