"""Networks: nnU-Net topology, output shapes, deep supervision, presets, segmenter checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flare_uda.segmentation import (
    NETWORKS,
    NetworkConfig,
    NetworkSegmenter,
    SegmentationPlan,
    build_network,
    get_network_config,
    get_preset,
    plan_topology,
)
from flare_uda.segmentation.networks import deep_supervision_weights


def test_paper_topology_matches_nnunet_planner_truncated_to_four_poolings():
    topo = plan_topology((40, 224, 192), (2.5, 0.81, 0.81), max_downsamplings=4)
    # nnU-Net pools in-plane first (z spacing 2.5 > 2 x 0.81), then all axes.
    assert topo.strides == ((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2))
    assert topo.kernel_sizes == ((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3))
    assert topo.divisor == (8, 16, 16)
    assert topo.n_stages == 5


def test_isotropic_topology_pools_all_axes():
    topo = plan_topology((32, 32, 32), (1.0, 1.0, 1.0), max_downsamplings=5)
    # 32 -> 16 -> 8 -> 4: the planner stops at the 4-voxel bottleneck
    assert topo.strides == ((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2))
    assert all(k == (3, 3, 3) for k in topo.kernel_sizes)


def test_patch_not_divisible_by_stride_raises_with_suggestion():
    with pytest.raises(
        ValueError, match=r"divisible by the total stride .* e\.g\. \(40, 224, 192\)"
    ):
        plan_topology((38, 224, 190), (2.5, 0.81, 0.81), max_downsamplings=4)


def test_patch_too_small_raises():
    with pytest.raises(ValueError, match="too small to downsample"):
        plan_topology((4, 4, 4), (1, 1, 1), max_downsamplings=4)


@pytest.mark.parametrize(
    ("name", "patch", "spacing", "n_stages"),
    [("small", (16, 64, 64), (2.5, 0.81, 0.81), 5), ("default", (8, 128, 128), (4.0, 1.0, 1.0), 6)],
)
def test_network_output_shapes_and_deep_supervision(name, patch, spacing, n_stages):
    torch.manual_seed(0)
    cfg = get_network_config(name)
    topo = plan_topology(patch, spacing, cfg.max_downsamplings)
    assert topo.n_stages == n_stages
    net = build_network(cfg, topo, in_channels=1, num_classes=14)
    first = net.encoder.stages[0][0].convs[0].conv
    assert first.out_channels == cfg.base_features
    with torch.no_grad():
        outs = net(torch.zeros(1, 1, *patch))
    assert isinstance(outs, list) and len(outs) == n_stages - 1
    assert tuple(outs[0].shape) == (1, 14, *patch)
    cum = np.ones(3, dtype=int)
    for out, stride in zip(outs[1:], topo.strides[1:], strict=False):
        cum = cum * np.asarray(stride)
        assert tuple(out.shape[2:]) == tuple(np.asarray(patch) // cum)


def test_small_network_matches_paper_table():
    cfg = NETWORKS["small"]
    assert (cfg.base_features, cfg.max_downsamplings, cfg.n_conv_per_stage) == (16, 4, 2)
    assert cfg.max_features == 320 and cfg.deep_supervision
    assert NETWORKS["default"].base_features == 32 and NETWORKS["default"].max_downsamplings == 5


def test_deep_supervision_weights_like_nnunet():
    np.testing.assert_allclose(deep_supervision_weights(4), np.array([1, 0.5, 0.25, 0]) / 1.75)
    np.testing.assert_allclose(deep_supervision_weights(1), [1.0])


def test_unknown_names_suggest_the_closest():
    with pytest.raises(KeyError, match="Did you mean 'quick'"):
        get_preset("quik")
    with pytest.raises(KeyError, match="Did you mean 'small'"):
        get_network_config("smal")


def test_config_validation_errors():
    with pytest.raises(ValueError, match="base_features must be a positive int"):
        NetworkConfig(base_features=0)
    with pytest.raises(ValueError, match="max_features must be >= base_features"):
        NetworkConfig(base_features=64, max_features=32)
    with pytest.raises(ValueError, match="iterations must be a positive int"):
        get_preset("tiny", iterations=0)
    with pytest.raises(ValueError, match="iterations must be a positive int, got True"):
        get_preset("tiny", iterations=True)
    with pytest.raises(ValueError, match="base_features must be a positive int, got True"):
        NetworkConfig(base_features=True)
    with pytest.raises(ValueError, match="head must be one of"):
        get_preset("tiny", head="softmin")


def _tiny_segmenter() -> NetworkSegmenter:
    torch.manual_seed(0)
    cfg = get_preset("tiny")
    topo = plan_topology(cfg.patch_size, cfg.spacing, cfg.network.max_downsamplings)
    net = build_network(cfg.network, topo, 1, 3)
    plan = SegmentationPlan(cfg.patch_size, cfg.spacing, num_classes=3)
    return NetworkSegmenter.from_network(net, plan, cfg.network, topo)


def test_predict_logits_full_resolution_only_and_eval_mode():
    seg = _tiny_segmenter()
    seg.network.train()
    x = torch.randn(2, 1, 8, 16, 16)
    out = seg.predict_logits(x)
    assert tuple(out.shape) == (2, 3, 8, 16, 16) and not out.requires_grad
    assert seg.network.training  # restored
    assert seg.network.decoder.deep_supervision  # restored


def test_predict_logits_wrong_channel_count_raises():
    seg = _tiny_segmenter()
    with pytest.raises(ValueError, match="expected 1 input channel"):
        seg.predict_logits(torch.zeros(1, 2, 8, 16, 16))
    with pytest.raises(ValueError, match="5D"):
        seg.predict_logits(torch.zeros(1, 8, 16, 16))


def test_segmenter_rejects_non_module():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        NetworkSegmenter.from_network("net", SegmentationPlan((8, 8, 8), (1, 1, 1)))
    with pytest.raises(TypeError, match="NetworkSegmenter takes a NetworkSegmenterConfig"):
        NetworkSegmenter(torch.nn.Identity())


def test_segmenter_from_its_config_has_the_same_architecture():
    seg = _tiny_segmenter()
    again = NetworkSegmenter.from_config(seg.to_config())
    assert again.to_config() == seg.to_config()
    shapes = {k: v.shape for k, v in seg.network.state_dict().items()}
    assert {k: v.shape for k, v in again.network.state_dict().items()} == shapes
    bare = NetworkSegmenter.from_network(torch.nn.Identity(), seg.plan)
    with pytest.raises(ValueError, match="wraps a bare module"):
        bare.to_config()
