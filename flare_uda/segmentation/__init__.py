"""flare_uda.segmentation: U-Nets (nnU-Net's PlainConvUNet), training, segmenters.

Public API::

    get_preset(name, **overrides) -> TrainConfig       # "paper", "default", "quick", "tiny"
    train_segmenter(cases, config, work_dir=None, val_cases=None, progress=True)
        -> NetworkSegmenter
    Trainer(config, work_dir=None, progress=True).fit(cases, val_cases=None) -> self
        (.segmenter_, .history_)
    NetworkSegmenter(plan=..., strides=..., kernel_sizes=..., architecture=...)  # untrained
    NetworkSegmenter.from_network(network, plan, network_config, topology)
        .predict_logits(batch "b c z y x") -> "b k z y x"
        .save(dir) ; NetworkSegmenter.load(dir)
"""

from flare_uda.inference.segmenter import SEGMENTERS, SegmentationPlan, Segmenter
from flare_uda.segmentation.augment import AugmentConfig
from flare_uda.segmentation.config import PRESETS, TrainConfig, get_preset
from flare_uda.segmentation.network_segmenter import NetworkSegmenter, NetworkSegmenterConfig
from flare_uda.segmentation.networks import (
    NETWORKS,
    NetworkConfig,
    Topology,
    build_network,
    get_network_config,
    plan_topology,
)
from flare_uda.segmentation.nnunet import NnUNetSegmenter
from flare_uda.segmentation.trainer import Trainer, train_segmenter

__all__ = [
    "NETWORKS",
    "SEGMENTERS",
    "PRESETS",
    "AugmentConfig",
    "NetworkConfig",
    "NetworkSegmenter",
    "NetworkSegmenterConfig",
    "NnUNetSegmenter",
    "SegmentationPlan",
    "Segmenter",
    "Topology",
    "TrainConfig",
    "Trainer",
    "build_network",
    "get_network_config",
    "get_preset",
    "plan_topology",
    "train_segmenter",
]
