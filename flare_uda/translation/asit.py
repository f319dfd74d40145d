"""ASIT: the CycleGAN applied in anatomy space (Sobel gradient magnitude).

Both modalities are first mapped by
:func:`flare_uda.data.anatomy.to_anatomy_space` (the same function and
parameters for CT and MR, values in [0, 1]); the GAN then only has to learn
the remaining, much smaller, difference between CT and MR edge maps.
``to_target`` of a CT returns a fake MR *in anatomy space* (float32 in
[0, 1]) on the CT's grid; real MR images for the segmenter go through
:meth:`ASIT.to_space`, i.e. the same Sobel map. Crops are still centred on
the body of the intensity image.
"""

from __future__ import annotations

import os

import numpy as np

from flare_uda._validation import require_choice
from flare_uda.data.anatomy import MODES, to_anatomy_space
from flare_uda.translation.base import TRANSLATORS
from flare_uda.translation.config import CycleGANConfig
from flare_uda.translation.cyclegan import CycleGAN
from flare_uda.translation.intensity import symmetric_to_unit, unit_to_symmetric
from flare_uda.volume import Volume


@TRANSLATORS.register("asit")
class ASIT(CycleGAN):
    """Anatomy-space image translation (CycleGAN on Sobel maps).

    Parameters
    ----------
    config, work_dir, device, progress
        As :class:`~flare_uda.translation.cyclegan.CycleGAN`.
    sobel_mode : {"3d", "2d"}
        Sobel filter of the anatomy space (see :func:`flare_uda.data.anatomy.sobel_magnitude`).
    """

    method = "asit"

    def __init__(
        self,
        config: CycleGANConfig | None = None,
        work_dir: str | os.PathLike | None = None,
        device: str | None = None,
        progress: bool = True,
        sobel_mode: str = "3d",
    ) -> None:
        super().__init__(config, work_dir, device, progress)
        self.sobel_mode = require_choice(sobel_mode, MODES, "sobel_mode")

    def network_input(self, volume: Volume) -> np.ndarray:
        """Anatomy space (Sobel magnitude, [0, 1]) mapped onto [-1, 1]."""
        return unit_to_symmetric(to_anatomy_space(volume, self.sobel_mode).array)

    def network_output(self, array: np.ndarray) -> np.ndarray:
        """Generator output back in anatomy space, [0, 1]."""
        return symmetric_to_unit(array)

    def config_dict(self) -> dict:
        return {**super().config_dict(), "sobel_mode": self.sobel_mode}

    @classmethod
    def _from_config_dict(cls, config: dict) -> ASIT:
        base = super()._from_config_dict(config)
        return cls(base.config, progress=False, sobel_mode=config.get("sobel_mode", "3d"))
