"""Affine registration: our batched torch solver vs SimpleITK's framework.

Pairs (moving -> fixed), all scored by the mean Dice of the moving label moved
onto the fixed grid (nearest neighbour) against the fixed label:

- ``known``: the moving image IS the fixed image pulled through a known random
  affine (rotation <= 8 deg, scale +-6 %, shift <= 8 mm); registered on
  images; also the RMS affine error over the fixed grid, in voxels.
- ``unpaired``: two different subjects, registered on their label maps as
  smooth channels (how MDM moves pseudo-labels).
- ``real``: CHAOS T2 pairs and TotalSegmentator-MR (T1-like) -> CHAOS T2 from
  ``../shared/data/mr`` when present (labels, liver/kidneys/spleen).

Phantoms come from ``flare_uda.data.phantom.generate_case`` when it exists;
otherwise from the small ellipsoid abdomen below (said in the output).
``quick`` and ``paper`` are the phantom presets' MR grids. Both solvers run
with their library defaults except the pyramid, which is the same for both:
shrink factors (4, 2, 1) on images and (8, 4, 2) on label channels (blurred
labels gain nothing at full resolution). Both run with the same thread count;
torch is warmed up once first (one-time init).

    .venv/bin/python benchmarks/bench_registration.py --presets quick paper --pairs 3

``--device cuda`` runs the torch solver on the GPU (SimpleITK stays on the
CPU, with ``--sitk-threads`` threads: what a user without our solver runs).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from flare_uda.data.io import read_label, read_volume
from flare_uda.registration import displacement_rms, get_registrar, resample_affine
from flare_uda.registration.mdm import mean_dice
from flare_uda.volume import Volume

GRIDS = {"quick": ((32, 112, 112), (6.5, 3.6, 3.6)), "paper": ((40, 320, 320), (6.0, 1.35, 1.35))}
# (label, centre offset mm (z, y, x), radii mm, T1 intensity)
ORGANS = (
    (1, (0, -20, -45), (60, 70, 80), 0.8),
    (3, (0, 10, 70), (45, 35, 30), 0.5),
    (2, (-25, 45, -55), (45, 25, 22), 0.65),
    (13, (-25, 45, 55), (45, 25, 22), 0.65),
    (5, (0, 30, 5), (120, 10, 10), 0.3),
    (11, (25, -30, 35), (35, 30, 40), 0.4),
)
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mr"


def ellipsoid_subject(preset: str, seed: int) -> tuple[Volume, Volume]:
    """A body ellipse with six jittered organs, smooth bias and noise, on the preset's grid."""
    shape, spacing = GRIDS[preset]
    rng = np.random.default_rng(seed)
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing, strict=True)]
    z, y, x = np.meshgrid(*axes, indexing="ij", sparse=True)
    img = np.zeros(shape, np.float32)
    lab = np.zeros(shape, np.uint8)
    body = (y / 130.0) ** 2 + (x / 175.0) ** 2 <= 1
    img[np.broadcast_to(body, shape)] = 0.2
    for organ, off, rad, val in ORGANS:
        o = np.asarray(off) + rng.normal(0, 6, 3)
        r = np.asarray(rad) * rng.uniform(0.85, 1.15, 3)
        m = ((z - o[0]) / r[0]) ** 2 + ((y - o[1]) / r[1]) ** 2 + ((x - o[2]) / r[2]) ** 2 <= 1
        img[m], lab[m] = val, organ
    bias = 1 + 0.1 * np.sin(x / 90.0 + rng.uniform(0, 6)) * np.cos(y / 70.0)
    img = img * bias + rng.normal(0, 0.03, shape).astype(np.float32)
    return Volume(img.astype(np.float32), spacing), Volume(lab, spacing)


def subject(preset: str, seed: int) -> tuple[Volume, Volume, str]:
    try:
        from flare_uda.data.phantom import generate_case

        case = generate_case(preset, "MR", "T1", seed)
        return case.image, case.label, "phantom"
    except ImportError:
        img, lab = ellipsoid_subject(preset, seed)
        return img, lab, "ellipsoids"


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


DEVICE = "cpu"  # set by --device; the torch solver runs there
LABEL_SAMPLING = 1.0  # set by --label-sampling


def run_pair(name, moving, mlab, fixed, flab, features, organs, true=None) -> list[dict]:
    rows = []
    present = tuple(int(o) for o in np.unique(flab.array) if o > 0)
    base = mean_dice(resample_affine(mlab, np.eye(4), flab, True).array, flab.array, present)
    for solver in ("sitk", "torch"):
        # the same pyramid for both solvers: blurred label channels need no full-resolution level
        kw = {
            "features": features,
            "shrink_factors": (8, 4, 2) if features == "labels" else (4, 2, 1),
        }
        kw |= {"organs": organs} if features == "labels" else {}
        kw |= {"device": DEVICE} if solver == "torch" else {}
        if features == "labels":  # the same metric sampling for both solvers
            kw["sampling_percentage"] = LABEL_SAMPLING
        reg = get_registrar(solver, **kw)
        mov, fix = (mlab, flab) if features == "labels" else (moving, fixed)
        t0 = time.perf_counter()
        reg.fit(mov, fix)
        seconds = time.perf_counter() - t0
        dice = mean_dice(reg.transform(mlab, is_label=True).array, flab.array, present)
        err = displacement_rms(reg.matrix_, true, fixed) if true is not None else float("nan")
        print(f"  {name} {solver}: {seconds:.2f} s, DSC {dice:.3f}", flush=True)
        rows.append(
            dict(
                pair=name,
                solver=solver,
                seconds=seconds,
                dice=dice,
                before=base,
                err=err,
                shape=fixed.shape,
            )
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
    out = [
        ("real (chaos2->chaos1)", *chaos(2), *chaos(1)),
        ("real (chaos5->chaos3)", *chaos(5), *chaos(3)),
        ("real (totalseg->chaos8)", *ts, *chaos(8)),
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", nargs="+", default=["quick", "paper"], choices=list(GRIDS))
    parser.add_argument("--pairs", type=int, default=3, help="pairs per kind and preset")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--sitk-threads", type=int, help="default: --threads")
    parser.add_argument(
        "--label-sampling",
        type=float,
        default=1.0,
        help="metric sampling fraction of both solvers on label pairs (ITK's percentage)",
    )
    args = parser.parse_args()
    global DEVICE, LABEL_SAMPLING
    DEVICE, LABEL_SAMPLING = args.device, args.label_sampling
    torch.set_num_threads(args.threads)
    sitk_threads = args.sitk_threads or args.threads
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(sitk_threads)
    warm, _ = ellipsoid_subject("quick", 0)
    get_registrar("torch", iterations=(2, 2, 2), device=DEVICE).fit(warm, warm)
    rng = np.random.default_rng(0)
    organs = tuple(o for o, *_ in ORGANS)
    rows = []
    for preset in args.presets:
        for i in range(args.pairs):
            fixed, flab, source = subject(preset, 100 + i)
            true = random_affine(fixed, rng)
            inv = np.linalg.inv(true)
            moving, mlab = (
                resample_affine(fixed, inv, fixed),
                resample_affine(flab, inv, flab, True),
            )
            rows += run_pair(
                f"{preset} known ({source})", moving, mlab, fixed, flab, "image", organs, true
            )
            other, olab, source = subject(preset, 200 + i)
            rows += run_pair(
                f"{preset} unpaired ({source})",
                other,
                olab,
                fixed,
                flab,
                "labels",
                tuple(int(o) for o in np.unique(flab.array) if o > 0),
            )
    if not args.no_real:
        for name, mi, ml, fi, fl in real_pairs():
            rows += run_pair(name, mi, ml, fi, fl, "labels", (1, 2, 3, 13))
    where = torch.cuda.get_device_name() if DEVICE == "cuda" else f"cpu, {args.threads} threads"
    print(
        f"torch on {where}; sitk {sitk.Version_VersionString()} on {sitk_threads} threads; "
        f"torch {torch.__version__}"
    )
    print(
        "| pair | fixed shape (z,y,x) | sitk s | torch s | speed-up | DSC before | sitk DSC "
        "| torch DSC | sitk err (vox) | torch err (vox) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for a, b in zip(rows[::2], rows[1::2], strict=True):
        print(
            f"| {a['pair']} | {a['shape']} | {a['seconds']:.2f} | {b['seconds']:.2f} | "
            f"{a['seconds'] / b['seconds']:.1f}x | {a['before']:.3f} | {a['dice']:.3f} | "
            f"{b['dice']:.3f} | {a['err']:.2f} | {b['err']:.2f} |"
        )
    for kind in sorted({r["pair"].split(" (")[0] for r in rows}):
        s = [r for r in rows if r["pair"].startswith(kind) and r["solver"] == "sitk"]
        t = [r for r in rows if r["pair"].startswith(kind) and r["solver"] == "torch"]
        print(
            f"| **{kind} (sum/mean)** | | {sum(r['seconds'] for r in s):.2f} | "
            f"{sum(r['seconds'] for r in t):.2f} | "
            f"{sum(r['seconds'] for r in s) / sum(r['seconds'] for r in t):.1f}x | "
            f"{np.mean([r['before'] for r in s]):.3f} | {np.mean([r['dice'] for r in s]):.3f} | "
            f"{np.mean([r['dice'] for r in t]):.3f} | | |"
        )


if __name__ == "__main__":
    main()
