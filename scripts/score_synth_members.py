"""Score each first network of a ``synth.members`` run alone, and their ensemble, on real MR.

An ensemble of first networks (``synth: {members: N}``) is scored by ``flare-uda
adapt`` only as a whole (the ``synth`` row). This script asks what each member
would have scored alone, on the same scored MR cases with the run's own inferer,
so that an ensemble's gain can be told apart from a lucky member::

    .venv/bin/python scripts/score_synth_members.py --run runs/real_e2_u12b \\
        --target runs/real_e2_u12b_inputs/mr --labels runs/real_e2_u12b_inputs/mr_labels:chaos

It prints one row per member (``train_synth``, ``train_synth_member2``, ...) and
one for their mean probability (with ``--extra-member``, of those and the extra
model folders, each scored alone in its own run): per-organ DSC (%) over the labelled cases, the
organs the labels annotate. Nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from flare_uda.data.labels import organ_name
from flare_uda.data.user_data import read_target, read_target_labels
from flare_uda.inference.ensemble_segmenter import EnsembleSegmenter
from flare_uda.metrics.evaluate import evaluate_volumes
from flare_uda.pipeline.config import UDAConfig
from flare_uda.segmentation import NetworkSegmenter


def member_folders(run: Path) -> list[Path]:
    """The finished ``train_synth*`` model folders of ``run``, member 0 first."""
    stages = run / "stages"
    first = sorted(stages.glob("train_synth-*/model"))
    rest = sorted(stages.glob("train_synth_member*-*/model"), key=lambda p: p.parent.name)
    if len(first) != 1 or not rest:
        raise SystemExit(
            f"expected one train_synth-*/model and at least one train_synth_member*-*/model "
            f"under {stages}, got {len(first)} and {len(rest)}"
        )
    return first + rest


def scores(segmenter, inferer, cases, organs) -> list[float]:
    """Mean DSC (%) per organ over ``cases``."""
    per_organ: dict[str, list[float]] = {organ_name(o): [] for o in organs}
    for case in cases:
        pred = inferer(case.image, segmenter)
        for row in evaluate_volumes(case.case_id, pred, case.label, organs=organs):
            per_organ[row.organ].append(row.dsc)
    return [100 * float(np.mean(dsc)) for dsc in per_organ.values()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, type=Path, help="the adapt run folder")
    parser.add_argument("--target", required=True, help="the run's --target folder")
    parser.add_argument("--labels", required=True, help="a --target-labels DIR:MAP")
    parser.add_argument(
        "--extra-member",
        action="append",
        default=[],
        type=Path,
        help="another model folder (e.g. a first network of another run) added to the "
        "ensemble row; repeatable: what a larger synth.members would have labelled",
    )
    args = parser.parse_args()
    config = UDAConfig.from_yaml(args.run / "config.yaml")
    inferer = config.inference.build()
    target, _ = read_target(args.target)
    labelled, report = read_target_labels(args.labels, target)
    cases = [labelled[k] for k in sorted(labelled)]
    organs = sorted(set.intersection(*(set(c.annotated) for c in cases)))
    names = [organ_name(o) for o in organs]
    own = member_folders(args.run)
    members = [NetworkSegmenter.load(p) for p in own + args.extra_member]  # member 0 first
    print(f"{len(cases)} cases ({report.label_map}), {len(members)} members")
    print("| model | " + " | ".join(names) + " | mean |")
    print("|---" * (len(names) + 2) + "|")
    # the run's own members alone; an extra member alone is scored in its own run
    rows = [(str(p.parent), m) for p, m in zip(own, members[: len(own)], strict=True)]
    rows.append((f"mean probability of {len(members)}", EnsembleSegmenter(members)))
    for name, segmenter in rows:
        dsc = scores(segmenter, inferer, cases, organs)
        cells = " | ".join(f"{v:.1f}" for v in dsc)
        print(f"| {name} | {cells} | {np.mean(dsc):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
