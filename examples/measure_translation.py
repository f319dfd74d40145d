"""Measure CT -> MR translation on the phantom: per-organ intensity distances and runtime.

For every organ, the 1D Wasserstein distance between the fake-MR intensities
inside the organ (CT label, same grid) and the real-MR intensities inside the
same organ (MR label; labels are used for this evaluation only, never in
training). Every image is first z-scored over its body (voxels above the body
threshold of its robustly scaled intensities), so that the distance compares
distribution shapes, not units. Compared pairs:

- ``identity``  : CT image            vs real MR image        (image space)
- ``cyclegan``  : CycleGAN fake MR    vs real MR image        (image space)
- ``identity-anatomy`` : Sobel(CT)    vs Sobel(real MR)       (anatomy space)
- ``asit``      : ASIT fake MR        vs Sobel(real MR)       (anatomy space)

Run (from the repository root)::

    .venv/bin/python examples/measure_translation.py --out docs/figures

``--preset tiny --n-ct 2 --n-mr 2 --iterations 2`` is a seconds-long smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import wasserstein_distance

from flare_uda.data.anatomy import to_anatomy_space
from flare_uda.data.labels import FLARE_ORGANS
from flare_uda.data.phantom import generate_cohort
from flare_uda.translation import get_preset, get_translator
from flare_uda.translation.intensity import robust_scale


def body_zscore(array: np.ndarray, body: np.ndarray) -> np.ndarray:
    """``array`` z-scored with the mean and std of its body voxels."""
    values = array[body]
    return (array - values.mean()) / max(float(values.std()), 1e-6)


def organ_values(images, cases, bodies) -> dict[int, np.ndarray]:
    """Body-z-scored intensities of each organ, pooled over cases."""
    out: dict[int, list] = {}
    for image, case, body in zip(images, cases, bodies, strict=True):
        z = body_zscore(image, body)
        for k in np.unique(case.label.array):
            if k > 0:
                out.setdefault(int(k), []).append(z[case.label.array == k])
    return {k: np.concatenate(v) for k, v in out.items()}


def distances(fake: dict, real: dict) -> dict[int, float]:
    return {k: float(wasserstein_distance(fake[k], real[k])) for k in sorted(fake) if k in real}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-ct", type=int, default=4)
    parser.add_argument("--n-mr", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=None, help="override the quick preset")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    parser.add_argument("--preset", default="quick", help="phantom preset of the cohort")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ct, mr = generate_cohort(args.preset, args.n_ct, args.n_mr, args.seed)
    print(f"cohort: {len(ct)} CT {ct[0].image.shape}, {len(mr)} MR {mr[0].image.shape}")
    config = get_preset("quick", **({"iterations": args.iterations} if args.iterations else {}))
    threshold = config.body_threshold
    bodies_ct = [robust_scale(c.image.array) > threshold for c in ct]
    bodies_mr = [robust_scale(c.image.array) > threshold for c in mr]
    real_img = organ_values([c.image.array for c in mr], mr, bodies_mr)
    real_sobel = organ_values([to_anatomy_space(c.image).array for c in mr], mr, bodies_mr)

    models, timings, fakes = {}, {}, {}
    for method in ("cyclegan", "asit"):
        t0, c0 = time.perf_counter(), time.process_time()
        models[method] = get_translator(method, config=config, progress=False).fit(ct, mr)
        timings[f"{method} fit ({config.iterations} it), wall"] = time.perf_counter() - t0
        timings[f"{method} fit ({config.iterations} it), CPU"] = time.process_time() - c0
        t0 = time.perf_counter()
        fakes[method] = [models[method].to_target(c.image).array for c in ct]
        timings[f"{method} to_target per CT"] = (time.perf_counter() - t0) / len(ct)

    rows = {
        "identity": distances(organ_values([c.image.array for c in ct], ct, bodies_ct), real_img),
        "cyclegan": distances(organ_values(fakes["cyclegan"], ct, bodies_ct), real_img),
        "identity-anatomy": distances(
            organ_values([to_anatomy_space(c.image).array for c in ct], ct, bodies_ct), real_sobel
        ),
        "asit": distances(organ_values(fakes["asit"], ct, bodies_ct), real_sobel),
    }
    organs = sorted(set.intersection(*(set(r) for r in rows.values())))
    header = "| compared | " + " | ".join(FLARE_ORGANS[k - 1] for k in organs) + " | mean |"
    print(header + "\n|" + "---|" * (len(organs) + 2))
    for name, row in rows.items():
        vals = [row[k] for k in organs]
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {np.mean(vals):.3f} |")
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.1f} s")
    print(f"torch threads: {torch.get_num_threads()}, load average: {os.getloadavg()}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(f"git HEAD: {commit.stdout.strip()}")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "translation_measure.json").write_text(
        json.dumps({"distances": rows, "timings_s": timings}, indent=2)
    )
    save_figure(ct[0], mr[0], fakes["cyclegan"][0], fakes["asit"][0], args.out)


def save_figure(ct_case, mr_case, fake_img, fake_anat, out: Path) -> None:
    """CT, Sobel CT, fake MR (image space), fake MR (anatomy space), real MR and its Sobel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z_ct = int(np.argmax((ct_case.label.array > 0).sum(axis=(1, 2))))
    z_mr = int(np.argmax((mr_case.label.array > 0).sum(axis=(1, 2))))
    panels = [
        ("CT", ct_case.image.array[z_ct]),
        ("Sobel CT", to_anatomy_space(ct_case.image).array[z_ct]),
        ("fake MR (CycleGAN, image space)", fake_img[z_ct]),
        ("fake MR (ASIT, anatomy space)", fake_anat[z_ct]),
        ("real MR", mr_case.image.array[z_mr]),
        ("Sobel real MR", to_anatomy_space(mr_case.image).array[z_mr]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
    for ax, (title, image) in zip(axes, panels, strict=True):
        lo, hi = np.percentile(image, (0.5, 99.5))
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "translation_example.png", dpi=110)
    print(f"wrote {out / 'translation_example.png'}")


if __name__ == "__main__":
    main()
