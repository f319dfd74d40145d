"""The :class:`Segmenter` ABC: a trained network plus the plan needed to use it.

A segmenter maps a preprocessed batch ``"b c z y x"`` to logits
``"b k z y x"``. Everything an inferer needs to go from a raw volume to that
batch and back (target spacing, patch size, normalisation, output head) lives
in its :class:`SegmentationPlan`. Inferers consume segmenters and trainers
(:mod:`flare_uda.segmentation`) produce them, so the ABC sits here, below both:
``inference`` never imports ``segmentation``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch

from flare_uda._validation import as_triplet, require_choice
from flare_uda.inference.neighbour_slices import require_neighbour_slices
from flare_uda.plugin import Plugin
from flare_uda.registry import Registry

SEGMENTERS: Registry[type[Segmenter]] = Registry("segmenter")
HEADS = ("softmax", "sigmoid")
NORMALIZATIONS = ("ct", "zscore", "none")


@dataclass(frozen=True)
class SegmentationPlan:
    """How a network sees data.

    Parameters
    ----------
    patch_size : tuple of 3 int
        Network input window (z, y, x) in voxels at ``spacing``.
    spacing : tuple of 3 float
        Target spacing (z, y, x) in mm the network was trained at.
    num_classes : int
        Output channels including background (14 for FLARE).
    in_channels : int
        Network input channels: ``image_channels * (2 * neighbour_slices + 1)``
        (1 for a single image).
    normalization : {"ct", "zscore", "none"}
        ``"ct"``: clip to ``intensity_stats`` percentiles then z-score with its
        mean/std (nnU-Net CTNormalization); ``"zscore"``: per-image z-score.
    intensity_stats : dict
        For ``"ct"``: keys ``percentile_00_5``, ``percentile_99_5``, ``mean``, ``std``.
    head : {"softmax", "sigmoid"}
        ``"softmax"``: argmax over classes. ``"sigmoid"`` (the paper): per-organ
        sigmoid, threshold, then argmax among organs above threshold.
    threshold : float
        Sigmoid threshold.
    canonical : bool
        The network was trained on volumes in the canonical layout
        (:mod:`flare_uda.data.orientation`), so inference permutes and flips each
        input alike (labels return to the input grid). False for plans saved before
        it existed and for nnU-Net models.
    neighbour_slices : int
        ``k``: each slice is seen with the ``k`` slices on either side as extra
        channels (:mod:`flare_uda.inference.neighbour_slices`, a 2.5D input),
        stacked at the network grid before the windows. 0: the image as it is.
    """

    patch_size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    num_classes: int = 14
    in_channels: int = 1
    normalization: str = "zscore"
    intensity_stats: dict = field(default_factory=dict)
    head: str = "softmax"
    threshold: float = 0.5
    canonical: bool = False
    neighbour_slices: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.canonical, bool):
            raise TypeError(f"canonical must be true or false, got {self.canonical!r}")
        patch = tuple(int(p) for p in self.patch_size)
        if len(patch) != 3 or min(patch) < 1:
            raise ValueError(f"patch_size must be 3 positive ints (z, y, x), got {self.patch_size}")
        object.__setattr__(self, "patch_size", patch)
        object.__setattr__(self, "spacing", as_triplet(self.spacing, "spacing", positive=True))
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {self.in_channels}")
        k = require_neighbour_slices(self.neighbour_slices)
        if self.in_channels % (2 * k + 1):
            raise ValueError(
                f"in_channels must be a multiple of 2 * neighbour_slices + 1 = {2 * k + 1} "
                f"(each image channel with its neighbours), got {self.in_channels}"
            )
        require_choice(self.head, HEADS, "head")
        require_choice(self.normalization, NORMALIZATIONS, "normalization")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.normalization == "ct":
            missing = {"percentile_00_5", "percentile_99_5", "mean", "std"} - set(
                self.intensity_stats
            )
            if missing:
                raise ValueError(f"'ct' normalization needs intensity_stats {sorted(missing)}")

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return {
            "patch_size": list(self.patch_size),
            "spacing": list(self.spacing),
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "normalization": self.normalization,
            "intensity_stats": dict(self.intensity_stats),
            "head": self.head,
            "threshold": self.threshold,
            "canonical": self.canonical,
            "neighbour_slices": self.neighbour_slices,
        }

    @property
    def image_channels(self) -> int:
        """Channels of the image before its neighbour slices are stacked."""
        return self.in_channels // (2 * self.neighbour_slices + 1)

    @classmethod
    def from_dict(cls, d: dict) -> SegmentationPlan:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


class Segmenter(Plugin, ABC):
    """A trained network and its plan.

    Subclasses implement :meth:`predict_logits`; inferers do the rest
    (normalisation, resampling, windows, the output head). As plug-ins, their
    options describe the network (its architecture and plan, or the folder it
    is read from); learned weights are state, as a translator's.
    """

    kind = "segmenter"
    plan: SegmentationPlan

    @abstractmethod
    def predict_logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits for a preprocessed batch.

        Parameters
        ----------
        batch : torch.Tensor, "b c z y x"
            ``c == plan.in_channels``, normalised, at ``plan.spacing``.

        Returns
        -------
        torch.Tensor, "b k z y x"
            ``k == plan.num_classes`` raw logits (full resolution output only).
        """

    @property
    def device(self) -> torch.device:
        """Device the network runs on (CPU unless a subclass says otherwise)."""
        return torch.device("cpu")

    def check_batch(self, batch: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``batch`` is ``"b c z y x"`` with the plan's channels."""
        if batch.ndim != 5:
            raise ValueError(f"expected a batch 'b c z y x' (5D), got shape {tuple(batch.shape)}")
        if batch.shape[1] != self.plan.in_channels:
            raise ValueError(
                f"expected {self.plan.in_channels} input channel(s), got {batch.shape[1]}"
            )
