"""flare_uda.inference: raw volume + segmenter -> label volume on the input grid.

``INFERERS`` names every inferer: ``"sliding_window"`` (:class:`SlidingWindowInferer`)
and ``"roi"`` (:class:`CoarseToFineInferer`).
"""

from flare_uda.inference.base import INFERERS, Inferer
from flare_uda.inference.roi import CoarseToFineConfig, CoarseToFineInferer
from flare_uda.inference.sliding_window import (
    SlidingWindowConfig,
    SlidingWindowInferer,
    logits_to_labels,
    sliding_window_logits,
)

__all__ = [
    "CoarseToFineConfig",
    "CoarseToFineInferer",
    "INFERERS",
    "Inferer",
    "SlidingWindowConfig",
    "SlidingWindowInferer",
    "logits_to_labels",
    "sliding_window_logits",
]
