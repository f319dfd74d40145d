"""flare_uda.registration: match MR cases across sub-domains and move labels by affine maps.

- :func:`match_by_volume`, :class:`VolumeMatcher` (eq. 5) behind :class:`Matcher`;
- :class:`Registrar` with ``"sitk"`` (SimpleITK) and ``"torch"`` (batched
  gradient solver, :func:`register_batch`);
- deformable registrars (``"deformable"``, ``"demons"``): the affine, then a displacement;
- :mod:`flare_uda.registration.mdm`: the multi-domain matching stage, with
  multi-atlas fusion (:mod:`flare_uda.registration.fusion`);
- :mod:`flare_uda.registration.ct_atlas`: labelled CT as a further matching domain.
"""

from flare_uda.registration.affine import displacement_rms, resample_affine
from flare_uda.registration.base import (
    MATCHERS,
    REGISTRARS,
    Matcher,
    Registrar,
    RegistrarConfig,
    get_matcher,
    get_registrar,
)
from flare_uda.registration.ct_atlas import CTAtlasConfig, run_ct_atlas
from flare_uda.registration.deformable import (
    DeformableConfig,
    DeformableRegistrar,
    register_deformable,
)
from flare_uda.registration.demons import DemonsConfig, DemonsRegistrar
from flare_uda.registration.features import label_channels
from flare_uda.registration.matching import VolumeMatcher, label_volumes_mm3, match_by_volume
from flare_uda.registration.mdm import MDMConfig, MDMResult, run_mdm
from flare_uda.registration.sitk_affine import SitkAffineConfig, SitkAffineRegistrar
from flare_uda.registration.torch_affine import (
    TorchAffineConfig,
    TorchAffineRegistrar,
    register_batch,
)

__all__ = [
    "CTAtlasConfig",
    "DeformableConfig",
    "DeformableRegistrar",
    "DemonsConfig",
    "DemonsRegistrar",
    "MDMConfig",
    "MDMResult",
    "MATCHERS",
    "REGISTRARS",
    "Matcher",
    "Registrar",
    "RegistrarConfig",
    "SitkAffineConfig",
    "SitkAffineRegistrar",
    "TorchAffineConfig",
    "TorchAffineRegistrar",
    "VolumeMatcher",
    "displacement_rms",
    "get_matcher",
    "get_registrar",
    "label_channels",
    "label_volumes_mm3",
    "match_by_volume",
    "register_batch",
    "register_deformable",
    "resample_affine",
    "run_ct_atlas",
    "run_mdm",
]
