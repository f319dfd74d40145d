"""The steps around the network in inference: ours vs the tool each replaces.

On one phantom MR resampled onto ``--input-shape`` voxels (default the issue's
100x400x400), to the paper's spacing (2.5, 0.81, 0.81), each step is timed
(best of ``--repeats``) and its output compared:

* image to the network grid: nnU-Net's ``resample_data_or_seg`` (cubic spline)
  vs :func:`flare_uda.data.torch_resampling.resample_image_torch`;
* body mask: SimpleITK's two Otsu filters vs :func:`otsu_body_mask` (one histogram);
* which windows hold body: a summed-volume table (our earlier code) vs
  :func:`windows_with_body` (one ``any()`` per window);
* labels back to the input grid: SimpleITK's ResampleImageFilter (nearest)
  vs :func:`labels_to_grid_array` (separable gather);
* on a CPU tensor, the choices :func:`normalize_tensor` and
  :func:`bounding_box` make: the finiteness check by ``aminmax`` instead of
  ``isfinite().all()``, the z-score statistics by numpy instead of torch's
  ``std_mean``, the box projections by numpy instead of torch's ``any``.

    .venv/bin/python benchmarks/bench_preprocessing.py --repeats 3
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_inference import resampled_case  # noqa: E402  (same folder)

from flare_uda.data.normalization import _mean_std  # noqa: E402
from flare_uda.data.phantom import generate_case  # noqa: E402
from flare_uda.data.preprocess import PAPER_SPACING, normalize  # noqa: E402
from flare_uda.data.resampling import resample_to_reference, resample_volume  # noqa: E402
from flare_uda.data.torch_resampling import resample_image_torch  # noqa: E402
from flare_uda.inference.boxes import (  # noqa: E402
    _projections,
    _projections_torch,
    otsu_body_mask,
)
from flare_uda.inference.network_grid import labels_to_grid_array  # noqa: E402
from flare_uda.inference.windows import (  # noqa: E402
    pad_to_patch,
    window_starts,
    windows_with_body,
)

PATCH = (40, 224, 192)


def best_of(fn, repeats: int):
    """(result, best wall seconds) of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, min(times)


def sitk_otsu_mask(arr: np.ndarray) -> np.ndarray:
    """The SimpleITK version our ``otsu_body_mask`` replaced (same rule)."""
    image = sitk.GetImageFromArray(arr)
    two = sitk.OtsuThresholdImageFilter()
    two.SetInsideValue(0)
    two.SetOutsideValue(1)
    two.SetNumberOfHistogramBins(256)
    two.Execute(image)
    three = sitk.OtsuMultipleThresholdsImageFilter()
    three.SetNumberOfThresholds(2)
    three.SetNumberOfHistogramBins(256)
    three.Execute(image)
    return arr > min(two.GetThreshold(), *three.GetThresholds())


def table_windows(mask: np.ndarray, starts: np.ndarray, patch) -> np.ndarray:
    """The summed-volume-table test our ``windows_with_body`` replaced."""
    table = np.zeros(tuple(s + 1 for s in mask.shape), dtype=np.int64)
    table[1:, 1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1).cumsum(2)
    a, b = starts, starts + np.asarray(patch)[None, :]
    total = np.zeros(len(starts), dtype=np.int64)
    for corner in itertools.product((0, 1), repeat=3):
        idx = tuple(np.where(c, b[:, i], a[:, i]) for i, c in enumerate(corner))
        total += (-1) ** (3 - sum(corner)) * table[idx]
    return total > 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input-shape", type=int, nargs=3, default=(100, 400, 400))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    case = resampled_case(generate_case("paper", "MR", "T1", 100), tuple(args.input_shape))
    image = case.image.with_array(normalize(case.image.array, "zscore"))
    rows = []

    ref, t_ref = best_of(lambda: resample_volume(image, PAPER_SPACING), args.repeats)
    (ours, _), t_ours = best_of(lambda: resample_image_torch(image, PAPER_SPACING), args.repeats)
    rmse = float(np.sqrt(np.mean((ours.numpy() - ref.array) ** 2)))
    rows.append(("image -> network grid", t_ref, t_ours, f"RMSE {rmse:.4f} (z-scored image)"))

    net = ref.array
    mask_ref, t_ref = best_of(lambda: sitk_otsu_mask(net), args.repeats)
    mask, t_ours = best_of(lambda: otsu_body_mask(net), args.repeats)
    rows.append(("Otsu body mask", t_ref, t_ours, f"{int((mask != mask_ref).sum())} voxels differ"))

    padded, _ = pad_to_patch(mask[None], PATCH)
    starts = window_starts(padded.shape[1:], PATCH, 0.5)
    hit_ref, t_ref = best_of(lambda: table_windows(padded[0], starts, PATCH), args.repeats)
    hit, t_ours = best_of(lambda: windows_with_body(padded[0], starts, PATCH), args.repeats)
    same = "same" if np.array_equal(hit, hit_ref) else "DIFFERENT"
    rows.append(("windows holding body", t_ref, t_ours, f"{same} ({len(starts)} windows)"))

    labels = ref.with_array((net > 0.5).astype(np.uint8) + (net > 1.5).astype(np.uint8))
    back_ref, t_ref = best_of(
        lambda: resample_to_reference(labels, case.image, is_label=True), args.repeats
    )
    back, t_ours = best_of(
        lambda: labels_to_grid_array(labels.array, labels, case.image), args.repeats
    )
    diff = int((back != back_ref.array).sum())
    rows.append(("labels -> input grid", t_ref, t_ours, f"{diff} voxels differ"))

    raw = torch.from_numpy(np.ascontiguousarray(case.image.array, dtype=np.float32))
    ok_ref, t_ref = best_of(lambda: bool(torch.isfinite(raw).all()), args.repeats)
    ok, t_ours = best_of(
        lambda: bool(torch.isfinite(torch.stack(torch.aminmax(raw))).all()), args.repeats
    )
    rows.append(
        ("finite check, CPU tensor (isfinite.all vs aminmax)", t_ref, t_ours, f"{ok_ref} / {ok}")
    )
    (s_ref, m_ref), t_ref = best_of(lambda: torch.std_mean(raw, correction=0), args.repeats)
    (m, sd), t_ours = best_of(lambda: _mean_std(raw), args.repeats)
    diff = max(abs(float(m) - float(m_ref)), abs(float(sd) - float(s_ref)))
    rows.append(
        ("z-score mean/std, CPU tensor (torch vs numpy)", t_ref, t_ours, f"max diff {diff:.2e}")
    )
    body = torch.from_numpy(otsu_body_mask(case.image.array))
    p_ref, t_ref = best_of(lambda: _projections_torch(body), args.repeats)
    p, t_ours = best_of(lambda: _projections(body.numpy()), args.repeats)
    same = (
        "same" if all(np.array_equal(a, b) for a, b in zip(p, p_ref, strict=True)) else "DIFFERENT"
    )
    rows.append(("box projections, CPU tensor (torch any vs numpy)", t_ref, t_ours, same))

    print(
        f"input {image.shape} -> network grid {net.shape}, {args.threads} thread(s), "
        f"best of {args.repeats}\n"
    )
    print("| step | replaced tool s | ours s | speed-up | outputs |\n|---|---|---|---|---|")
    for step, t_ref, t_ours, note in rows:
        print(f"| {step} | {t_ref:.3f} | {t_ours:.3f} | {t_ref / t_ours:.1f}x | {note} |")


if __name__ == "__main__":
    main()
