"""The :class:`Inferer` ABC: raw volume + segmenter -> label volume on the input grid."""

from __future__ import annotations

from abc import ABC, abstractmethod

from flare_uda._validation import require_finite
from flare_uda.inference.segmenter import Segmenter
from flare_uda.plugin import Plugin
from flare_uda.registry import Registry
from flare_uda.volume import Volume


class Inferer(Plugin, ABC):
    """Turns a raw image into a FLARE label map with a :class:`Segmenter`.

    ``__call__`` validates the input and delegates to :meth:`infer`; the
    returned label volume always has the input's exact geometry. Options:
    ``config_class`` (the plug-in contract, :mod:`flare_uda.plugin`).
    """

    kind = "inferer"

    def __call__(self, volume: Volume, segmenter: Segmenter) -> Volume:
        if not isinstance(volume, Volume):
            raise TypeError(f"expected a Volume, got {type(volume).__name__}")
        if not isinstance(segmenter, Segmenter):
            raise TypeError(f"expected a Segmenter, got {type(segmenter).__name__}")
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
