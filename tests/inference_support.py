"""Tiny segmenters with analytic outputs, shared by the inference tests."""

from __future__ import annotations

import numpy as np
import torch

from flare_uda.inference.segmenter import SegmentationPlan, Segmenter
from flare_uda.segmentation.network_segmenter import NetworkSegmenter
from flare_uda.segmentation.networks import NetworkConfig, build_network, plan_topology
from flare_uda.volume import Volume


class ModuleSegmenter(Segmenter):
    """A Segmenter around any torch module (CPU)."""

    def __init__(self, plan: SegmentationPlan, module: torch.nn.Module) -> None:
        self.plan = plan
        self.module = module.eval()
        self.calls = 0

    def predict_logits(self, batch: torch.Tensor) -> torch.Tensor:
        self.check_batch(batch)
        self.calls += batch.shape[0]
        return self.module(batch)


def threshold_net(levels: tuple[float, ...] = (1.0, 3.0)) -> torch.nn.Module:
    """Pointwise logits whose argmax is the number of ``levels`` below the intensity.

    Class ``c`` has logit ``c * x - sum(levels[:c])``, so class c wins exactly
    on ``levels[c-1] < x < levels[c]``; 0 intensity gives class 0.
    """
    k = len(levels) + 1
    conv = torch.nn.Conv3d(1, k, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(k, dtype=torch.float32).view(k, 1, 1, 1, 1))
        conv.bias.copy_(-torch.tensor([sum(levels[:c]) for c in range(k)], dtype=torch.float32))
    return conv


def threshold_labels(array: np.ndarray, levels: tuple[float, ...] = (1.0, 3.0)) -> np.ndarray:
    """The analytic labels of :func:`threshold_net`."""
    return np.digitize(array, levels).astype(np.uint8)


def plan(patch=(8, 16, 16), spacing=(2.0, 1.0, 1.0), k=3, **kw) -> SegmentationPlan:
    """A small plan with ``"none"`` normalisation (intensities reach the net unchanged)."""
    kw.setdefault("normalization", "none")
    return SegmentationPlan(patch_size=patch, spacing=spacing, num_classes=k, **kw)


def blob_volume(shape=(20, 40, 36), spacing=(2.0, 1.0, 1.0), margin=(4, 10, 8), seed=0) -> Volume:
    """Zero background with a box "body" (intensity 2) holding a bright block (intensity 4)."""
    rng = np.random.default_rng(seed)
    arr = np.zeros(shape, dtype=np.float32)
    inner = tuple(slice(m, s - m) for m, s in zip(margin, shape, strict=True))
    arr[inner] = 2.0
    c = [s // 2 for s in shape]
    arr[c[0] - 2 : c[0] + 2, c[1] - 4 : c[1] + 4, c[2] - 3 : c[2] + 4] = 4.0
    arr[inner] += rng.uniform(-0.2, 0.2, size=arr[inner].shape).astype(np.float32)
    return Volume(arr, spacing, origin=(5.0, -3.0, 2.5))


def tiny_network_segmenter(seed: int = 0, base_features: int = 4) -> NetworkSegmenter:
    """A random 14-class U-Net (patch 8x16x16, 2 mm) that can be saved and loaded."""
    torch.manual_seed(seed)
    config = NetworkConfig(
        base_features=base_features, max_downsamplings=2, max_features=8, deep_supervision=False
    )
    plan = SegmentationPlan((8, 16, 16), (2.0, 2.0, 2.0), num_classes=14, normalization="zscore")
    topo = plan_topology(plan.patch_size, plan.spacing, config.max_downsamplings)
    return NetworkSegmenter.from_network(build_network(config, topo, 1, 14), plan, config, topo)
