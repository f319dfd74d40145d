"""Training recipes compared by ``bench_training.py``: named TrainConfig overrides.

Every recipe starts from the ``quick`` segmentation preset (phantom ``quick``
cohort, per-image z-score) and changes what its name says. ``today`` is the
recipe of the ``cpu`` pipeline preset before the learning-budget work (Adam lr
0.01, 3D net, fp32, nnU-Net's uniform class sampling).
"""

from __future__ import annotations

from flare_uda.segmentation import NetworkConfig, get_preset

SLICE_NET = NetworkConfig(base_features=8, max_downsamplings=5, max_features=128, spatial_dims=2)

RECIPES: dict[str, dict] = {
    "today": {"optimizer": "adam", "learning_rate": 0.01, "precision": "fp32"},
    "bf16": {"optimizer": "adam", "learning_rate": 0.01, "precision": "auto"},
    "channels_last": {
        "optimizer": "adam", "learning_rate": 0.01, "precision": "fp32", "channels_last": True,
    },
    "adaptive": {
        "optimizer": "adam", "learning_rate": 0.01, "precision": "auto",
        "class_sampling": "adaptive",
    },
    "slices": {
        "optimizer": "adam", "learning_rate": 0.01, "precision": "auto",
        "network": SLICE_NET, "patch_size": (8, 128, 128),
    },
    "slices_adaptive": {
        "optimizer": "adam", "learning_rate": 0.01, "precision": "auto",
        "network": SLICE_NET, "patch_size": (8, 128, 128), "class_sampling": "adaptive",
    },
}  # fmt: skip


def recipe_config(name: str, budget_minutes: float, seed: int = 0):
    """The :class:`TrainConfig` of recipe ``name`` with a wall-clock budget."""
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; known: {sorted(RECIPES)}")
    return get_preset(
        "quick",
        normalization="zscore",
        iterations=1_000_000,
        time_budget_minutes=float(budget_minutes),
        val_every=1_000_000,
        checkpoint_every=1_000_000,
        seed=seed,
        **RECIPES[name],
    )
