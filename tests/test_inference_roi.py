"""CoarseToFineInferer: ROI equals plain on the ROI, fewer windows, body source, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inference_support import ModuleSegmenter, blob_volume, plan, threshold_labels, threshold_net

from flare_uda.inference import (
    INFERERS,
    CoarseToFineConfig,
    CoarseToFineInferer,
    SlidingWindowConfig,
    SlidingWindowInferer,
)
from flare_uda.inference.boxes import box_to_grid
from flare_uda.inference.network_grid import crop_volume
from flare_uda.volume import Volume


def _organ_volume() -> Volume:
    # large body, small bright "organ" block off-centre
    vol = blob_volume(shape=(30, 96, 96), spacing=(2.0, 1.0, 1.0), margin=(2, 6, 6))
    arr = vol.array.copy()
    arr[arr > 3.0] = 2.0
    arr[8:14, 60:72, 20:30] = 4.0
    return vol.with_array(arr)


def _organ_net() -> torch.nn.Module:
    # organs only: class 1 (body level) is suppressed, class 2 (logit 2x - 6) above intensity 3
    net = threshold_net((1.0, 3.0))
    with torch.no_grad():
        net.bias[1] = -100.0
        net.bias[2] = -6.0
    return net


def test_roi_equals_plain_and_runs_fewer_windows():
    vol = _organ_volume()
    seg = ModuleSegmenter(plan(patch=(8, 16, 16)), _organ_net())
    plain = SlidingWindowInferer(SlidingWindowConfig(skip_empty=False))
    roi = CoarseToFineInferer(CoarseToFineConfig(margin_mm=(4.0, 4.0, 4.0)))
    a, b = plain(vol, seg), roi(vol, seg)
    assert b.same_geometry(vol) and b.array.dtype == np.uint8
    np.testing.assert_array_equal(a.array, b.array)
    assert (b.array == 2).sum() == 6 * 12 * 10
    box = roi.last_stats_["box"]
    # organ [8:14, 60:72, 20:30] + 2/4/4 voxels of margin (+ coarse rounding)
    assert box[0].start <= 6 and box[0].stop >= 16 and box[1].start <= 56 and box[2].stop >= 34
    assert box[1].stop - box[1].start < 40
    assert roi.last_stats_["n_run"] + roi.last_stats_["n_coarse"] < plain.last_stats_["n_run"]


def test_coarse_segmenter_and_body_source():
    vol = _organ_volume()
    seg = ModuleSegmenter(plan(), _organ_net())
    coarse = ModuleSegmenter(plan(spacing=(4.0, 3.0, 3.0)), _organ_net())
    out = CoarseToFineInferer(coarse_segmenter=coarse)(vol, seg)
    assert coarse.calls > 0
    np.testing.assert_array_equal(out.array, np.where(vol.array > 3.0, 2, 0))
    body = CoarseToFineInferer(CoarseToFineConfig(roi_source="body", margin_mm=(0, 0, 0)))
    out = body(vol, ModuleSegmenter(plan(), threshold_net()))
    np.testing.assert_array_equal(out.array, threshold_labels(vol.array))
    assert body.last_stats_["n_coarse"] == 0
    assert body.last_stats_["box"] == (slice(2, 28), slice(6, 90), slice(6, 90))


def test_no_organ_found_uses_body_or_raises():
    vol = blob_volume()
    seg = ModuleSegmenter(plan(), threshold_net((1.0, 100.0)))  # never class 2
    net = threshold_net((50.0, 100.0))  # coarse finds nothing
    inferer = CoarseToFineInferer()
    with pytest.warns(UserWarning, match="found no organ"):
        out = inferer(vol, ModuleSegmenter(plan(), net))
    assert inferer.last_stats_["source"].startswith("body")
    assert out.array.max() == 0
    with pytest.raises(RuntimeError, match="found no organ"):
        CoarseToFineInferer(CoarseToFineConfig(empty="error"))(vol, ModuleSegmenter(plan(), net))
    assert CoarseToFineInferer(CoarseToFineConfig(roi_source="body"))(vol, seg).array.max() == 1


def test_crop_and_box_mapping_keep_physical_positions():
    vol = Volume(np.zeros((10, 20, 30)), (2.0, 1.0, 0.5), (1.0, 2.0, 3.0))
    crop = crop_volume(vol, (slice(2, 5), slice(4, 10), slice(0, 30)))
    np.testing.assert_allclose(crop.origin, (5.0, 6.0, 3.0))
    coarse = Volume(np.zeros((5, 10, 15)), (4.0, 2.0, 1.0), (2.0, 2.5, 3.25))
    box = box_to_grid((slice(1, 3), slice(2, 5), slice(0, 15)), coarse, vol)
    assert box == (slice(2, 6), slice(4, 10), slice(0, 30))


def test_registry_and_config_errors():
    assert INFERERS.get("roi") is CoarseToFineInferer
    with pytest.raises(TypeError, match="takes a CoarseToFineConfig config, got a SlidingWin"):
        CoarseToFineInferer(SlidingWindowConfig())
    with pytest.raises(TypeError, match="expected a Segmenter"):
        CoarseToFineInferer(coarse_segmenter=object())
    with pytest.raises(TypeError, match="fine must be a SlidingWindowConfig"):
        CoarseToFineConfig(fine={"step": 1})
    with pytest.raises(ValueError, match="coarse_step must be in"):
        CoarseToFineConfig(coarse_step=1.5)
    with pytest.raises(ValueError, match="coarse_factor must be >= 1"):
        CoarseToFineConfig(coarse_factor=(1.0, 0.5, 2.0))
    with pytest.raises(ValueError, match="margin_mm must be >= 0"):
        CoarseToFineConfig(margin_mm=-1.0)
    with pytest.raises(ValueError, match="roi_source must be one of"):
        CoarseToFineConfig(roi_source="organ")
    with pytest.raises(ValueError, match="expected a segmenter with 1 image channel"):
        CoarseToFineInferer()(blob_volume(), ModuleSegmenter(plan(in_channels=2), threshold_net()))
