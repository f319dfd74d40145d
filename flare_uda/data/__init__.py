"""flare_uda.data: IO, label maps, datasets, preprocessing and the anatomy space.

Heavy dependencies (nnU-Net) are imported inside the functions that use them,
so ``import flare_uda.data`` stays light. The synthetic phantom is its own
module: ``from flare_uda.data import phantom`` (exported by its author).
"""

from flare_uda.data.anatomy import sobel_gradient, sobel_magnitude, to_anatomy_space
from flare_uda.data.datasets import load_cases, read_dataset, read_folder, write_dataset
from flare_uda.data.io import (
    as_integer_labels,
    from_sitk,
    read_label,
    read_volume,
    to_sitk,
    write_volume,
)
from flare_uda.data.labels import (
    FLARE_ORGANS,
    LABEL_MAPS,
    NSD_TOLERANCE_MM,
    get_label_map,
    organ_name,
    remap_to_flare,
)
from flare_uda.data.preprocess import (
    PAPER_SPACING,
    PreprocessConfig,
    Preprocessor,
    compute_fingerprint,
    normalize,
    resample_to_reference,
    resample_volume,
)

__all__ = [
    "FLARE_ORGANS",
    "LABEL_MAPS",
    "NSD_TOLERANCE_MM",
    "PAPER_SPACING",
    "PreprocessConfig",
    "Preprocessor",
    "as_integer_labels",
    "compute_fingerprint",
    "from_sitk",
    "get_label_map",
    "load_cases",
    "normalize",
    "organ_name",
    "read_dataset",
    "read_folder",
    "read_label",
    "read_volume",
    "remap_to_flare",
    "resample_to_reference",
    "resample_volume",
    "sobel_gradient",
    "sobel_magnitude",
    "to_anatomy_space",
    "to_sitk",
    "write_dataset",
    "write_volume",
]
