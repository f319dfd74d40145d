"""Real data: public CT (labelled, partial label maps) -> public MRI (unlabelled).

Source: the AMOS slabs, TotalSegmentator CT (NIfTI and DICOM series) and CHAOS CT
volumes in ../shared/data/ct, labels remapped into FLARE order; partial labels stay
partial (`Case.annotated`), so the trainer ignores organs a source does not label.
Target: CHAOS T2-SPIR (T2) and TotalSegmentator MR (T1-like) in ../shared/data/mr,
unlabelled for training. Scored on the CHAOS T2 labels: liver, kidneys, spleen.

Run (skips cleanly when the folder is absent):
    .venv/bin/python examples/real_ct_to_mri.py [--data ../shared/data] [--out runs/real] \
        [--preset quick] [--settings only_ct,asit,asit_mdm,asit_mdm_plf] [--iterations N]
"""

import argparse
import sys
from pathlib import Path

from flare_uda.data import get_label_map, read_label, read_volume
from flare_uda.pipeline import UDAConfig, UDAPipeline, get_preset
from flare_uda.pipeline.report import write_report
from flare_uda.volume import Case

CT = [  # (case id, image, label, label map)
    ("amos_0001", "ct/amos_0001_slab_image.nii.gz", "ct/amos_0001_slab_label.nii.gz", "amos"),
    ("amos_0013", "ct/amos_0013_slab_image.nii.gz", "ct/amos_0013_slab_label.nii.gz", "amos"),
    ("chaos_ct3", "ct/chaos_ct3_image.nii.gz", "ct/chaos_ct3_label.nii.gz", "chaos_ct"),
    ("totalseg_ct", "ct/totalseg_ct_sm_image.nii.gz", "ct/totalseg_ct_sm_label.nii.gz", "total"),
    ("totalseg_dicom", "ct/totalseg_ct_dicom", "ct/totalseg_ct_dicom_label.nii.gz", "total"),
]


def load_ct(root: Path) -> list[Case]:
    from flare_uda.data import resample_to_reference

    cases = []
    for cid, image, label, label_map in CT:
        img = read_volume(root / image)
        lab = read_label(root / label, label_map)
        if not lab.same_geometry(img):  # the DICOM label is aligned in physical space only
            lab = resample_to_reference(lab, img, is_label=True)
        # An organ of the map absent from this scan is background (outside the field of
        # view); organs the map does not define at all are unknown (partial labels).
        cases.append(Case(cid, img, lab, "CT", None, get_label_map(label_map).annotated))
    return cases


def load_mr(root: Path) -> tuple[list[Case], list[Case]]:
    t2 = []
    for image in sorted((root / "mr/chaos_t2").glob("*_image.nii.gz")):
        cid = image.name.removesuffix("_image.nii.gz")
        label = read_label(image.with_name(f"{cid}_label.nii.gz"), "chaos")
        t2.append(
            Case(cid, read_volume(image), label, "MR", "T2", get_label_map("chaos").annotated)
        )
    t1 = [
        Case("totalseg_mr", read_volume(root / "mr/totalseg_mr_sm_image.nii.gz"), None, "MR", "T1")
    ]
    return [c.with_label(None) for c in t1 + t2], t2


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(Path(__file__).parents[1] / ".." / "shared" / "data"))
    parser.add_argument("--out", default="runs/real")
    parser.add_argument("--iterations", type=int, default=None, help="override training length")
    parser.add_argument("--preset", default="quick", help="pipeline preset (tiny: a smoke test)")
    parser.add_argument(
        "--settings",
        default="only_ct,asit,asit_mdm,asit_mdm_plf",
        help="comma-separated ablation settings (no oracle: the MR labels are for scoring)",
    )
    args = parser.parse_args()
    root = Path(args.data)
    if not (root / "ct").is_dir() or not (root / "mr").is_dir():
        print(f"skipped: real data folder {root} is absent")
        return 0
    base = get_preset(args.preset)
    changes: dict = {"ablation": args.settings.split(",")}
    for section in ("segmentation", "final_segmentation"):
        options = dict(getattr(base, section).options)
        if args.preset != "tiny":  # near the real volumes' grid, with an in-plane field of view
            options.update(spacing=[5.0, 2.0, 2.0], patch_size=[16, 96, 96])
        if args.iterations:
            options["iterations"] = args.iterations
        changes[section] = {"options": options}
    config = UDAConfig.from_dict(changes, base=base)
    ct = load_ct(root)
    mr, test = load_mr(root)
    result = UDAPipeline(config, args.out).run(ct, mr, test)
    header = "Real public CT -> MRI; scored on CHAOS T2 (liver, kidneys, spleen)."
    for name, why in result.notes.get("skipped", {}).items():
        header += f"\n\n**Setting `{name}` did not run:** {why}."
    print(write_report(args.out, result.rows, test, result.predictions, "asit_mdm_plf", header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
