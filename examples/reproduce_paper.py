"""Reproduce the paper's setting (GPU): the `paper` preset on your own data folders.

Data folders are nnU-Net raw datasets (imagesTr/{id}_0000.nii.gz, labelsTr/...) with a
flare_uda manifest.json naming each MR case's sequence, e.g. written by
`flare_uda.data.write_dataset` or `flare-uda phantom --preset paper`.

Run:
    .venv/bin/python examples/reproduce_paper.py --ct CT_DIR --mr MR_DIR --mr-test MR_TEST_DIR \
        --out runs/paper [--config my.yaml] [--preset paper]

``--config`` sections override ``--preset``'s (``flare-uda demo --print-config``
shows every section and option).
"""

import argparse

from flare_uda.data import read_dataset
from flare_uda.pipeline import UDAConfig, UDAPipeline, get_preset
from flare_uda.pipeline.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ct", required=True, help="labelled CT dataset (source)")
    parser.add_argument("--mr", required=True, help="MR dataset for adaptation (labels unused)")
    parser.add_argument("--mr-test", required=True, help="labelled MR dataset for evaluation")
    parser.add_argument("--out", default="runs/paper")
    parser.add_argument("--preset", default="paper", help="pipeline preset (tiny: a smoke test)")
    parser.add_argument("--config", help="YAML config overriding the preset's sections")
    args = parser.parse_args()
    config = get_preset(args.preset)
    if args.config:
        config = UDAConfig.from_yaml(args.config, base=config)
    no_oracle = [s for s in config.ablation if s != "oracle"]  # the MR labels are not used
    config = UDAConfig.from_dict({"ablation": no_oracle}, base=config)
    ct = read_dataset(args.ct, progress=True)
    mr = [c.with_label(None) for c in read_dataset(args.mr, progress=True)]
    test = read_dataset(args.mr_test, progress=True)
    result = UDAPipeline(config, args.out).run(ct, mr, test)
    print(write_report(args.out, result.rows, test, result.predictions, "asit_mdm_plf"))


if __name__ == "__main__":
    main()
