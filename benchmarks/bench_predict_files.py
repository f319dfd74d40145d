"""Folder prediction: read ahead / write behind (``predict_files``) vs the plain loop.

Same model, same inferer, same files: ``--cases`` phantom MR T1 volumes
resampled onto ``--input-shape`` voxels (as bench_inference.py does), written
as float32 ``.nii.gz``. "loop" reads a case, infers it, writes its labels,
then the next (what ``flare-uda predict`` did before); "predict_files" is
:func:`flare_uda.inference.files.predict_files` with ``--prefetch`` cases
read ahead in a background thread. Each variant runs ``--repeat`` times, the
fastest is kept; a warm-up case runs first (not timed). Also printed: the
time of the reads alone and of the inferences alone, so the overlap can be
checked against its bound, max(read, infer) per case.

Usage::

    python benchmarks/bench_predict_files.py --model runs/calib_adam_8000/oracle \
        --phantom-preset quick --input-shape 100 400 400 --cases 4
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from bench_inference import resampled_case  # same folder

from flare_uda.data.io import read_volume, write_volume
from flare_uda.data.phantom import generate_case
from flare_uda.inference import CoarseToFineInferer, SlidingWindowInferer
from flare_uda.inference.files import predict_files
from flare_uda.inference.sliding_window import SlidingWindowConfig
from flare_uda.segmentation.network_segmenter import NetworkSegmenter


def write_cases(work: Path, preset: str, shape, n: int) -> list[Path]:
    """The input files (cached in ``work``)."""
    paths = []
    for seed in range(200, 200 + n):
        path = work / f"inputs_{preset}_{'x'.join(map(str, shape))}" / f"mr_{seed}.nii.gz"
        if not path.exists():
            case = generate_case(preset, "MR", "T1", seed)
            write_volume(resampled_case(case, tuple(shape)).image, path)
        paths.append(path)
    return paths


def loop(inferer, seg, inputs, outputs) -> None:
    for src, out in zip(inputs, outputs, strict=True):
        write_volume(inferer(read_volume(src), seg), out, is_label=True)


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(inferer, seg, inputs: list[Path], out_dir: Path, args) -> tuple[float, ...]:
    """Seconds (fastest of ``args.repeat``): reads, inferences, loop, predict_files."""
    outputs = [out_dir / p.name for p in inputs]
    inferer(read_volume(inputs[0]), seg)  # warm-up
    volumes = [read_volume(p) for p in inputs]
    t_read = best_of(lambda: [read_volume(p) for p in inputs], args.repeat)
    t_infer = best_of(lambda: [inferer(v, seg) for v in volumes], args.repeat)
    volumes.clear()
    t_loop = best_of(lambda: loop(inferer, seg, inputs, outputs), args.repeat)
    t_files = best_of(
        lambda: predict_files(inferer, seg, inputs, outputs, args.prefetch, False), args.repeat
    )
    return t_read, t_infer, t_loop, t_files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--phantom-preset", choices=("quick", "paper"), default="quick")
    ap.add_argument("--input-shape", type=int, nargs=3, default=(100, 400, 400))
    ap.add_argument("--cases", type=int, default=4)
    ap.add_argument("--prefetch", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the inferer")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--inferers",
        default="plain,roi_body_torch_s1.0",
        help="comma list: plain (default settings) and/or roi_body_torch_s1.0",
    )
    ap.add_argument("--work", type=Path, default=Path("/tmp/flare_uda_bench_predict_files"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    inputs = write_cases(args.work, args.phantom_preset, args.input_shape, args.cases)
    seg = NetworkSegmenter.load(args.model, device=args.device)
    print(f"{args.cases} cases {tuple(args.input_shape)}, {args.threads} torch thread(s)")
    rows = []
    for name in args.inferers.split(","):
        if name == "plain":
            inferer = SlidingWindowInferer()
        elif name == "roi_body_torch_s1.0":
            fine = SlidingWindowConfig(step=1.0, resampling="torch")
            inferer = CoarseToFineInferer(fine=fine, roi_source="body")
        else:
            raise SystemExit(f"unknown inferer {name!r}: expected plain or roi_body_torch_s1.0")
        rows.append((name, *measure(inferer, seg, inputs, args.work / f"out_{name}", args)))
    n = args.cases
    print(
        "\n| inferer | reads alone s/case | inference alone s/case | loop s/case "
        "| predict_files s/case | speed-up | bound max(read, infer) s/case |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, t_read, t_infer, t_loop, t_files in rows:
        print(
            f"| {name} | {t_read / n:.2f} | {t_infer / n:.2f} | {t_loop / n:.2f} | "
            f"{t_files / n:.2f} | {t_loop / t_files:.2f}x | {max(t_read, t_infer) / n:.2f} |"
        )


if __name__ == "__main__":
    main()
