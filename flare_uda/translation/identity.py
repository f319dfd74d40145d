"""The "Only CT" baseline: a translator that translates nothing.

Useful to the pipeline's ablation: a segmenter trained on ``to_target`` of
CT images is then simply trained on CT.
"""

from __future__ import annotations

import numpy as np

from flare_uda.translation.base import TRANSLATORS, Translator
from flare_uda.volume import Volume


@TRANSLATORS.register("identity")
class IdentityTranslator(Translator):
    """``to_target`` and ``to_source`` return the image unchanged (as float32)."""

    def _fit(self, source: list[Volume], target: list[Volume]) -> None:
        """Nothing to learn (inputs are still validated by :meth:`Translator.fit`)."""

    def _translate(self, volume: Volume, direction: str) -> np.ndarray:
        return volume.array.astype(np.float32, copy=True)
