"""Anatomy space alone: the Sobel map of both modalities, no GAN.

ASIT's ablation without its CycleGAN: ``to_target`` of a CT and ``to_space``
of an MR are the same :func:`~flare_uda.data.anatomy.to_anatomy_space` map
(gradient magnitude, values in [0, 1]), so a segmenter trained on CT edge maps
is applied to MR edge maps. It shows how much of ASIT's gain is the space and
how much the GAN adds; at CPU training lengths the GAN's fakes can be further
from real MR edge maps than the CT's own (docs/results.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flare_uda._validation import require_choice
from flare_uda.data.anatomy import (
    CT_SOFT_TISSUE_WINDOW,
    EDGE_SCALES,
    MODES,
    check_window,
    to_anatomy_space,
)
from flare_uda.options import added_option
from flare_uda.translation.base import TRANSLATORS, Translator
from flare_uda.volume import Volume


@dataclass(frozen=True)
class AnatomyConfig:
    """Options of :class:`AnatomySpace`.

    Parameters
    ----------
    sobel_mode : {"3d", "2d"}
        See :func:`flare_uda.data.anatomy.sobel_magnitude` (as ASIT's).
    source_window : (float, float) or None
        The source's (CT's) intensity window before the Sobel map (as ASIT's).
    edge_scale : {"percentile", "rank"}
        How the Sobel maps are brought to [0, 1] (as ASIT's).
    """

    sobel_mode: str = "3d"
    source_window: tuple[float, float] | None = CT_SOFT_TISSUE_WINDOW
    edge_scale: str = added_option("percentile")  # keys of older runs stay equal

    def __post_init__(self) -> None:
        require_choice(self.sobel_mode, MODES, "sobel_mode")
        require_choice(self.edge_scale, EDGE_SCALES, "edge_scale")
        object.__setattr__(self, "source_window", check_window(self.source_window, "source_window"))


@TRANSLATORS.register("anatomy")
class AnatomySpace(Translator):
    """Both directions and :meth:`to_space` return the anatomy-space map (float32)."""

    config_class = AnatomyConfig

    def _fit(self, source: list[Volume], target: list[Volume]) -> None:
        """Nothing to learn (inputs are still validated by :meth:`Translator.fit`)."""

    def _translate(self, volume: Volume, direction: str) -> np.ndarray:
        """``to_target`` takes a source (CT) image: clipped to ``source_window`` first."""
        window = self.config.source_window if direction == "to_target" else None
        mapped = to_anatomy_space(
            volume, self.config.sobel_mode, window=window, scale=self.config.edge_scale
        )
        return mapped.array.astype(np.float32)

    def to_space(self, volume: Volume) -> Volume:
        """``volume`` as an anatomy-space map on its own grid."""
        self._check_volume(volume)
        return volume.with_array(self._translate(volume, "to_space"))
