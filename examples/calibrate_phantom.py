"""Calibration of the phantom: source-only (CT -> MR) and oracle (MR -> MR) small nets.

Trains the ``quick`` segmentation preset twice on the phantom's ``quick``
cohort and scores both on the same held-out MR cases (FLARE DSC per organ):

* ``source``: trained on all CT cases with their labels, applied to MR as is;
* ``oracle``: trained on the first half of the MR cases (T1 and T2) with their
  true labels.

The test set is the second half of the MR cases. Each model trains in its own
work folder and resumes when rerun; results go to ``OUT/results_{source,oracle}.json`` and a
markdown table to ``OUT/table.md``.

Example::

    .venv/bin/python examples/calibrate_phantom.py --out runs/calibration --model both

``--preset tiny --n-ct 2 --n-mr 4 --iterations 2`` is a seconds-long smoke test.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def split_cohort(n_ct: int, n_mr: int, seed: int, preset: str = "quick"):
    from flare_uda.data.phantom import generate_cohort

    ct, mr = generate_cohort(preset, n_ct, n_mr, seed=seed)
    t1 = [c for c in mr if c.sequence == "T1"]
    t2 = [c for c in mr if c.sequence == "T2"]
    h1, h2 = len(t1) // 2, len(t2) // 2
    return ct, t1[:h1] + t2[:h2], t1[h1:] + t2[h2:]


def evaluate(segmenter, test_cases) -> list:
    from flare_uda.inference import SlidingWindowInferer
    from flare_uda.metrics.evaluate import evaluate_volumes

    inferer = SlidingWindowInferer()
    rows = []
    for case in test_cases:
        pred = inferer(case.image, segmenter)
        rows += evaluate_volumes(case.case_id, pred, case.label)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--model", choices=["source", "oracle", "both"], default="both")
    p.add_argument("--n-ct", type=int, default=8)
    p.add_argument("--n-mr", type=int, default=8)
    p.add_argument("--iterations", type=int, default=None, help="override the preset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--momentum", type=float, default=None, help="override the preset's SGD momentum"
    )
    p.add_argument("--optimizer", choices=["sgd", "adam"], default=None)
    p.add_argument("--lr", type=float, default=None, help="override the learning rate")
    p.add_argument("--normalization", default=None, help="override (e.g. zscore)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--preset", default="quick", help="phantom and segmentation preset")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from flare_uda._atomic import write_json
    from flare_uda.metrics.evaluate import summarize
    from flare_uda.segmentation import get_preset, train_segmenter

    ct, mr_train, mr_test = split_cohort(args.n_ct, args.n_mr, args.seed, args.preset)
    overrides = {"seed": args.seed}
    if args.iterations is not None:
        overrides["iterations"] = args.iterations
    if args.momentum is not None:
        overrides["momentum"] = args.momentum
    for key, value in (
        ("optimizer", args.optimizer),
        ("learning_rate", args.lr),
        ("normalization", args.normalization),
    ):
        if value is not None:
            overrides[key] = value
    config = get_preset(args.preset, **overrides)
    models = ["source", "oracle"] if args.model == "both" else [args.model]
    results = {}
    for name in ("source", "oracle"):  # one file per model: two processes may run at once
        path = args.out / f"results_{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    for name in models:
        train = ct if name == "source" else mr_train
        t0 = time.perf_counter()
        seg = train_segmenter(train, config, work_dir=args.out / name)
        train_s = time.perf_counter() - t0
        summary = summarize(evaluate(seg, mr_test))
        hist = seg.history_
        results[name] = {
            "train_cases": [c.case_id for c in train],
            "test_cases": [c.case_id for c in mr_test],
            "iterations": config.iterations,
            "train_seconds_this_run": train_s,
            "seconds_batch_total": hist["seconds"]["batch"],
            "seconds_step_total": hist["seconds"]["step"],
            "final_loss_mean10": float(np.mean(hist["loss"][-10:])),
            "summary": summary,
        }
        write_json(args.out / f"results_{name}.json", results[name])
        print(f"{name}: mean DSC {summary[-1]['dsc_mean']:.3f}")
    if {"source", "oracle"} <= set(results):
        s = {r["organ"]: r for r in results["source"]["summary"]}
        o = {r["organ"]: r for r in results["oracle"]["summary"]}
        lines = ["| organ | source only (CT -> MR) DSC | oracle (MR -> MR) DSC |", "|---|---|---|"]
        for organ in s:
            lines.append(
                f"| {organ} | {100 * s[organ]['dsc_mean']:.1f} +- {100 * s[organ]['dsc_std']:.1f} "
                f"| {100 * o[organ]['dsc_mean']:.1f} +- {100 * o[organ]['dsc_std']:.1f} |"
            )
        table = "\n".join(lines) + "\n"
        (args.out / "table.md").write_text(table)
        print(table)


if __name__ == "__main__":
    main()
