"""SlidingWindowInferer: geometry, single-pass equality, body skip, padding, heads, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inference_support import (
    ModuleSegmenter,
    blob_volume,
    plan,
    threshold_labels,
    threshold_net,
)

from flare_uda.inference import (
    INFERERS,
    SlidingWindowConfig,
    SlidingWindowInferer,
    logits_to_labels,
    sliding_window_logits,
)
from flare_uda.inference.boxes import otsu_body_mask
from flare_uda.inference.windows import window_starts, windows_with_body
from flare_uda.volume import Volume


def _conv_net(k=3, seed=0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(4, k, 3, padding=1)
    ).eval()


def test_output_on_input_grid_with_resampling():
    direction = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    vol = blob_volume(spacing=(2.5, 0.9, 0.7))
    vol = Volume(vol.array, vol.spacing, (1.0, 2.0, 3.0), direction)
    seg = ModuleSegmenter(plan(spacing=(2.0, 1.0, 1.0)), threshold_net())
    out = SlidingWindowInferer()(vol, seg)
    assert out.array.dtype == np.uint8
    assert out.shape == vol.shape
    assert out.spacing == vol.spacing and out.origin == vol.origin
    np.testing.assert_array_equal(out.direction, direction)
    # the bright block lands as label 2, the body as 1 (away from resampled edges)
    assert out.array[10, 20, 18] == 2 and out.array[10, 12, 10] == 1 and out.array[0, 0, 0] == 0


def test_single_window_equals_full_pass():
    net = _conv_net()
    image = torch.from_numpy(np.random.default_rng(1).normal(size=(1, 8, 16, 16)).astype("f4"))
    res = sliding_window_logits(image, net, (8, 16, 16), 3, SlidingWindowConfig(), average=True)
    assert (res.n_run, res.n_total) == (1, 1)
    with torch.no_grad():
        full = net(image[None])[0]
    torch.testing.assert_close(res.logits, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("weighting", ["gaussian", "constant"])
def test_many_windows_of_a_pointwise_net_equal_full_pass(weighting):
    image = torch.from_numpy(np.random.default_rng(2).uniform(0, 5, (1, 19, 37, 30)).astype("f4"))
    net = threshold_net()
    cfg = SlidingWindowConfig(step=0.5, weighting=weighting, sw_batch_size=3)
    res = sliding_window_logits(image, net, (8, 16, 16), 3, cfg, average=True)
    assert res.n_total == len(window_starts((19, 37, 30), (8, 16, 16), 0.5)) > 8
    with torch.no_grad():
        full = net(image[None])[0]
    torch.testing.assert_close(res.logits, full, rtol=1e-4, atol=1e-4)


def test_body_skip_same_labels_fewer_windows():
    vol = blob_volume(shape=(40, 80, 80), spacing=(2.0, 1.0, 1.0), margin=(12, 28, 28))
    seg = ModuleSegmenter(plan(), _conv_net())
    skip = SlidingWindowInferer(SlidingWindowConfig(skip_empty=True))
    full = SlidingWindowInferer(SlidingWindowConfig(skip_empty=False))
    a, b = skip(vol, seg), full(vol, seg)
    assert skip.last_stats_["n_run"] < full.last_stats_["n_run"] == full.last_stats_["n_total"]
    body = vol.array > 1.0
    np.testing.assert_array_equal(a.array[body], b.array[body])
    # with a net that maps empty input to background, the labels agree everywhere
    seg0 = ModuleSegmenter(plan(), threshold_net())
    np.testing.assert_array_equal(skip(vol, seg0).array, full(vol, seg0).array)
    np.testing.assert_array_equal(skip(vol, seg0).array, threshold_labels(vol.array))


def test_windows_with_body_box_sums():
    mask = np.zeros((10, 10, 10), dtype=bool)
    mask[7, 2, 9] = True
    starts = np.array([[0, 0, 0], [5, 0, 6], [5, 3, 5], [6, 2, 6]])
    np.testing.assert_array_equal(
        windows_with_body(mask, starts, (4, 4, 4)), [False, True, False, True]
    )


def test_otsu_body_mask_separates_air():
    arr = np.zeros((6, 8, 8), dtype=np.float32)
    arr[2:4, 2:6, 2:6] = 100.0
    assert (otsu_body_mask(arr) == (arr > 50)).all()
    assert otsu_body_mask(np.ones((2, 2, 2))).all()
    # a large dim body with a bright organ: the cut stays between air and body
    arr = np.zeros((10, 20, 20), dtype=np.float32)
    arr[1:9, 1:19, 1:19] = 2.0
    arr[4:6, 8:12, 8:12] = 4.0
    assert (otsu_body_mask(arr) == (arr > 1)).all()


def test_volume_smaller_than_patch_is_padded():
    vol = blob_volume(shape=(6, 12, 10), margin=(1, 2, 2))
    seg = ModuleSegmenter(plan(patch=(8, 16, 16)), threshold_net())
    out = SlidingWindowInferer()(vol, seg)
    assert out.shape == (6, 12, 10)
    np.testing.assert_array_equal(out.array, threshold_labels(vol.array))


def test_mirroring_matches_for_a_pointwise_net():
    vol = blob_volume()
    seg = ModuleSegmenter(plan(), threshold_net())
    a = SlidingWindowInferer(SlidingWindowConfig(mirroring=True))(vol, seg)
    np.testing.assert_array_equal(a.array, threshold_labels(vol.array))


def test_sigmoid_head_threshold_and_weighted_sums():
    logits = torch.tensor([[5.0, 5.0, 5.0], [0.5, -1.0, 2.0], [0.2, -2.0, 3.0]]).view(3, 1, 1, 3)
    # sigmoid(0.5)=0.62, sigmoid(2)=0.88 > sigmoid(3)? no: 3 is larger -> organ 2
    out = logits_to_labels(logits, "sigmoid", 0.5)
    np.testing.assert_array_equal(out.ravel(), [1, 0, 2])
    out = logits_to_labels(logits, "sigmoid", 0.7)  # logit(0.7)=0.85
    np.testing.assert_array_equal(out.ravel(), [0, 0, 2])
    weight = torch.full((1, 1, 3), 2.0)
    out = logits_to_labels(logits * 2.0, "sigmoid", 0.7, weight)
    np.testing.assert_array_equal(out.ravel(), [0, 0, 2])
    np.testing.assert_array_equal(logits_to_labels(logits, "softmax").ravel(), [0, 0, 0])


def test_sigmoid_plan_end_to_end():
    vol = blob_volume()
    seg = ModuleSegmenter(plan(head="sigmoid", threshold=0.9), threshold_net())
    out = SlidingWindowInferer()(vol, seg)
    # organ logits: x - 1 and 2x - 4; sigmoid > 0.9 <=> logit > 2.197
    x = vol.array
    best = np.maximum(x - 1, 2 * x - 4)
    expected = np.where(best > np.log(9), np.where(2 * x - 4 > x - 1, 2, 1), 0)
    np.testing.assert_array_equal(out.array, expected)


@pytest.mark.parametrize("resampling", ["nnunet", "torch"])
def test_labels_not_logits_are_resampled(monkeypatch, resampling):
    import flare_uda.inference.network_grid as ni

    seen = []
    real = ni.labels_to_grid_array

    def spy(array, grid, reference):
        seen.append((array.dtype, array.ndim))
        return real(array, grid, reference)

    monkeypatch.setattr(ni, "labels_to_grid_array", spy)
    vol = blob_volume(spacing=(3.0, 0.8, 0.8))
    config = SlidingWindowConfig(resampling=resampling)
    SlidingWindowInferer(config)(vol, ModuleSegmenter(plan(), threshold_net()))
    uint8 = torch.uint8 if resampling == "torch" else np.dtype(np.uint8)
    assert seen == [(uint8, 3)]


def test_registry_and_errors():
    assert INFERERS.get("sliding_window") is SlidingWindowInferer
    with pytest.raises(KeyError, match="Did you mean 'sliding_window'"):
        INFERERS.get("sliding_windw")
    vol = blob_volume()
    with pytest.raises(ValueError, match="expected a segmenter with 1 image channel"):
        SlidingWindowInferer()(vol, ModuleSegmenter(plan(in_channels=2), threshold_net()))
    with pytest.raises(ValueError, match="expected network output"):
        SlidingWindowInferer()(vol, ModuleSegmenter(plan(k=4), threshold_net()))
    bad = vol.array.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        SlidingWindowInferer()(vol.with_array(bad), ModuleSegmenter(plan(), threshold_net()))
    with pytest.raises(ValueError, match="expected an image 'c z y x'"):
        sliding_window_logits(torch.zeros(8, 16, 16), threshold_net(), (8, 16, 16), 3)
    with pytest.raises(ValueError, match="body_mask must have the image shape"):
        sliding_window_logits(
            torch.zeros(1, 8, 16, 16),
            threshold_net(),
            (8, 16, 16),
            3,
            body_mask=np.ones((2, 2, 2), dtype=bool),
        )
    with pytest.raises(TypeError, match="expected a Volume"):
        SlidingWindowInferer()(vol.array, ModuleSegmenter(plan(), threshold_net()))
    with pytest.raises(TypeError, match="takes a SlidingWindowConfig config or keywords, got dict"):
        SlidingWindowInferer({"step": 0.5})
    with pytest.raises(ValueError, match="step must be in"):
        SlidingWindowConfig(step=0.0)
    with pytest.raises(ValueError, match="weighting must be one of"):
        SlidingWindowConfig(weighting="hann")
    with pytest.raises(ValueError, match="sw_batch_size must be"):
        SlidingWindowConfig(sw_batch_size=0)
    with pytest.raises(ValueError, match="autocast must be one of"):
        SlidingWindowConfig(autocast="fp8")
    with pytest.raises(ValueError, match="head must be one of"):
        logits_to_labels(torch.zeros(3, 1, 1, 1), "softmx")
    with pytest.raises(ValueError, match="expected logits 'k z y x'"):
        logits_to_labels(torch.zeros(3, 1, 1), "softmax")


def test_bf16_autocast_on_cpu_when_asked():
    vol = blob_volume()
    seg = ModuleSegmenter(plan(), threshold_net())
    out = SlidingWindowInferer(SlidingWindowConfig(autocast="bf16"))(vol, seg)
    # bf16 keeps ~3 significant digits: labels agree away from the class boundaries
    x = vol.array
    clear = (np.abs(x - 1.0) > 0.1) & (np.abs(x - 3.0) > 0.1)
    np.testing.assert_array_equal(out.array[clear], threshold_labels(x)[clear])
