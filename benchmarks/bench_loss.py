"""Seconds per Dice + CE loss (forward and backward) on the slice-wise recipe's outputs.

The training loss of ``quick2d`` (``flare_uda.segmentation.losses``, softmax
head, deep supervision over the 5 decoder outputs of a batch of 8 slices of
128x128, 14 classes) against nnU-Net's own ``DC_and_CE_loss`` (batch Dice
without background, smooth 1e-5, ``MemoryEfficientSoftDiceLoss``) wrapped in
nnU-Net's ``DeepSupervisionWrapper`` with the same weights, on the same
fully labelled batch (nnU-Net's loss has no partial-label form; ours also runs
a partially labelled batch, the third column). Median of 15 after 3 warm-ups.

    .venv/bin/python benchmarks/bench_loss.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def _outputs(batch: int, classes: int, size: int, n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(batch, classes, 1, size // 2**i, size // 2**i, generator=g) for i in range(n)
    ]


def _targets(target: torch.Tensor, outputs: list[torch.Tensor]) -> list[torch.Tensor]:
    return [
        F.interpolate(target.float(), size=o.shape[2:], mode="nearest-exact").long()
        for o in outputs
    ]


def _median_seconds(fn, outputs: list[torch.Tensor], repeats: int = 15) -> float:
    times = []
    for i in range(repeats + 3):
        leaves = [o.clone().requires_grad_(True) for o in outputs]
        t = time.perf_counter()
        fn(leaves).backward()
        if i >= 3:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
    from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    from flare_uda.segmentation.losses import annotated_mask, deep_supervision_loss
    from flare_uda.segmentation.networks import deep_supervision_weights

    batch, classes, size, n = 8, 14, 128, 5
    outputs = _outputs(batch, classes, size, n)
    target = torch.randint(0, classes, (batch, 1, 1, size, size), generator=torch.Generator())
    weights = [float(w) for w in deep_supervision_weights(n)]
    full = annotated_mask([tuple(range(1, classes))] * batch, classes)
    partial = annotated_mask([(1, 2, 3, 13)] * (batch // 2) + [tuple(range(1, 14))] * 4, classes)
    nnunet = DeepSupervisionWrapper(
        DC_and_CE_loss(
            {"batch_dice": True, "smooth": 1e-5, "do_bg": False, "ddp": False},
            {},
            dice_class=MemoryEfficientSoftDiceLoss,
        ),
        weights,
    )
    targets = _targets(target, outputs)
    ours = _median_seconds(lambda o: deep_supervision_loss(o, target, full, weights), outputs)
    ours_partial = _median_seconds(
        lambda o: deep_supervision_loss(o, target, partial, weights), outputs
    )
    peer = _median_seconds(lambda o: nnunet(o, targets), outputs)
    shape = f"{n} outputs, {batch}x{classes}x1x{size}x{size} first"
    print(f"| loss ({shape}) | seconds | nnU-Net time / ours |")
    print("|---|---|---|")
    print(f"| nnU-Net DC_and_CE_loss, deep supervision | {peer:.4f} | 1.00 |")
    print(f"| flare_uda, fully labelled | {ours:.4f} | {peer / ours:.2f} |")
    print(
        f"| flare_uda, half the batch partially labelled | {ours_partial:.4f} | "
        f"{peer / ours_partial:.2f} |"
    )
    print(
        f"\ncommand: .venv/bin/python benchmarks/bench_loss.py --threads {args.threads}; "
        f"torch {torch.__version__}"
    )


if __name__ == "__main__":
    main()
