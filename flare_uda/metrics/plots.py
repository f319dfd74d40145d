"""Box plots of per-organ DSC and NSD (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from flare_uda._atomic import atomic_path
from flare_uda.data.labels import FLARE_ORGANS
from flare_uda.metrics.evaluate import MetricRow


def boxplot(rows: Sequence[MetricRow], path: str | os.PathLike, title: str | None = None) -> Path:
    """Write a two-panel box plot (DSC, NSD per organ) to ``path`` atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("boxplot needs at least one row, got none")
    organs = [o for o in FLARE_ORGANS if any(r.organ == o for r in rows)]
    fig, axes = plt.subplots(2, 1, figsize=(max(6.0, 0.7 * len(organs) + 2), 7), sharex=True)
    for ax, metric in zip(axes, ("dsc", "nsd"), strict=True):
        data = []
        for organ in organs:
            vals = np.asarray([getattr(r, metric) for r in rows if r.organ == organ], dtype=float)
            data.append(vals[~np.isnan(vals)])
        ax.boxplot(data)
        ax.set_ylabel(metric.upper())
        ax.set_ylim(-0.02, 1.02)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xticks(range(1, len(organs) + 1), organs, rotation=45, ha="right")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(path)
