"""The :class:`Inferer` ABC: raw volume + segmenter -> label volume on the input grid."""

from __future__ import annotations

from abc import ABC, abstractmethod

from flare_uda.registry import Registry
from flare_uda.segmentation.base import Segmenter
from flare_uda.volume import Volume


class Inferer(ABC):
    """Turns a raw image into a FLARE label map with a :class:`Segmenter`.

    ``__call__`` validates the input and delegates to :meth:`infer`; the
    returned label volume always has the input's exact geometry.
    """

    def __call__(self, volume: Volume, segmenter: Segmenter) -> Volume:
        if not isinstance(volume, Volume):
            raise TypeError(f"expected a Volume, got {type(volume).__name__}")
        if not isinstance(segmenter, Segmenter):
            raise TypeError(f"expected a Segmenter, got {type(segmenter).__name__}")
        from flare_uda._validation import require_finite

        require_finite(volume.array, "input volume")
        out = self.infer(volume, segmenter)
        if not out.same_geometry(volume):
            raise RuntimeError(
                f"{type(self).__name__} returned a label off the input grid: "
                f"{out.shape} vs {volume.shape}"
            )
        return out

    @abstractmethod
    def infer(self, volume: Volume, segmenter: Segmenter) -> Volume:
        """Label map (uint8, FLARE order) on ``volume``'s grid."""


INFERERS: Registry[type[Inferer]] = Registry("inferer")
"""Inferer classes by name (``"sliding_window"``, ``"roi"``)."""
