"""Registrars side by side: affine (SimpleITK, torch) and deformable (torch field, demons).

Pairs (moving -> fixed), all scored by the mean Dice of the moving label moved
onto the fixed grid (nearest neighbour) against the fixed label, and timed
(``fit`` only, features included):

- ``known``: the fixed image IS the moving one pulled through a known random
  affine (rotation <= 8 deg, scale +-6 %, shift <= 8 mm); registered on images;
  also the RMS error (mm) of the found map over the fixed organs.
- ``deformed``: the same, through the affine AND a known smooth displacement
  (sines of amplitude 10 mm over the field of view); images; error in mm.
- ``unpaired``: two different subjects, registered on their label maps as
  smooth channels (how MDM moves pseudo-labels).
- ``real``: CHAOS T2 pairs and TotalSegmentator-MR (T1-like) -> CHAOS T2 from
  ``../shared/data/mr`` when present (labels, liver/kidneys/spleen).

Phantoms come from ``flare_uda.data.phantom.generate_case`` (MR T1).
``quick`` and ``paper`` are the phantom presets' MR grids. Every solver runs
its library defaults except the affine pyramid, which is the same for all:
(4, 2, 1) on images and (8, 4, 2) on label channels, and the torch field's
pyramid on label channels, (4, 2) instead of its default (4, 2, 1). All run with the same
thread count; torch is warmed up once first (one-time init).

    .venv/bin/python benchmarks/bench_registration.py --presets quick --pairs 3

``--solvers`` picks registrars (default all four), ``--kinds`` the pair kinds;
``--device cuda`` runs the torch solvers on the GPU (SimpleITK stays on the
CPU, with ``--sitk-threads`` threads).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from flare_uda.data.io import read_label, read_volume
from flare_uda.data.phantom import generate_case
from flare_uda.registration import get_registrar, resample_affine
from flare_uda.registration.mdm import mean_dice
from flare_uda.registration.warp import mapped_points, resample_deformed
from flare_uda.volume import Volume

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mr"
SOLVERS = ("sitk", "torch", "deformable", "demons")
KINDS = ("known", "deformed", "unpaired", "real")
CHAOS_PAIRS = ((2, 1), (5, 3), (8, 2), (3, 8), (1, 5))
DEVICE = "cpu"  # set by --device; the torch solvers run there
LABEL_SAMPLING = 1.0  # set by --label-sampling


def subject(preset: str, seed: int) -> tuple[Volume, Volume]:
    case = generate_case(preset, "MR", "T1", seed)
    return case.image, case.label


def random_affine(fixed: Volume, rng: np.random.Generator) -> np.ndarray:
    angles = np.deg2rad(rng.uniform(-8, 8, 3))
    rot = np.eye(3)
    for axis, a in enumerate(angles):
        i, j = [k for k in range(3) if k != axis]
        r = np.eye(3)
        r[i, i] = r[j, j] = np.cos(a)
        r[i, j], r[j, i] = -np.sin(a), np.sin(a)
        rot = rot @ r
    lin = rot @ np.diag(rng.uniform(0.94, 1.06, 3))
    c = fixed.index_to_physical((np.asarray(fixed.shape) - 1) / 2)
    out = np.eye(4)
    out[:3, :3] = lin
    out[:3, 3] = c - lin @ c + rng.uniform(-8, 8, 3)
    return out


def smooth_field(reference: Volume, rng: np.random.Generator, amplitude=10.0) -> np.ndarray:
    """Sines over the field of view, random phases: a known "3 z y x" displacement (mm)."""
    p = mapped_points(np.eye(4), None, reference)
    lo, hi = p.reshape(-1, 3).min(0), p.reshape(-1, 3).max(0)
    q = np.pi * (p - lo) / (hi - lo)
    ph = rng.uniform(0, np.pi, 3)
    u = np.zeros((3, *reference.shape), np.float32)
    u[2] = amplitude * np.sin(q[..., 1] + ph[0]) * np.cos(q[..., 0])
    u[1] = amplitude * np.sin(q[..., 2] + ph[1])
    u[0] = 0.3 * amplitude * np.sin(q[..., 1] + ph[2])
    return u


def options(solver: str, features: str, organs) -> dict:
    """The same affine pyramid for every solver: blurred labels need no full-resolution level."""
    kw = {"features": features, "shrink_factors": (8, 4, 2) if features == "labels" else (4, 2, 1)}
    if features == "labels":
        kw |= {"organs": organs, "sampling_percentage": LABEL_SAMPLING}
        if solver == "deformable":  # blurred channels need no full-resolution field level
            kw |= {"deform_shrink_factors": (4, 2), "deform_iterations": (30, 30)}
    if solver != "sitk":
        kw["device"] = DEVICE
    return kw


def run_pair(name, solvers, moving, mlab, fixed, flab, features, organs, true=None) -> list[dict]:
    """Every solver on one pair; ``true``: (matrix, displacement) of a known map, else None."""
    rows = []
    present = tuple(int(o) for o in np.unique(flab.array) if o > 0)
    base = mean_dice(resample_affine(mlab, np.eye(4), flab, True).array, flab.array, present)
    for solver in solvers:
        reg = get_registrar(solver, **options(solver, features, organs))
        mov, fix = (mlab, flab) if features == "labels" else (moving, fixed)
        t0 = time.perf_counter()
        reg.fit(mov, fix)
        seconds = time.perf_counter() - t0
        dice = mean_dice(reg.transform(mlab, is_label=True).array, flab.array, present)
        err = float("nan")
        if true is not None:
            diff = mapped_points(reg.matrix_, reg.displacement_, fixed) - mapped_points(
                *true, fixed
            )
            err = float(np.sqrt((diff**2).sum(-1)[flab.array > 0].mean()))
        print(f"  {name} {solver}: {seconds:.2f} s, DSC {dice:.3f}, err {err:.2f} mm", flush=True)
        rows.append(
            dict(pair=name, solver=solver, seconds=seconds, dice=dice, before=base, err=err)
        )
    return rows


def real_pairs() -> list[tuple[str, Volume, Volume, Volume, Volume]]:
    if not DATA.is_dir():
        return []

    def chaos(i: int) -> tuple[Volume, Volume]:
        return (
            read_volume(DATA / "chaos_t2" / f"chaos_t2_{i}_image.nii.gz"),
            read_label(DATA / "chaos_t2" / f"chaos_t2_{i}_label.nii.gz", "chaos"),
        )

    ts = (
        read_volume(DATA / "totalseg_mr_sm_image.nii.gz"),
        read_label(DATA / "totalseg_mr_sm_label.nii.gz", "total_mr"),
    )
    keep = np.isin(ts[1].array, (1, 2, 3, 13))
    ts = (ts[0], ts[1].with_array(np.where(keep, ts[1].array, 0).astype(np.uint8)))
    out = [(f"real (chaos{m}->chaos{f})", *chaos(m), *chaos(f)) for m, f in CHAOS_PAIRS]
    return out + [("real (totalseg->chaos8)", *ts, *chaos(8))]


def phantom_pairs(preset: str, kind: str, i: int, rng) -> tuple:
    """(name, moving image, moving label, fixed image, fixed label, features, true map)."""
    moving, mlab = subject(preset, 100 + i)
    if kind == "unpaired":
        fixed, flab = subject(preset, 200 + i)
        return f"{preset} unpaired", moving, mlab, fixed, flab, "labels", None
    matrix = random_affine(moving, rng)
    field = smooth_field(moving, rng) if kind == "deformed" else None
    fixed = resample_deformed(moving, matrix, field, moving)
    flab = resample_deformed(mlab, matrix, field, mlab, is_label=True)
    return f"{preset} {kind}", moving, mlab, fixed, flab, "image", (matrix, field)


def print_tables(rows: list[dict], solvers) -> None:
    print("| pair | DSC before | " + " | ".join(f"{s} DSC (s)" for s in solvers) + " |")
    print("|---|---|" + "---|" * len(solvers))
    for i in range(0, len(rows), len(solvers)):
        group = rows[i : i + len(solvers)]
        cells = [f"{r['dice']:.3f} ({r['seconds']:.2f})" for r in group]
        print(f"| {group[0]['pair']} | {group[0]['before']:.3f} | " + " | ".join(cells) + " |")
    for kind in dict.fromkeys(r["pair"].split(" (")[0] for r in rows):
        sel = [r for r in rows if r["pair"].split(" (")[0] == kind]
        cells = []
        for s in solvers:
            mine = [r for r in sel if r["solver"] == s]
            err = np.mean([r["err"] for r in mine])
            cells.append(
                f"**{np.mean([r['dice'] for r in mine]):.3f}** "
                f"({np.mean([r['seconds'] for r in mine]):.2f} s/pair"
                + (f", err {err:.2f} mm" if np.isfinite(err) else "")
                + ")"
            )
        n = len(sel) // len(solvers)
        before = np.mean([r["before"] for r in sel])
        print(f"| **{kind}, mean of {n}** | {before:.3f} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", nargs="+", default=["quick"], choices=["quick", "paper"])
    parser.add_argument("--pairs", type=int, default=3, help="pairs per kind and preset")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=SOLVERS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--sitk-threads", type=int, help="default: --threads")
    parser.add_argument(
        "--label-sampling",
        type=float,
        default=1.0,
        help="metric sampling fraction of the affine solvers on label pairs (ITK's percentage)",
    )
    args = parser.parse_args()
    global DEVICE, LABEL_SAMPLING
    DEVICE, LABEL_SAMPLING = args.device, args.label_sampling
    torch.set_num_threads(args.threads)
    sitk_threads = args.sitk_threads or args.threads
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(sitk_threads)
    warm, _ = subject("tiny", 0)
    get_registrar("torch", iterations=(2, 2, 2), device=DEVICE).fit(warm, warm)
    rng = np.random.default_rng(0)
    rows = []
    for preset in args.presets:
        for kind in [k for k in args.kinds if k != "real"]:
            for i in range(args.pairs):
                name, mi, ml, fi, fl, features, true = phantom_pairs(preset, kind, i, rng)
                organs = tuple(int(o) for o in np.unique(fl.array) if o > 0)
                rows += run_pair(
                    f"{name} ({i})", args.solvers, mi, ml, fi, fl, features, organs, true
                )
    if "real" in args.kinds:
        for name, mi, ml, fi, fl in real_pairs():
            rows += run_pair(name, args.solvers, mi, ml, fi, fl, "labels", (1, 2, 3, 13))
    where = torch.cuda.get_device_name() if DEVICE == "cuda" else f"cpu, {args.threads} threads"
    print(
        f"torch {torch.__version__} on {where}; sitk {sitk.Version_VersionString()} on "
        f"{sitk_threads} threads; load average {os.getloadavg()[0]:.1f} at the end"
    )
    print_tables(rows, args.solvers)


if __name__ == "__main__":
    main()
