"""Which images and labels a user's folder holds: nnU-Net raw datasets and plain folders.

Two layouts are recognised (:func:`discover`):

- **nnU-Net raw dataset**: ``dataset.json``, ``imagesTr/{id}_0000{ending}`` with
  ``labelsTr/{id}{ending}`` (and ``imagesTs``/``labelsTs``); one channel only;
  ``ending`` is the dataset's ``file_ending`` (default ``.nii.gz``).
- **plain folder**: image files (NIfTI, MHA/MHD, NRRD) and DICOM series
  sub-folders (one series each) directly inside it. A case's label is
  ``labels/{id}.*`` (also ``labels/{id}_label.*``) or a sibling
  ``{id}_label.*`` / ``{id}_seg.*``; an image named ``{id}_image.*`` or
  ``{id}_0000.*`` is case ``{id}``.

Nothing is read here but names and ``dataset.json``; :mod:`flare_uda.data.user_data`
reads and checks the volumes. Every ambiguity (two labels for one case, a
label without an image, a sub-folder that is neither DICOM nor ``labels``)
is an error that names the files, never a guess.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from flare_uda._atomic import is_hidden_or_temporary
from flare_uda.data.dicom import is_dicom_folder
from flare_uda.data.io import READ_SUFFIXES, list_volume_files

LABEL_TAGS = ("_label", "_seg")
"""Name endings (before the suffix) that mark a label file in a plain folder."""
IMAGE_TAGS = ("_image", "_0000")
"""Name endings (before the suffix) dropped from an image's case id."""
LABEL_FOLDERS = ("labels", "labelsTr", "labelsTs")


@dataclass(frozen=True)
class Entry:
    """One case found in a folder: its image (file or DICOM folder) and optional label file."""

    case_id: str
    image: Path
    label: Path | None = None


@dataclass(frozen=True)
class Layout:
    """What :func:`discover` found in a folder.

    ``kind`` is ``"nnunet"`` or ``"plain"``; ``channel`` the dataset.json
    channel name (nnU-Net only); ``manifest`` flare_uda's per-case metadata
    when the dataset was written by flare_uda; ``label_names`` dataset.json's
    ``labels`` (name -> value), if any.
    """

    folder: Path
    kind: str
    entries: tuple[Entry, ...]
    channel: str | None = None
    manifest: dict | None = None
    label_names: dict | None = None


def stem(path: Path) -> str:
    """File name without its volume suffix (``.nii.gz``, ``.mha``, ...); a folder's name."""
    name = path.name
    for suffix in sorted(READ_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def strip_tag(name: str, tags: tuple[str, ...]) -> tuple[str, bool]:
    """``name`` without a trailing tag of ``tags``, and whether it had one."""
    for tag in tags:
        if name.lower().endswith(tag) and len(name) > len(tag):
            return name[: -len(tag)], True
    return name, False


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def is_nnunet_dataset(folder: Path) -> bool:
    """Whether ``folder`` is laid out as an nnU-Net raw dataset."""
    return (folder / "imagesTr").is_dir() or (folder / "imagesTs").is_dir()


def _nnunet(folder: Path, splits: tuple[str, ...]) -> Layout:
    meta = _json(folder / "dataset.json") if (folder / "dataset.json").exists() else {}
    channels = meta.get("channel_names") or meta.get("modality") or {"0": None}
    if not isinstance(channels, dict) or len(channels) != 1:
        raise ValueError(
            f"{folder}/dataset.json: expected one input channel, got channel_names {channels!r}"
        )
    ending = str(meta.get("file_ending", ".nii.gz"))
    entries = []
    for images, labels in (("imagesTr", "labelsTr"), ("imagesTs", "labelsTs")):
        if images not in splits or not (folder / images).is_dir():
            continue
        for path in list_volume_files(folder / images):
            case_id, tagged = strip_tag(stem(path), ("_0000",))
            if not tagged:
                raise ValueError(
                    f"{path}: expected nnU-Net image names {{case}}_0000{ending} in "
                    f"{folder / images}, got {path.name} (a second channel or a stray file?)"
                )
            label = folder / labels / f"{case_id}{ending}"
            entries.append(Entry(case_id, path, label if label.is_file() else None))
    manifest = _json(folder / "manifest.json") if (folder / "manifest.json").exists() else None
    return Layout(
        folder,
        "nnunet",
        tuple(entries),
        channel=None if channels.get("0") is None else str(channels.get("0")),
        manifest=manifest,
        label_names=meta.get("labels") if isinstance(meta.get("labels"), dict) else None,
    )


def _label_candidates(folder: Path) -> dict[str, list[Path]]:
    """Case id -> label files of a plain folder (``labels/`` and ``*_label``/``*_seg`` siblings)."""
    found: dict[str, list[Path]] = {}
    for path in list_volume_files(folder):
        case_id, tagged = strip_tag(stem(path), LABEL_TAGS)
        if tagged:
            found.setdefault(case_id, []).append(path)
    if (folder / "labels").is_dir():
        for path in list_volume_files(folder / "labels"):
            found.setdefault(strip_tag(stem(path), LABEL_TAGS)[0], []).append(path)
    return found


def _plain(folder: Path) -> Layout:
    images: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if is_hidden_or_temporary(path) or path.name == "labels":
            continue
        if path.is_dir():
            if not is_dicom_folder(path):
                raise ValueError(
                    f"unexpected sub-folder {path}: expected image files, DICOM series "
                    "sub-folders and an optional labels/ sub-folder in a plain folder"
                )
            case_id = path.name
        elif path.name.lower().endswith(READ_SUFFIXES):
            name = stem(path)
            if strip_tag(name, LABEL_TAGS)[1]:
                continue
            case_id = strip_tag(name, IMAGE_TAGS)[0]
        else:
            continue
        if case_id in images:
            raise ValueError(
                f"two images of case {case_id!r} in {folder}: {images[case_id].name} and "
                f"{path.name}; expected one image per case"
            )
        images[case_id] = path
    labels = _label_candidates(folder)
    entries = []
    for case_id, image in images.items():
        found = labels.pop(case_id, [])
        if len(found) > 1:
            raise ValueError(
                f"case {case_id!r} of {folder} has {len(found)} label files "
                f"{[str(p.relative_to(folder)) for p in found]}; expected at most one"
            )
        entries.append(Entry(case_id, image, found[0] if found else None))
    if labels:
        orphans = sorted(str(p.relative_to(folder)) for ps in labels.values() for p in ps)
        raise ValueError(
            f"label files without an image in {folder}: {orphans[:5]}; expected each label "
            f"named after an image's case id (known: {sorted(images)[:5]})"
        )
    return Layout(folder, "plain", tuple(entries))


def discover(folder: str | os.PathLike, splits: tuple[str, ...] = ("imagesTr",)) -> Layout:
    """The cases of a user's folder (see the module docstring).

    Parameters
    ----------
    folder : path-like
        An nnU-Net raw dataset or a plain folder.
    splits : tuple of str
        nnU-Net image folders to read (``("imagesTr",)`` for labelled sources,
        ``("imagesTr", "imagesTs")`` for targets).

    Raises
    ------
    FileNotFoundError
        If ``folder`` is not a folder.
    ValueError
        If it holds no case, or its layout is ambiguous (see the module docstring).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"expected a folder of images, got {root} (not a folder)")
    layout = _nnunet(root, splits) if is_nnunet_dataset(root) else _plain(root)
    if not layout.entries:
        expected = (
            f"{' or '.join(splits)}/{{case}}_0000.nii.gz files"
            if layout.kind == "nnunet"
            else f"image files ({', '.join(READ_SUFFIXES)}) or DICOM series sub-folders"
        )
        raise ValueError(f"no images found in {root}: expected {expected}")
    return layout


def label_files(folder: str | os.PathLike) -> dict[str, Path]:
    """Case id -> label file of a folder given only for labels (e.g. ``--target-labels``).

    Looked up in ``labelsTr/``, ``labelsTs/`` and ``labels/`` when present; else
    ``*_label.*``/``*_seg.*`` files when the folder holds any (images beside them
    are not labels); else every volume file, named by case id.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"expected a folder of label files, got {root} (not a folder)")
    subs = [root / name for name in LABEL_FOLDERS if (root / name).is_dir()]
    files = [p for sub in subs for p in list_volume_files(sub)] or list_volume_files(root)
    tagged = [p for p in files if strip_tag(stem(p), LABEL_TAGS)[1]]
    if not subs and tagged:
        files = tagged
    out: dict[str, Path] = {}
    for path in files:
        case_id = strip_tag(stem(path), LABEL_TAGS)[0]
        if case_id in out:
            raise ValueError(
                f"two label files for case {case_id!r} in {root}: {out[case_id].name} and "
                f"{path.name}; expected one"
            )
        out[case_id] = path
    if not out:
        raise ValueError(f"no label files ({', '.join(READ_SUFFIXES)}) found in {root}")
    return out
