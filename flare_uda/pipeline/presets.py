"""The pipeline presets: ``quick`` and ``cpu`` (CPU), ``tiny`` (tests), ``paper`` (GPU)."""

from __future__ import annotations

from flare_uda.options import fields_of
from flare_uda.pipeline.config import DataConfig, SegmentationConfig, UDAConfig
from flare_uda.plugin import spec
from flare_uda.pseudolabel import SelfTrainingConfig
from flare_uda.registry import unknown_name_error
from flare_uda.translation import PRESETS as GAN_PRESETS

# CPU: Adam instead of SGD 0.99 (a few hundred SGD steps still predict background
# everywhere on the phantom; measured, docs/results.md), few iterations.
_QUICK_SEG = {"iterations": 100, "optimizer": "adam", "learning_rate": 0.01}
_TINY_SEG = {"iterations": 2, "spacing": (10.0, 7.0, 7.0), "patch_size": (16, 48, 48)}

PRESETS: dict[str, UDAConfig] = {
    # CPU, 2 cores: the whole method + ablation in about 10 minutes.
    "quick": UDAConfig(
        data=DataConfig(preset="quick", n_ct=8, n_mr=6, n_mr_test=4),
        translation=spec("translator", "asit", iterations=300),
        inference=spec("inferer", "sliding_window", step=1.0),
        segmentation=SegmentationConfig("quick", _QUICK_SEG),
        final_segmentation=SegmentationConfig("quick", _QUICK_SEG),
    ),
    # CPU, meaningful numbers: 1000 Adam steps per segmenter (one such training
    # reaches 0.35 mean DSC on held-out phantom MR, docs/results.md); about
    # 10 min per model on 2 cores, so roughly 75 min for the whole ablation.
    "cpu": UDAConfig(
        data=DataConfig(preset="quick", n_ct=8, n_mr=6, n_mr_test=4),
        translation=spec("translator", "asit"),
        segmentation=SegmentationConfig("quick", {**_QUICK_SEG, "iterations": 1000}),
        final_segmentation=SegmentationConfig("quick", {**_QUICK_SEG, "iterations": 1000}),
    ),
    # Tests / CI end-to-end: seconds per stage, numbers meaningless.
    "tiny": UDAConfig(
        data=DataConfig(preset="tiny", n_ct=2, n_mr=4, n_mr_test=2),
        translation=spec("translator", "asit", iterations=2),
        # The tiny phantom is sampled at ~(11, 7, 7) mm: train near that grid, on
        # patches that cover most of a volume (few windows at inference).
        segmentation=SegmentationConfig("tiny", _TINY_SEG),
        final_segmentation=SegmentationConfig("tiny", _TINY_SEG),
        self_training=SelfTrainingConfig(rounds=2),
    ),
    # The paper's Tables 1, 2 and 4 (GPU): full-size phantom, small nnU-Net,
    # sigmoid head, 3 self-training rounds.
    "paper": UDAConfig(
        data=DataConfig(preset="paper", n_ct=50, n_mr=100, n_mr_test=20),
        translation=spec("translator", "asit", **fields_of(GAN_PRESETS["paper"])),
        segmentation=SegmentationConfig("default"),
        final_segmentation=SegmentationConfig("paper", {"head": "sigmoid"}),
        self_training=SelfTrainingConfig(rounds=3),
    ),
}


def get_preset(name: str) -> UDAConfig:
    """The pipeline preset ``name`` (``quick``, ``cpu``, ``tiny``, ``paper``)."""
    if not isinstance(name, str):
        raise TypeError(f"pipeline preset name must be a str, got {type(name).__name__}")
    try:
        return PRESETS[name]
    except KeyError:
        raise unknown_name_error("pipeline preset", name, list(PRESETS)) from None
