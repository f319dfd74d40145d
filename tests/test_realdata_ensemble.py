"""The ensemble of first networks (issue 19's two-member fix) on real public MR volumes.

Two pointwise networks that disagree (different intensity levels) make the
ensemble's labels analytic: the argmax of the mean of their softmax at each
voxel's normalised intensity. On a CHAOS T2 volume (float64, flipped y) and the
TotalSegmentator MR (int16) the sliding window must give exactly those labels on
the input grid. Skipped when ../shared/data is absent.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inference_support import ModuleSegmenter, threshold_net

from flare_uda.data.io import read_volume
from flare_uda.data.normalization import normalize
from flare_uda.inference import SlidingWindowConfig, SlidingWindowInferer
from flare_uda.inference.ensemble_segmenter import EnsembleSegmenter
from flare_uda.inference.segmenter import SegmentationPlan

IMAGES = ["mr/chaos_t2/chaos_t2_1_image.nii.gz", "mr/totalseg_mr_sm_image.nii.gz"]
LEVELS = ((-0.5, 1.0), (0.0, 2.0))  # the two members' class boundaries (z-scored intensity)


def _mean_probability_labels(x: np.ndarray) -> np.ndarray:
    """Argmax over classes of the members' mean softmax, voxel by voxel."""
    t = torch.from_numpy(x.astype(np.float32))[None, None]
    probs = [torch.softmax(threshold_net(levels)(t), dim=1) for levels in LEVELS]
    with torch.no_grad():
        return (sum(probs) / len(probs))[0].argmax(0).numpy().astype(np.uint8)


@pytest.mark.parametrize("name", IMAGES)
def test_two_disagreeing_members_give_the_mean_probability_labels_on_real_mr(shared_data, name):
    volume = read_volume(shared_data / name)
    plan = SegmentationPlan(
        patch_size=(16, 64, 64), spacing=volume.spacing, num_classes=3, normalization="zscore"
    )
    members = [ModuleSegmenter(plan, threshold_net(levels)) for levels in LEVELS]
    inferer = SlidingWindowInferer(SlidingWindowConfig(skip_empty=False))
    out = inferer(volume, EnsembleSegmenter(members))
    assert out.same_geometry(volume) and out.array.dtype == np.uint8
    expected = _mean_probability_labels(normalize(volume.array, "zscore"))
    np.testing.assert_array_equal(out.array, expected)
    alone = [inferer(volume, m).array for m in members]
    assert not np.array_equal(alone[0], alone[1])  # the members do disagree on this scan
    assert (out.array != alone[0]).any() and (out.array != alone[1]).any()
