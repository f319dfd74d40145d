"""Coarse-to-fine inference: one low-resolution pass finds the ROI, fine windows run only there.

Beyond the paper. The coarse pass sees the image at a few times the plan's
spacing (through the same network, or a second coarse segmenter), so it costs
a small fraction of the fine pass; the organs' bounding box plus a margin is
then cropped *on the input grid* before resampling, so neither the fine
resampling nor the fine windows touch the rest of the scan.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from flare_uda._validation import as_triplet, require_choice
from flare_uda.inference.base import INFERERS, Inferer
from flare_uda.inference.boxes import bounding_box, box_to_grid, otsu_body_mask
from flare_uda.inference.network_grid import resolve_resampling, to_network_grid, upload
from flare_uda.inference.segmenter import Segmenter
from flare_uda.inference.sliding_window import (
    SlidingWindowConfig,
    check_single_channel,
    run_network_grid,
)
from flare_uda.volume import Volume

ROI_SOURCES = ("organs", "body")


@dataclass(frozen=True)
class CoarseToFineConfig:
    """Settings of :class:`CoarseToFineInferer`.

    Parameters
    ----------
    fine : SlidingWindowConfig
        The fine pass inside the ROI.
    coarse_step : float
        Window step of the coarse pass (it is cheap; 1.0 tiles without overlap).
    coarse_factor : tuple of 3 float
        Coarse spacing = plan spacing * factor (z, y, x), when the same network
        does both passes; ignored with a coarse segmenter (its plan's spacing).
    margin_mm : tuple of 3 float
        Grown around the coarse box (z, y, x), in mm.
    roi_source : {"organs", "body"}
        ``"organs"``: box of the coarse foreground labels. ``"body"``: box of
        the Otsu body mask of the raw image (no coarse pass; for untrained nets).
    empty : {"body", "error"}
        When the coarse pass finds no organ: use the body box (with a warning)
        or raise ``RuntimeError``.
    """

    fine: SlidingWindowConfig = field(default_factory=SlidingWindowConfig)
    coarse_step: float = 1.0
    coarse_factor: tuple[float, float, float] = (1.0, 2.0, 2.0)
    margin_mm: tuple[float, float, float] = (10.0, 10.0, 10.0)
    roi_source: str = "organs"
    empty: str = "body"

    def __post_init__(self) -> None:
        if not isinstance(self.fine, SlidingWindowConfig):
            raise TypeError(f"fine must be a SlidingWindowConfig, got {type(self.fine).__name__}")
        if not 0.0 < float(self.coarse_step) <= 1.0:
            raise ValueError(f"coarse_step must be in (0, 1], got {self.coarse_step}")
        factor = as_triplet(self.coarse_factor, "coarse_factor", positive=True)
        if min(factor) < 1.0:
            raise ValueError(f"coarse_factor must be >= 1 on every axis, got {factor}")
        object.__setattr__(self, "coarse_factor", factor)
        margin = as_triplet(self.margin_mm, "margin_mm")
        if min(margin) < 0:
            raise ValueError(f"margin_mm must be >= 0, got {margin}")
        object.__setattr__(self, "margin_mm", margin)
        require_choice(self.roi_source, ROI_SOURCES, "roi_source")
        require_choice(self.empty, ("body", "error"), "empty")


def _margin_voxels(volume: Volume, margin_mm) -> tuple[int, int, int]:
    return tuple(int(np.ceil(m / s)) for m, s in zip(margin_mm, volume.spacing, strict=True))


def _grow(box: tuple[slice, ...], margin: tuple[int, ...], shape) -> tuple[slice, ...]:
    return tuple(
        slice(max(b.start - m, 0), min(b.stop + m, n))
        for b, m, n in zip(box, margin, shape, strict=True)
    )


@INFERERS.register("roi")
class CoarseToFineInferer(Inferer):
    """A coarse pass finds the organ box; the fine sliding window runs only inside it.

    Options: :class:`CoarseToFineConfig`.

    Parameters
    ----------
    coarse_segmenter : Segmenter, optional
        Runtime keyword, not an option: a network trained at a coarse spacing;
        default: the fine segmenter on the image at ``plan.spacing * coarse_factor``.

    Attributes
    ----------
    last_stats_ : dict
        Of the last call: ``box`` (input-grid slices), ``n_coarse``, ``n_run``,
        ``n_total`` (fine windows run / placed in the ROI), ``source``.
    """

    config_class = CoarseToFineConfig

    def __init__(
        self, config: Any = None, *, coarse_segmenter: Segmenter | None = None, **options: Any
    ) -> None:
        super().__init__(config, **options)
        if coarse_segmenter is not None and not isinstance(coarse_segmenter, Segmenter):
            raise TypeError(f"expected a Segmenter, got {type(coarse_segmenter).__name__}")
        self.coarse_segmenter = coarse_segmenter

    def find_roi(
        self, volume: Volume, segmenter: Segmenter, data: torch.Tensor | None = None
    ) -> tuple[tuple[slice, ...], dict]:
        """The ROI on ``volume``'s grid (margin included) and how it was found.

        ``data``: ``volume``'s raw values already on the segmenter's device
        (the ``"torch"`` path), used for the body mask and the coarse pass.
        """
        cfg = self.config
        margin = _margin_voxels(volume, cfg.margin_mm)
        stats = {"n_coarse": 0, "source": cfg.roi_source}
        if cfg.roi_source == "organs":
            coarse_seg = self.coarse_segmenter or segmenter
            check_single_channel(coarse_seg)
            plan = coarse_seg.plan
            spacing = (
                plan.spacing
                if self.coarse_segmenter is not None
                else tuple(s * f for s, f in zip(plan.spacing, cfg.coarse_factor, strict=True))
            )
            mode = resolve_resampling(cfg.fine.resampling, coarse_seg.device)
            coarse = to_network_grid(volume, plan, spacing, mode, coarse_seg.device, data=data)
            coarse_cfg = SlidingWindowConfig(
                step=cfg.coarse_step,
                weighting=cfg.fine.weighting,
                sw_batch_size=cfg.fine.sw_batch_size,
                autocast=cfg.fine.autocast,
            )
            labels, n_run, _ = run_network_grid(coarse.image, coarse_seg, coarse_cfg)
            stats["n_coarse"] = n_run
            box = bounding_box(labels > 0)
            if box is not None:
                return _grow(box_to_grid(box, coarse.grid, volume), margin, volume.shape), stats
            if cfg.empty == "error":
                raise RuntimeError("the coarse pass found no organ; no ROI to refine")
            warnings.warn("the coarse pass found no organ; using the body box", stacklevel=3)
            stats["source"] = "body (no organ found)"
        box = bounding_box(otsu_body_mask(volume.array if data is None else data))
        return _grow(box, margin, volume.shape), stats

    def infer(self, volume: Volume, segmenter: Segmenter) -> Volume:
        check_single_channel(segmenter)
        mode = resolve_resampling(self.config.fine.resampling, segmenter.device)
        # the torch path sends the raw image to the device once, for the ROI and the fine pass
        data = upload(volume, segmenter.device) if mode == "torch" else None
        box, stats = self.find_roi(volume, segmenter, data)
        # normalised on the whole image (per-image statistics), then cropped, then resampled
        net = to_network_grid(
            volume, segmenter.plan, resampling=mode, device=segmenter.device, box=box, data=data
        )
        labels, n_run, n_total = run_network_grid(net.image, segmenter, self.config.fine)
        self.last_stats_ = {"box": box, "n_run": n_run, "n_total": n_total, **stats}
        return net.labels_back(labels)
