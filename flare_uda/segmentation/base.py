"""Re-exports :mod:`flare_uda.inference.segmenter` (the :class:`Segmenter` ABC and its plan).

The ABC lives below ``inference`` (which consumes segmenters) and
``segmentation`` (which trains them); this module keeps the segmentation
modules' imports short.
"""

from flare_uda.inference.segmenter import (
    HEADS,
    NORMALIZATIONS,
    SEGMENTERS,
    SegmentationPlan,
    Segmenter,
)

__all__ = ["HEADS", "NORMALIZATIONS", "SEGMENTERS", "SegmentationPlan", "Segmenter"]
