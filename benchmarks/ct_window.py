"""The CT soft-tissue window in anatomy space: edge strengths and a 2-minute training.

Part 1 (no training, seconds): the median anatomy-space value (Sobel magnitude
scaled by its own 99.5th percentile, :func:`~flare_uda.data.anatomy.to_anatomy_space`)
on the organ boundaries (one voxel either side of the labels' outer surface)
of phantom CT, unclipped and clipped to the soft-tissue window, and of phantom MR.

Part 2 (``--train``, ~2.5 min per row on one thread): the ``quick2d`` segmenter
trained for ``--minutes`` on the CT's anatomy-space maps, unclipped and windowed,
scored (mean FLARE DSC over 13 organs) on the held-out MR test cases'
anatomy-space maps and on two of its own training cases ("fit"). The cohort is
the ``quick`` demo's (8 CT, 4 held-out MR from seed 10000); no GAN is involved.

    .venv/bin/python benchmarks/ct_window.py --train --minutes 2
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
import torch
from scipy import ndimage

from flare_uda.data.anatomy import CT_SOFT_TISSUE_WINDOW, to_anatomy_space
from flare_uda.data.phantom import generate_cohort


def boundary_median(case, window) -> float:
    """Median anatomy-space value on the organ boundaries of ``case``."""
    organs = case.label.array > 0
    shell = ndimage.binary_dilation(organs) ^ ndimage.binary_erosion(organs)
    return float(np.median(to_anatomy_space(case.image, window=window).array[shell]))


def anatomy_case(case, window):
    """``case`` with its image in anatomy space (treated as MR by the segmenter)."""
    return dataclasses.replace(
        case, image=to_anatomy_space(case.image, window=window), modality="MR"
    )


def mean_dsc(segmenter, cases) -> float:
    from flare_uda.inference import SlidingWindowInferer
    from flare_uda.metrics.evaluate import evaluate_volumes, summarize

    inferer = SlidingWindowInferer()
    rows = []
    for c in cases:
        rows += evaluate_volumes(c.case_id, inferer(c.image, segmenter), c.label)
    return 100 * summarize(rows)[-1]["dsc_mean"]


def train_row(ct, test, window, minutes: float) -> tuple[float, float, int]:
    from flare_uda.segmentation import get_preset, train_segmenter

    config = get_preset(
        "quick2d", iterations=1_000_000, time_budget_minutes=minutes,
        val_every=1_000_000, checkpoint_every=1_000_000, seed=0,
    )  # fmt: skip
    train = [anatomy_case(c, window) for c in ct]
    seg = train_segmenter(train, config, work_dir=None, progress=False, device="cpu")
    test_dsc = mean_dsc(seg, [anatomy_case(c, None) for c in test])
    return test_dsc, mean_dsc(seg, train[:2]), seg.history_["iterations_done"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", action="store_true", help="also run the 2-minute trainings")
    p.add_argument("--minutes", type=float, default=2.0, help="training budget per row")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ct, mr = generate_cohort("quick", 8, 6, seed=0, executor="process")
    _, test = generate_cohort("quick", 0, 4, seed=10_000, executor="process")
    print("| images | organ-boundary median (anatomy space) |\n|---|---|")
    for name, cases, window in (
        ("CT, unclipped (the paper)", ct, None),
        (f"CT, window {CT_SOFT_TISSUE_WINDOW} HU", ct, CT_SOFT_TISSUE_WINDOW),
        ("MR (T1 and T2)", mr, None),
    ):
        print(f"| {name} | {np.mean([boundary_median(c, window) for c in cases]):.3f} |")
    if not args.train:
        return
    print(f"\n| CT input | test DSC (MR) | fit DSC (CT) | steps | ({args.minutes:g} min, "
          f"{args.threads} thread) |\n|---|---|---|---|---|")  # fmt: skip
    for name, window in (("unclipped", None), ("window", CT_SOFT_TISSUE_WINDOW)):
        t0 = time.perf_counter()
        test_dsc, fit, steps = train_row(ct, test, window, args.minutes)
        print(
            f"| {name} | {test_dsc:.1f} | {fit:.1f} | {steps} | {time.perf_counter() - t0:.0f} s |"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
