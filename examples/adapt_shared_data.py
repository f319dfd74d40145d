"""`flare-uda adapt` on the shared real data: public CT (3 label maps) -> CHAOS T2 + TotalSeg MR.

The shared folder keeps all CT in one folder although its labels come in three
maps (AMOS, TotalSegmentator, CHAOS CT liver-only), which `adapt` refuses
("mix label maps"). This script lays the files out as a user would, one folder
per map, as symbolic links in ``--inputs`` (nothing is copied, the data are
never written), writes the target's sequences (TotalSegmentator MR: T1, CHAOS:
T2) and runs one command, printed first:

    flare-uda adapt --source INPUTS/ct_amos:amos --source INPUTS/ct_total:total \\
        --source INPUTS/ct_chaos:chaos_ct --target INPUTS/mr \\
        --sequences INPUTS/sequences.csv --target-labels INPUTS/mr_labels:chaos \\
        --target-labels INPUTS/mr_labels_total:total_mr \\
        --config INPUTS/settings.yaml --preset PRESET --method METHOD --out OUT

Scored on the CHAOS T2 labels (liver, kidneys, spleen; the report's T2 column)
and on the TotalSegmentator MR's 13 (a model's prediction, T1 column; its
esophagus is absent, empty against empty scores 100 by the FLARE convention).
Skips cleanly when the data folder is absent.

Run:
    .venv/bin/python examples/adapt_shared_data.py [--data ../shared/data] \\
        [--out runs/real_adapt] [--preset quick] [--config recipe.yaml] \\
        [--settings only_ct,asit,asit_mdm,asit_mdm_plf,synth,synth_mdm,synth_mdm_plf] \\
        [--method synth_mdm_plf] [--device auto] \\
        [--extra-source DIR[:MAP] ...]
    (--extra-source adds labelled CT beside the real sources, e.g. the phantom's
    CT from `flare-uda phantom --n-ct 8 --n-mri 1 --out PH` as PH/ct:flare)
    (--settings applies over --config's ablation; INPUTS/settings.yaml is the
    config the command runs with, the recipe's sections and the settings)
    (--preset tiny: a smoke test of a few minutes on 2 CPU cores)
"""

import argparse
import sys
from pathlib import Path

VIEWS = {  # folder -> {link name: path in the data folder}
    "ct_amos": {
        f"amos_{n}_slab_{kind}.nii.gz": f"ct/amos_{n}_slab_{kind}.nii.gz"
        for n in ("0001", "0013")
        for kind in ("image", "label")
    },
    "ct_total": {
        "totalseg_ct_sm_image.nii.gz": "ct/totalseg_ct_sm_image.nii.gz",
        "totalseg_ct_sm_label.nii.gz": "ct/totalseg_ct_sm_label.nii.gz",
        "totalseg_ct_dicom": "ct/totalseg_ct_dicom",
        "totalseg_ct_dicom_label.nii.gz": "ct/totalseg_ct_dicom_label.nii.gz",
    },
    "ct_chaos": {
        f"chaos_ct3_{kind}.nii.gz": f"ct/chaos_ct3_{kind}.nii.gz" for kind in ("image", "label")
    },
    "mr": {
        "totalseg_mr_sm_image.nii.gz": "mr/totalseg_mr_sm_image.nii.gz",
        **{
            f"chaos_t2_{n}_image.nii.gz": f"mr/chaos_t2/chaos_t2_{n}_image.nii.gz"
            for n in (1, 2, 3, 5, 8)
        },
    },
    "mr_labels": {
        f"chaos_t2_{n}_label.nii.gz": f"mr/chaos_t2/chaos_t2_{n}_label.nii.gz"
        for n in (1, 2, 3, 5, 8)
    },
    # A second sequence to score (T1-like; its labels are TotalSegmentator MR's
    # prediction, not a manual reference): the report's T1 column.
    "mr_labels_total": {"totalseg_mr_sm_label.nii.gz": "mr/totalseg_mr_sm_label.nii.gz"},
}
SETTINGS = ("only_ct", "asit", "asit_mdm", "asit_mdm_plf", "synth", "synth_mdm", "synth_mdm_plf")
"""The settings scored by default: the paper's ablation without CycleGAN and the oracle,
and the chain from CT with label-conditioned random contrasts (the best on this data,
docs/results.md, "Real data")."""
METHOD = "synth_mdm_plf"
"""The setting whose model is written to OUT/model and drawn in the report's overlays."""
SEQUENCES = "case,sequence\ntotalseg_mr_sm,T1\n" + "".join(
    f"chaos_t2_{n},T2\n" for n in (1, 2, 3, 5, 8)
)


def link_views(data: Path, inputs: Path) -> None:
    """Create (or check) the per-map folders of symbolic links into ``data``."""
    for folder, links in VIEWS.items():
        (inputs / folder).mkdir(parents=True, exist_ok=True)
        for name, rel in links.items():
            link, target = inputs / folder / name, (data / rel).resolve()
            if not target.exists():
                raise FileNotFoundError(f"expected {target} in the shared data, found none")
            if link.is_symlink() and link.resolve() == target:
                continue
            if link.exists() or link.is_symlink():
                raise FileExistsError(f"{link} exists and is not a link to {target}")
            link.symlink_to(target, target_is_directory=target.is_dir())
    (inputs / "sequences.csv").write_text(SEQUENCES)


def write_config(recipe: str | None, settings: str | None, path: Path) -> Path:
    """``recipe``'s sections (if any) with the ablation ``settings`` over them, into ``path``.

    Without ``settings`` the recipe's own ``ablation`` stays, else :data:`SETTINGS`.
    """
    import yaml

    config = {}
    if recipe is not None:
        config = yaml.safe_load(Path(recipe).read_text()) or {}
        if not isinstance(config, dict):
            kind = type(config).__name__
            raise SystemExit(f"--config {recipe}: expected a YAML mapping of sections, got {kind}")
    if settings is not None or "ablation" not in config:
        config["ablation"] = (settings or ",".join(SETTINGS)).split(",")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(Path(__file__).parents[1] / ".." / "shared" / "data"))
    parser.add_argument("--out", default="runs/real_adapt")
    parser.add_argument("--inputs", help="where the folders of links go (default: OUT_inputs)")
    parser.add_argument("--preset", default="quick", help="pipeline preset (tiny: a smoke test)")
    parser.add_argument("--config", help="YAML config over the preset (e.g. a training recipe)")
    parser.add_argument(
        "--settings",
        help=f"settings scored on the CHAOS T2 labels (default {','.join(SETTINGS)}, "
        "or the ablation of --config when it names one)",
    )
    parser.add_argument("--method", default=METHOD, help=f"adapt's --method (default {METHOD})")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--extra-source",
        action="append",
        default=[],
        metavar="DIR[:MAP]",
        help="more labelled CT for adapt's --source (repeatable), e.g. runs/phantom/ct:flare",
    )
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "ct").is_dir() or not (data / "mr").is_dir():
        print(f"skipped: real data folder {data} is absent")
        return 0
    out = Path(args.out)
    inputs = Path(args.inputs or f"{out}_inputs")
    link_views(data, inputs)
    config = write_config(args.config, args.settings, inputs / "settings.yaml")
    argv = [
        "adapt",
        *("--source", f"{inputs / 'ct_amos'}:amos", "--source", f"{inputs / 'ct_total'}:total"),
        *("--source", f"{inputs / 'ct_chaos'}:chaos_ct", "--target", str(inputs / "mr")),
        *(arg for extra in args.extra_source for arg in ("--source", extra)),
        *("--sequences", str(inputs / "sequences.csv")),
        *("--target-labels", f"{inputs / 'mr_labels'}:chaos"),
        *("--target-labels", f"{inputs / 'mr_labels_total'}:total_mr", "--config", str(config)),
        *("--preset", args.preset, "--method", args.method),
        *("--device", args.device, "--out", str(out)),
    ]
    print("flare-uda " + " ".join(argv), flush=True)
    from flare_uda.cli import main as flare_uda

    flare_uda(argv, prog_name="flare-uda")  # exits with the command's code
    return 0


if __name__ == "__main__":
    sys.exit(main())
