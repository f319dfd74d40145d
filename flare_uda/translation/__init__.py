"""CT <-> MR image translation: the :class:`Translator` ABC and its plug-ins.

Registered in :data:`TRANSLATORS`: ``"identity"`` (no translation, the
"Only CT" baseline), ``"cyclegan"`` (image space) and ``"asit"`` (CycleGAN in
Sobel anatomy space).
"""

from flare_uda.translation.anatomy import AnatomySpace
from flare_uda.translation.asit import ASIT
from flare_uda.translation.base import TRANSLATORS, Translator, get_translator
from flare_uda.translation.config import PRESETS, CycleGANConfig, get_preset
from flare_uda.translation.cyclegan import CycleGAN
from flare_uda.translation.identity import IdentityTranslator

__all__ = [
    "ASIT",
    "AnatomySpace",
    "PRESETS",
    "TRANSLATORS",
    "CycleGAN",
    "CycleGANConfig",
    "IdentityTranslator",
    "Translator",
    "get_preset",
    "get_translator",
]
