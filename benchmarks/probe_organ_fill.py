"""Issue 14's components on the phantom, without training: prior, CT atlas, multi-atlas MDM.

Pseudo-labels are simulated from the MR cases' TRUE labels, so each part is
measured alone (a trained segmenter's pseudo-labels are worse; the pipeline's
ablation measures the whole chain). Cohort: ``generate_cohort("quick", 8, n_mr, 0)``.

- ``prior``: the organ-wise filter's prior (learned from the 8 CT) on 12 MR
  labels whose organs are each corrupted with probability 0.3 (shifted 30 mm
  along x or y, shrunk to the innermost 25 %, grown by 4 voxels in plane):
  how many corrupted organs it flags, how many clean ones it keeps.
- ``atlas``: the CT atlas on 6 MR cases holding 5 of 13 organs (liver,
  kidneys, spleen, stomach, the organs the ASIT segmenter finds): organs held,
  DSC of the filled organs and over 13 organs (not held = 0), per variant.
- ``mdm``: MDM moving the 6 T1 cases' true labels onto 6 T2 cases (anatomy
  space images): DSC over 13 organs of the moved label, per variant.

    nice -n 19 .venv/bin/python benchmarks/probe_organ_fill.py prior
    nice -n 19 .venv/bin/python benchmarks/probe_organ_fill.py atlas [VARIANT ...]
    nice -n 19 .venv/bin/python benchmarks/probe_organ_fill.py mdm [VARIANT ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy import ndimage

from flare_uda.data.labels import keep_organs
from flare_uda.data.phantom import generate_cohort
from flare_uda.plugin import spec
from flare_uda.pseudolabel import OrganWiseFilter
from flare_uda.registration import CTAtlasConfig, MDMConfig, run_ct_atlas, run_mdm
from flare_uda.registration.mdm import mean_dice

FOUND = (1, 2, 3, 11, 13)
ORGANS = tuple(range(1, 14))
LABELS = {"features": "labels", "shrink_factors": (8, 4, 2)}
FIELD_ON_LABELS = {**LABELS, "deform_shrink_factors": (4, 2), "deform_iterations": (30, 30)}
ATLAS = {  # name: (registrar, fusion, measure)
    "affine image k1": (spec("registrar", "torch", shrink_factors=(8, 4, 2)), 1, 1.0, "label"),
    "affine labels k1": (spec("registrar", "torch", **LABELS), 1, 1.0, "label"),
    "deformable image k1": (
        spec("registrar", "deformable", shrink_factors=(8, 4, 2)),
        1,
        1.0,
        "label",
    ),
    "deformable image k3": (
        spec("registrar", "deformable", shrink_factors=(8, 4, 2)),
        3,
        1.0,
        "label",
    ),
    "deformable labels k1": (spec("registrar", "deformable", **FIELD_ON_LABELS), 1, 1.0, "label"),
    "deformable labels k3": (spec("registrar", "deformable", **FIELD_ON_LABELS), 3, 1.0, "label"),
    "deformable labels k3 unweighted": (
        spec("registrar", "deformable", **FIELD_ON_LABELS),
        3,
        0.0,
        "label",
    ),
    "deformable labels k3 body": (
        spec("registrar", "deformable", **FIELD_ON_LABELS),
        3,
        1.0,
        "body",
    ),
    "deformable labels k5": (spec("registrar", "deformable", **FIELD_ON_LABELS), 5, 1.0, "label"),
    "demons labels k3": (spec("registrar", "demons", **LABELS), 3, 1.0, "label"),
}
MDM = {
    "affine image k1": (spec("registrar", "torch", shrink_factors=(8, 4, 2)), 1),
    "affine image k3": (spec("registrar", "torch", shrink_factors=(8, 4, 2)), 3),
    "deformable image k1": (spec("registrar", "deformable", shrink_factors=(8, 4, 2)), 1),
    "deformable image k3": (spec("registrar", "deformable", shrink_factors=(8, 4, 2)), 3),
}


def with_only(cases, organs):
    return [c.with_label(c.label.with_array(keep_organs(c.label.array, organs))) for c in cases]


def corrupt(mask: np.ndarray, kind: str, spacing) -> np.ndarray:
    if kind == "shift_x":
        return np.roll(mask, int(round(30 / spacing[2])), axis=2)
    if kind == "shift_y":
        return np.roll(mask, int(round(30 / spacing[1])), axis=1)
    if kind == "shrink":
        depth = ndimage.distance_transform_edt(mask, sampling=spacing)
        return depth > np.quantile(depth[mask], 0.75) if mask.any() else mask
    return ndimage.binary_dilation(mask, structure=np.ones((1, 9, 9), bool))


def probe_prior() -> None:
    ct, mr = generate_cohort("quick", 8, 12, 0, progress=False)
    rng = np.random.default_rng(0)
    kinds = ("shift_x", "shift_y", "shrink", "grow")
    history, bad = {}, {}
    for c in mr:
        out, bad[c.case_id] = np.zeros_like(c.label.array), {}
        for o in ORGANS:
            mask = c.label.array == o
            if rng.random() < 0.3:
                bad[c.case_id][o] = kinds[rng.integers(4)]
                mask = corrupt(mask, bad[c.case_id][o], c.label.spacing)
            out[mask & (out == 0)] = o
        history[c.case_id] = [c.label.with_array(out)]
    kept = (
        OrganWiseFilter(threshold=None)
        .fit(ct)
        .select_organs(history, {c.case_id: c.image for c in mr})
    )
    counts = {k: [0, 0] for k in (*kinds, "clean")}
    for cid, organs in bad.items():
        for o in ORGANS:
            kind = organs.get(o, "clean")
            counts[kind][0] += (o not in kept.get(cid, ())) == (kind != "clean")
            counts[kind][1] += 1
    print("| organs | right call | of |")
    print("|---|---|---|")
    for kind, (right, n) in counts.items():
        what = "clean, kept" if kind == "clean" else f"{kind}, flagged"
        print(f"| {what} | {right} | {n} |")


def probe_atlas(names) -> None:
    ct, mr = generate_cohort("quick", 8, 6, 0, progress=False)
    truth = {c.case_id: c.label.array for c in mr}
    pseudo = with_only(mr, FOUND)
    print("| variant | s/case | organs held, mean (min) | DSC filled organs | DSC over 13 |")
    print("|---|---|---|---|---|")
    for name in names or ATLAS:
        registrar, k, power, measure = ATLAS[name]
        fusion = {"atlases": k, "power": power}
        cfg = CTAtlasConfig(registrar=registrar, fusion=fusion, measure=measure)
        t0 = time.perf_counter()
        results = run_ct_atlas(pseudo, ct, cfg, executor="serial")
        seconds = (time.perf_counter() - t0) / len(results)
        held = [len(r.annotated) for r in results]
        filled = [mean_dice(r.label.array, truth[r.case_id], r.filled) for r in results if r.filled]
        over13 = [
            np.mean(
                [
                    mean_dice(r.label.array, truth[r.case_id], (o,)) if o in r.annotated else 0.0
                    for o in ORGANS
                ]
            )
            for r in results
        ]
        print(
            f"| {name} | {seconds:.1f} | {np.mean(held):.1f} ({min(held)}) | "
            f"{np.mean(filled) if filled else float('nan'):.3f} | {np.mean(over13):.3f} |",
            flush=True,
        )
    before = [mean_dice(c.label.array, truth[c.case_id], FOUND) * len(FOUND) / 13 for c in pseudo]
    print(f"| before (5 organs held) | | 5.0 (5) | | {np.mean(before):.3f} |")


def probe_mdm(names) -> None:
    _, mr = generate_cohort("quick", 0, 12, 0, progress=False)
    truth = {c.case_id: c.label.array for c in mr}
    cases = [c if c.sequence == "T1" else with_only([c], FOUND)[0] for c in mr]
    print("| variant | s/case | DSC over 13 organs |")
    print("|---|---|---|")
    for name in names or MDM:
        registrar, k = MDM[name]
        t0 = time.perf_counter()
        results = run_mdm(
            cases, MDMConfig(registrar=registrar, fusion={"atlases": k}), executor="serial"
        )
        seconds = (time.perf_counter() - t0) / len(results)
        dice = [mean_dice(r.label.array, truth[r.case_id], ORGANS) for r in results]
        print(f"| {name} | {seconds:.1f} | {np.mean(dice):.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("part", choices=("prior", "atlas", "mdm"))
    parser.add_argument("variants", nargs="*", help="variant names (default: all of the part)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.part == "prior":
        probe_prior()
    elif args.part == "atlas":
        probe_atlas(args.variants)
    else:
        probe_mdm(args.variants)


if __name__ == "__main__":
    main()
