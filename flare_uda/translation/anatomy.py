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
from flare_uda.data.anatomy import MODES, to_anatomy_space
from flare_uda.translation.base import TRANSLATORS, Translator
from flare_uda.volume import Volume


@dataclass(frozen=True)
class AnatomyConfig:
    """Options of :class:`AnatomySpace`.

    Parameters
    ----------
    sobel_mode : {"3d", "2d"}
        See :func:`flare_uda.data.anatomy.sobel_magnitude` (as ASIT's).
    """

    sobel_mode: str = "3d"

    def __post_init__(self) -> None:
        require_choice(self.sobel_mode, MODES, "sobel_mode")


@TRANSLATORS.register("anatomy")
class AnatomySpace(Translator):
    """Both directions and :meth:`to_space` return the anatomy-space map (float32)."""

    config_class = AnatomyConfig

    def _fit(self, source: list[Volume], target: list[Volume]) -> None:
        """Nothing to learn (inputs are still validated by :meth:`Translator.fit`)."""

    def _translate(self, volume: Volume, direction: str) -> np.ndarray:
        return to_anatomy_space(volume, self.config.sobel_mode).array.astype(np.float32)

    def to_space(self, volume: Volume) -> Volume:
        """``volume`` as an anatomy-space map on its own grid."""
        self._check_volume(volume)
        return volume.with_array(self._translate(volume, "to_space"))
