"""nnU-Net U-Nets (``PlainConvUNet``) configured by frozen dataclasses.

The architecture itself comes from ``dynamic_network_architectures`` (what
nnunetv2 builds); the strides and kernel sizes come from nnunetv2's own planner
(:func:`get_pool_and_conv_props`), so a patch and a spacing give the same
topology nnU-Net would plan. What is added here: a cap on the number of
downsamplings (the paper's small net has 4 although nnU-Net would plan 5 for
its 40x224x192 patch) and a JSON round trip for saving.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from torch import nn

from flare_uda._validation import as_triplet, require_int
from flare_uda.registry import unknown_name_error

MIN_FEATURE_MAP_SIZE = 4
"""nnU-Net's ``UNet_featuremap_min_edge_length``: smallest bottleneck edge."""


@dataclass(frozen=True)
class NetworkConfig:
    """A plain-convolution U-Net (nnU-Net's ``PlainConvUNet``).

    Parameters
    ----------
    base_features : int
        Channels of the first stage; doubled per stage up to ``max_features``.
    max_downsamplings : int
        At most this many poolings (stages = downsamplings + 1); fewer when the
        patch is too small for nnU-Net's planner to pool that often.
    max_features : int
        Channel cap (320 in nnU-Net 3D).
    n_conv_per_stage : int
        Convolutions per encoder stage.
    n_conv_per_stage_decoder : int
        Convolutions per decoder stage.
    deep_supervision : bool
        Return one output per decoder stage (full resolution first) in training.
    spatial_dims : {3, 2}
        3: nnU-Net's 3D topology. 2: a slice-wise network, nnU-Net's ``2d``
        configuration expressed with 3D operations (every kernel ``(1, k, k)``,
        every stride ``(1, s, s)``): a patch ``(z, y, x)`` is a stack of ``z``
        slices, so the training loop and every inferer work unchanged. On CPU a
        ``Conv3d`` with a ``(1, 3, 3)`` kernel runs as fast as the ``Conv2d`` it
        stands for (``benchmarks/bench_training.py --step-costs``).
    """

    base_features: int = 32
    max_downsamplings: int = 5
    max_features: int = 320
    n_conv_per_stage: int = 2
    n_conv_per_stage_decoder: int = 2
    deep_supervision: bool = True
    spatial_dims: int = 3

    def __post_init__(self) -> None:
        if self.spatial_dims not in (2, 3) or isinstance(self.spatial_dims, bool):
            raise ValueError(f"spatial_dims must be 2 or 3, got {self.spatial_dims!r}")
        for name in (
            "base_features",
            "max_downsamplings",
            "max_features",
            "n_conv_per_stage",
            "n_conv_per_stage_decoder",
        ):
            require_int(getattr(self, name), name, minimum=1)
        if self.max_features < self.base_features:
            raise ValueError(
                f"max_features must be >= base_features ({self.base_features}), "
                f"got {self.max_features}"
            )

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)

    def topology(self, patch_size: tuple, spacing: tuple) -> Topology:
        """The :class:`Topology` of this network for ``patch_size`` at ``spacing`` (z, y, x)."""
        if self.spatial_dims == 2:
            return plan_topology_2d(patch_size, self.max_downsamplings)
        return plan_topology(patch_size, spacing, self.max_downsamplings)

    @classmethod
    def from_dict(cls, d: dict) -> NetworkConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


NETWORKS: dict[str, NetworkConfig] = {
    # Table 1 of the paper: 16 channels, 2 convs per stage, 4 downsamplings.
    "small": NetworkConfig(base_features=16, max_downsamplings=4),
    # nnU-Net 3d_fullres-like.
    "default": NetworkConfig(base_features=32, max_downsamplings=5),
}


def get_network_config(name: str) -> NetworkConfig:
    """The :class:`NetworkConfig` called ``name`` (``"small"`` or ``"default"``)."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise unknown_name_error("network", str(name), list(NETWORKS)) from None


@dataclass(frozen=True)
class Topology:
    """Strides and kernel sizes per stage, as nnU-Net plans them.

    Attributes
    ----------
    strides : tuple of (z, y, x) int triplets
        One per stage; the first is ``(1, 1, 1)``.
    kernel_sizes : tuple of (z, y, x) int triplets
        One per stage.
    patch_size : tuple of 3 int
        The patch (z, y, x), divisible by the total stride per axis.
    """

    strides: tuple[tuple[int, int, int], ...]
    kernel_sizes: tuple[tuple[int, int, int], ...]
    patch_size: tuple[int, int, int]

    @property
    def n_stages(self) -> int:
        return len(self.strides)

    @property
    def divisor(self) -> tuple[int, int, int]:
        """Total stride per axis: the patch must be a multiple of it."""
        return tuple(int(v) for v in np.prod(np.asarray(self.strides), axis=0))  # type: ignore[return-value]


def plan_topology(
    patch_size: tuple[int, int, int],
    spacing: tuple[float, float, float],
    max_downsamplings: int,
    min_feature_map_size: int = MIN_FEATURE_MAP_SIZE,
) -> Topology:
    """Strides and kernel sizes for ``patch_size`` at ``spacing`` (both z, y, x).

    Runs nnunetv2's planner (``get_pool_and_conv_props``), keeps its first
    ``max_downsamplings`` poolings (the highest-resolution ones, so strides of a
    truncated net match nnU-Net's first stages) and the bottleneck's 3x3x3
    kernel. ``patch_size`` must already be divisible by the resulting total
    stride per axis.

    Raises
    ------
    ValueError
        If the patch is not divisible by the total stride, or too small to pool.
    """
    from nnunetv2.experiment_planning.experiment_planners.network_topology import (
        get_pool_and_conv_props,
    )

    patch = tuple(int(p) for p in patch_size)
    if len(patch) != 3 or min(patch) < 1:
        raise ValueError(f"patch_size must be 3 positive ints (z, y, x), got {patch_size}")
    spacing = as_triplet(spacing, "spacing", positive=True)
    if max_downsamplings < 1:
        raise ValueError(f"max_downsamplings must be >= 1, got {max_downsamplings}")
    _, pools, convs, _, _ = get_pool_and_conv_props(
        list(spacing), list(patch), min_feature_map_size, 999999
    )
    n_down = min(max_downsamplings, len(pools) - 1)
    if n_down < 1:
        raise ValueError(
            f"patch {patch} is too small to downsample (needs >= {2 * min_feature_map_size} "
            f"voxels on some axis)"
        )
    strides = tuple(tuple(int(s) for s in p) for p in pools[: n_down + 1])
    # nnU-Net's conv kernels: one per pooled stage, then the bottleneck (3, 3, 3).
    kernels = tuple(tuple(int(k) for k in c) for c in convs[:n_down]) + ((3, 3, 3),)
    topo = Topology(strides=strides, kernel_sizes=kernels, patch_size=patch)  # type: ignore[arg-type]
    bad = [p % d for p, d in zip(patch, topo.divisor, strict=True)]
    if any(bad):
        valid = tuple(int(np.ceil(p / d) * d) for p, d in zip(patch, topo.divisor, strict=True))
        raise ValueError(
            f"patch_size {patch} must be divisible by the total stride {topo.divisor} (z, y, x); "
            f"e.g. {valid}"
        )
    return topo


def plan_topology_2d(
    patch_size: tuple[int, int, int],
    max_downsamplings: int,
    min_feature_map_size: int = MIN_FEATURE_MAP_SIZE,
) -> Topology:
    """A slice-wise topology: ``(1, 3, 3)`` kernels and in-plane ``(1, 2, 2)`` strides.

    nnU-Net's ``2d`` configuration on the same data: as many in-plane poolings
    as keep the bottleneck at least ``min_feature_map_size`` voxels on both
    in-plane axes, at most ``max_downsamplings``.

    Raises
    ------
    ValueError
        If the in-plane patch cannot be pooled once or is not divisible by the
        total stride.
    """
    patch = tuple(int(p) for p in patch_size)
    if len(patch) != 3 or min(patch) < 1:
        raise ValueError(f"patch_size must be 3 positive ints (z, y, x), got {patch_size}")
    if max_downsamplings < 1:
        raise ValueError(f"max_downsamplings must be >= 1, got {max_downsamplings}")
    n_down = 0
    while n_down < max_downsamplings and min(patch[1:]) // 2 ** (n_down + 1) >= (
        min_feature_map_size
    ):
        n_down += 1
    if n_down < 1:
        raise ValueError(
            f"patch {patch} is too small to downsample in plane (needs >= "
            f"{2 * min_feature_map_size} voxels in y and x)"
        )
    strides = ((1, 1, 1),) + ((1, 2, 2),) * n_down
    kernels = ((1, 3, 3),) * (n_down + 1)
    topo = Topology(strides=strides, kernel_sizes=kernels, patch_size=patch)  # type: ignore[arg-type]
    if any(p % d for p, d in zip(patch, topo.divisor, strict=True)):
        valid = tuple(int(np.ceil(p / d) * d) for p, d in zip(patch, topo.divisor, strict=True))
        raise ValueError(
            f"patch_size {patch} must be divisible by the total stride {topo.divisor} (z, y, x); "
            f"e.g. {valid}"
        )
    return topo


def build_network(
    config: NetworkConfig,
    topology: Topology,
    in_channels: int = 1,
    num_classes: int = 14,
) -> nn.Module:
    """A ``PlainConvUNet`` with InstanceNorm and LeakyReLU, as nnU-Net builds it.

    Returns
    -------
    torch.nn.Module
        Maps ``"b c z y x"`` to ``"b k z y x"`` logits; with deep supervision
        (``config.deep_supervision`` and ``net.decoder.deep_supervision`` True)
        a list of logits, full resolution first, each coarser by the stride.
    """
    from dynamic_network_architectures.architectures.unet import PlainConvUNet
    from dynamic_network_architectures.initialization.weight_init import InitWeights_He

    if in_channels < 1 or num_classes < 2:
        raise ValueError(
            f"expected in_channels >= 1 and num_classes >= 2, got {in_channels} and {num_classes}"
        )
    n = topology.n_stages
    features = [min(config.base_features * 2**i, config.max_features) for i in range(n)]
    net = PlainConvUNet(
        input_channels=in_channels,
        n_stages=n,
        features_per_stage=features,
        conv_op=nn.Conv3d,
        kernel_sizes=[list(k) for k in topology.kernel_sizes],
        strides=[list(s) for s in topology.strides],
        n_conv_per_stage=config.n_conv_per_stage,
        num_classes=num_classes,
        n_conv_per_stage_decoder=config.n_conv_per_stage_decoder,
        conv_bias=True,
        norm_op=nn.InstanceNorm3d,
        norm_op_kwargs={"eps": 1e-5, "affine": True},
        nonlin=nn.LeakyReLU,
        nonlin_kwargs={"inplace": True},
        deep_supervision=config.deep_supervision,
    )
    net.apply(InitWeights_He(1e-2))
    return net


def deep_supervision_weights(n_outputs: int) -> np.ndarray:
    """nnU-Net's loss weights: ``1 / 2**i``, the lowest resolution dropped, normalised."""
    if n_outputs < 1:
        raise ValueError(f"n_outputs must be >= 1, got {n_outputs}")
    w = np.array([1 / 2**i for i in range(n_outputs)])
    if n_outputs > 1:
        w[-1] = 0.0
    return w / w.sum()
