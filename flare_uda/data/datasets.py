"""nnU-Net raw dataset layout, in and out, plus a per-case manifest.

Layout written and read::

    DIR/dataset.json               channel_names, labels, numTraining, file_ending
    DIR/manifest.json              per case: modality, sequence, annotated organs, split
    DIR/imagesTr/{id}_0000.nii.gz  training images   (labelsTr/{id}.nii.gz their labels)
    DIR/imagesTs/{id}_0000.nii.gz  test images       (labelsTs/{id}.nii.gz, optional)

The manifest is flare_uda's addition: nnU-Net's ``dataset.json`` cannot say
which sequence a case is or which organs its labels annotate.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from flare_uda._atomic import write_json
from flare_uda.data.io import list_volume_files, read_label, read_volume, write_volume
from flare_uda.data.labels import FLARE_ORGANS
from flare_uda.volume import Case

FILE_ENDING = ".nii.gz"
SPLITS = {"train": ("imagesTr", "labelsTr"), "test": ("imagesTs", "labelsTs")}


def dataset_json(modality: str, num_training: int) -> dict:
    """The ``dataset.json`` content nnU-Net v2 expects, for FLARE labels."""
    labels = {"background": 0, **{name: i for i, name in enumerate(FLARE_ORGANS, start=1)}}
    channel = "CT" if modality == "CT" else "MRI"
    return {
        "channel_names": {"0": channel},
        "labels": labels,
        "numTraining": int(num_training),
        "file_ending": FILE_ENDING,
    }


def write_dataset(
    cases: Sequence[Case],
    out_dir: str | os.PathLike,
    split: str = "train",
    progress: bool = True,
) -> Path:
    """Write ``cases`` into ``out_dir`` in nnU-Net raw layout with a manifest.

    Existing cases of the other split are kept (the manifest is merged).

    Parameters
    ----------
    cases : sequence of Case
        One modality per dataset (nnU-Net requires one channel name).
    out_dir : path-like
        Dataset folder.
    split : {"train", "test"}
        ``imagesTr``/``labelsTr`` or ``imagesTs``/``labelsTs``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    if not cases:
        raise ValueError("write_dataset needs at least one case, got none")
    modalities = {c.modality for c in cases}
    if len(modalities) != 1:
        raise ValueError(f"one dataset holds one modality, got {sorted(modalities)}")
    ids = [c.case_id for c in cases]
    if len(set(ids)) != len(ids):
        raise ValueError(f"case ids must be unique, got duplicates in {ids}")
    out = Path(out_dir)
    img_dir, lab_dir = (out / d for d in SPLITS[split])
    manifest = read_manifest(out) if (out / "manifest.json").exists() else {}
    for case in tqdm(cases, desc=f"writing {out.name}/{SPLITS[split][0]}", disable=not progress):
        write_volume(case.image, img_dir / f"{case.case_id}_0000{FILE_ENDING}")
        if case.label is not None:
            write_volume(case.label, lab_dir / f"{case.case_id}{FILE_ENDING}", is_label=True)
        manifest[case.case_id] = {
            "modality": case.modality,
            "sequence": case.sequence,
            "annotated": list(case.annotated),
            "split": split,
            "has_label": case.label is not None,
        }
    n_train = sum(1 for m in manifest.values() if m["split"] == "train" and m["has_label"])
    write_json(out / "dataset.json", dataset_json(next(iter(modalities)), n_train))
    write_json(out / "manifest.json", manifest)
    return out


def read_manifest(dataset_dir: str | os.PathLike) -> dict[str, dict]:
    """The manifest of a dataset folder (case id -> metadata)."""
    path = Path(dataset_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"expected a flare_uda manifest at {path}, found none")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"manifest {path} is not valid JSON: {err}") from err


def _infer_modality(dataset_dir: Path) -> str:
    ds = dataset_dir / "dataset.json"
    if ds.exists():
        try:
            meta = json.loads(ds.read_text(encoding="utf-8"))
            channel = (meta.get("channel_names") or meta["modality"])["0"]  # v2, or v1
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(
                f"{ds} is not an nnU-Net dataset.json: expected a JSON object with "
                f"channel_names {{'0': ...}}, got {type(err).__name__}: {err}"
            ) from err
        return "CT" if str(channel).upper() == "CT" else "MR"
    return "CT"


def read_dataset(
    dataset_dir: str | os.PathLike,
    splits: Iterable[str] = ("train", "test"),
    with_labels: bool = True,
    label_map: str = "flare",
    progress: bool = False,
) -> list[Case]:
    """Read the cases of an nnU-Net raw dataset folder.

    Without a manifest, modality comes from ``dataset.json``'s channel name,
    sequence is unknown, and all organs of ``label_map`` count as annotated.

    Returns
    -------
    list of Case
        Sorted by case id within each split.
    """
    from flare_uda.data.labels import get_label_map

    root = Path(dataset_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"expected a dataset folder, got {root} (not a folder)")
    manifest = read_manifest(root) if (root / "manifest.json").exists() else {}
    default_modality = _infer_modality(root)
    default_annotated = get_label_map(label_map).annotated
    cases: list[Case] = []
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        img_dir, lab_dir = (root / d for d in SPLITS[split])
        if not img_dir.is_dir():
            continue
        images = [p for p in list_volume_files(img_dir) if p.name.endswith(f"_0000{FILE_ENDING}")]
        for img_path in tqdm(images, desc=f"reading {root.name}", disable=not progress):
            case_id = img_path.name[: -len(f"_0000{FILE_ENDING}")]
            meta = manifest.get(case_id, {})
            lab_path = lab_dir / f"{case_id}{FILE_ENDING}"
            label = read_label(lab_path, label_map) if with_labels and lab_path.exists() else None
            cases.append(
                Case(
                    case_id=case_id,
                    image=read_volume(img_path),
                    label=label,
                    modality=meta.get("modality", default_modality),
                    sequence=meta.get("sequence"),
                    annotated=tuple(meta.get("annotated", default_annotated)),
                )
            )
    if not cases:
        raise ValueError(
            f"no cases found in {root}: expected imagesTr/ or imagesTs/ with *_0000{FILE_ENDING}"
        )
    return cases


def read_folder(
    folder: str | os.PathLike, modality: str = "MR", sequence: str | None = None
) -> list[Case]:
    """Read every volume file directly inside ``folder`` as an unlabelled case.

    A case id is the file name without its suffix (and without ``_0000``);
    hidden and temporary files are skipped.
    """
    from flare_uda.data.io import READ_SUFFIXES

    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"expected a folder of volumes, got {root}")
    files = list_volume_files(root)
    if not files:
        raise ValueError(f"no volumes ({', '.join(READ_SUFFIXES)}) found in {root}")
    cases = []
    for p in files:
        stem = p.name
        for s in sorted(READ_SUFFIXES, key=len, reverse=True):
            if stem.lower().endswith(s):
                stem = stem[: -len(s)]
                break
        stem = stem.removesuffix("_0000")
        cases.append(Case(stem, read_volume(p), None, modality, sequence))
    return cases


def load_cases(path: str | os.PathLike, **kwargs) -> list[Case]:
    """Read a dataset in nnU-Net raw layout, or else a plain folder of volumes."""
    root = Path(path)
    if (root / "imagesTr").is_dir() or (root / "imagesTs").is_dir():
        return read_dataset(root, **kwargs)
    return read_folder(root)
