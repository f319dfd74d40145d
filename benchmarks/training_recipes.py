"""Training recipes compared by ``bench_training.py``: named TrainConfig overrides.

Every recipe is a segmentation preset (``quick``: the 3D net, ``quick2d``: the
slice-wise net; phantom ``quick`` cohort, per-image z-score) with the overrides
its name says. ``today`` is the
recipe of the ``cpu`` pipeline preset before the learning-budget work (Adam lr
0.01, 3D net, fp32, nnU-Net's uniform class sampling).
"""

from __future__ import annotations

from flare_uda.segmentation import NetworkConfig, get_preset


def slice_net(base_features: int) -> NetworkConfig:
    """The ``quick2d`` slice-wise topology with ``base_features`` channels (cap 16x)."""
    return NetworkConfig(base_features=base_features, max_downsamplings=5,
                         max_features=16 * base_features, spatial_dims=2)  # fmt: skip


SLICE_NET = slice_net(8)

# name -> (segmentation preset, overrides). The 3D recipes start from ``quick``.
RECIPES: dict[str, tuple[str, dict]] = {
    "today": ("quick", {"optimizer": "adam", "learning_rate": 0.01, "precision": "fp32"}),
    "bf16": ("quick", {"optimizer": "adam", "learning_rate": 0.01, "precision": "auto"}),
    "channels_last": (
        "quick",
        {"optimizer": "adam", "learning_rate": 0.01, "precision": "fp32",
         "channels_last": True},
    ),
    "adaptive": (
        "quick",
        {"optimizer": "adam", "learning_rate": 0.01, "precision": "auto",
         "class_sampling": "adaptive"},
    ),
    # 8-slice stacks through the slice-wise net (a 2.5D batch): measured worse.
    "slices": (
        "quick",
        {"optimizer": "adam", "learning_rate": 0.01, "precision": "auto", "network": SLICE_NET,
         "patch_size": (8, 128, 128)},
    ),
    # the chosen CPU recipe: the ``quick2d`` segmentation preset as it is.
    "quick2d": ("quick2d", {}),
    # quick2d before the batch/lr measurements: 16 slices per step, lr 0.01.
    "quick2d_b16": ("quick2d", {"batch_size": 16, "learning_rate": 0.01, "warmup": 0.0}),
    # channels_last_3d on or off: measured as ``quick2d_cl`` against ``quick2d``
    # while quick2d was contiguous; since then on in quick2d (so quick2d_cl is
    # quick2d) and the former recipe is ``quick2d_contiguous``.
    "quick2d_cl": ("quick2d", {"channels_last": True}),
    "quick2d_contiguous": ("quick2d", {"channels_last": False}),
    # wider slice-wise nets (more compute per step, maybe more learning per step).
    "quick2d_w12": ("quick2d", {"network": slice_net(12)}),
    "quick2d_w16": ("quick2d", {"network": slice_net(16)}),
    "quick2d_w16_cl": ("quick2d", {"channels_last": True, "network": slice_net(16)}),
    # learning per step at 2 minutes (2026-12-01, after the loss fix): a higher
    # peak learning rate, and half the batch (twice the steps).
    "quick2d_lr04": ("quick2d", {"learning_rate": 0.04}),
    "quick2d_b4": ("quick2d", {"batch_size": 4}),
    "quick2d_b4_lr04": ("quick2d", {"batch_size": 4, "learning_rate": 0.04}),
    # z-context (2.5D): each slice with 1 or 2 slices on either side as input channels.
    "quick2d_n1": ("quick2d", {"neighbour_slices": 1}),
    "quick2d_n2": ("quick2d", {"neighbour_slices": 2}),
}  # fmt: skip


def recipe_config(name: str, budget_minutes: float, seed: int = 0):
    """The :class:`TrainConfig` of recipe ``name`` with a wall-clock budget."""
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; known: {sorted(RECIPES)}")
    preset, overrides = RECIPES[name]
    return get_preset(
        preset,
        normalization="zscore",
        iterations=1_000_000,
        time_budget_minutes=float(budget_minutes),
        val_every=1_000_000,
        checkpoint_every=1_000_000,
        seed=seed,
        **overrides,
    )
