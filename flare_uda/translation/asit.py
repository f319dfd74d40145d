"""ASIT: the CycleGAN applied in anatomy space (Sobel gradient magnitude).

Both modalities are first mapped by
:func:`flare_uda.data.anatomy.to_anatomy_space` (the same function and
parameters for CT and MR, values in [0, 1]); the GAN then only has to learn
the remaining, much smaller, difference between CT and MR edge maps.
``to_target`` of a CT returns a fake MR *in anatomy space* (float32 in
[0, 1]) on the CT's grid; real MR images for the segmenter go through
:meth:`ASIT.to_space`, i.e. the same Sobel map. Crops are still centred on
the body of the intensity image.

Beyond the paper, CT (the source) is clipped to the abdominal soft-tissue
window before its Sobel map (``source_window``): otherwise CT organ boundaries
are ~3x weaker than MR ones in anatomy space, and a segmenter of the fakes
barely finds an organ on real MR (measured: 0.7 -> 22.7 mean DSC for the
anatomy space alone after 2 minutes of training, ``benchmarks/ct_window.py``).
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
from flare_uda.translation.base import TRANSLATORS
from flare_uda.translation.config import CycleGANConfig
from flare_uda.translation.cyclegan import CycleGAN
from flare_uda.translation.intensity import symmetric_to_unit, unit_to_symmetric
from flare_uda.volume import Volume


@dataclass(frozen=True)
class ASITConfig(CycleGANConfig):
    """:class:`CycleGANConfig` plus the anatomy space's Sobel filter.

    Parameters
    ----------
    sobel_mode : {"3d", "2d"}
        See :func:`flare_uda.data.anatomy.sobel_magnitude`.
    source_window : (float, float) or None
        Intensity window the source (CT, HU) is clipped to before its Sobel map;
        ``None``: the paper's unclipped CT. Target (MR) images are never clipped.
    residual : bool
        As :class:`CycleGANConfig`'s, but on by default here: in anatomy space CT
        and MR maps are already close, so the generators start as the identity
        and learn the remaining change (measured on the default demo: ASIT 28.8
        vs 26.4 and 25.9, ASIT + MDM + PLF 31.2 vs 27.0 and 23.5, docs/results.md).
        The ``paper`` preset keeps the reference generator.
    edge_scale : {"percentile", "rank"}
        How Sobel maps are brought to [0, 1] (:func:`~flare_uda.data.anatomy.to_anatomy_space`):
        the paper's division by their 99.5th percentile, or their rank among the
        body's voxels (beyond the paper; an option, see docs/results.md).
    """

    sobel_mode: str = "3d"
    source_window: tuple[float, float] | None = CT_SOFT_TISSUE_WINDOW
    residual: bool = True
    edge_scale: str = added_option("percentile")  # keys of older runs stay equal

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice(self.sobel_mode, MODES, "sobel_mode")
        require_choice(self.edge_scale, EDGE_SCALES, "edge_scale")
        object.__setattr__(self, "source_window", check_window(self.source_window, "source_window"))


@TRANSLATORS.register("asit")
class ASIT(CycleGAN):
    """Anatomy-space image translation (CycleGAN on Sobel maps).

    Options: :class:`ASITConfig`; presets and runtime keywords as
    :class:`~flare_uda.translation.cyclegan.CycleGAN` (a CycleGAN preset is
    taken field by field, with ``sobel_mode`` at its default).
    """

    config_class = ASITConfig

    def network_input(self, volume: Volume, domain: str = "target") -> np.ndarray:
        """Anatomy space (Sobel magnitude, [0, 1]) mapped onto [-1, 1]; a ``"source"``
        image is clipped to ``source_window`` first."""
        window = self.config.source_window if domain == "source" else None
        return unit_to_symmetric(
            to_anatomy_space(
                volume, self.config.sobel_mode, window=window, scale=self.config.edge_scale
            ).array
        )

    def network_output(self, array: np.ndarray) -> np.ndarray:
        """Generator output back in anatomy space, [0, 1]."""
        return symmetric_to_unit(array)
