"""Can a segmenter learn at CPU budgets? Train on phantom MR, score a training and a held-out case.

Probes the optimiser question behind the calibration: the paper's SGD (Nesterov,
momentum 0.99) against Adam, at a few hundred steps.

Run:
    .venv/bin/python benchmarks/probe_optimizer.py --preset tiny --cases 1 --iterations 200 \
        --optimizer adam --lr 0.01 --no-augment
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from flare_uda.data.phantom import generate_cohort
from flare_uda.inference import SlidingWindowConfig, SlidingWindowInferer
from flare_uda.metrics import evaluate_case
from flare_uda.segmentation import AugmentConfig, NetworkConfig, get_preset, train_segmenter

GRIDS = {  # segmentation grid and patch near each phantom preset's own sampling
    "tiny": {"spacing": (10.0, 7.0, 7.0), "patch_size": (16, 48, 48), "downsamplings": 3},
    "quick": {"spacing": (5.0, 3.0, 3.0), "patch_size": (32, 64, 64), "downsamplings": 4},
}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", choices=sorted(GRIDS), default="tiny")
    p.add_argument("--cases", type=int, default=1, help="MR training cases (T1 first)")
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="adam")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.99)
    p.add_argument("--base", type=int, default=8, help="base channels")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    grid = GRIDS[a.preset]
    _, mr = generate_cohort(a.preset, 0, a.cases + 1, seed=0)
    train, held_out = mr[: a.cases], mr[a.cases]
    cfg = get_preset(
        "quick" if a.preset == "quick" else "tiny",
        iterations=a.iterations,
        spacing=grid["spacing"],
        patch_size=grid["patch_size"],
        optimizer=a.optimizer,
        learning_rate=a.lr,
        momentum=a.momentum,
        normalization="zscore",
        network=NetworkConfig(
            base_features=a.base, max_downsamplings=grid["downsamplings"], max_features=128
        ),
        augment=AugmentConfig(enabled=not a.no_augment, mirror_axes=(), p_elastic=0.0),
    )
    start = time.perf_counter()
    seg = train_segmenter(train, cfg, progress=False)
    loss = seg.history_["loss"]
    print(
        f"{vars(a)}\nloss first10 {np.mean(loss[:10]):.3f} last10 {np.mean(loss[-10:]):.3f} "
        f"train {time.perf_counter() - start:.0f} s"
    )
    inferer = SlidingWindowInferer(SlidingWindowConfig(step=1.0))
    for what, case in (("train", train[0]), ("held-out", held_out)):
        scores = evaluate_case(inferer(case.image, seg).array, case.label.array, case.image.spacing)
        dsc = [v[0] for v in scores.values()]
        print(
            f"{what:9s} {case.case_id}: mean DSC {np.nanmean(dsc):.3f}  per organ "
            + " ".join(f"{d:.2f}" for d in dsc)
        )


if __name__ == "__main__":
    main()
