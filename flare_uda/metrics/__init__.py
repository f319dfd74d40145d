"""FLARE-exact DSC and NSD, folder evaluation, and efficiency measurement.

- :mod:`~flare_uda.metrics.overlap`: :func:`dice`;
- :mod:`~flare_uda.metrics.surface`: :func:`surface_dice` (surfels with areas);
- :mod:`~flare_uda.metrics.evaluate`: FLARE rules per case, :func:`summarize`;
- :mod:`~flare_uda.metrics.folders`: :func:`evaluate_folders` (CSVs, box plot);
- :mod:`~flare_uda.metrics.efficiency`: :func:`measure` (time, RSS, GPU memory-time).
"""

from flare_uda.metrics.efficiency import EfficiencyReport, measure
from flare_uda.metrics.evaluate import (
    MetricRow,
    evaluate_case,
    evaluate_cases,
    evaluate_volumes,
    summarize,
)
from flare_uda.metrics.folders import FolderEvaluation, evaluate_folders
from flare_uda.metrics.overlap import dice
from flare_uda.metrics.surface import surface_dice

__all__ = [
    "EfficiencyReport",
    "FolderEvaluation",
    "MetricRow",
    "dice",
    "evaluate_case",
    "evaluate_cases",
    "evaluate_folders",
    "evaluate_volumes",
    "measure",
    "summarize",
    "surface_dice",
]
