"""Label-map registration probes behind docs/benchmarks.md ("Label-map registration
after cheaper label features", "The partial-field-of-view pair").

1. ``label_channels`` (per-organ box blur) against 13 full-volume Gaussian blurs.
2. The torch solver on label channels at several metric sampling fractions.
3. The partial-FOV real pair (TotalSegmentator-MR slab -> CHAOS T2 8): organ
   volumes, DSC and det(A) of each solver / option (skipped without the data).

    .venv/bin/python benchmarks/probe_label_registration.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

from flare_uda.data.io import read_label
from flare_uda.data.phantom import generate_case
from flare_uda.registration import get_registrar
from flare_uda.registration.features import label_channels
from flare_uda.registration.mdm import mean_dice

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mr"
LABELS = {"features": "labels", "shrink_factors": (8, 4, 2)}


def fit(solver: str, moving, fixed, organs, **kw) -> tuple[float, float, float]:
    """Seconds, mean DSC after transfer, det of the fixed -> moving linear part."""
    reg = get_registrar(solver, organs=organs, **LABELS, **kw)
    t0 = time.perf_counter()
    reg.fit(moving, fixed)
    seconds = time.perf_counter() - t0
    dice = mean_dice(reg.transform(moving, is_label=True).array, fixed.array, organs)
    return seconds, dice, float(np.linalg.det(reg.matrix_[:3, :3]))


def main() -> None:
    torch.set_num_threads(1)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    label = generate_case("paper", "MR", "T1", 3).label
    organs = tuple(range(1, 14))
    t0 = time.perf_counter()
    boxed = label_channels(label, organs)
    t_box = time.perf_counter() - t0
    sigma = 3.0 / np.asarray(label.spacing)
    t0 = time.perf_counter()
    full = np.stack(
        [ndimage.gaussian_filter((label.array == o).astype(np.float32), sigma) for o in organs]
    )
    t_full = time.perf_counter() - t0
    print(f"label_channels {label.shape}: box {t_box:.2f} s, full {t_full:.2f} s, "
          f"max abs diff {np.abs(boxed - full).max():.3g}")  # fmt: skip

    moving = generate_case("paper", "MR", "T1", 200).label
    fixed = generate_case("paper", "MR", "T1", 100).label
    present = tuple(int(o) for o in np.unique(fixed.array) if o > 0)
    for fraction in (1.0, 0.25, 0.1):
        s, d, _ = fit("torch", moving, fixed, present, sampling_percentage=fraction)
        print(f"paper unpaired, torch, sampling {fraction}: {s:.2f} s, DSC {d:.3f}")

    if not DATA.is_dir():
        print("no ../shared/data/mr: partial-FOV pair skipped")
        return
    slab = read_label(DATA / "totalseg_mr_sm_label.nii.gz", "total_mr")
    keep = np.isin(slab.array, (1, 2, 3, 13))
    slab = slab.with_array(np.where(keep, slab.array, 0).astype(np.uint8))
    chaos = read_label(DATA / "chaos_t2" / "chaos_t2_8_label.nii.gz", "chaos")
    four = (1, 2, 3, 13)
    for name, v in (("slab", slab), ("chaos8", chaos)):
        ml = [(v.array == o).sum() * np.prod(v.spacing) / 1e3 for o in four]
        print(f"{name} organ volumes (mL, organs {four}): " + ", ".join(f"{x:.0f}" for x in ml))
    for solver, kw in (
        ("sitk", {}),
        ("torch", {}),
        ("torch", {"init": "identity"}),
        ("torch", {"encoding": "sdt"}),
    ):
        s, d, det = fit(solver, slab, chaos, four, **kw)
        print(f"partial FOV, {solver} {kw}: {s:.1f} s, DSC {d:.3f}, det {det:.3f}")


if __name__ == "__main__":
    main()
