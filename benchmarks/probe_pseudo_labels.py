"""Cheap pseudo-label fixes probed without training: DSC of a trained network's labels
on scans with a reference, with the background logit lowered by a bias before the
argmax, and with each organ cut to its largest connected component or hole-filled.

Prints one row per variant: mean DSC and DSC per scored organ (%). The network's
logits are averaged over the windows (the library's inferer keeps weighted sums,
on which a bias would not be a logit shift), so this is a probe, not the inferer.

    .venv/bin/python benchmarks/probe_pseudo_labels.py --model STAGES/train_asit-*/model \\
        --translator STAGES/translate_asit-*/model --images IMAGES --labels LABELS [--chaos]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

import flare_uda.inference.sliding_window as sw
from flare_uda.data.io import read_label, read_volume
from flare_uda.inference.heads import logits_to_labels
from flare_uda.inference.network_grid import to_network_grid
from flare_uda.plugin import spec
from flare_uda.segmentation import NetworkSegmenter
from flare_uda.translation import Translator

BIASES = (0.0, 0.5, 1.0, 2.0, 3.0)
CHAOS_TO_FLARE = {1: 1, 2: 2, 3: 13, 4: 3}  # liver, right kidney, left kidney, spleen


def largest_component(label: np.ndarray) -> np.ndarray:
    """Each organ of ``label`` ("z y x") cut to its largest connected component."""
    out = np.zeros_like(label)
    for organ in np.unique(label[label > 0]):
        parts, n = ndimage.label(label == organ)
        sizes = np.bincount(parts.ravel())[1:]
        out[parts == 1 + int(np.argmax(sizes))] = organ
    return out


def fill_holes(label: np.ndarray) -> np.ndarray:
    """Background holes inside each organ of ``label`` ("z y x") given to that organ."""
    out = label.copy()
    for organ in np.unique(label[label > 0]):
        out[ndimage.binary_fill_holes(label == organ) & (label == 0)] = organ
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 100.0 if total == 0 else 200.0 * float((a & b).sum()) / float(total)


def probe(args: argparse.Namespace) -> dict[str, list[list[float]]]:
    """Per variant, per scan, DSC per scored organ."""
    seg = NetworkSegmenter.load(args.model, device="cpu")
    translator = Translator.load(args.translator)
    cfg = spec("inferer", "sliding_window", step=1.0).build().config
    rows: dict[str, list[list[float]]] = {}
    for path in sorted(Path(args.images).glob("*.nii.gz")):
        case = path.name.removesuffix(".nii.gz").removesuffix("_0000").removesuffix("_image")
        if args.chaos and not case.startswith("chaos"):
            continue
        ref_path = Path(args.labels) / (f"{case}_label.nii.gz" if args.chaos else path.name)
        if not ref_path.exists():
            ref_path = Path(args.labels) / f"{case}.nii.gz"
        ref = read_label(ref_path).array.astype(int)
        if args.chaos:
            ref = np.vectorize(lambda v: CHAOS_TO_FLARE.get(int(v), 0))(ref)
        organs = sorted(CHAOS_TO_FLARE.values()) if args.chaos else list(range(1, 14))
        net = to_network_grid(translator.to_space(read_volume(path)), seg.plan, device="cpu")
        image = torch.from_numpy(np.ascontiguousarray(net.image, dtype=np.float32))[None]
        res = sw.sliding_window_logits(
            image, seg.predict_logits, seg.plan.patch_size, seg.plan.num_classes, cfg,
            sw.otsu_body_mask(image[0]), average=True,
        )  # fmt: skip
        covered = res.logits.abs().sum(0) > 0  # skipped windows stay background
        for bias in BIASES:
            logits = res.logits.clone()
            logits[0] -= bias * covered
            label = net.labels_back(logits_to_labels(logits)).array.astype(int)
            variants = {f"bias {bias:g}": label}
            if bias == 0.0:
                variants |= {"largest component": largest_component(label)}
                variants |= {"holes filled": fill_holes(label)}
            for name, lab in variants.items():
                rows.setdefault(name, []).append([dice(lab == o, ref == o) for o in organs])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a trained segmenter's folder")
    parser.add_argument("--translator", required=True, help="its ASIT translator's folder")
    parser.add_argument("--images", required=True, help="folder of the scans (.nii.gz)")
    parser.add_argument("--labels", required=True, help="folder of their references")
    parser.add_argument("--chaos", action="store_true", help="CHAOS label files and map")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    for name, scores in probe(args).items():
        v = np.asarray(scores)
        print(f"{name:18s} mean {v.mean():5.1f} | " + " ".join(f"{x:.1f}" for x in v.mean(0)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
