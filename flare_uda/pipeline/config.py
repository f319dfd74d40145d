"""The pipeline's configuration: frozen dataclasses, YAML in and out, presets.

One :class:`UDAConfig` describes a whole run; each stage reads only its own
section, and each section's hash keys that stage's cache (see
:mod:`flare_uda.pipeline.cache`), so changing one section reruns only what
depends on it. YAML parsing lives here, at the edge; the stages see dataclasses.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flare_uda._atomic import write_text
from flare_uda.registry import unknown_name_error

ABLATION_SETTINGS = ("only_ct", "cyclegan", "asit", "asit_mdm", "asit_mdm_plf", "oracle")


@dataclass(frozen=True)
class DataConfig:
    """Phantom cohort used when no data folders are given.

    ``n_mr`` unlabelled MR cases are used for adaptation; ``n_mr_test`` further
    MR subjects (labels used for evaluation only) are held out for scoring.
    """

    preset: str = "quick"
    n_ct: int = 8
    n_mr: int = 8
    n_mr_test: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_ct", "n_mr", "n_mr_test"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class TranslationConfig:
    """Stage 1: which translator, its preset, and an optional iteration override."""

    method: str = "asit"
    preset: str = "quick"
    iterations: int | None = None

    def translator(
        self, method: str | None = None, work_dir=None, seed: int = 0, device: str | None = None
    ):
        """A new (unfitted) translator of ``method`` (default: this section's).

        ``device`` is where a CycleGAN trains (``None``: CUDA when available).
        """
        from flare_uda.translation import TRANSLATORS

        cls = TRANSLATORS.get(method or self.method)
        runtime = {"work_dir": work_dir, "device": device}
        if not cls.presets:  # identity and user plug-ins: default options
            return cls(**runtime)
        overrides: dict = {"seed": seed}
        if self.iterations is not None:
            overrides["iterations"] = self.iterations
        return cls.from_preset(self.preset, **overrides, **runtime)


@dataclass(frozen=True)
class SegmentationConfig:
    """A segmentation training: network/trainer preset and iteration override."""

    preset: str = "quick"
    iterations: int | None = None
    head: str = "softmax"
    spacing: tuple[float, float, float] | None = None
    patch_size: tuple[int, int, int] | None = None
    optimizer: str | None = None
    learning_rate: float | None = None

    def __post_init__(self) -> None:
        for name in ("spacing", "patch_size"):
            value = getattr(self, name)
            if value is not None:
                if len(value) != 3:
                    raise ValueError(
                        f"segmentation.{name} must have 3 values (z, y, x), got {value}"
                    )
                object.__setattr__(self, name, tuple(value))

    def train_config(self, seed: int = 0):
        """The :class:`~flare_uda.segmentation.TrainConfig` this section describes."""
        from flare_uda.segmentation import get_preset

        overrides: dict = {"head": self.head, "seed": seed, "normalization": "zscore"}
        if self.iterations is not None:
            overrides["iterations"] = self.iterations
        if self.spacing is not None:
            overrides["spacing"] = self.spacing
        for name in ("patch_size", "optimizer", "learning_rate"):
            if getattr(self, name) is not None:
                overrides[name] = getattr(self, name)
        return get_preset(self.preset, **overrides)


MDM_FIELDS = ("better_sequence", "registrar", "mdm_features", "quality_gate")
PLF_FIELDS = ("rounds", "keep_fraction", "ensemble")


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Stages 2-3: MDM and self-training with pseudo-label filtering."""

    better_sequence: str = "T1"
    registrar: str = "torch"
    mdm_features: str = "anatomy"
    quality_gate: bool = False
    rounds: int = 2
    keep_fraction: float = 0.75
    ensemble: str = "union"

    def __post_init__(self) -> None:
        if self.rounds < 2:
            raise ValueError(
                f"pseudolabel.rounds must be >= 2 (eq. 7 needs K >= 2), got {self.rounds}"
            )
        if self.mdm_features not in ("anatomy", "labels"):
            raise ValueError(
                f"pseudolabel.mdm_features must be 'anatomy' or 'labels', got {self.mdm_features!r}"
            )
        if not 0.0 < self.keep_fraction <= 1.0:
            raise ValueError(
                f"pseudolabel.keep_fraction must be in (0, 1], got {self.keep_fraction}"
            )

    def mdm_key(self) -> dict:
        """The fields MDM depends on (its cache key): not the self-training ones."""
        return {k: getattr(self, k) for k in MDM_FIELDS}

    def self_training_key(self) -> dict:
        """The fields self-training with PLF depends on (its cache key)."""
        return {k: getattr(self, k) for k in PLF_FIELDS}


@dataclass(frozen=True)
class InferenceConfig:
    """Stage 4 inference: plain sliding window or coarse-to-fine ROI.

    Parameters
    ----------
    mode : {"plain", "roi"}
        :class:`~flare_uda.inference.SlidingWindowInferer` or
        :class:`~flare_uda.inference.CoarseToFineInferer`.
    step : float
        Window step as a fraction of the patch, in (0, 1].
    resampling : {"auto", "nnunet", "torch"}
        How images reach the network's spacing (see
        :class:`~flare_uda.inference.SlidingWindowConfig`).
    """

    mode: str = "plain"
    step: float = 0.5
    resampling: str = "auto"

    def __post_init__(self) -> None:
        INFERENCE_MODES = ("plain", "roi")  # noqa: N806
        from flare_uda.inference.network_grid import RESAMPLINGS

        if self.mode not in INFERENCE_MODES:
            raise unknown_name_error("inference mode", self.mode, list(INFERENCE_MODES))
        if self.resampling not in RESAMPLINGS:
            raise unknown_name_error("inference resampling", self.resampling, list(RESAMPLINGS))
        if not 0.0 < float(self.step) <= 1.0:
            raise ValueError(f"inference.step must be in (0, 1], got {self.step}")

    def inferer(self):
        """The configured :class:`~flare_uda.inference.Inferer`."""
        from flare_uda.cli.predict import build_inferer

        return build_inferer(self.mode, self.step, True, False, 2, self.resampling)

    def cache_key(self) -> dict:
        """What prediction stages are keyed by: the step, plus mode and resampling
        when not the defaults (so caches written before those fields existed stay valid)."""
        key: dict = {"step": self.step}
        if self.mode != "plain":
            key["mode"] = self.mode
        if self.resampling != "auto":
            key["resampling"] = self.resampling
        return key


@dataclass(frozen=True)
class UDAConfig:
    """A whole run of the method (and its ablation)."""

    data: DataConfig = field(default_factory=DataConfig)
    translation: TranslationConfig = field(default_factory=TranslationConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    final_segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    pseudolabel: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    ablation: tuple[str, ...] = ABLATION_SETTINGS
    seed: int = 0

    def __post_init__(self) -> None:
        ablation = tuple(self.ablation)
        for name in ablation:
            if name not in ABLATION_SETTINGS:
                raise unknown_name_error("ablation setting", name, list(ABLATION_SETTINGS))
        object.__setattr__(self, "ablation", ablation)

    # ------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ablation"] = list(self.ablation)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UDAConfig:
        """Build from a (possibly partial) nested dict; unknown keys are errors."""
        if not isinstance(d, dict):
            raise TypeError(f"config must be a mapping, got {type(d).__name__}")
        kwargs: dict[str, Any] = {}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in d.items():
            if key not in fields:
                raise unknown_name_error("config section", key, list(fields))
            sub = _SECTION_TYPES.get(key)
            if sub is not None:
                if not isinstance(value, dict):
                    raise TypeError(f"config section {key!r} must be a mapping, got {value!r}")
                names = {f.name for f in dataclasses.fields(sub)}
                for k in value:
                    if k not in names:
                        raise unknown_name_error(f"{key} option", k, sorted(names))
                kwargs[key] = sub(**value)
            else:
                kwargs[key] = tuple(value) if key == "ablation" else value
        return cls(**kwargs)

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            write_text(path, text)
        return text

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> UDAConfig:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"expected a YAML config file, got {p}")
        return cls.from_dict(yaml.safe_load(p.read_text()) or {})


_SECTION_TYPES = {
    "data": DataConfig,
    "translation": TranslationConfig,
    "segmentation": SegmentationConfig,
    "final_segmentation": SegmentationConfig,
    "pseudolabel": PseudoLabelConfig,
    "inference": InferenceConfig,
}
