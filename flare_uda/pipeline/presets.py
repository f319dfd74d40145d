"""The pipeline presets: ``quick`` and ``cpu`` (CPU), ``tiny`` (tests), ``paper`` (GPU)."""

from __future__ import annotations

from flare_uda.options import fields_of
from flare_uda.pipeline.config import (
    ABLATION_SETTINGS,
    DataConfig,
    SegmentationConfig,
    UDAConfig,
)
from flare_uda.plugin import spec
from flare_uda.pseudolabel import SelfTrainingConfig
from flare_uda.registration import MDMConfig
from flare_uda.registry import unknown_name_error
from flare_uda.translation import PRESETS as GAN_PRESETS


# CPU: the quick2d recipe (a slice-wise net, Adam, adaptive class sampling, bf16
# where native; the fastest learner per minute measured, docs/benchmarks.md), each
# training stopped by a wall-clock budget rather than a step count, so a preset
# takes the same time on any machine (a slower one trains fewer steps).
def _budgeted(minutes: float) -> SegmentationConfig:
    return SegmentationConfig("quick2d", {"iterations": 1_000_000, "time_budget_minutes": minutes})


# MDM's quality gate on the CPU presets (not in the paper, so not in ``paper``):
# a moved label is used only where it agrees with the case's own pseudo-label at
# mean Dice >= 0.5 on liver, kidneys and spleen. Measured with 2-minute trainings
# (docs/results.md): phantom ASIT + MDM 26.9 -> 31.6, + PLF 31.2 -> 33.2 (2 of 3
# transfers refused); real CHAOS T2 2.6 -> 15.1 and 2.5 -> 16.8 (all 5 refused:
# the better sequence is one partial-field-of-view case).
_GATED_MDM = MDMConfig(gate_organs=(1, 2, 3, 13), gate_dice=0.5)

_TINY_SEG = {"iterations": 2, "spacing": (10.0, 7.0, 7.0), "patch_size": (16, 48, 48)}

PRESETS: dict[str, UDAConfig] = {
    # CPU, 2 cores: the method's ablation in about 15 minutes (the README's first
    # command). Six trainings of 2 minutes; the later stages start from the earlier
    # ones' weights (warm_start), the oracle from ASIT's (from scratch it reached
    # 62.5, from ASIT 71.1-72.9: docs/results.md). The image-space CycleGAN row is
    # left to ``cpu`` (its translator and segmenter would cost 3 of the 15 minutes).
    "quick": UDAConfig(
        data=DataConfig(preset="quick", n_ct=8, n_mr=6, n_mr_test=4),
        translation=spec("translator", "asit", iterations=300),
        inference=spec("inferer", "sliding_window", step=1.0),
        segmentation=_budgeted(2.0),
        final_segmentation=_budgeted(2.0),
        mdm=_GATED_MDM,
        warm_start=True,
        ablation=("only_ct", "asit", "asit_mdm", "asit_mdm_plf", "oracle"),
    ),
    # CPU, 2 cores, under 60 minutes: every setting of the paper's Table 7 and the
    # library's chain with the CT atlas (MDM's labels completed from CT, organ-wise
    # PLF), ten trainings of 5 minutes (MDM gated, as in ``quick``). Warm-started as
    # in ``quick``. With 6-minute trainings (docs/results.md): the paper's chain 44.5
    # (55 % of the oracle), the CT-atlas chain 53.2 (66 %), oracle 80.9; retrained
    # from scratch as in the paper (warm_start: false), ASIT + MDM and + PLF fell
    # below ASIT (45.6 -> 42.0 -> 38.6) and the oracle reached 73.8.
    "cpu": UDAConfig(
        data=DataConfig(preset="quick", n_ct=8, n_mr=6, n_mr_test=4),
        translation=spec("translator", "asit"),
        inference=spec("inferer", "sliding_window", step=1.0),
        segmentation=_budgeted(5.0),
        final_segmentation=_budgeted(5.0),
        mdm=_GATED_MDM,
        warm_start=True,
        ablation=(*ABLATION_SETTINGS[:-1], "asit_mdm_atlas", "asit_mdm_atlas_plf", "oracle"),
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
