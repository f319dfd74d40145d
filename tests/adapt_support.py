"""The tiny phantom written to disk as a user's own folders, for ``adapt`` tests.

``write_user_folders(root)`` writes::

    root/ct_nnunet/      nnU-Net raw dataset (dataset.json, imagesTr, labelsTr), FLARE labels
    root/ct_plain/       ct_001.mha + labels/ct_001.nii.gz (AMOS map)
                         ct_002/ (a DICOM series) + ct_002_label.nii.gz (AMOS map)
    root/mr/             mr_t1_000.nii.gz ... (unlabelled, no sequence anywhere)
    root/mr_labels/      {case}_label.nii.gz (FLARE)
    root/sequences.csv   case,sequence
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from io_support import write_dicom_series

from flare_uda.data.datasets import write_dataset
from flare_uda.data.io import write_volume
from flare_uda.data.labels import get_label_map
from flare_uda.data.phantom import generate_cohort


def to_map(array: np.ndarray, label_map: str) -> np.ndarray:
    """FLARE labels written in ``label_map``'s values (the inverse of ``remap_to_flare``)."""
    out = np.zeros_like(array)
    for flare, value in enumerate(get_label_map(label_map).source_values, start=1):
        if value is not None:
            out[array == flare] = value
    return out


def write_user_folders(root: Path, n_mr: int = 4, seed: int = 0) -> dict[str, Path]:
    """Write the folders of the module docstring; their paths by name."""
    ct, mr = generate_cohort("tiny", 3, n_mr, seed)
    paths = {name: root / name for name in ("ct_nnunet", "ct_plain", "mr", "mr_labels")}
    write_dataset(ct[:1], paths["ct_nnunet"], progress=False)
    (paths["ct_nnunet"] / "manifest.json").unlink()  # a user's dataset has none
    plain = paths["ct_plain"]
    write_volume(ct[1].image, plain / "ct_001.mha")
    amos = ct[1].label.with_array(to_map(ct[1].label.array, "amos"))
    write_volume(amos, plain / "labels" / "ct_001.nii.gz", is_label=True)
    image = ct[2].image
    write_dicom_series(plain / "ct_002", image.array, image.spacing, image.origin)
    amos = ct[2].label.with_array(to_map(ct[2].label.array, "amos"))
    write_volume(amos, plain / "ct_002_label.nii.gz", is_label=True)
    for case in mr:
        write_volume(case.image, paths["mr"] / f"{case.case_id}.nii.gz")
        write_volume(case.label, paths["mr_labels"] / f"{case.case_id}_label.nii.gz", True)
    paths["sequences"] = root / "sequences.csv"
    rows = ["case,sequence"] + [f"{c.case_id},{c.sequence}" for c in mr]
    paths["sequences"].write_text("\n".join(rows) + "\n")
    return paths
