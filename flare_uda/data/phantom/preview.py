"""Side-by-side preview of CT, T1 and T2 phantom cases with label overlays."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from flare_uda._atomic import atomic_path
from flare_uda.data.labels import FLARE_ORGANS, NUM_ORGANS
from flare_uda.volume import Case


def organ_colors() -> np.ndarray:
    """RGBA colour per FLARE label (row 0, background, transparent), shape (14, 4)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    colors = np.zeros((NUM_ORGANS + 1, 4))
    for label in range(1, NUM_ORGANS + 1):
        colors[label] = cmap((label - 1) % 20)
    return colors


def _display_range(image: np.ndarray, modality: str) -> tuple[float, float]:
    if modality == "CT":
        return -160.0, 240.0  # abdominal window
    lo, hi = np.percentile(image, [0.5, 99.5])
    return float(lo), float(hi)


def best_slices(label: np.ndarray) -> tuple[int, int]:
    """Axial index showing the most organs, coronal index through the kidneys' centre."""
    counts = [np.unique(label[z]).size for z in range(label.shape[0])]
    z = int(np.argmax(counts))
    kidneys = np.argwhere((label == 2) | (label == 13))
    y = int(np.median(kidneys[:, 1])) if len(kidneys) else label.shape[1] // 2
    return z, y


def preview_figure(
    ct_case: Case,
    t1_case: Case,
    t2_case: Case,
    path: str | os.PathLike,
    alpha: float = 0.35,
) -> Path:
    """Write a PNG with axial (top) and coronal (bottom) views of CT, T1 and T2.

    Images are shown in radiological convention (patient's left on the
    viewer's right, anterior up in axial views, head up in coronal views) at
    their physical aspect ratio, each view once plain and once with the label
    overlay. Written atomically.

    Parameters
    ----------
    ct_case, t1_case, t2_case : Case
        With labels (FLARE order).
    path : path-like
        Output ``.png``.
    """
    cases: Sequence[Case] = (ct_case, t1_case, t2_case)
    for c in cases:
        if c.label is None:
            raise ValueError(f"preview needs labelled cases, got case {c.case_id!r} without label")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"preview path must end in .png, got {path.name!r}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colors = organ_colors()
    fig, axes = plt.subplots(4, 3, figsize=(12, 15), height_ratios=[1, 1, 0.75, 0.75])
    for col, case in enumerate(cases):
        img, lab = case.image.array.astype(np.float32), case.label.array
        sz, sy, sx = case.image.spacing
        z, y = best_slices(lab)
        lo, hi = _display_range(img, case.modality)
        title = case.modality if case.sequence is None else f"MR {case.sequence}"
        views = (
            (img[z], lab[z], sy / sx, "upper", f"axial z={z}"),
            (img[:, y], lab[:, y], sz / sx, "lower", f"coronal y={y}"),
        )
        for v, (im, lb, aspect, origin, name) in enumerate(views):
            for overlay in (False, True):
                ax = axes[2 * v + int(overlay), col]
                ax.imshow(im, cmap="gray", vmin=lo, vmax=hi, aspect=aspect, origin=origin)
                if overlay:
                    rgba = colors[lb].copy()
                    rgba[..., 3] = np.where(lb > 0, alpha, 0.0)
                    ax.imshow(rgba, aspect=aspect, origin=origin, interpolation="nearest")
                ax.set_title(f"{title} {case.case_id} {name}" + (" + labels" if overlay else ""),
                             fontsize=8)  # fmt: skip
                ax.axis("off")
    handles = [Patch(color=colors[i], label=f"{i} {n}") for i, n in enumerate(FLARE_ORGANS, 1)]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return path
