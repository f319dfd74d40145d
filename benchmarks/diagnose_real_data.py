"""Diagnose the shared real data without training (issue 19, item 1).

Reads every CT source and MR target of ``../shared/data`` the way the library
does (``read_volume``, ``read_label`` with each source's label map, the DICOM
label moved onto its series in physical space, no reorientation) and prints
four markdown tables:

a. the source set: grid and organ volumes (mL) after remapping to FLARE order;
b. the anatomy space (``to_anatomy_space``, as ASIT uses it): median edge
   magnitude on organ boundaries, organ interiors and the body outline;
c. orientation: where each array axis points, and on which side of the array
   and of the patient the right kidney lies;
d. the segmentation grid: each scan at the ``quick2d`` preset's spacing, and
   the fraction of each organ's volume that survives there.

It also writes a figure (rows: scans, columns: image, anatomy space, label
contours, each an axial slice through the organs, shown as the array is
stored, i.e. as a network sees it) and the numbers as JSON.

Run (a few tens of seconds on one core; prints "skipped" without the data):
    .venv/bin/python benchmarks/diagnose_real_data.py [--data ../shared/data] \
        [--out runs/diagnose_real] [--figure docs/figures/real_anatomy_space.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from diagnose_measures import (  # same folder
    edge_statistics,
    grid_survival,
    organ_volumes,
    orientation_code,
    posterior_check,
    side_check,
)

from flare_uda.data import get_label_map, read_label, read_volume, resample_to_reference
from flare_uda.volume import Case

CT = [  # (case id, image, label, label map), as examples/real_ct_to_mri.py reads them
    ("amos_0001", "ct/amos_0001_slab_image.nii.gz", "ct/amos_0001_slab_label.nii.gz", "amos"),
    ("amos_0013", "ct/amos_0013_slab_image.nii.gz", "ct/amos_0013_slab_label.nii.gz", "amos"),
    ("chaos_ct3", "ct/chaos_ct3_image.nii.gz", "ct/chaos_ct3_label.nii.gz", "chaos_ct"),
    ("totalseg_ct", "ct/totalseg_ct_sm_image.nii.gz", "ct/totalseg_ct_sm_label.nii.gz", "total"),
    ("totalseg_dicom", "ct/totalseg_ct_dicom", "ct/totalseg_ct_dicom_label.nii.gz", "total"),
]
MR = [
    *[
        (
            f"chaos_t2_{n}",
            f"mr/chaos_t2/chaos_t2_{n}_image.nii.gz",
            f"mr/chaos_t2/chaos_t2_{n}_label.nii.gz",
            "chaos",
        )
        for n in (1, 2, 3, 5, 8)
    ],  # fmt: skip
    ("totalseg_mr", "mr/totalseg_mr_sm_image.nii.gz", "mr/totalseg_mr_sm_label.nii.gz", "total_mr"),
]
SHORT = ("liver", "RK", "spleen", "panc", "aorta", "IVC", "RAG", "LAG", "GB", "eso", "stom",
         "duod", "LK")  # fmt: skip
SCORED = (1, 2, 3, 13)
"""The organs every CHAOS T2 label holds: liver, right kidney, spleen, left kidney."""
CT_WINDOW = (-160.0, 240.0)
"""Display window (HU) of CT images in the figure (abdominal soft tissue)."""
FIGURE_CASES = ("amos_0001", "totalseg_ct", "chaos_t2_1", "totalseg_mr")


def read_case(root: Path, cid: str, image: str, label: str, label_map: str, modality: str) -> Case:
    """One scan and its label in FLARE order, the label on the image's grid."""
    img = read_volume(root / image)
    lab = read_label(root / label, label_map)
    if not lab.same_geometry(img):  # the DICOM label is aligned in physical space only
        lab = resample_to_reference(lab, img, is_label=True)
    return Case(cid, img, lab, modality, None, get_label_map(label_map).annotated)


def read_all(root: Path) -> list[Case]:
    """The CT sources, then the MR targets (labels for diagnosis only)."""
    return [read_case(root, *row, "CT") for row in CT] + [read_case(root, *row, "MR") for row in MR]


def _fmt(values, digits: int = 2) -> str:
    texts = [f"{v:.{digits}f}" for v in values]
    return "(" + ", ".join(t.rstrip("0").rstrip(".") if "." in t else t for t in texts) + ")"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def source_table(cases: list[Case]) -> tuple[str, dict]:
    """Table a: grid and per-organ volume (mL); '-' not annotated by the map, 0 absent."""
    rows, data = [], {}
    for c in cases:
        vols = organ_volumes(c.label)
        data[c.case_id] = {o: v for o, v in vols.items()}
        cells = [
            f"{vols[o][1]:.1f}" if o in vols else ("0" if o in c.annotated else "-")
            for o in range(1, 14)
        ]
        rows.append([c.case_id, c.modality, str(c.image.shape), _fmt(c.image.spacing), *cells])
    counts = ["" for _ in range(4)]
    counts[0] = "CT sources labelling it"
    ct = [c for c in cases if c.modality == "CT"]
    counts += [str(sum(o in data[c.case_id] for c in ct)) for o in range(1, 14)]
    rows.append(counts)
    header = ["case", "mod.", "shape (z,y,x)", "spacing (z,y,x) mm", *SHORT]
    return _table(header, rows), data


def edge_table(cases: list[Case]) -> tuple[str, dict]:
    """Table b: anatomy-space medians, boundary / interior per scored organ; each CT twice,
    unclipped (the paper) and clipped to ASIT's soft-tissue window (row ``+ window``)."""
    from flare_uda.data.anatomy import CT_SOFT_TISSUE_WINDOW

    rows, data = [], {}
    views = [(c, c.case_id, None) for c in cases]
    views += [
        (c, f"{c.case_id} + window", CT_SOFT_TISSUE_WINDOW) for c in cases if c.modality == "CT"
    ]
    for c, name, window in views:
        s = edge_statistics(c.image, c.label, SCORED, window=window)
        data[name] = s
        cells = [
            f"{s[f'{o}_boundary']:.3f} / {s[f'{o}_interior']:.3f}" if f"{o}_boundary" in s else "-"
            for o in SCORED
        ]
        rows.append(
            [name, c.modality, f"{s['outline']:.3f}", f"{s['saturated']:.2f}",
             f"{s['saturated_outside_organs']:.0f}", *cells]
        )  # fmt: skip
    header = ["case", "mod.", "body outline", "% voxels at 1", "% of those away from organs"]
    header += [f"{SHORT[o - 1]} boundary / interior" for o in SCORED]
    return _table(header, rows), data


def orientation_table(cases: list[Case]) -> tuple[str, dict]:
    """Table c: direction codes and the right kidney's side in the patient and the array."""
    rows, data = [], {}
    for c in cases:
        code = orientation_code(c.image.direction)
        side = side_check(c.label)
        liver = side_check(c.label, 1, 3)
        back = posterior_check(c.label)
        data[c.case_id] = {"code": code, "kidneys": side, "liver_spleen": liver, "rk_back": back}
        diag = np.round(np.diag(c.image.direction)[::-1]).astype(int).tolist()

        def cells(s):
            if s is None:
                return ["-", "-"]
            return [f"{s['world_dx']:+.0f}", "low x" if s["index_dx"] < 0 else "high x"]

        anterior = "top (row 0)" if code[1] == "P" else "bottom"
        behind = "-" if back is None else f"{back:+.0f}"
        rows.append([c.case_id, str(diag), code, anterior, behind, *cells(side), *cells(liver)])
    header = ["case", "direction diag (x,y,z)", "code (x,y,z)", "anterior in array"]
    header += ["RK - liver world y (mm)"]
    header += ["RK - LK world x (mm)", "RK in array", "liver - spleen world x (mm)"]
    header += ["liver in array"]
    return _table(header, rows), data


def grid_table(cases: list[Case], spacing: tuple[float, float, float]) -> tuple[str, dict]:
    """Table d: shape at ``spacing`` and organ voxels there (percent of the volume kept)."""
    rows, data = [], {}
    for c in cases:
        g = grid_survival(c.label, spacing)
        data[c.case_id] = g
        cells = [
            f"{g['counts'][o]} ({100 * g['kept'][o]:.0f}%)" if o in g["counts"] else "-"
            for o in range(1, 14)
        ]
        extent = np.asarray(c.image.shape) * np.asarray(c.image.spacing)
        rows.append([c.case_id, str(c.image.shape), str(g["shape"]), _fmt(extent, 0), *cells])
    header = ["case", "native shape", "shape at grid", "extent (z,y,x) mm", *SHORT]
    slices = [
        [c.case_id, str(data[c.case_id]["shape"][0])]
        + [str(data[c.case_id]["slices"].get(o, "-")) for o in SCORED]
        for c in cases
    ]
    for modality in ("CT", "MR"):
        group = [data[c.case_id] for c in cases if c.modality == modality]
        total = [str(sum(g["slices"].get(o, 0) for g in group)) for o in SCORED]
        slices.append([f"all {modality}", str(sum(g["shape"][0] for g in group)), *total])
    second = _table(["case", "slices", *(f"with {SHORT[o - 1]}" for o in SCORED)], slices)
    return _table(
        header, rows
    ) + "\n\nAxial slices at the grid (a 2D net's samples):\n\n" + second, data


def mid_organ_slice(case: Case) -> int:
    """The axial slice holding the most voxels of the scored organs."""
    per_slice = np.isin(case.label.array, SCORED).sum(axis=(1, 2))
    return int(np.argmax(per_slice))


def write_figure(cases: list[Case], path: Path, dpi: int = 70) -> Path:
    """Rows: scans; columns: image, anatomy space, label contours (array as stored)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from flare_uda.data.anatomy import to_anatomy_space

    fig, axes = plt.subplots(len(cases), 3, figsize=(7.5, 2.6 * len(cases)), squeeze=False)
    for row, c in zip(axes, cases, strict=True):
        z = mid_organ_slice(c)
        image = np.asarray(c.image.array[z], dtype=np.float32)
        lo, hi = CT_WINDOW if c.modality == "CT" else np.percentile(image, (1, 99.5))
        edges = to_anatomy_space(c.image).array[z]
        code = orientation_code(c.image.direction)
        row[0].imshow(image, cmap="gray", vmin=lo, vmax=hi)
        row[0].set_title(f"{c.case_id} ({c.modality}, {code}) z={z}", fontsize=8)
        row[1].imshow(edges, cmap="gray", vmin=0, vmax=1)
        row[1].set_title("anatomy space", fontsize=8)
        row[2].imshow(image, cmap="gray", vmin=lo, vmax=hi)
        for organ, color in zip(SCORED, ("y", "r", "c", "m"), strict=True):
            mask = c.label.array[z] == organ
            if mask.any():
                row[2].contour(mask, levels=[0.5], colors=color, linewidths=0.8)
        row[2].set_title("liver y, RK r, spleen c, LK m", fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def diagnose(root: Path, out: Path, figure: Path | None) -> str:
    """Every table as one markdown text; writes ``out/diagnosis.{md,json}`` and the figure."""
    from flare_uda.segmentation import get_preset

    spacing = get_preset("quick2d").spacing
    cases = read_all(root)
    sections, data = [], {}
    for title, (text, numbers) in (
        ("a. Source set: organ volumes (mL)", source_table(cases)),
        ("b. Anatomy space: median edge magnitude", edge_table(cases)),
        ("c. Orientation", orientation_table(cases)),
        (f"d. Segmentation grid {spacing} mm: voxels (kept)", grid_table(cases, spacing)),
    ):
        sections.append(f"### {title}\n\n{text}\n")
        data[title] = numbers
    out.mkdir(parents=True, exist_ok=True)
    text = "\n".join(sections)
    (out / "diagnosis.md").write_text(text)
    (out / "diagnosis.json").write_text(json.dumps(data, indent=1, default=_jsonable))
    if figure is not None:
        by_id = {c.case_id: c for c in cases}
        write_figure([by_id[i] for i in FIGURE_CASES], figure)
    return text


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    parser.add_argument("--data", default=str(default), help="the shared real-data folder")
    parser.add_argument("--out", default="runs/diagnose_real", help="tables and JSON go here")
    parser.add_argument("--figure", help="figure path (default OUT/real_anatomy_space.png)")
    args = parser.parse_args(argv)
    root = Path(args.data)
    if not (root / "ct").is_dir() or not (root / "mr").is_dir():
        print(f"skipped: real data folder {root} is absent")
        return 0
    out = Path(args.out)
    figure = Path(args.figure) if args.figure else out / "real_anatomy_space.png"
    print(diagnose(root, out, figure))
    print(f"wrote {out / 'diagnosis.md'}, {out / 'diagnosis.json'} and {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
