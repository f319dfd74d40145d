"""flare_uda.inference: raw volume + segmenter -> label volume on the input grid.

``INFERERS`` names every inferer: ``"sliding_window"`` (:class:`SlidingWindowInferer`)
and ``"roi"`` (:class:`CoarseToFineInferer`). The :class:`Segmenter` ABC and its
:class:`SegmentationPlan` live here too (``SEGMENTERS``), below both this package
and :mod:`flare_uda.segmentation`, which trains segmenters.
"""

from flare_uda.inference.base import INFERERS, Inferer
from flare_uda.inference.files import predict_files
from flare_uda.inference.heads import logits_to_labels
from flare_uda.inference.roi import CoarseToFineConfig, CoarseToFineInferer
from flare_uda.inference.segmenter import SEGMENTERS, SegmentationPlan, Segmenter
from flare_uda.inference.sliding_window import (
    SlidingWindowConfig,
    SlidingWindowInferer,
    sliding_window_logits,
)

__all__ = [
    "CoarseToFineConfig",
    "CoarseToFineInferer",
    "INFERERS",
    "Inferer",
    "SEGMENTERS",
    "SegmentationPlan",
    "Segmenter",
    "SlidingWindowConfig",
    "SlidingWindowInferer",
    "logits_to_labels",
    "predict_files",
    "sliding_window_logits",
]
