"""Sobel anatomy space: scipy (correlate1d, the library's) vs a torch conv3d peer.

Both compute the 3D Sobel gradient magnitude of the same float32 volume; the
ratio torch/scipy is what matters (the machine is shared, load hits both).

    .venv/bin/python benchmarks/bench_sobel.py --shape 64 160 160 --repeats 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from flare_uda.data.anatomy import sobel_gradient


def torch_sobel_magnitude(array: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """3D Sobel magnitude with one conv3d of three 3x3x3 kernels (replicate-free reflect pad)."""
    d = torch.tensor([-1.0, 0.0, 1.0])
    s = torch.tensor([1.0, 2.0, 1.0])
    kz = torch.einsum("i,j,k->ijk", d, s, s) / (32 * spacing[0])
    ky = torch.einsum("i,j,k->ijk", s, d, s) / (32 * spacing[1])
    kx = torch.einsum("i,j,k->ijk", s, s, d) / (32 * spacing[2])
    weight = torch.stack([kz, ky, kx])[:, None]
    x = torch.from_numpy(array)[None, None]
    x = torch.nn.functional.pad(x, (1, 1, 1, 1, 1, 1), mode="replicate")
    with torch.no_grad():
        g = torch.nn.functional.conv3d(x, weight)[0]
    return torch.sqrt((g * g).sum(0)).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 160, 160))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    array = rng.normal(size=args.shape).astype(np.float32)
    spacing = (2.5, 0.8, 0.8)

    def scipy_mag() -> np.ndarray:
        g = sobel_gradient(array, spacing, "3d")
        return np.sqrt((g * g).sum(0))

    a, b = scipy_mag(), torch_sobel_magnitude(array, spacing)
    inner = (slice(1, -1),) * 3  # borders differ: reflect (scipy) vs replicate (torch)
    err = float(np.abs(a[inner] - b[inner]).max())
    times = {}
    for name, fn in (
        ("scipy", scipy_mag),
        ("torch", lambda: torch_sobel_magnitude(array, spacing)),
    ):
        best = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            best.append(time.perf_counter() - t0)
        times[name] = min(best)
    print(f"shape {tuple(args.shape)} threads {args.threads} max|scipy-torch| inner {err:.2e}")
    for name, t in times.items():
        print(f"{name}: best of {args.repeats} {t * 1000:.1f} ms")
    print(f"torch/scipy time ratio {times['torch'] / times['scipy']:.2f}")


if __name__ == "__main__":
    main()
