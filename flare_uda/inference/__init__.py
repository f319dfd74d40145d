"""flare_uda.inference: raw volume + segmenter -> label volume on the input grid.

``INFERERS`` names every inferer: ``"sliding_window"`` (:class:`SlidingWindowInferer`)
and ``"roi"`` (:class:`CoarseToFineInferer`).
"""

from flare_uda.inference.base import INFERERS, Inferer
from flare_uda.inference.files import predict_files
from flare_uda.inference.heads import logits_to_labels
from flare_uda.inference.roi import CoarseToFineConfig, CoarseToFineInferer
from flare_uda.inference.sliding_window import (
    SlidingWindowConfig,
    SlidingWindowInferer,
    sliding_window_logits,
)

INFERENCE_MODES = ("plain", "roi")


def make_inferer(
    mode: str, fine: SlidingWindowConfig | None = None, roi_source: str = "organs"
) -> Inferer:
    """``"plain"``: :class:`SlidingWindowInferer`; ``"roi"``: :class:`CoarseToFineInferer`
    with ``fine`` as its window settings and ``roi_source`` ("organs" or "body")."""
    fine = fine or SlidingWindowConfig()
    if mode == "roi":
        return CoarseToFineInferer(CoarseToFineConfig(fine=fine, roi_source=roi_source))
    if mode != "plain":
        raise ValueError(f"inference mode must be one of {list(INFERENCE_MODES)}, got {mode!r}")
    return SlidingWindowInferer(fine)


__all__ = [
    "INFERENCE_MODES",
    "CoarseToFineConfig",
    "CoarseToFineInferer",
    "INFERERS",
    "Inferer",
    "SlidingWindowConfig",
    "SlidingWindowInferer",
    "logits_to_labels",
    "make_inferer",
    "predict_files",
    "sliding_window_logits",
]
