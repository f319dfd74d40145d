"""Inference on real public MR volumes (../shared/data): both paths, real geometry and dtypes.

CHAOS T2 volumes are float64 on disk with a flipped y direction; the
TotalSegmentator MR is int16. A pointwise network (its labels are a function
of the normalised intensity only) makes the expected labels analytic.
Skipped when the folder is absent.
"""

from __future__ import annotations

import numpy as np
import pytest
from inference_support import ModuleSegmenter, threshold_labels, threshold_net

from flare_uda.data.io import read_volume
from flare_uda.data.normalization import normalize
from flare_uda.inference import (
    CoarseToFineConfig,
    CoarseToFineInferer,
    SlidingWindowConfig,
    SlidingWindowInferer,
)
from flare_uda.inference.network_grid import to_network_grid
from flare_uda.inference.segmenter import SegmentationPlan

IMAGES = ["mr/chaos_t2/chaos_t2_1_image.nii.gz", "mr/totalseg_mr_sm_image.nii.gz"]


def plan_at(spacing) -> SegmentationPlan:
    return SegmentationPlan(
        patch_size=(16, 64, 64), spacing=spacing, num_classes=3, normalization="zscore"
    )


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize("mode", ["plain", "roi_body"])
def test_both_paths_give_the_analytic_labels_on_real_mr(shared_data, name, mode):
    volume = read_volume(shared_data / name)
    seg = ModuleSegmenter(plan_at(volume.spacing), threshold_net())
    expected = threshold_labels(normalize(volume.array, "zscore"))
    for resampling in ("nnunet", "torch"):
        fine = SlidingWindowConfig(resampling=resampling, skip_empty=False)
        inferer = (
            SlidingWindowInferer(fine)
            if mode == "plain"
            else CoarseToFineInferer(CoarseToFineConfig(fine=fine, roi_source="body"))
        )
        out = inferer(volume, seg)
        assert out.same_geometry(volume) and out.array.dtype == np.uint8
        if mode == "plain":
            np.testing.assert_array_equal(out.array, expected)
        else:  # inside the ROI the analytic labels, zeros around it
            box = inferer.last_stats_["box"]
            np.testing.assert_array_equal(out.array[box], expected[box])
            assert (out.array[box] > 0).any()


@pytest.mark.parametrize("name", IMAGES)
def test_both_paths_land_on_one_network_grid_at_paper_spacing(shared_data, name):
    volume = read_volume(shared_data / name)
    plan = plan_at((2.5, 0.81, 0.81))
    ours = to_network_grid(volume, plan, resampling="torch")
    ref = to_network_grid(volume, plan, resampling="nnunet")
    assert ours.grid.same_geometry(ref.grid)
    # bicubic vs nnU-Net's cubic spline: interpolation error only (z-scored units)
    rmse = float(np.sqrt(np.mean((ours.image.numpy() - ref.image) ** 2)))
    assert rmse < 0.1, rmse
