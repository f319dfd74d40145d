"""Figure of a bench_inference.py run: time per method (log scale) against the floor.

Reads the ``results.json`` that bench_inference.py writes into its ``--work``
folder; one bar per method (first call, and the fastest repeat where the run
had ``--repeat``), the floor and 1.5x the floor as vertical lines, each
method's DSC against the phantom's truth at the end of its bar.

Usage::

    python benchmarks/plot_inference.py /tmp/bench_oracle_dev/results.json \
        docs/figures/inference_cpu.png --title "CPU, 1 thread, 100x400x400 MR"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {
    "nnunet_mirror": "nnU-Net predictor (default, mirroring)",
    "nnunet_nomirror": "nnU-Net predictor, no mirroring",
    "monai": "MONAI sliding window + logits resampled",
    "ours_plain": "ours plain, step 0.5",
    "ours_plain_torch": "ours plain, step 0.5, torch path",
    "ours_plain_s1.0": "ours plain, step 1.0",
    "ours_plain_torch_s1.0": "ours plain, step 1.0, torch path",
    "ours_roi": "ours ROI (organs)",
    "ours_roi_torch": "ours ROI (organs), torch path",
    "ours_roi_body_s1.0": "ours ROI (body), step 1.0",
    "ours_roi_body_torch_s1.0": "ours ROI (body), step 1.0, torch path",
}


def plot(rows: list[dict], out: Path, title: str) -> None:
    """Write the figure of ``rows`` (bench_inference.py's results) to ``out``."""
    floor = next((r for r in rows if r["method"] == "floor"), None)
    methods = [r for r in rows if r["method"] != "floor"]
    if not methods:
        raise SystemExit("expected at least one method besides the floor in the results")
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(methods) + 1.6))
    ys = range(len(methods))[::-1]
    first = [r["wall_s"] for r in methods]
    ax.barh(ys, first, height=0.4, align="edge", color="#bbbbbb", label="first call")
    steady = [r.get("wall_s_repeat") for r in methods]
    if any(s is not None for s in steady):
        ax.barh(
            [y - 0.4 for y in ys],
            [s or 0 for s in steady],
            height=0.4,
            align="edge",
            color="#3b75af",
            label="steady state (fastest repeat)",
        )
    for y, r in zip(ys, methods, strict=True):
        dsc = r.get("dsc_vs_truth")
        if dsc is not None:
            ax.text(r["wall_s"] * 1.08, y + 0.05, f"DSC {dsc:.3f}", va="bottom", fontsize=8)
    if floor is not None:
        f = floor.get("wall_s_repeat", floor["wall_s"])
        ax.axvline(f, color="black", lw=1, label=f"floor {f:.2f} s")
        ax.axvline(1.5 * f, color="black", lw=1, ls="--", label="1.5 x floor")
    ax.set_yticks(list(ys))
    ax.set_yticklabels([LABELS.get(r["method"], r["method"]) for r in methods], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per volume (log scale)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="results.json of bench_inference.py")
    ap.add_argument("out", type=Path, help="PNG to write")
    ap.add_argument("--title", default="bench_inference.py")
    args = ap.parse_args()
    if not args.results.is_file():
        raise SystemExit(f"expected a results.json from bench_inference.py, got {args.results}")
    plot(json.loads(args.results.read_text()), args.out, args.title)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
