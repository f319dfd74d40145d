"""Per-case engines on one machine: serial, process pool, Ray; and a projection to FLARE24.

Setup (cached in ``--work``): ``--cases`` phantom MR cases (T1 and T2 of the
``--phantom-preset`` cohort, native grid unless ``--input-shape``) written as
float32 ``.nii.gz``, and a model folder: the pipeline's ``quick`` segmenter
architecture after one training step (prediction time does not depend on the
weights). Then:

1. **Prediction of the folder** by ``flare-uda predict`` in a fresh process per
   engine (``--executor serial|process|ray``, 2 workers for the pool and Ray),
   measured by :func:`flare_uda.metrics.efficiency.measure`: wall time from
   process start to exit (imports, Ray's start-up included) and peak RSS of the
   process tree (sampled every 0.1 s; memory shared between processes, e.g.
   Ray's object store, counts once per process that maps it). The label files
   of every engine are compared with the serial ones.
2. **Engine overhead per case**: in one process, each engine maps a function
   that returns at once over the same cases held in memory (their volumes
   travel to the workers, as in a pipeline stage); the first map includes the
   engine's start-up (Ray: the local runtime; pool: the processes), the second
   is timed per case.
3. **Projection** (not a measurement) of the wall time to predict the whole
   FLARE24 pool (2,050 CT + 4,817 MRI) on N GPUs with Ray, one task per GPU:
   ``start-up + ceil(cases / N) * (t_case + overhead)``, from ``--gpu-seconds-per-case``
   (default 8.99 s: our plain inferer on a 100x400x400 MR case on an H100,
   docs/benchmarks.md "Inference on a GPU (H100)") and the Ray start-up and
   per-case overhead measured in 2.

Usage::

    python benchmarks/bench_scale.py --work /tmp/bench_scale --cases 24
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from flare_uda.data.io import read_label, read_volume, write_volume
from flare_uda.data.phantom import generate_case
from flare_uda.executor import get_executor
from flare_uda.metrics.efficiency import measure

POOL = {"CT": 2050, "MRI": 4817}
"""The FLARE24 training pool."""


def write_inputs(work: Path, preset: str, n: int, shape) -> Path:
    """``n`` phantom MR volumes (T1 and T2 alternating) in ``work`` (made once)."""
    tag = "x".join(map(str, shape)) if shape else "native"
    folder = work / f"inputs_{preset}_{tag}_{n}"
    for i in range(n):
        path = folder / f"mr_{i:03d}.nii.gz"
        if not path.exists():
            case = generate_case(preset, "MR", ("T1", "T2")[i % 2], 300 + i)
            if shape:
                from bench_inference import resampled_case  # same folder

                case = resampled_case(case, tuple(shape))
            write_volume(case.image, path)
    return folder


def write_model(work: Path, inputs: Path) -> Path:
    """The pipeline's quick segmenter architecture after one step, saved once."""
    from flare_uda.pipeline import get_preset
    from flare_uda.segmentation import train_segmenter
    from flare_uda.volume import Case

    model = work / "model"
    if not (model / "weights.pt").exists():
        config = get_preset("quick").segmentation.train_config().with_overrides(iterations=1)
        image = read_volume(sorted(inputs.iterdir())[0])
        label = image.with_array((image.array > np.percentile(image.array, 80)).astype(np.uint8))
        case = Case("m0", image, label, "MR", annotated=(1,))
        train_segmenter([case], config, work_dir=model, progress=False, device="cpu")
    return model


def predict_runs(work: Path, inputs: Path, model: Path, engines: list[str]) -> dict[str, dict]:
    """``flare-uda predict`` once per engine, fresh process each; wall time, peak RSS."""
    out = {}
    for engine in engines:
        folder = work / f"pred_{engine}"
        for p in folder.glob("*.nii.gz"):
            p.unlink()
        cmd = [sys.executable, "-m", "flare_uda", "predict", "--model", str(model)]
        cmd += ["-i", str(inputs), "-o", str(folder), "--executor", engine]
        report = measure(cmd)
        if report.exit_code != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed with exit code {report.exit_code}")
        out[engine] = {"wall_s": report.wall_time_s, "peak_rss_mb": report.peak_rss_mb}
        print(f"predict --executor {engine}: {report.wall_time_s:.1f} s", flush=True)
    serial = {p.name: read_label(p).array for p in sorted((work / "pred_serial").iterdir())}
    for engine in engines:
        files = sorted((work / f"pred_{engine}").iterdir())
        same = len(files) == len(serial) and all(
            np.array_equal(read_label(p).array, serial[p.name]) for p in files
        )
        out[engine]["labels_equal_serial"] = same
    return out


def shape_of(volume) -> tuple[int, ...]:
    """The no-op per-case function: returns at once (the volume still travels)."""
    return volume.shape


def overheads(inputs: Path, engines: list[str]) -> dict[str, dict]:
    """Start-up (first map) and per-case time of a map that does nothing, per engine."""
    volumes = [read_volume(p) for p in sorted(inputs.iterdir())]
    out = {}
    for engine in engines:
        options = {"progress": False, **({"workers": 2} if engine != "serial" else {})}
        executor = get_executor(engine, **options)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            executor.map(shape_of, volumes)
            times.append(time.perf_counter() - t0)
        out[engine] = {
            "first_map_s": times[0],
            "startup_s": times[0] - times[1],
            "per_case_ms": 1000 * times[1] / len(volumes),
        }
    return out


def projection(seconds_per_case: float, ray: dict, gpus: list[int]) -> list[dict]:
    """Wall hours for the pool on ``gpus`` GPUs (one task per GPU): a projection."""
    n = sum(POOL.values())
    per_case = seconds_per_case + ray["per_case_ms"] / 1000
    rows = []
    for g in gpus:
        seconds = ray["startup_s"] + math.ceil(n / g) * per_case
        rows.append({"gpus": g, "cases": n, "hours": seconds / 3600})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_scale"))
    ap.add_argument("--cases", type=int, default=24)
    ap.add_argument("--phantom-preset", choices=("quick", "paper"), default="quick")
    ap.add_argument("--input-shape", type=int, nargs=3, default=None)
    ap.add_argument("--engines", default="serial,process,ray")
    ap.add_argument("--gpu-seconds-per-case", type=float, default=8.99)
    ap.add_argument("--gpus", default="1,2,4,8,16,32")
    args = ap.parse_args()
    engines = args.engines.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    inputs = write_inputs(args.work, args.phantom_preset, args.cases, args.input_shape)
    model = write_model(args.work, inputs)
    load = os.getloadavg()
    result = {
        "cases": args.cases,
        "shape": list(read_volume(sorted(inputs.iterdir())[0]).shape),
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in load],
        "predict": predict_runs(args.work, inputs, model, engines),
        "overhead": overheads(inputs, engines),
    }
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    if "ray" in result["overhead"]:
        gpus = [int(g) for g in args.gpus.split(",")]
        result["projection"] = projection(
            args.gpu_seconds_per_case, result["overhead"]["ray"], gpus
        )
    print(json.dumps(result, indent=2))
    serial = result["predict"]["serial"]["wall_s"] if "serial" in engines else None
    print("\n| engine | wall s | s/case | speed-up | peak RSS MB | labels = serial |")
    print("|---|---|---|---|---|---|")
    for engine, r in result["predict"].items():
        speed = f"{serial / r['wall_s']:.2f}x" if serial else "-"
        print(
            f"| {engine} | {r['wall_s']:.1f} | {r['wall_s'] / args.cases:.2f} | {speed} "
            f"| {r['peak_rss_mb']:.0f} | {r['labels_equal_serial']} |"
        )
    print("\n| engine | first map s (start-up incl.) | start-up s | overhead ms/case |")
    print("|---|---|---|---|")
    for engine, r in result["overhead"].items():
        print(
            f"| {engine} | {r['first_map_s']:.2f} | {r['startup_s']:.2f} | {r['per_case_ms']:.1f} |"
        )
    for row in result.get("projection", []):
        print(f"projection: {row['gpus']} GPU(s), {row['cases']} cases: {row['hours']:.2f} h")


if __name__ == "__main__":
    main()
