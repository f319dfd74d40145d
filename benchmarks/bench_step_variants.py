"""Seconds per training step of the ``quick2d`` net and three variants not adopted.

The slice-wise net of ``quick2d`` (nnU-Net's ``PlainConvUNet``, 6 stages, 8
base channels, ``(1, 3, 3)`` Conv3d kernels, InstanceNorm, deep supervision)
on a batch of 8 slices of 128x128, bf16 autocast and channels_last as in
training, Adam, cross-entropy on the full-resolution output: as it is, as a
true ``Conv2d`` net, with ``BatchNorm``, and under ``torch.compile`` (whose
first step, the compilation, is printed apart). Median of the steps after 5
warm-ups. ``--fp32`` drops the autocast. flare_uda is imported first, so oneDNN
gets the ISA ceiling that training gets (on AMX CPUs: flare_uda/_onednn.py).

    .venv/bin/python benchmarks/bench_step_variants.py --threads 2 [--no-compile] [--fp32]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
import torch.nn as nn

import flare_uda  # noqa: F401  (oneDNN's ISA ceiling, as in training)


def slice_unet(dims: int, norm: str) -> nn.Module:
    """The quick2d topology as a 3D net with (1, 3, 3) kernels or as a true 2D net."""
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    n = 6
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    norms = {(2, "instance"): nn.InstanceNorm2d, (3, "instance"): nn.InstanceNorm3d,
             (2, "batch"): nn.BatchNorm2d, (3, "batch"): nn.BatchNorm3d}  # fmt: skip
    kernel, one, two = ([3, 3], [1, 1], [2, 2]) if dims == 2 else ([1, 3, 3], [1, 1, 1], [1, 2, 2])
    features = [min(8 * 2**i, 128) for i in range(n)]
    return PlainConvUNet(
        1, n, features, conv, [kernel] * n, [one] + [two] * (n - 1), 2, 14, 2, True,
        norms[dims, norm], {"eps": 1e-5, "affine": True}, None, None, nn.LeakyReLU,
        {"inplace": True}, deep_supervision=True,
    )  # fmt: skip


def step_seconds(
    net: nn.Module, dims: int, steps: int = 20, bf16: bool = True
) -> tuple[float, float]:
    """(first step, median of the steps after 5 warm-ups) in seconds."""
    fmt = torch.channels_last if dims == 2 else torch.channels_last_3d
    shape = (8, 1, 128, 128) if dims == 2 else (8, 1, 1, 128, 128)
    x = torch.randn(shape).contiguous(memory_format=fmt)
    y = torch.randint(0, 14, (8, *shape[2:]))
    opt = torch.optim.Adam(net.parameters(), 1e-3, foreach=True)
    times = []
    for _ in range(steps + 5):
        t = time.perf_counter()
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with autocast:
            out = net(x)
        loss = nn.functional.cross_entropy(out[0].float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return times[0], statistics.median(times[5:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (~90 s)")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    variants = [("quick2d: Conv3d (1, 3, 3), InstanceNorm", 3, "instance", False),
                ("true Conv2d, InstanceNorm", 2, "instance", False),
                ("Conv3d (1, 3, 3), BatchNorm", 3, "batch", False)]  # fmt: skip
    if not args.no_compile:
        variants.append(("quick2d under torch.compile", 3, "instance", True))
    precision = "fp32" if args.fp32 else "bf16"
    head = f"variant ({precision}, channels_last, {args.threads} threads)"
    print(f"| {head} | first step s | s per step |")
    print("|---|---|---|")
    for name, dims, norm, compiled in variants:
        torch.manual_seed(0)
        net = slice_unet(dims, norm)
        net = net.to(memory_format=torch.channels_last if dims == 2 else torch.channels_last_3d)
        run = torch.compile(net) if compiled else net
        first, median = step_seconds(run, dims, bf16=not args.fp32)
        print(f"| {name} | {first:.3f} | {median:.3f} |", flush=True)
    print(f"\ntorch {torch.__version__}")


if __name__ == "__main__":
    main()
