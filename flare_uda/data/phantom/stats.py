"""Measured properties of phantom cohorts: organ volumes, contrast-to-noise, generation time.

Run ``python -m flare_uda.data.phantom.stats --preset quick`` to print the
Markdown tables quoted in ``docs/phantom.md``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from flare_uda.data.labels import FLARE_ORGANS, NUM_ORGANS
from flare_uda.volume import Case

LIVER, SPLEEN = 1, 3


def organ_volumes_ml(cases: Sequence[Case]) -> np.ndarray:
    """Organ volumes in mL, shape (n_cases, 13), FLARE order."""
    out = []
    for c in cases:
        counts = np.bincount(c.label.array.ravel(), minlength=NUM_ORGANS + 1)[1:]
        out.append(counts * c.label.voxel_volume_mm3 / 1000.0)
    return np.array(out)


def liver_spleen_cnr(case: Case) -> float:
    """|median(liver) - median(spleen)| / pooled std, on organ interiors (one erosion)."""
    values = []
    for label in (LIVER, SPLEEN):
        mask = ndimage.binary_erosion(case.label.array == label)
        if mask.sum() < 5:
            mask = case.label.array == label
        values.append(case.image.array[mask].astype(float))
    liver, spleen = values
    return float(
        abs(np.median(liver) - np.median(spleen)) / np.sqrt(0.5 * (liver.var() + spleen.var()))
    )


def timing_table(presets: Sequence[str], seed: int = 0) -> str:
    """Seconds to generate one case per modality/sequence (serial, this process)."""
    from flare_uda.data.phantom.cohort import generate_case

    rows = [
        "| preset | case | shape (z, y, x) | spacing (mm, z y x) | seconds |",
        "|---|---|---|---|---|",
    ]
    for preset in presets:
        for modality, sequence in (("CT", None), ("MR", "T1"), ("MR", "T2")):
            t0 = time.perf_counter()
            c = generate_case(preset, modality, sequence, seed)
            dt = time.perf_counter() - t0
            spacing = ", ".join(f"{s:.2f}" for s in c.image.spacing)
            name = f"{modality} {sequence or ''}".strip()
            rows.append(f"| {preset} | {name} | {c.image.shape} | {spacing} | {dt:.2f} |")
    return "\n".join(rows)


def cohort_tables(preset: str, n: int, seed: int) -> str:
    """Organ volume and contrast-to-noise tables of a generated cohort."""
    from flare_uda.data.phantom.cohort import generate_cohort

    ct, mr = generate_cohort(preset, n, n, seed)
    vol = organ_volumes_ml(ct)
    rows = ["| organ | mean mL | min | max |", "|---|---|---|---|"]
    for i, name in enumerate(FLARE_ORGANS):
        rows.append(
            f"| {name} | {vol[:, i].mean():.0f} | {vol[:, i].min():.0f} | {vol[:, i].max():.0f} |"
        )
    rows += ["", "| cases | liver-spleen CNR (mean) | min | max |", "|---|---|---|---|"]
    for name, group in (("CT", ct), ("MR T1", [c for c in mr if c.sequence == "T1"]),
                        ("MR T2", [c for c in mr if c.sequence == "T2"])):  # fmt: skip
        cnr = [liver_spleen_cnr(c) for c in group]
        rows.append(
            f"| {name} (n={len(group)}) | {np.mean(cnr):.2f} | {min(cnr):.2f} | {max(cnr):.2f} |"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--n", type=int, default=8, help="CT and MR cases for the cohort tables")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timing", nargs="*", default=["tiny", "quick"], help="presets to time")
    args = parser.parse_args(argv)
    if args.timing:
        print(timing_table(args.timing, args.seed), "\n")
    print(cohort_tables(args.preset, args.n, args.seed))


if __name__ == "__main__":
    main()
