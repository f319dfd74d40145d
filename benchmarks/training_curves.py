"""Learning curves per training step: held-out DSC of the phantom oracle every N steps.

Complements ``bench_training.py`` (DSC per wall-clock budget): one training of a
recipe for a fixed number of steps (its poly schedule planned for those steps),
scored every ``--val-every`` steps on two held-out cases of the calibration
split (``mr_t1_002`` and ``mr_t2_002``, the trainer's validation). One JSON line
per run is appended to ``--out``::

    .venv/bin/python benchmarks/training_curves.py --recipe quick2d --steps 1600 \\
        --tag quick2d_1600 --threads 1 --out runs/curves.jsonl

``--overrides`` takes TrainConfig fields as JSON (``network`` and ``augment``
as dicts), e.g. ``'{"batch_size": 16, "learning_rate": 0.02}'``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_training import oracle_split  # noqa: E402
from training_recipes import RECIPES, recipe_config  # noqa: E402


def overrides_of(text: str) -> dict:
    """TrainConfig overrides from JSON, nested configs built from their dicts."""
    from flare_uda.segmentation import NetworkConfig
    from flare_uda.segmentation.augment import AugmentConfig

    extra = json.loads(text)
    if not isinstance(extra, dict):
        raise SystemExit(f"--overrides must be a JSON object, got {text!r}")
    if "network" in extra:
        extra["network"] = NetworkConfig(**extra["network"])
    if "augment" in extra:
        extra["augment"] = AugmentConfig(**extra["augment"])
    if "patch_size" in extra:
        extra["patch_size"] = tuple(extra["patch_size"])
    return extra


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", choices=sorted(RECIPES), required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--tag", required=True, help="name of the run (its work folder)")
    p.add_argument("--overrides", default="{}", help="TrainConfig fields as JSON")
    p.add_argument("--val-every", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("runs/curves.jsonl"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from flare_uda.segmentation import train_segmenter

    config = recipe_config(args.recipe, 1).with_overrides(
        iterations=args.steps,
        time_budget_minutes=None,
        val_every=args.val_every,
        **overrides_of(args.overrides),
    )
    train, test = oracle_split()
    start = time.perf_counter()
    seg = train_segmenter(
        train, config, work_dir=Path("runs/curve_work") / args.tag,
        val_cases=[test[0], test[2]], progress=True, device="cpu",
    )  # fmt: skip
    hist = seg.history_
    result = {
        "tag": args.tag,
        "recipe": args.recipe,
        "overrides": args.overrides,
        "threads": args.threads,
        "wall": time.perf_counter() - start,
        "step_s": hist["seconds"]["step"],
        "curve": [(v["iteration"], round(100 * v["mean"], 1)) for v in hist["val"]],
        "last": {k: round(100 * v) for k, v in hist["val"][-1]["per_organ"].items()},
    }
    print(json.dumps(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
