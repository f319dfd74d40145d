"""The stream of training batches, cut and augmented in background workers.

On a GPU the network step takes milliseconds while cutting and augmenting a
batch on one CPU core takes tens of them, so batches are made in
``num_workers`` processes (as nnU-Net's multi-threaded augmenter does). Each
batch depends only on ``(seed, iteration)`` (:func:`batch_rng`), so worker ``w``
makes iterations ``start + w, start + w + n, ...`` and the stream is the same
with any number of workers. torch's ``DataLoader`` is used as the process pool:
for an iterable dataset it reads its workers round-robin, which restores the
iteration order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import torch

from flare_uda.segmentation.data import PreparedCase, batch_rng, make_batch
from flare_uda.segmentation.losses import annotated_mask

Batch = tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]
"""``(iteration, image "b c z y x", target "b 1 z y x", annotated "b k")``."""


class BatchStream(torch.utils.data.IterableDataset):
    """Batches for iterations ``start .. stop - 1`` (split across DataLoader workers)."""

    def __init__(
        self,
        cases: Sequence[PreparedCase],
        config,
        crop: tuple[int, int, int],
        transform,
        start: int,
        stop: int,
        class_weights=None,
    ) -> None:
        self.cases, self.config, self.crop, self.transform = cases, config, crop, transform
        self.start, self.stop = int(start), int(stop)
        # AdaptiveClassWeights (shared memory) or None: read afresh for every batch
        self.class_weights = class_weights

    def __iter__(self) -> Iterator[Batch]:
        info = torch.utils.data.get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None:
            torch.set_num_threads(1)  # n workers on n cores, not n x cores threads
        for it in range(self.start + worker, self.stop, n_workers):
            yield self.batch(it)

    def batch(self, it: int) -> Batch:
        """The batch of iteration ``it`` (a function of ``(seed, it)`` and the class weights)."""
        cfg = self.config
        rng = batch_rng(cfg.seed, it)
        weights = None if self.class_weights is None else self.class_weights.weights()
        x, y, ann = make_batch(
            self.cases, cfg.batch_size, self.crop, self.transform,
            cfg.oversample_foreground, rng, weights,
        )  # fmt: skip
        return it, x, y, annotated_mask(ann, cfg.num_classes)


def default_workers(device: torch.device) -> int:
    """0 on the CPU (the network needs the cores), else up to 8 spare cores."""
    if device.type == "cpu":
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def batch_stream(
    stream: BatchStream, num_workers: int, pin_memory: bool = False
) -> Iterator[Batch]:
    """Iterate ``stream`` in this process (0 workers) or in ``num_workers`` processes.

    Raises
    ------
    ValueError
        For a negative ``num_workers``.
    RuntimeError
        If batches arrive out of iteration order (never expected).
    """
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
    if num_workers == 0:
        yield from iter(stream)
        return
    loader = torch.utils.data.DataLoader(
        stream, batch_size=None, num_workers=num_workers, pin_memory=pin_memory, prefetch_factor=4
    )
    expected = stream.start
    for batch in loader:
        if batch[0] != expected:
            raise RuntimeError(f"batch of iteration {batch[0]} arrived, expected {expected}")
        expected += 1
        yield batch
