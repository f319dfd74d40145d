"""A user's own CT and MRI folders, read into cases and checked before any work.

:func:`read_sources` reads labelled CT folders (each with one label map, given
as ``DIR:MAP`` or FLARE by default, checked by :mod:`.label_check`; partial maps
stay partial through ``Case.annotated``); :func:`read_target` reads the
unlabelled MRI (refusing CT, saying how it was recognised, and taking sequence
names from flare_uda manifests and DICOM headers); :func:`read_target_labels`
reads labels of some target cases for scoring. Every error names the folder
and file, what was expected and what arrived.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flare_uda.data.folders import Layout, discover, label_files
from flare_uda.data.io import as_integer_labels, read_volume
from flare_uda.data.label_check import resolve_label_map, signature
from flare_uda.data.labels import LABEL_MAPS, check_label_values, get_label_map, remap_to_flare
from flare_uda.data.modality import dicom_tags, looks_like_ct, sequence_from_dicom
from flare_uda.volume import Case, Volume


@dataclass(frozen=True)
class FolderArg:
    """A folder given on the command line, with its label map when one was named."""

    path: Path
    label_map: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.label_map}" if self.label_map else str(self.path)


def parse_folder_arg(text: str | os.PathLike | FolderArg) -> FolderArg:
    """``"DIR"`` or ``"DIR:MAP"`` (MAP a known label map) as a :class:`FolderArg`.

    A colon is read as the map separator only when what follows it holds no
    path separator, so folder names containing colons still work.

    Raises
    ------
    KeyError
        ``UnknownNameError`` for an unknown map name (with the closest known one).
    """
    if isinstance(text, FolderArg):
        return text
    text = os.fspath(text)
    head, sep, tail = text.rpartition(":")
    if not sep or not head or "/" in tail or os.sep in tail or Path(text).exists():
        return FolderArg(Path(text))
    get_label_map(tail)
    return FolderArg(Path(head), tail)


@dataclass
class FolderReport:
    """What was read from one folder (for ``inputs.json`` and the report)."""

    role: str
    path: str
    layout: str
    label_map: str | None
    cases: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read_image(path: Path, where: str) -> Volume:
    try:
        return read_volume(path)
    except (ValueError, OSError) as err:
        raise ValueError(f"{where}: {err}") from err


def _raw_label(path: Path, where: str) -> Volume:
    raw = _read_image(path, where)
    return raw.with_array(as_integer_labels(raw.array, f"label {path.name} ({where})"))


def on_image_grid(label: Volume, image: Volume, what: str) -> Volume:
    """``label`` on ``image``'s grid: the same grid, or resampled when it covers the same box.

    A label stored on another grid of the same physical region (e.g. a DICOM
    series' label written in another axis order) is moved by nearest neighbour.

    Raises
    ------
    ValueError
        If the label covers another physical region than the image.
    """
    if label.shape == image.shape and label.same_geometry(image, atol=1e-3):
        return image.with_array(label.array)
    boxes = []
    for v in (label, image):
        corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
        edges = corners * np.asarray(v.shape) - 0.5
        points = v.index_to_physical(edges)
        boxes.append(np.stack([points.min(axis=0), points.max(axis=0)]))
    tolerance = max(max(label.spacing), max(image.spacing))
    if np.abs(boxes[0] - boxes[1]).max() > tolerance:
        raise ValueError(
            f"{what} is not on its image's grid: expected the image's physical box "
            f"{np.round(boxes[1], 1).tolist()} mm (z, y, x), got {np.round(boxes[0], 1).tolist()}"
        )
    from flare_uda.data.resampling import resample_to_reference

    return resample_to_reference(label, image, is_label=True)


def _flare_label(raw: Volume, label_map: str, image: Volume, where: str) -> Volume:
    check_label_values(raw.array, label_map, where)
    label = raw.with_array(remap_to_flare(raw.array, label_map))
    return on_image_grid(label, image, where)


def _map_of(layout: Layout, arg: FolderArg) -> str | None:
    """The declared map, or FLARE when the dataset was written by flare_uda (or names FLARE's)."""
    if arg.label_map is not None:
        return arg.label_map
    from flare_uda.data.datasets import dataset_json

    if layout.label_names is not None and layout.label_names == dataset_json("CT", 0)["labels"]:
        return "flare"
    return None


def read_sources(args: Sequence[str | os.PathLike | FolderArg]) -> tuple[list[Case], list]:
    """Labelled CT cases of every source folder, labels in FLARE order; and a report per folder.

    Raises
    ------
    ValueError
        No source holds labels; a source holds images without labels, mixed label
        maps or labels off their image's grid; a file is unreadable; case ids repeat.
    """
    folders = [parse_folder_arg(a) for a in args]
    if not folders:
        raise ValueError("expected at least one --source folder, got none")
    layouts = [discover(f.path, ("imagesTr",)) for f in folders]
    if not any(e.label is not None for lay in layouts for e in lay.entries):
        raise ValueError(
            f"no labels in any source ({', '.join(str(f.path) for f in folders)}): expected "
            "label files in labels/ (named by case id), beside each image as {case}_label.*, "
            "or in labelsTr/ of an nnU-Net dataset"
        )
    cases, reports, seen = [], [], {}
    for arg, layout in zip(folders, layouts, strict=True):
        missing = [e.case_id for e in layout.entries if e.label is None]
        if missing:
            raise ValueError(
                f"--source {arg.path}: {len(missing)} of {len(layout.entries)} images have no "
                f"label ({missing[:5]}); expected a label for every source image"
            )
        raws = {e.case_id: _raw_label(e.label, f"--source {arg.path}") for e in layout.entries}
        sigs = {cid: signature(raw) for cid, raw in raws.items()}
        label_map = resolve_label_map(sigs, _map_of(layout, arg), f"{arg.path}")
        annotated = get_label_map(label_map).annotated
        report = FolderReport("source", str(arg.path), layout.kind, label_map)
        for entry in layout.entries:
            if entry.case_id in seen:
                raise ValueError(
                    f"case id {entry.case_id!r} is in --source {seen[entry.case_id]} and "
                    f"--source {arg.path}; expected unique case ids across sources"
                )
            seen[entry.case_id] = arg.path
            image = _read_image(entry.image, f"--source {arg.path}")
            where = f"label {entry.label.name} of --source {arg.path}"
            label = _flare_label(raws[entry.case_id], label_map, image, where)
            cases.append(Case(entry.case_id, image, label, "CT", None, annotated))
            report.cases.append(entry.case_id)
        reports.append(report)
    return cases, reports


def read_target(arg: str | os.PathLike | FolderArg) -> tuple[list[Case], FolderReport]:
    """Unlabelled MR cases of the target folder (labels there are ignored), with sequences.

    Sequences come from a flare_uda manifest or from DICOM headers
    (:func:`~flare_uda.data.modality.sequence_from_dicom`); ``None`` elsewhere.

    Raises
    ------
    ValueError
        A scan looks like CT (saying how that was seen), or a file is unreadable.
    """
    arg = parse_folder_arg(arg)
    if arg.label_map is not None:
        raise ValueError(
            f"--target {arg}: the target is unlabelled, expected a folder without a label map "
            "(labels for scoring go to --target-labels DIR:MAP)"
        )
    layout = discover(arg.path, ("imagesTr", "imagesTs"))
    where = f"--target {arg.path}"
    if layout.channel is not None and layout.channel.upper() == "CT":
        raise ValueError(
            f"{where} looks like CT, not MRI: its dataset.json names the channel 'CT'; "
            "expected MRI scans as the target (labelled CT go to --source)"
        )
    report = FolderReport("target", str(arg.path), layout.kind, None)
    if any(e.label is not None for e in layout.entries):
        report.notes.append("labels in the target folder are not used (see --target-labels)")
    cases = []
    for entry in layout.entries:
        image = _read_image(entry.image, where)
        tags = dicom_tags(entry.image) if entry.image.is_dir() else {}
        why = looks_like_ct(image.array, tags)
        if why is not None:
            raise ValueError(
                f"{where} looks like CT, not MRI: case {entry.case_id!r} ({entry.image.name}): "
                f"{why}; expected MRI scans as the target (labelled CT go to --source)"
            )
        meta = (layout.manifest or {}).get(entry.case_id, {})
        sequence = meta.get("sequence") or (sequence_from_dicom(tags) if tags else None)
        cases.append(Case(entry.case_id, image, None, "MR", sequence))
        report.cases.append(entry.case_id)
    return cases, report


def read_target_labels(
    arg: str | os.PathLike | FolderArg, target: Sequence[Case]
) -> tuple[dict[str, Case], FolderReport]:
    """Target cases that have a label in the folder, labels in FLARE order on their grids.

    Raises
    ------
    ValueError
        A label names no target case, none matches any, the map is mixed or off grid.
    """
    arg = parse_folder_arg(arg)
    files = label_files(arg.path)
    by_id = {c.case_id: c for c in target}
    unknown = sorted(set(files) - set(by_id))
    if unknown:
        raise ValueError(
            f"--target-labels {arg.path}: labels {unknown[:5]} name no target case; expected "
            f"labels named by the target's case ids (e.g. {sorted(by_id)[:3]})"
        )
    where = f"--target-labels {arg.path}"
    raws = {cid: _raw_label(path, where) for cid, path in files.items()}
    label_map = resolve_label_map({c: signature(r) for c, r in raws.items()}, arg.label_map, where)
    annotated = get_label_map(label_map).annotated
    out = {}
    for cid, raw in raws.items():
        case = by_id[cid]
        label = _flare_label(raw, label_map, case.image, f"label {files[cid].name} ({where})")
        out[cid] = case.with_label(label, annotated)
    report = FolderReport("target labels", str(arg.path), "labels", label_map, sorted(out))
    return out, report


__all__ = [
    "LABEL_MAPS",
    "FolderArg",
    "FolderReport",
    "on_image_grid",
    "parse_folder_arg",
    "read_sources",
    "read_target",
    "read_target_labels",
]
