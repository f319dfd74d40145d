"""Evaluate a prediction folder against a reference folder; write CSVs and a box plot.

Files (``*.nii.gz``, ``*.nii``, ``*.mha``) are matched by case id: the file
name without its suffix and without a trailing ``_0000``. Cases are read and
scored inside the worker (:mod:`flare_uda.executor`), so reading runs in
parallel too.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from flare_uda._atomic import require_not_input, write_text
from flare_uda.data.io import list_volume_files, read_label
from flare_uda.data.labels import get_label_map
from flare_uda.executor import Executor, get_executor
from flare_uda.metrics.evaluate import MetricRow, evaluate_volumes, summarize

SUFFIXES = (".nii.gz", ".nii", ".mha")
METRIC_FIELDS = ("case", "organ", "dsc", "nsd")
SUMMARY_FIELDS = ("organ", "dsc_mean", "dsc_std", "nsd_mean", "nsd_std")


def case_id_of(path: str | os.PathLike) -> str | None:
    """Case id of a label file (suffix and trailing ``_0000`` removed), ``None`` if not one."""
    name = Path(path).name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            stem = name[: -len(suffix)]
            return stem[:-5] if stem.endswith("_0000") else stem
    return None


def list_cases(folder: str | os.PathLike, what: str = "folder") -> dict[str, Path]:
    """``{case id: path}`` of the label files in ``folder`` (hidden and temporary files skipped).

    Raises
    ------
    FileNotFoundError
        If ``folder`` is not a directory.
    ValueError
        If two files give the same case id.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} must be an existing folder, got {folder}")
    out: dict[str, Path] = {}
    for path in list_volume_files(folder, SUFFIXES):
        case_id = case_id_of(path)
        if case_id in out:
            raise ValueError(
                f"expected one file per case in {what}, got {out[case_id].name} and {path.name} "
                f"for case {case_id!r}"
            )
        out[case_id] = path
    return out


@dataclass(frozen=True)
class FolderEvaluation:
    """What :func:`evaluate_folders` scored and wrote."""

    rows: list[MetricRow]
    summary: list[dict[str, float | str]]
    missing: list[str]
    unmatched: list[str]
    paths: dict[str, Path]


def _evaluate_files(
    item: tuple[str, Path | None, Path], label_map: str, pred_label_map: str, options: dict
) -> list[MetricRow]:
    case_id, pred_path, ref_path = item
    ref = read_label(ref_path, label_map)
    pred = read_label(pred_path, pred_label_map) if pred_path is not None else None
    return evaluate_volumes(case_id, pred, ref, **options)


def evaluate_folders(
    pred_dir: str | os.PathLike,
    ref_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    label_map: str = "flare",
    pred_label_map: str | None = None,
    executor: str | Executor | None = None,
    nsd_gate: float | None = 0.2,
    tubular_crop: str = "flare",
    plot: bool = True,
) -> FolderEvaluation:
    """Score every reference case against its prediction and write the results.

    Writes (atomically) ``metrics.csv`` (case, organ, dsc, nsd), ``summary.csv``
    (organ, dsc_mean, dsc_std, nsd_mean, nsd_std, with a final ``mean`` row),
    ``missing.txt`` (reference ids without prediction, one a line; they are
    scored 0 for every organ) and ``boxplot.png``.

    Parameters
    ----------
    pred_dir, ref_dir : path-like
        Folders of label files.
    out_dir : path-like
        Output folder; must not overlap the inputs.
    label_map : str
        Label map of the references (and of the predictions unless
        ``pred_label_map`` is given). Only the organs it annotates are scored.
    executor : str, Executor or None
        Where cases run; ``None`` is serial.
    nsd_gate, tubular_crop
        See :func:`flare_uda.metrics.evaluate.evaluate_case`.
    """
    require_not_input(out_dir, pred_dir, ref_dir)
    organs = get_label_map(label_map).annotated
    pred_label_map = pred_label_map or label_map
    get_label_map(pred_label_map)
    refs = list_cases(ref_dir, "--ref")
    preds = list_cases(pred_dir, "--pred")
    if not refs:
        raise ValueError(f"expected label files {SUFFIXES} in --ref {ref_dir}, found none")
    missing = [c for c in refs if c not in preds]
    unmatched = [c for c in preds if c not in refs]
    options = {"organs": organs, "nsd_gate": nsd_gate, "tubular_crop": tubular_crop}
    fn = partial(
        _evaluate_files, label_map=label_map, pred_label_map=pred_label_map, options=options
    )
    items = [(c, preds.get(c), refs[c]) for c in sorted(refs)]
    per_case = get_executor(executor).map(fn, items, "evaluate")
    rows = [row for case_rows in per_case for row in case_rows]
    summary = summarize(rows)
    out = Path(out_dir)
    paths = {
        "metrics": write_csv(out / "metrics.csv", METRIC_FIELDS, [_row_dict(r) for r in rows]),
        "summary": write_csv(out / "summary.csv", SUMMARY_FIELDS, summary),
        "missing": write_text(out / "missing.txt", "".join(f"{c}\n" for c in missing)),
    }
    if plot:
        from flare_uda.metrics.plots import boxplot

        paths["boxplot"] = boxplot(rows, out / "boxplot.png")
    return FolderEvaluation(rows, summary, missing, unmatched, paths)


def _row_dict(row: MetricRow) -> dict[str, float | str]:
    return {"case": row.case, "organ": row.organ, "dsc": row.dsc, "nsd": row.nsd}


def write_csv(path: str | os.PathLike, fields: tuple[str, ...], rows: list[dict]) -> Path:
    """Atomically write ``rows`` (dicts) as CSV; floats with 6 decimals."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in row.items()})
    return write_text(path, buf.getvalue())
