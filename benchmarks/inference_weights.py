"""Weights for the inference benchmark: a short training on phantom MR T1 at the
paper's geometry (or scaled for CPU), and an optional background-bias shift.

Split from ``bench_inference.py``: where the weights come from is one idea,
timing the methods another. Every method of the benchmark uses the same weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flare_uda.data.preprocess import PAPER_SPACING

PAPER_PATCH = (40, 224, 192)


def scaled_plan(scale: float, max_down: int = 4):
    """Patch (divisible by the planned strides) and spacing for ``scale``."""
    from flare_uda.segmentation.networks import plan_topology

    spacing = tuple(s / scale for s in PAPER_SPACING)
    patch = tuple(max(8, round(p * scale)) for p in PAPER_PATCH)
    for _ in range(5):
        try:
            return patch, spacing, plan_topology(patch, spacing, max_down)
        except ValueError as err:
            if "divisible" not in str(err):
                raise
            div = tuple(int(v) for v in str(err).split("e.g. ")[1].strip("()").split(", "))
            patch = div
    raise RuntimeError(f"no valid patch near {patch}")


def train_model(
    work: Path,
    scale: float,
    iterations: int,
    oversample: float = 0.67,
    device: str = "cpu",
    optimizer: str = "sgd",
    lr: float = 0.01,
) -> Path:
    """Train (or reuse) the small net on 3 phantom MR T1 cases; returns the model folder."""
    from flare_uda.data.phantom import generate_case
    from flare_uda.segmentation.augment import AugmentConfig
    from flare_uda.segmentation.config import TrainConfig
    from flare_uda.segmentation.networks import NETWORKS
    from flare_uda.segmentation.trainer import train_segmenter

    tag = f"s{scale}_it{iterations}_o{oversample}" + ("" if optimizer == "sgd" else f"_{optimizer}")
    model = work / f"model_{tag}"
    if (model / "weights.pt").is_file():
        return model
    patch, spacing, _ = scaled_plan(scale)
    cases = [generate_case("paper", "MR", "T1", seed) for seed in (1, 2, 3)]
    config = TrainConfig(
        network=NETWORKS["small"],
        patch_size=patch,
        spacing=spacing,
        normalization="zscore",
        iterations=iterations,
        batch_size=2,
        oversample_foreground=oversample,
        optimizer=optimizer,
        learning_rate=lr,
        val_every=iterations,
        checkpoint_every=25,
        augment=AugmentConfig(
            enabled=False
        ),  # CPU time: the benchmark needs organs, not generality
    )
    seg = train_segmenter(
        cases,
        config,
        work_dir=work / f"train_{tag}",
        device=device,
    )
    seg.save(model)
    return model


def calibrate_background(model: Path, seed: int = 1) -> Path:
    """Shift the background bias so that a training case's foreground fraction is matched.

    A short CPU training leaves the background logit above every organ
    everywhere (all-background output). Lowering the background bias of the
    output layer (a prior shift, fitted on a *training* case) makes the same
    weights emit organs where they are most organ-like, so that the methods'
    labels can be compared. Every method uses the shifted weights.
    """
    import torch

    from flare_uda.data.phantom import generate_case
    from flare_uda.inference import SlidingWindowConfig, sliding_window_logits
    from flare_uda.inference.network_grid import to_network_grid
    from flare_uda.segmentation.network_segmenter import NetworkSegmenter

    out = model.with_name(model.name + "_cal")
    if (out / "weights.pt").is_file():
        return out
    seg = NetworkSegmenter.load(model)
    case = generate_case("paper", "MR", "T1", seed)
    prep = to_network_grid(case.image, seg.plan, resampling="nnunet").grid
    x = torch.from_numpy(prep.array)[None]
    cfg = SlidingWindowConfig(skip_empty=False)
    logits = sliding_window_logits(
        x, seg.predict_logits, seg.plan.patch_size, 14, cfg, average=True
    ).logits
    margin = (logits[0] - logits[1:].max(0).values).flatten().numpy()
    fraction = float((case.label.array > 0).mean())
    shift = float(np.quantile(margin, fraction))
    with torch.no_grad():
        for layer in seg.network.decoder.seg_layers:
            layer.bias[0] -= shift
    seg.save(out)
    print(f"background bias shifted by {shift:.3f} (foreground fraction {fraction:.3f})")
    return out
