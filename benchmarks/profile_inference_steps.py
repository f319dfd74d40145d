"""Where one inference call spends its time, step by step (a profile, not a race).

Wraps the functions the inferers call (upload, normalisation, body box,
resampling, window body mask, network, window bookkeeping, head, labels back)
with timers, runs one inferer ``--repeat`` times on one image (after a
first call) and prints the steps of its fastest call, or of the first call
of the process with ``--first-call``. With ``--device cuda`` every timer synchronises
the GPU first, so each step's time includes its kernels (the synchronisation
itself slows the call a little; bench_inference.py times calls unwrapped).
The floor row is bench_inference's: forward passes over a no-overlap tiling
of the body box, nothing else.

Usage (a model and an image written by bench_inference.py)::

    python benchmarks/profile_inference_steps.py --model runs/calib_adam_8000/oracle \
        --image /tmp/bench_oracle_dev/mr_t1_100.nii.gz --method ours_roi_body_torch_s1.0
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import torch
from inference_baselines import floor_forward, ours_inferer  # same folder

import flare_uda.data.normalization as normalization
import flare_uda.data.torch_resampling as torch_resampling
import flare_uda.inference.network_grid as network_input
import flare_uda.inference.roi as roi
import flare_uda.inference.sliding_window as sliding_window
from flare_uda.data.io import read_volume
from flare_uda.segmentation.network_segmenter import NetworkSegmenter

# (module, function, step): what each timer is called in the table
STEPS = (
    (network_input, "upload", "upload raw image to the device"),
    (roi, "upload", "upload raw image to the device"),
    (normalization, "normalize_tensor", "normalise (torch)"),
    (network_input, "normalize_for_plan", "normalise (nnU-Net)"),
    (network_input, "crop_volume", "crop (numpy)"),
    (roi, "otsu_body_mask", "body box: Otsu"),
    (roi, "bounding_box", "body box: projections"),
    (torch_resampling, "resample_image_torch", "resample (torch)"),
    (network_input, "resample_image", "resample (nnU-Net)"),
    (sliding_window, "otsu_body_mask", "window body mask"),
    (sliding_window, "sliding_window_logits", "windows (all, incl. network)"),
    (sliding_window, "logits_to_labels", "head (argmax / threshold)"),
    (network_input, "labels_to_grid_array", "labels back (gather)"),
)


def instrument(times: dict, sync) -> None:
    """Replace each STEPS function by a timed wrapper adding into ``times``."""

    def timed(fn, step):
        def wrapper(*args, **kwargs):
            sync()
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            sync()
            times[step] += time.perf_counter() - t0
            return out

        return wrapper

    for module, name, step in STEPS:
        setattr(module, name, timed(getattr(module, name), step))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--image", type=Path, required=True)
    ap.add_argument("--method", default="ours_roi_body_torch_s1.0")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--first-call", action="store_true", help="show the first call of the process instead"
    )
    args = ap.parse_args()
    if args.repeat < 1:
        raise SystemExit(f"--repeat must be >= 1, got {args.repeat}")
    torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    try:
        inferer = ours_inferer(args.method)
    except ValueError as err:
        raise SystemExit(f"--method: {err}") from None
    seg = NetworkSegmenter.load(args.model, device=args.device)
    seg.network.decoder.deep_supervision = False
    image = read_volume(args.image)
    times: dict = defaultdict(float)
    instrument(times, sync)
    forward = seg.predict_logits

    def timed_forward(batch):
        sync()
        t0 = time.perf_counter()
        out = forward(batch)
        sync()
        times["network forward passes"] += time.perf_counter() - t0
        return out

    seg.predict_logits = timed_forward
    calls = []
    for _ in range(args.repeat + 1):
        times.clear()
        sync()
        t0 = time.perf_counter()
        inferer(image, seg)
        sync()
        calls.append((time.perf_counter() - t0, dict(times)))
    # call 0 pays the process's one-off costs: shown with --first-call, else not kept
    total, steps = calls[0] if args.first_call else min(calls[1:], key=lambda call: call[0])
    floor = min(floor_forward(image, seg, args.device)[2] for _ in range(args.repeat))
    print_table(args, image.shape, total, steps, floor)


def print_table(args, shape, total: float, times: dict, floor: float) -> None:
    windows = times.pop("windows (all, incl. network)", 0.0)
    network = times.get("network forward passes", 0.0)
    times["window bookkeeping (stack, weights, sums)"] = windows - network
    times["other (placement, transfers, checks)"] = total - sum(times.values())
    which = "first call" if args.first_call else f"fastest of {args.repeat} calls"
    print(f"{args.method} on {args.device}, input {shape}, {which}")
    print("\n| step | s | share |\n|---|---|---|")
    for step, seconds in sorted(times.items(), key=lambda kv: -kv[1]):
        print(f"| {step} | {seconds:.4f} | {100 * seconds / total:.0f} % |")
    print(f"| **total** | **{total:.4f}** | 100 % |")
    print(f"| floor (forward passes, no-overlap body box) | {floor:.4f} | x {total / floor:.2f} |")


if __name__ == "__main__":
    main()
