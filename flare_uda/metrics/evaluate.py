"""FLARE 2024 per-organ DSC and NSD of one case, many cases, and their summary.

The rules follow the official evaluation (``FLARE24/T2andT3_FLARE24_DSC_NSD_Eval.py``
in github.com/JunMa11/FLARE):

- organ empty in both prediction and reference: DSC = NSD = 1; in only one: 0 and 0;
- aorta, IVC, esophagus (:data:`~flare_uda.data.labels.TUBULAR_ORGANS`) are
  scored on the reference's z-range only. The official code slices
  ``[z_min:z_max]``, which leaves out the reference's last slice; that is
  ``tubular_crop="flare"`` (the default). ``"inclusive"`` keeps it, ``"off"``
  scores the whole volume;
- NSD is set to 0 when DSC < ``nsd_gate`` (0.2 in FLARE 2024; ``None`` turns
  the rule off, as in FLARE 2022);
- NSD tolerances from :data:`~flare_uda.data.labels.NSD_TOLERANCE_MM`.

Each organ is worked on inside the union of its bounding boxes in prediction
and reference, found for all organs in one pass (``scipy.ndimage.find_objects``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy import ndimage

from flare_uda._validation import as_triplet, require_choice, require_ndim
from flare_uda.data.labels import (
    FLARE_ORGANS,
    NSD_TOLERANCE_MM,
    NUM_ORGANS,
    TUBULAR_ORGANS,
    check_label_values,
    organ_name,
)
from flare_uda.executor import Executor, get_executor
from flare_uda.metrics.overlap import dice_from_counts
from flare_uda.metrics.surface import surface_overlap, union_box
from flare_uda.volume import Volume

TUBULAR_CROPS = ("flare", "inclusive", "off")
ALL_ORGANS: tuple[int, ...] = tuple(range(1, NUM_ORGANS + 1))


@dataclass(frozen=True)
class MetricRow:
    """DSC and NSD of one organ of one case (one line of ``metrics.csv``)."""

    case: str
    organ: str
    dsc: float
    nsd: float


def _check_organs(organs: Iterable[int] | None) -> tuple[int, ...]:
    if organs is None:
        return ALL_ORGANS
    out = tuple(int(o) for o in organs)
    bad = [o for o in out if o not in ALL_ORGANS]
    if bad or not out:
        raise ValueError(f"organs must be FLARE labels 1..{NUM_ORGANS}, got {list(organs)}")
    return out


def _labels(array: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(array)
    require_ndim(arr, 3, what)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{what} must hold integer FLARE labels, got dtype {arr.dtype}")
    check_label_values(arr, "flare", what)
    return arr


def evaluate_case(
    pred: np.ndarray,
    ref: np.ndarray,
    spacing: Sequence[float],
    organs: Iterable[int] | None = None,
    nsd_gate: float | None = 0.2,
    tubular_crop: str = "flare",
) -> dict[int, tuple[float, float]]:
    """FLARE DSC and NSD of every organ of one case.

    Parameters
    ----------
    pred, ref : np.ndarray of int, shape (z, y, x)
        Label maps in FLARE order (0 background, 1..13 organs), same shape.
    spacing : sequence of 3 float
        Voxel size in mm, (z, y, x).
    organs : iterable of int or None
        FLARE labels to score; ``None`` scores all 13.
    nsd_gate : float or None
        NSD is 0 when DSC is below it (FLARE 2024: 0.2); ``None``: no gate.
    tubular_crop : {"flare", "inclusive", "off"}
        z-range rule for aorta, IVC and esophagus (see the module doc).

    Returns
    -------
    dict of int to (float, float)
        ``{label: (dsc, nsd)}``. A tubular organ whose reference spans a single
        slice has an empty ``"flare"`` crop; the official code then gives NaN,
        and so does this.
    """
    pred, ref = _labels(pred, "pred"), _labels(ref, "ref")
    if pred.shape != ref.shape:
        raise ValueError(f"pred and ref must have the same shape, got {pred.shape} and {ref.shape}")
    spacing = as_triplet(spacing, "spacing", positive=True)
    organs = _check_organs(organs)
    require_choice(tubular_crop, TUBULAR_CROPS, "tubular_crop")
    if nsd_gate is not None and not 0.0 <= float(nsd_gate) <= 1.0:
        raise ValueError(f"nsd_gate must be in [0, 1] or None, got {nsd_gate}")
    boxes_p = ndimage.find_objects(pred, max_label=NUM_ORGANS)
    boxes_r = ndimage.find_objects(ref, max_label=NUM_ORGANS)
    out: dict[int, tuple[float, float]] = {}
    for organ in organs:
        box_p, box_r = boxes_p[organ - 1], boxes_r[organ - 1]
        if box_p is None and box_r is None:
            out[organ] = (1.0, 1.0)
        elif box_p is None or box_r is None:
            out[organ] = (0.0, 0.0)
        else:
            out[organ] = _score_organ(
                pred, ref, organ, box_p, box_r, spacing, nsd_gate, tubular_crop
            )
    return out


def _score_organ(pred, ref, organ, box_p, box_r, spacing, nsd_gate, tubular_crop):
    """DSC and NSD of one organ present in both label maps."""
    box = union_box(pred.shape, box_p, box_r)
    if organ in TUBULAR_ORGANS and tubular_crop != "off":
        z_lo = box_r[0].start
        z_hi = box_r[0].stop - (1 if tubular_crop == "flare" else 0)
        box = (slice(z_lo, max(z_lo, min(box[0].stop, z_hi))), box[1], box[2])
    p, r = pred[box] == organ, ref[box] == organ
    n_p, n_r = np.count_nonzero(p), np.count_nonzero(r)
    # empty/empty here only comes from the z crop; the official code gives NaN then
    dsc = dice_from_counts(np.count_nonzero(p & r), n_p, n_r, empty_score=math.nan)
    if nsd_gate is not None and dsc < nsd_gate:
        return dsc, 0.0
    within, total = surface_overlap(p, r, spacing, NSD_TOLERANCE_MM[organ])
    return dsc, (within / total if total > 0 else math.nan)


def case_rows(case_id: str, scores: Mapping[int, tuple[float, float]]) -> list[MetricRow]:
    """Rows of one case, organs in FLARE order."""
    return [MetricRow(case_id, organ_name(o), d, n) for o, (d, n) in sorted(scores.items())]


def missing_rows(case_id: str, organs: Iterable[int] | None = None) -> list[MetricRow]:
    """Rows of a case without prediction: 0 for every organ."""
    return case_rows(case_id, {o: (0.0, 0.0) for o in _check_organs(organs)})


def evaluate_volumes(case_id: str, pred: Volume | None, ref: Volume, **options) -> list[MetricRow]:
    """Rows of one case from volumes; a missing prediction (``None``) scores 0.

    Raises
    ------
    ValueError
        If prediction and reference differ in geometry (the message names the case).
    """
    if pred is None:
        return missing_rows(case_id, options.get("organs"))
    ref.require_same_geometry(pred, f"prediction and reference of case {case_id!r}")
    return case_rows(case_id, evaluate_case(pred.array, ref.array, ref.spacing, **options))


def _evaluate_item(item: tuple[str, Volume | None, Volume], options: dict) -> list[MetricRow]:
    return evaluate_volumes(*item, **options)


def evaluate_cases(
    preds: Mapping[str, Volume],
    refs: Mapping[str, Volume],
    executor: str | Executor | None = None,
    **options,
) -> tuple[list[MetricRow], list[str]]:
    """Score every reference case against its prediction.

    Parameters
    ----------
    preds, refs : mapping of case id to Volume
        FLARE label volumes. A reference without prediction scores 0 for every organ.
    executor : str, Executor or None
        Where cases run (:mod:`flare_uda.executor`); ``None`` is serial.
    **options
        ``organs``, ``nsd_gate``, ``tubular_crop`` of :func:`evaluate_case`.

    Returns
    -------
    rows : list of MetricRow
        Cases in sorted id order, organs in FLARE order.
    missing : list of str
        Reference ids without prediction.
    """
    if not refs:
        raise ValueError("refs must hold at least one case, got none")
    ids = sorted(refs)
    missing = [i for i in ids if i not in preds]
    items = [(i, preds.get(i), refs[i]) for i in ids]
    per_case = get_executor(executor).map(
        partial(_evaluate_item, options=options), items, "evaluate"
    )
    return [row for rows in per_case for row in rows], missing


def summarize(rows: Sequence[MetricRow]) -> list[dict[str, float | str]]:
    """Mean and std (over cases, ddof=0) of DSC and NSD per organ, and overall.

    Returns
    -------
    list of dict
        Keys ``organ, dsc_mean, dsc_std, nsd_mean, nsd_std``: one per organ in
        FLARE order, then ``organ="mean"`` whose values are the mean and std over
        cases of each case's mean over organs (the paper's Table 5 layout). NaN
        scores (see :func:`evaluate_case`) are left out of the means.
    """
    if not rows:
        raise ValueError("summarize needs at least one row, got none")
    organs = [o for o in FLARE_ORGANS if any(r.organ == o for r in rows)]
    out: list[dict[str, float | str]] = []
    for organ in organs:
        sel = [r for r in rows if r.organ == organ]
        out.append(_stats(organ, [r.dsc for r in sel], [r.nsd for r in sel]))
    cases = sorted({r.case for r in rows})
    per_case = {c: [r for r in rows if r.case == c] for c in cases}
    dsc = [_nanmean([r.dsc for r in per_case[c]]) for c in cases]
    nsd = [_nanmean([r.nsd for r in per_case[c]]) for c in cases]
    out.append(_stats("mean", dsc, nsd))
    return out


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=float)
    return float(arr[~np.isnan(arr)].mean()) if (~np.isnan(arr)).any() else math.nan


def _nanstd(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=float)
    return float(arr[~np.isnan(arr)].std()) if (~np.isnan(arr)).any() else math.nan


def _stats(organ: str, dsc: Sequence[float], nsd: Sequence[float]) -> dict[str, float | str]:
    return {
        "organ": organ,
        "dsc_mean": _nanmean(dsc),
        "dsc_std": _nanstd(dsc),
        "nsd_mean": _nanmean(nsd),
        "nsd_std": _nanstd(nsd),
    }
