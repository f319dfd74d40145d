"""Training configuration (frozen dataclass) and the named presets.

Presets
-------
``paper``   the paper's small net (Table 1): 16 base channels, 4 downsamplings,
            patch 40x224x192 at spacing (2.5, 0.81, 0.81), deep supervision.
``default`` nnU-Net-like: 32 base channels, 5 downsamplings, 1000 x 250 steps.
``quick``   CPU demo on the phantom's ``quick`` cohort: 8 base channels, patch
            32x64x64 at (5, 3, 3) mm, 400 steps.
``quick2d`` CPU budgets on the same grid: a slice-wise (2D) net, 8 single slices
            of 128x128 per step, Adam, adaptive class sampling, bf16 where the
            CPU has it, channels_last_3d (the fastest learner per minute
            measured here).
``tiny``    unit tests on the phantom's ``tiny`` grid: seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from flare_uda._validation import as_triplet, require_choice
from flare_uda.inference.neighbour_slices import require_neighbour_slices
from flare_uda.options import added_option, omitted_at_default
from flare_uda.registry import unknown_name_error
from flare_uda.segmentation.augment import AugmentConfig
from flare_uda.segmentation.base import HEADS
from flare_uda.segmentation.networks import NETWORKS, NetworkConfig
from flare_uda.segmentation.organ_sampling import CLASS_SAMPLINGS
from flare_uda.segmentation.precision import PRECISIONS
from flare_uda.segmentation.schedule import OPTIMIZERS

SCHEMES = ("auto", "ct", "zscore", "none")


@dataclass(frozen=True)
class TrainConfig:
    """Everything :func:`~flare_uda.segmentation.trainer.train_segmenter` needs.

    Parameters
    ----------
    network : NetworkConfig
    patch_size : tuple of 3 int
        Training patch (z, y, x) in voxels at ``spacing``; must be divisible by
        the network's total stride (an error says the nearest valid size).
    spacing : tuple of 3 float
        Target spacing (z, y, x) in mm; every case is resampled to it once.
    normalization : {"auto", "ct", "zscore", "none"}
        ``"auto"``: ``"ct"`` (clip + z-score with dataset foreground statistics)
        for CT cases, ``"zscore"`` (per image) for MR. Fake MR from translation
        may want ``"zscore"`` or ``"none"``.
    head : {"softmax", "sigmoid"}
        Softmax + marginal Dice/CE, or the paper's per-organ sigmoid + BCE/Dice.
    num_classes : int
        Output channels including background (14 for FLARE).
    iterations : int
        Optimiser steps in total.
    batch_size : int
    learning_rate, momentum, weight_decay, poly_exponent : float
        SGD with Nesterov momentum and nnU-Net's poly decay.
    oversample_foreground : float
        Fraction of each batch centred on a foreground voxel (nnU-Net: 0.33).
    val_every : int
        Validate (and checkpoint) every this many iterations (an "epoch").
    checkpoint_every : int
        Write the ``latest`` checkpoint every this many iterations.
    augment : AugmentConfig
    seed : int
    optimizer : {"sgd", "adam", "adamw"}
        ``"sgd"``: the paper's SGD with Nesterov momentum (nnU-Net). ``"adam"``:
        Adam with the same poly decay; on CPU budgets of a few hundred steps SGD
        0.99 still predicts background everywhere on the phantom while Adam
        (lr 0.003-0.01) already segments the large organs (measured, see
        docs/results.md), so the CPU presets use it. ``"adamw"``: AdamW.
    time_budget_minutes : float or None
        Wall-clock budget of the training loop: the poly decay follows the
        elapsed fraction of the budget and the run stops when it is spent (or
        at ``iterations``, whichever comes first). ``None``: steps only.
    warmup : float
        Fraction of the run with a linear learning-rate warm-up from 0.
    precision : {"auto", "fp32", "bf16"}
        ``"auto"``: bf16 autocast on CUDA and on CPUs with native bf16, else
        fp32 (:mod:`~flare_uda.segmentation.precision`).
    channels_last : bool
        Network and batches in ``channels_last_3d`` memory format.
    canonical : bool
        Train (and predict) on every scan in the canonical layout
        (:mod:`flare_uda.data.orientation`): scans stored mirrored or permuted reach
        the network alike. False: the arrays as stored (for the ablation).
    class_sampling : {"uniform", "adaptive"}
        How foreground patch centres choose their class: ``"uniform"`` over the
        classes present (nnU-Net) or ``"adaptive"``, weighted towards the
        classes with low running Dice on the training batches
        (:mod:`~flare_uda.segmentation.organ_sampling`).
    neighbour_slices : int
        ``k`` > 0: a slice-wise network (``network.spatial_dims=2``) sees each slice
        with the ``k`` slices on either side as extra input channels (2.5D; stacked
        at the training grid, and alike at inference through the plan). 0: one slice.
    """

    network: NetworkConfig = field(default_factory=lambda: NETWORKS["small"])
    patch_size: tuple[int, int, int] = (40, 224, 192)
    spacing: tuple[float, float, float] = (2.5, 0.81, 0.81)
    normalization: str = "auto"
    head: str = "softmax"
    num_classes: int = 14
    iterations: int = 250_000
    batch_size: int = 2
    learning_rate: float = 0.01
    momentum: float = 0.99
    weight_decay: float = 3e-5
    poly_exponent: float = 0.9
    oversample_foreground: float = 0.33
    val_every: int = 250
    checkpoint_every: int = 50
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    optimizer: str = "sgd"
    time_budget_minutes: float | None = None
    warmup: float = 0.0
    precision: str = "auto"
    channels_last: bool = False
    class_sampling: str = "uniform"
    canonical: bool = True
    neighbour_slices: int = added_option(0)

    def __post_init__(self) -> None:
        if not isinstance(self.canonical, bool):
            raise TypeError(f"canonical must be a bool, got {self.canonical!r}")
        k = require_neighbour_slices(self.neighbour_slices)
        if k and self.network.spatial_dims != 2:
            raise ValueError(
                f"neighbour_slices gives a slice-wise network (network.spatial_dims=2) the "
                f"slices around each one; a 3D network already sees them through its kernels, "
                f"got neighbour_slices={k} with spatial_dims={self.network.spatial_dims}"
            )
        require_choice(self.optimizer, OPTIMIZERS, "optimizer")
        require_choice(self.precision, PRECISIONS, "precision")
        require_choice(self.class_sampling, CLASS_SAMPLINGS, "class_sampling")
        if not isinstance(self.channels_last, bool):
            raise TypeError(f"channels_last must be a bool, got {self.channels_last!r}")
        budget = self.time_budget_minutes
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0
        ):
            raise ValueError(f"time_budget_minutes must be a number > 0 or None, got {budget!r}")
        if isinstance(self.warmup, bool) or not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup must be a fraction in [0, 1), got {self.warmup!r}")
        if not isinstance(self.network, NetworkConfig):
            raise TypeError(f"network must be a NetworkConfig, got {type(self.network).__name__}")
        if not isinstance(self.augment, AugmentConfig):
            raise TypeError(f"augment must be an AugmentConfig, got {type(self.augment).__name__}")
        patch = tuple(int(p) for p in self.patch_size)
        if len(patch) != 3 or min(patch) < 1:
            raise ValueError(f"patch_size must be 3 positive ints (z, y, x), got {self.patch_size}")
        object.__setattr__(self, "patch_size", patch)
        object.__setattr__(self, "spacing", as_triplet(self.spacing, "spacing", positive=True))
        require_choice(self.normalization, SCHEMES, "normalization")
        require_choice(self.head, HEADS, "head")
        for name in ("num_classes", "iterations", "batch_size", "val_every", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0 or self.poly_exponent < 0:
            raise ValueError(
                f"weight_decay and poly_exponent must be >= 0, got {self.weight_decay} and "
                f"{self.poly_exponent}"
            )
        if not 0.0 <= self.oversample_foreground <= 1.0:
            raise ValueError(
                f"oversample_foreground must be in [0, 1], got {self.oversample_foreground}"
            )

    def with_overrides(self, **kwargs) -> TrainConfig:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **kwargs)

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        d = asdict(self)
        d["patch_size"] = list(self.patch_size)
        d["spacing"] = list(self.spacing)
        for name in omitted_at_default(self):  # as to_plain: older keys stay equal
            del d[name]
        for name in omitted_at_default(self.augment):
            del d["augment"][name]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["network"] = NetworkConfig.from_dict(d["network"])
        aug = dict(d["augment"])
        aug["scaling"] = tuple(aug["scaling"])
        aug["mirror_axes"] = tuple(aug["mirror_axes"])
        d["augment"] = AugmentConfig(**aug)
        return cls(**d)


PRESETS: dict[str, TrainConfig] = {
    "paper": TrainConfig(),
    "default": TrainConfig(
        network=NETWORKS["default"],
        patch_size=(40, 224, 192),
        iterations=250_000,
    ),
    # CPU demo on the phantom's "quick" cohort (CT ~5 x 3 x 3 mm, MR ~7 x 3.5 x 3.5
    # mm): trained near the data's own spacing, no upsampling work. Patch
    # 32x64x64 at (5, 3, 3) mm covers 160 x 192 x 192 mm, half the abdomen in
    # plane; 8 base channels keep a step around a second on 2 idle cores (the
    # paper's small net: ~8 s per step on 32x128x128). Adrenal glands remain a
    # few voxels thick. Mirroring is off: left/right kidney and adrenal labels
    # are told apart only by context, which a few hundred CPU steps cannot learn
    # under flips. Elastic deformation is off (CPU cost).
    "quick": TrainConfig(
        network=NetworkConfig(base_features=8, max_downsamplings=4, max_features=128),
        patch_size=(32, 64, 64),
        spacing=(5.0, 3.0, 3.0),
        iterations=400,
        batch_size=2,
        val_every=100,
        checkpoint_every=25,
        augment=AugmentConfig(mirror_axes=(), p_elastic=0.0),
    ),
    # CPU budgets on the quick grid: nnU-Net's 2d configuration (a slice-wise net,
    # spatial_dims=2) fed 8 single slices per step (16 learned no more per second
    # of compute), lr 0.02 after a 5 % warm-up (0.01 learned slower), each drawn
    # from anywhere in the training cases (a 3D batch holds two locations), Adam,
    # class sampling weighted towards organs with low running Dice, bf16 autocast
    # where the CPU has it, channels_last_3d memory layout (+22-39 % steps per
    # minute and +3-6 DSC at 2 and 5 minutes, docs/benchmarks.md). In-plane
    # rotation and scaling are off: at CPU budgets they slowed learning more than
    # they helped (benchmarks/bench_training.py, docs/benchmarks.md).
    "quick2d": TrainConfig(
        network=NetworkConfig(
            base_features=8, max_downsamplings=5, max_features=128, spatial_dims=2
        ),
        patch_size=(1, 128, 128),
        spacing=(5.0, 3.0, 3.0),
        iterations=2000,
        batch_size=8,
        optimizer="adam",
        learning_rate=0.02,
        warmup=0.05,
        class_sampling="adaptive",
        precision="auto",
        channels_last=True,
        val_every=250,
        checkpoint_every=50,
        augment=AugmentConfig(rotation_deg=0.0, scaling=(1.0, 1.0), mirror_axes=(), p_elastic=0.0),
    ),
    "tiny": TrainConfig(
        network=NetworkConfig(base_features=4, max_downsamplings=2, max_features=16),
        patch_size=(8, 16, 16),
        spacing=(10.0, 6.5, 6.5),  # about the phantom's "tiny" grid: no resampling work
        iterations=4,
        batch_size=2,
        val_every=2,
        checkpoint_every=1,
        augment=AugmentConfig(mirror_axes=(), rotation_deg=15.0),
    ),
}


def get_preset(name: str, **overrides) -> TrainConfig:
    """The preset called ``name`` with ``overrides`` applied.

    Raises
    ------
    KeyError
        For an unknown preset, naming the closest one.
    """
    try:
        config = PRESETS[name]
    except KeyError:
        raise unknown_name_error("segmentation preset", str(name), list(PRESETS)) from None
    return config.with_overrides(**overrides) if overrides else config
