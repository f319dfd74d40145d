"""Label resampling: flare_uda's nearest neighbour vs nnU-Net's one-hot order-1 default.

Resamples a real AMOS label (11 x 512 x 512, 5 x 0.78 x 0.78 mm, 12 organs) to
the paper spacing (2.5, 0.81, 0.81) both ways, reports the time of each (their
ratio is what matters on a shared machine) and the per-organ Dice between the
two results, and the Dice of each after mapping back onto the original grid.

    .venv/bin/python benchmarks/bench_label_resampling.py \
        --label ../shared/data/ct/amos_0013_slab_label.nii.gz --label-map amos
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from flare_uda.data.io import read_label
from flare_uda.data.preprocess import PAPER_SPACING
from flare_uda.data.resampling import (
    resample_to_reference,
    resample_volume,
    separate_z_axis,
    target_shape,
)
from flare_uda.volume import Volume


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(1, float(a.sum() + b.sum()))


def nnunet_label_resample(label: Volume, spacing) -> np.ndarray:
    """nnU-Net's default for segmentations: one-hot order 1, order 0 along a separate z."""
    from nnunetv2.preprocessing.resampling.default_resampling import resample_data_or_seg

    axis = separate_z_axis(label.spacing, spacing)
    shape = target_shape(label.shape, label.spacing, spacing)
    return resample_data_or_seg(
        label.array[None], shape, is_seg=True, axis=axis, order=1,
        do_separate_z=axis is not None, order_z=0,
    )[0]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--label", required=True)
    parser.add_argument("--label-map", default="flare")
    args = parser.parse_args()
    label = read_label(args.label, args.label_map)
    tiny = Volume(label.array[:2, :8, :8], label.spacing)  # warm-up: lazy nnU-Net imports
    resample_volume(tiny, 1.0, is_label=True)
    nnunet_label_resample(tiny, (1.0, 1.0, 1.0))
    t0 = time.perf_counter()
    ours = resample_volume(label, PAPER_SPACING, is_label=True)
    t1 = time.perf_counter()
    theirs = nnunet_label_resample(label, PAPER_SPACING)
    t2 = time.perf_counter()
    print(f"input {label.shape} spacing {tuple(round(s, 3) for s in label.spacing)}")
    print(f"output {ours.shape}; nearest {t1 - t0:.2f} s, nnU-Net one-hot order 1 {t2 - t1:.2f} s")
    print(f"time ratio nnU-Net/nearest {(t2 - t1) / (t1 - t0):.1f}")
    back_ours = resample_to_reference(ours, label).array
    back_theirs = resample_to_reference(ours.with_array(theirs), label).array
    print("organ  dice(nearest, nnU-Net)  round-trip dice nearest  round-trip dice nnU-Net")
    for organ in [int(v) for v in np.unique(label.array) if v]:
        print(
            f"{organ:5d}  {dice(ours.array == organ, theirs == organ):.4f}"
            f"                  {dice(back_ours == organ, label.array == organ):.4f}"
            f"                   {dice(back_theirs == organ, label.array == organ):.4f}"
        )


if __name__ == "__main__":
    main()
