"""Neighbour slices as channels (2.5D): the stacking, the plan and config, training and
inference through the same stacking."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inference_support import ModuleSegmenter, plan

from flare_uda.inference import SlidingWindowInferer
from flare_uda.inference.neighbour_slices import stack_neighbour_slices
from flare_uda.inference.segmenter import SegmentationPlan
from flare_uda.segmentation import NetworkConfig, TrainConfig, get_preset, train_segmenter
from flare_uda.volume import Case, Volume


def _ramp(n_z: int = 5) -> np.ndarray:
    """A "1 z y x" image whose slice z holds the value z everywhere."""
    return np.broadcast_to(np.arange(n_z, dtype=np.float32)[None, :, None, None], (1, n_z, 3, 4))


@pytest.mark.parametrize("as_tensor", [False, True])
def test_each_channel_is_the_slice_shifted_and_the_edges_repeat(as_tensor):
    image = _ramp()
    x = torch.from_numpy(image.copy()) if as_tensor else image
    out = stack_neighbour_slices(x, 2)
    assert type(out) is type(x) and tuple(out.shape) == (5, 5, 3, 4)
    out = np.asarray(out)
    for j, shift in enumerate(range(-2, 3)):
        expected = np.clip(np.arange(5) + shift, 0, 4)
        assert np.array_equal(out[j, :, 0, 0], expected)
    assert np.array_equal(out[2], image[0])  # channel k: the slice itself


def test_several_image_channels_keep_their_order():
    image = np.stack([_ramp()[0], 10 + _ramp()[0]])  # "2 z y x"
    out = stack_neighbour_slices(image, 1)
    assert out.shape == (6, 5, 3, 4)
    assert np.array_equal(out[1], image[0]) and np.array_equal(out[4], image[1])
    assert out[3, 0, 0, 0] == 10 and out[5, 4, 0, 0] == 14


def test_zero_neighbours_is_the_image_and_bad_inputs_are_named():
    image = _ramp()
    assert stack_neighbour_slices(image, 0) is image
    with pytest.raises(ValueError, match="k \\(neighbour slices\\) must be an int >= 0, got -1"):
        stack_neighbour_slices(image, -1)
    with pytest.raises(ValueError, match="got True"):
        stack_neighbour_slices(image, True)
    with pytest.raises(ValueError, match="'c z y x' \\(4D\\), got shape \\(5, 3, 4\\)"):
        stack_neighbour_slices(image[0], 1)


def test_the_plan_counts_image_channels_and_checks_its_channels():
    p = plan(in_channels=3, neighbour_slices=1)
    assert p.image_channels == 1
    assert SegmentationPlan.from_dict(p.to_dict()) == p
    old = {k: v for k, v in p.to_dict().items() if k != "neighbour_slices"}
    old["in_channels"] = 1
    assert SegmentationPlan.from_dict(old).neighbour_slices == 0  # plans saved before
    with pytest.raises(ValueError, match="multiple of 2 \\* neighbour_slices \\+ 1 = 3"):
        plan(in_channels=2, neighbour_slices=1)
    with pytest.raises(ValueError, match="neighbour_slices must be an int >= 0"):
        plan(neighbour_slices=-1)


def test_the_config_needs_a_slice_wise_network_and_keeps_old_keys():
    cfg = get_preset("quick2d", neighbour_slices=2)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert "neighbour_slices" not in get_preset("quick2d").to_dict()  # cache keys unchanged
    with pytest.raises(ValueError, match="slice-wise network .* spatial_dims=3"):
        get_preset("quick", neighbour_slices=1)
    with pytest.raises(ValueError, match="neighbour_slices must be an int >= 0"):
        get_preset("quick2d", neighbour_slices=1.5)


class _Difference(torch.nn.Module):
    """Class-1 logit ``sign * (channel a - channel 1) + 0.5``: fires where slice z+-1 and
    z differ by less than 0.5 (only at the repeated edge of a ramp)."""

    def __init__(self, a: int) -> None:
        super().__init__()
        self.a = a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = -(x[:, self.a] - x[:, 1]).abs() + 0.5
        return torch.stack([torch.zeros_like(score), score], dim=1)


@pytest.mark.parametrize("channel, edge", [(0, 0), (2, 5)])
def test_inference_hands_each_slice_its_neighbours(channel, edge):
    """A net that compares slice z with z - 1 (channel 0) or z + 1 (channel 2) of a ramp
    finds exactly the first or the last slice, where the edge slice is repeated."""
    ramp = np.broadcast_to(np.arange(6, dtype=np.float32)[:, None, None], (6, 8, 8)).copy()
    volume = Volume(ramp, (2.0, 1.0, 1.0))
    p = plan(patch=(1, 8, 8), k=2, in_channels=3, neighbour_slices=1)
    segmenter = ModuleSegmenter(p, _Difference(channel))
    inferer = SlidingWindowInferer(step=1.0, skip_empty=False, progress=False)
    labels = inferer(volume, segmenter).array
    assert np.array_equal(np.flatnonzero(labels.any(axis=(1, 2))), [edge])


def test_a_slice_wise_net_trains_and_predicts_with_neighbour_slices(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(8, 24, 24)).astype(np.float32)
    label = np.zeros((8, 24, 24), np.uint8)
    label[2:6, 8:16, 8:16] = 1
    image[label == 1] += 3.0
    case = Case(
        "c0", Volume(image, (5.0, 3.0, 3.0)), Volume(label, (5.0, 3.0, 3.0)), annotated=(1,)
    )
    net = NetworkConfig(base_features=4, max_downsamplings=2, max_features=8, spatial_dims=2)
    cfg = TrainConfig(
        network=net, patch_size=(1, 16, 16), spacing=(5.0, 3.0, 3.0), num_classes=2,
        iterations=2, batch_size=2, val_every=1, checkpoint_every=1, neighbour_slices=1,
        normalization="zscore",
    )  # fmt: skip
    segmenter = train_segmenter([case], cfg, work_dir=tmp_path, val_cases=[case], progress=False)
    assert segmenter.plan.in_channels == 3 and segmenter.plan.neighbour_slices == 1
    first = next(m for m in segmenter.network.modules() if isinstance(m, torch.nn.Conv3d))
    assert first.in_channels == 3
    out = SlidingWindowInferer(step=1.0, progress=False)(case.image, segmenter)
    assert out.array.shape == image.shape
