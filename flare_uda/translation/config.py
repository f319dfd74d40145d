"""CycleGAN configuration and its presets (``quick`` for CPU, ``paper`` for a GPU).

One frozen dataclass holds every hyperparameter of the networks, the
objective (eq. 1-4) and training; a preset is just an instance of it. The
defaults are the ``quick`` preset (trains on the quick phantom on a CPU);
``paper`` is the reference CycleGAN.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from flare_uda._validation import require_choice, require_int

GAN_MODES = ("lsgan", "log")


@dataclass(frozen=True)
class CycleGANConfig:
    """Hyperparameters of a (anatomy-space) CycleGAN.

    Parameters
    ----------
    spatial_dims : {2, 3}
        2: slice-wise networks trained on random axial slices; 3: 3D patches.
    width : int
        Channels of the first generator and discriminator layers (ngf = ndf).
    n_blocks : int
        Residual blocks in the generator bottleneck (reference: 9).
    n_downsampling : int
        Stride-2 convolutions in the generator; inputs are padded to a
        multiple of ``2 ** n_downsampling``.
    disc_layers : int
        PatchGAN depth (reference: 3, a 70x70 receptive field in 2D).
    gan_mode : {"lsgan", "log"}
        Adversarial loss: least squares (the reference default) or the log loss of eq. 1.
    lambda_cycle, lambda_identity : float
        Weights lambda1 (eq. 2) and lambda2 (eq. 3) of the full objective eq. 4.
    pool_size : int
        Image pool of generated images shown to the discriminators (0: none).
    lr : float
        Adam learning rate; ``betas`` its momentum terms.
    iterations : int
        Optimisation steps (one generator and one discriminator update each).
    decay_fraction : float
        Fraction of ``iterations`` (at the end) over which the learning rate
        decays linearly to 0; before it, the rate is constant.
    batch_size : int
        Slices (2D) or patches (3D) per step, per domain.
    crop_size : tuple of int
        ``(y, x)`` in 2D, ``(z, y, x)`` in 3D; multiples of ``2 ** n_downsampling``.
    body_threshold : float
        Sampled crop centres are voxels whose normalised intensity (in [-1, 1])
        exceeds this value, so crops fall on the body rather than on air.
    percentiles : tuple of 2 float
        Per-image clip percentiles before scaling to [-1, 1].
    checkpoint_every : int
        Iterations between checkpoints in the work directory (0: never).
    seed : int
        Seeds torch and the numpy generator used for sampling and the pool.
    residual : bool
        Generators that start as the identity and learn a change of their input
        (:class:`~flare_uda.translation.networks.ResnetGenerator`, not in the
        reference CycleGAN): an under-trained translator then returns nearly its
        input instead of noise.
    """

    spatial_dims: int = 2
    width: int = 8
    n_blocks: int = 2
    n_downsampling: int = 2
    disc_layers: int = 2
    gan_mode: str = "lsgan"
    lambda_cycle: float = 10.0
    lambda_identity: float = 5.0
    pool_size: int = 50
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    iterations: int = 600
    decay_fraction: float = 0.5
    batch_size: int = 2
    crop_size: tuple[int, ...] = (48, 48)
    body_threshold: float = -0.8
    percentiles: tuple[float, float] = (0.5, 99.5)
    checkpoint_every: int = 200
    seed: int = 0
    residual: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.residual, bool):
            raise TypeError(f"residual must be True or False, got {self.residual!r}")
        if self.spatial_dims not in (2, 3) or isinstance(self.spatial_dims, bool):
            raise ValueError(f"spatial_dims must be 2 or 3, got {self.spatial_dims!r}")
        require_choice(self.gan_mode, GAN_MODES, "gan_mode")
        for name in ("width", "n_blocks", "disc_layers", "iterations", "batch_size"):
            require_int(getattr(self, name), name, minimum=1)
        for name in ("n_downsampling", "pool_size", "checkpoint_every", "seed"):
            require_int(getattr(self, name), name, minimum=0)
        for name in ("lambda_cycle", "lambda_identity"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        betas = tuple(float(b) for b in self.betas)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        object.__setattr__(self, "betas", betas)
        if not 0.0 <= self.decay_fraction <= 1.0:
            raise ValueError(f"decay_fraction must be in [0, 1], got {self.decay_fraction}")
        crop = tuple(int(c) for c in self.crop_size)
        factor = 2**self.n_downsampling
        if len(crop) != self.spatial_dims or any(c < 1 or c % factor for c in crop):
            axes = "(y, x)" if self.spatial_dims == 2 else "(z, y, x)"
            raise ValueError(
                f"crop_size must be {self.spatial_dims} ints {axes}, multiples of {factor} "
                f"(2 ** n_downsampling), got {self.crop_size}"
            )
        object.__setattr__(self, "crop_size", crop)
        if min(crop) < 3 * 2**self.disc_layers:
            raise ValueError(
                f"crop_size must be >= {3 * 2**self.disc_layers} (3 * 2 ** disc_layers) "
                f"along every axis for the PatchGAN, got {crop}"
            )
        lo, hi = (float(p) for p in self.percentiles)
        if not 0.0 <= lo < hi <= 100.0:
            raise ValueError(
                f"percentiles must satisfy 0 <= low < high <= 100, got {self.percentiles}"
            )
        object.__setattr__(self, "percentiles", (lo, hi))
        if not -1.0 <= self.body_threshold < 1.0:
            raise ValueError(f"body_threshold must be in [-1, 1), got {self.body_threshold}")

    @property
    def patch_size(self) -> tuple[int, int, int]:
        """Sampled window (z, y, x): one slice deep in 2D."""
        return (1, *self.crop_size) if self.spatial_dims == 2 else self.crop_size  # type: ignore

    def to_dict(self) -> dict:
        """Plain-JSON form (tuples as lists; a subclass's tuple fields too)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> CycleGANConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(
                f"unknown CycleGANConfig keys {unknown}; expected a subset of {sorted(known)}"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


PRESETS: dict[str, CycleGANConfig] = {
    # CPU: trains on the quick phantom in minutes on 2 cores (measured in docs/benchmarks.md).
    "quick": CycleGANConfig(),
    # GPU: the reference CycleGAN (ngf = ndf = 64, 9 blocks, 70x70 PatchGAN) on 256^2 slices.
    "paper": CycleGANConfig(
        spatial_dims=2,
        width=64,
        n_blocks=9,
        disc_layers=3,
        iterations=100_000,
        decay_fraction=0.5,
        batch_size=4,
        crop_size=(256, 256),
        checkpoint_every=5000,
    ),
}


def get_preset(name: str, **overrides) -> CycleGANConfig:
    """The preset ``name`` (``"quick"`` or ``"paper"``) with optional field overrides."""
    from flare_uda.registry import unknown_name_error

    if name not in PRESETS:
        raise unknown_name_error("translation preset", name, list(PRESETS))
    return replace(PRESETS[name], **overrides)
