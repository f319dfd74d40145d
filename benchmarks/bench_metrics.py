"""Benchmark: flare_uda's DSC + NSD against MONAI's on the same label pairs.

MONAI runs ``compute_dice`` and ``compute_surface_dice(..., use_subvoxels=True)``
(the variant whose values match FLARE's) on one-hot uint8 tensors with the
FLARE tolerances; flare_uda runs :func:`flare_uda.metrics.evaluate.evaluate_case`
with the FLARE special rules off (``nsd_gate=None, tubular_crop="off"``) so
both compute the same numbers, and once more with the rules on. The one-hot
conversion is not timed (MONAI's input format). Both run single-threaded
(``torch.set_num_threads(1)``). Peak memory is the peak RSS above the RSS
before the call (freed heap given back first with ``malloc_trim``; the kernel's
high-water mark, :func:`flare_uda.metrics.efficiency.measure`).

Cases: (a) a "quick" phantom label (``flare_uda.data.phantom.generate_case``
when it exists, else a synthetic 13-organ label of similar size), (b) a
100 x 512 x 512 label at (2.5, 0.8, 0.8) mm with all 13 organs at realistic
sizes (:func:`flare_uda.metrics.synthetic.organ_phantom`). The prediction is
:func:`flare_uda.metrics.synthetic.perturb` of the reference (organs eroded,
dilated, shifted, speckled; the gallbladder dropped).

Run: ``.venv/bin/python benchmarks/bench_metrics.py [--repeats 3] [--skip-large]``
"""

from __future__ import annotations

import argparse
import ctypes
import math
import statistics
import warnings

import numpy as np
import psutil
import torch

from flare_uda.data.labels import NSD_TOLERANCE_MM
from flare_uda.metrics.efficiency import measure
from flare_uda.metrics.evaluate import evaluate_case
from flare_uda.metrics.surface import surfel_area_table
from flare_uda.metrics.synthetic import organ_phantom, perturb

TOLS = [NSD_TOLERANCE_MM[o] for o in range(1, 14)]


def quick_case() -> tuple[str, np.ndarray, tuple[float, float, float]]:
    """The "quick" phantom label, or a synthetic one of similar size if the phantom is absent."""
    try:
        from flare_uda.data.phantom import generate_case

        case = generate_case("quick", "MR", "T1", 0)
        return "phantom quick (MR T1)", case.label.array.astype(np.uint8), case.label.spacing
    except (ImportError, AttributeError, TypeError) as err:
        print(f"# phantom generate_case unavailable ({err!r}); synthetic 13-organ label instead")
        shape, fov = (48, 128, 128), (250.0, 410.0, 410.0)
        spacing = tuple(f / s for f, s in zip(fov, shape, strict=True))
        return "synthetic 13-organ (quick size)", organ_phantom(shape, spacing, seed=0), spacing


def large_case() -> tuple[str, np.ndarray, tuple[float, float, float]]:
    spacing = (2.5, 0.8, 0.8)
    return "synthetic 13-organ CT size", organ_phantom((100, 512, 512), spacing, seed=1), spacing


def onehot(label: np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(label.astype(np.int64))
    return torch.nn.functional.one_hot(t, 14).permute(3, 0, 1, 2)[None].to(torch.uint8)


def monai_metrics(pred_oh, ref_oh, spacing) -> tuple[np.ndarray, np.ndarray]:
    from monai.metrics import compute_dice, compute_surface_dice

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dsc = compute_dice(pred_oh, ref_oh, include_background=False)[0].numpy()
        nsd = compute_surface_dice(pred_oh, ref_oh, TOLS, spacing=spacing, use_subvoxels=True)[
            0
        ].numpy()
    return dsc, nsd


def _trim_heap() -> None:
    """Give freed heap memory back to the OS, so a later RSS rise is the call's own."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """Median wall time (s), largest extra peak RSS (MB), last result."""
    times, peaks, result = [], [], None
    for _ in range(repeats):
        _trim_heap()
        before = psutil.Process().memory_info().rss / 2**20
        report = measure(fn, interval=0.02)
        times.append(report.wall_time_s)
        peaks.append(report.peak_rss_mb - before)
        result = report.result
    return statistics.median(times), max(peaks), result


def bench(name, ref, spacing, repeats: int) -> dict:
    pred = perturb(ref, seed=7, drop=(9,))
    surfel_area_table(tuple(spacing))  # warm both: our table, MONAI import
    monai_metrics(onehot(pred[:4, :8, :8]), onehot(ref[:4, :8, :8]), spacing)

    def ours():
        return evaluate_case(pred, ref, spacing, nsd_gate=None, tubular_crop="off")

    def ours_rules():
        return evaluate_case(pred, ref, spacing)

    t_ours, m_ours, scores = timed(ours, repeats)
    t_rules, _, _ = timed(ours_rules, repeats)
    pred_oh, ref_oh = onehot(pred), onehot(ref)
    t_monai, m_monai, (m_dsc, m_nsd) = timed(
        lambda: monai_metrics(pred_oh, ref_oh, spacing), max(1, repeats - 1)
    )
    d_dsc = d_nsd = 0.0
    for organ, (dsc, nsd) in scores.items():
        if not math.isnan(m_nsd[organ - 1]):  # MONAI gives NaN where both are empty
            d_dsc = max(d_dsc, abs(dsc - float(m_dsc[organ - 1])))
            d_nsd = max(d_nsd, abs(nsd - float(m_nsd[organ - 1])))
    return {
        "case": name,
        "shape": "x".join(map(str, ref.shape)),
        "spacing": ", ".join(f"{s:.2f}" for s in spacing),
        "organs": int(len(np.unique(ref)) - 1),
        "ours_s": t_ours,
        "ours_rules_s": t_rules,
        "monai_s": t_monai,
        "speedup": t_monai / t_ours,
        "ours_mb": m_ours,
        "monai_mb": m_monai,
        "d_dsc": d_dsc,
        "d_nsd": d_nsd,
    }


def edt_overlap(p: np.ndarray, r: np.ndarray, spacing, tol: float) -> tuple[float, float]:
    """NSD numerator and denominator with scipy's EDT on the box (the textbook method)."""
    from scipy import ndimage

    from flare_uda.metrics.surface import neighbour_codes

    table = surfel_area_table(tuple(spacing))
    code_p, code_r = neighbour_codes(p), neighbour_codes(r)
    border_p, border_r = (code_p != 0) & (code_p != 255), (code_r != 0) & (code_r != 255)
    dist_to_r = ndimage.distance_transform_edt(~border_r, sampling=spacing)
    dist_to_p = ndimage.distance_transform_edt(~border_p, sampling=spacing)
    area_p, area_r = table[code_p[border_p]], table[code_r[border_r]]
    within = area_p[dist_to_r[border_p] <= tol].sum() + area_r[dist_to_p[border_r] <= tol].sum()
    return float(within), float(area_p.sum() + area_r.sum())


def search_rows(name, ref, spacing, repeats: int) -> list[str]:
    """Liver-box NSD time with each distance search (median ms), same values required."""
    from scipy import ndimage

    from flare_uda.metrics.surface import surface_overlap, union_box

    pred = perturb(ref, seed=7, drop=(9,))
    box = union_box(ref.shape, ndimage.find_objects(pred, 1)[0], ndimage.find_objects(ref, 1)[0])
    p, r = pred[box] == 1, ref[box] == 1
    tol = NSD_TOLERANCE_MM[1]
    methods = {
        "offsets (ours, auto)": lambda: surface_overlap(p, r, spacing, tol, "offsets"),
        "cKDTree": lambda: surface_overlap(p, r, spacing, tol, "kdtree"),
        "distance_transform_edt": lambda: edt_overlap(p, r, spacing, tol),
    }
    rows, values = [], []
    for method, fn in methods.items():
        t, _, (within, total) = timed(fn, repeats)
        values.append(within / total)
        rows.append(f"| {name} | {'x'.join(map(str, p.shape))} | {method} | {t * 1e3:.1f} |")
    if max(values) - min(values) > 1e-9:
        raise RuntimeError(f"distance searches disagree: {values}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = [quick_case()] + ([] if args.skip_large else [large_case()])
    rows = [bench(name, ref, spacing, args.repeats) for name, ref, spacing in cases]
    print(
        "| case | shape (z y x) | spacing mm | organs | ours s | ours, FLARE rules s | MONAI s "
        "| speed-up | ours peak MB | MONAI peak MB | max abs dDSC | max abs dNSD |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['shape']} | {r['spacing']} | {r['organs']} | {r['ours_s']:.3f} "
            f"| {r['ours_rules_s']:.3f} | {r['monai_s']:.3f} | {r['speedup']:.1f}x "
            f"| {r['ours_mb']:.0f} | {r['monai_mb']:.0f} | {r['d_dsc']:.1e} | {r['d_nsd']:.1e} |"
        )
    print("\n| case | liver box (z y x) | distance search | ms (median) |\n|---|---|---|---|")
    for name, ref, spacing in cases:
        print("\n".join(search_rows(name, ref, spacing, args.repeats)))


if __name__ == "__main__":
    main()
