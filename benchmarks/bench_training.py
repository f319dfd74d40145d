"""Learning per unit of wall time: held-out DSC of the phantom oracle under fixed budgets.

The oracle is the project's calibration model (docs/results.md,
"Calibration"): trained on phantom MR with its true labels (``quick`` cohort,
seed 0: ``mr_t1_000, mr_t1_001, mr_t2_000, mr_t2_001``) and scored on the
held-out ``mr_t1_002, mr_t1_003, mr_t2_002, mr_t2_003`` with FLARE DSC
(sliding window, step 0.5, labels back on each scan's own grid). Each
(recipe, budget) pair is a separate training whose learning rate decays over
its budget (``TrainConfig.time_budget_minutes``), so a 2-minute row is a run
planned for 2 minutes, not the first 2 minutes of a longer one. Results are
cached per pair in ``OUT/results.json`` (a rerun continues where it stopped).

    .venv/bin/python benchmarks/bench_training.py --out runs/bench_training \\
        --recipes today quick2d --budgets 2 5 10 20

``--step-costs`` prints the seconds per training step of the networks instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from training_recipes import RECIPES, recipe_config  # noqa: E402

from flare_uda._atomic import write_json  # noqa: E402
from flare_uda.data.labels import FLARE_ORGANS  # noqa: E402

TRAIN_IDS = ("mr_t1_000", "mr_t1_001", "mr_t2_000", "mr_t2_001")
TEST_IDS = ("mr_t1_002", "mr_t1_003", "mr_t2_002", "mr_t2_003")


def oracle_split(seed: int = 0):
    """The calibration split: 4 MR cases with labels for training, 4 held out."""
    from flare_uda.data.phantom import generate_cohort

    _, mr = generate_cohort("quick", 0, 8, seed=seed, executor="process")
    by_id = {c.case_id: c for c in mr}
    return [by_id[i] for i in TRAIN_IDS], [by_id[i] for i in TEST_IDS]


def score(segmenter, test_cases) -> dict:
    """Mean and per-organ FLARE DSC (%) over the test cases."""
    from flare_uda.inference import SlidingWindowInferer
    from flare_uda.metrics.evaluate import evaluate_volumes, summarize

    inferer = SlidingWindowInferer()
    rows = []
    for case in test_cases:
        rows += evaluate_volumes(case.case_id, inferer(case.image, segmenter), case.label)
    summary = summarize(rows)
    per_organ = {r["organ"]: 100 * r["dsc_mean"] for r in summary if r["organ"] != "mean"}
    return {"mean": 100 * summary[-1]["dsc_mean"], "per_organ": per_organ}


def run_pair(recipe: str, budget: float, train, test, out: Path) -> dict:
    from flare_uda.segmentation import train_segmenter

    config = recipe_config(recipe, budget)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    seg = train_segmenter(train, config, work_dir=None, progress=False, device="cpu")
    wall = time.perf_counter() - t0
    hist = seg.history_
    result = {
        "recipe": recipe,
        "budget_min": budget,
        "steps": hist["iterations_done"],
        "train_wall_s": wall,
        "batch_s": hist["seconds"]["batch"],
        "step_s": hist["seconds"]["step"],
        "precision": hist["precision"],
        "loadavg_start_end": [load0, os.getloadavg()[0]],
        "loss_last50": float(np.mean(hist["loss"][-50:])),
        **score(seg, test),
    }
    seg.save(out / "models" / f"{recipe}_{budget:g}min")
    return result


def print_tables(results: dict, recipes, budgets) -> None:
    head = "| recipe | " + " | ".join(f"{b:g} min" for b in budgets) + " |"
    print("\nMean DSC % over 13 organs (steps done):\n")
    print(head)
    print("|---" * (len(budgets) + 1) + "|")
    for r in recipes:
        cells = []
        for b in budgets:
            e = results.get(f"{r}@{b:g}")
            cells.append(f"{e['mean']:.1f} ({e['steps']})" if e else "-")
        print(f"| {r} | " + " | ".join(cells) + " |")
    for b in budgets:
        done = [r for r in recipes if f"{r}@{b:g}" in results]
        if not done:
            continue
        print(f"\nDSC % per organ, {b:g} min:\n")
        print("| organ | " + " | ".join(done) + " |")
        print("|---" * (len(done) + 1) + "|")
        for organ in FLARE_ORGANS:
            vals = [results[f"{r}@{b:g}"]["per_organ"].get(organ, float("nan")) for r in done]
            print(f"| {organ} | " + " | ".join(f"{v:.1f}" for v in vals) + " |")


def step_costs(threads: int) -> None:
    """Seconds per training step (fastest of 5 after 2 warm-ups), fp32 / bf16 / channels_last."""
    from flare_uda.segmentation.networks import build_network

    print(f"| recipe | batch | fp32 s | bf16 s | channels_last fp32 s | ({threads} threads) |")
    print("|---|---|---|---|---|---|")
    for name in ("today", "quick2d"):
        cfg = recipe_config(name, 1)
        topo = cfg.network.topology(cfg.patch_size, cfg.spacing)
        shape = (cfg.batch_size, 1, *cfg.patch_size)
        row = []
        for bf16, cl in ((False, False), (True, False), (False, True)):
            torch.manual_seed(0)
            net = build_network(cfg.network, topo)
            x = torch.randn(shape)
            if cl:
                net = net.to(memory_format=torch.channels_last_3d)
                x = x.contiguous(memory_format=torch.channels_last_3d)
            opt = torch.optim.Adam(net.parameters(), 1e-3)
            times = []
            for _ in range(7):
                t = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = net(x)
                loss = sum(o.float().mean() for o in out)
                opt.zero_grad()
                loss.backward()
                opt.step()
                times.append(time.perf_counter() - t)
            row.append(min(times[2:]))
        print(
            f"| {name} | {'x'.join(map(str, shape))} | "
            + " | ".join(f"{t:.3f}" for t in row)
            + " | |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench_training"))
    p.add_argument("--recipes", nargs="+", default=["today", "quick2d"])
    p.add_argument("--budgets", nargs="+", type=float, default=[2, 5, 10, 20])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--step-costs", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.step_costs:
        step_costs(args.threads)
        return
    unknown = [r for r in args.recipes if r not in RECIPES]
    if unknown:
        p.error(f"unknown recipes {unknown}; known: {sorted(RECIPES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    train, test = oracle_split()
    for budget in args.budgets:
        for recipe in args.recipes:
            key = f"{recipe}@{budget:g}"
            if key in results:
                continue
            print(f"[bench_training] {key} ...", flush=True)
            results[key] = run_pair(recipe, budget, train, test, args.out)
            e = results[key]
            print(f"[bench_training] {key}: {e['mean']:.1f} DSC, {e['steps']} steps", flush=True)
            write_json(path, results)
    print_tables(results, args.recipes, args.budgets)
    print(f"\ncommand: {' '.join(sys.argv)}; torch {torch.__version__}, {args.threads} threads")


if __name__ == "__main__":
    main()
