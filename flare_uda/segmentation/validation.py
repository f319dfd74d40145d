"""Validation during training: per-organ DSC of a segmenter on preprocessed held-out cases."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flare_uda.inference.sliding_window import SlidingWindowConfig, run_network_grid
from flare_uda.metrics.overlap import dice
from flare_uda.segmentation.data import PreparedCase
from flare_uda.segmentation.network_segmenter import NetworkSegmenter


def validation_dice(segmenter: NetworkSegmenter, cases: Sequence[PreparedCase]) -> dict:
    """Per-organ DSC on preprocessed held-out cases (sliding window, step 0.5).

    Returns
    -------
    dict
        ``{"per_organ": {organ: mean DSC over cases annotating it}, "mean": float}``;
        organs absent from both prediction and reference score 1 (FLARE).
    """
    cfg = SlidingWindowConfig(step=0.5, skip_empty=False, progress=False)
    scores: dict[int, list[float]] = {}
    for case in cases:
        # the image's own slice: channel k of its 2k + 1 stacked neighbours (0 without)
        own = case.image[segmenter.plan.neighbour_slices]
        pred, _, _ = run_network_grid(own, segmenter, cfg)
        for organ in case.annotated:
            if organ < segmenter.plan.num_classes:
                scores.setdefault(organ, []).append(dice(pred == organ, case.label == organ))
    per_organ = {o: float(np.mean(v)) for o, v in sorted(scores.items())}
    mean = float(np.mean(list(per_organ.values()))) if per_organ else float("nan")
    return {"per_organ": per_organ, "mean": mean}
