"""Fast sliding-window inference: the pure function and the :class:`SlidingWindowInferer`.

Where the time goes, and what is done about it (compared to nnUNetPredictor):

* no mirroring by default (nnU-Net's 8 flips multiply the network cost by 8);
* windows holding no body voxel (Otsu on the image) are never run;
* logits are accumulated in place on the device as weighted *sums*: the argmax,
  and the sigmoid threshold (compared against ``logit(t) * weight``), do not
  need the division, so no weight map is kept for the softmax head;
* the *label map* is resampled to the input grid (nearest neighbour), not the
  ``k``-channel logits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from flare_uda._validation import require_choice
from flare_uda.inference.base import INFERERS, Inferer
from flare_uda.inference.boxes import otsu_body_mask
from flare_uda.inference.heads import logits_to_labels
from flare_uda.inference.neighbour_slices import stack_neighbour_slices
from flare_uda.inference.network_grid import RESAMPLINGS, to_network_grid
from flare_uda.inference.segmenter import Segmenter
from flare_uda.inference.windows import (
    WEIGHTINGS,
    pad_to_patch,
    window_starts,
    window_weights,
    windows_with_body,
)
from flare_uda.volume import Volume

AUTOCASTS = ("auto", "off", "fp16", "bf16")
MIRROR_AXES = ((2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4))


@dataclass(frozen=True)
class SlidingWindowConfig:
    """Settings of :class:`SlidingWindowInferer`.

    Parameters
    ----------
    step : float
        Window step as a fraction of the patch, in (0, 1]. 0.5 (nnU-Net's
        default) keeps accuracy parity with nnU-Net; see docs/benchmarks.md
        for the speed/accuracy of larger steps.
    weighting : {"gaussian", "constant"}
        Importance map inside a window (nnU-Net's gaussian, sigma = patch / 8).
    sw_batch_size : int
        Windows per network call.
    skip_empty : bool
        Do not run windows without a body voxel (Otsu threshold of the image).
    mirroring : bool
        nnU-Net's test-time mirroring over all 3 axes (8 passes); off by default.
    autocast : {"auto", "off", "fp16", "bf16"}
        ``"auto"``: fp16 on CUDA, off on CPU.
    progress : bool
        tqdm bar over window batches.
    resampling : {"auto", "nnunet", "torch"}
        How the image reaches the network's spacing. ``"nnunet"``: nnU-Net's
        own resampler (cubic spline, on the CPU; exact parity with
        nnUNetPredictor's input). ``"torch"``: the same grid and separate-z
        rule with torch kernels (bicubic / trilinear) on the segmenter's
        device, so on a GPU nothing but the label map crosses to the CPU
        (:mod:`flare_uda.data.torch_resampling`; speed and label agreement
        in docs/benchmarks.md). ``"auto"``: ``"torch"`` when the segmenter
        runs on CUDA, else ``"nnunet"``.
    """

    step: float = 0.5
    weighting: str = "gaussian"
    sw_batch_size: int = 2
    skip_empty: bool = True
    mirroring: bool = False
    autocast: str = "auto"
    progress: bool = False
    resampling: str = "auto"

    def __post_init__(self) -> None:
        if not 0.0 < float(self.step) <= 1.0:
            raise ValueError(f"step must be in (0, 1], got {self.step}")
        require_choice(self.weighting, WEIGHTINGS, "weighting")
        if int(self.sw_batch_size) < 1:
            raise ValueError(f"sw_batch_size must be >= 1, got {self.sw_batch_size}")
        require_choice(self.autocast, AUTOCASTS, "autocast")
        require_choice(self.resampling, RESAMPLINGS, "resampling")


def _autocast(device: torch.device, mode: str):
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return nullcontext()
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _mirrored(predict: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    out = predict(x).float()
    for axes in MIRROR_AXES:
        out += torch.flip(predict(torch.flip(x, axes)), axes).float()
    return out / (len(MIRROR_AXES) + 1)


@dataclass
class WindowResult:
    """Output of :func:`sliding_window_logits`.

    ``logits`` ("k z y x") are weighted sums unless ``average`` was asked;
    ``weight`` ("z y x") is their weight sum (None when not asked);
    ``n_run`` windows were run out of ``n_total``.
    """

    logits: torch.Tensor
    weight: torch.Tensor | None
    n_run: int
    n_total: int


@torch.inference_mode()
def sliding_window_logits(
    image: torch.Tensor,
    predict: Callable[[torch.Tensor], torch.Tensor],
    patch_size: Sequence[int],
    num_classes: int,
    config: SlidingWindowConfig = SlidingWindowConfig(),
    body_mask: np.ndarray | None = None,
    keep_weight: bool = False,
    average: bool = False,
) -> WindowResult:
    """Aggregate window logits over ``image``.

    Parameters
    ----------
    image : torch.Tensor, "c z y x"
        Preprocessed image on the device the network runs on; padded here
        (zeros) when smaller than the patch.
    predict : callable, "b c z y x" -> "b k z y x"
    patch_size : 3 ints
    num_classes : int
        ``k``.
    config : SlidingWindowConfig
    body_mask : np.ndarray of bool, "z y x", optional
        With ``config.skip_empty``, windows without a mask voxel are skipped.
    keep_weight, average : bool
        Also return the weight sum; divide the logits by it (voxels no window
        covered stay 0).

    Returns
    -------
    WindowResult
    """
    if image.ndim != 4:
        raise ValueError(f"expected an image 'c z y x' (4D), got shape {tuple(image.shape)}")
    device = image.device
    shape = tuple(image.shape[1:])
    data, crop = pad_to_patch(image, patch_size)
    pshape = tuple(data.shape[1:])
    starts = window_starts(pshape, patch_size, config.step)
    n_total = len(starts)
    if config.skip_empty and body_mask is not None:
        if tuple(body_mask.shape) != shape:
            raise ValueError(
                f"body_mask must have the image shape {shape}, got {tuple(body_mask.shape)}"
            )
        mask, _ = pad_to_patch(body_mask[None], patch_size)
        starts = starts[windows_with_body(mask[0], starts, patch_size)]
    acc_dtype = torch.float16 if device.type == "cuda" else torch.float32
    logits = torch.zeros((num_classes, *pshape), dtype=acc_dtype, device=device)
    weights = window_weights(patch_size, config.weighting, device, acc_dtype)
    need_weight = keep_weight or average
    weight = torch.zeros(pshape, dtype=acc_dtype, device=device) if need_weight else None
    pz, py, px = (int(p) for p in patch_size)
    batch = int(config.sw_batch_size)
    for i in tqdm(range(0, len(starts), batch), desc="windows", disable=not config.progress):
        corners = starts[i : i + batch]
        x = torch.stack([data[:, z : z + pz, y : y + py, w : w + px] for z, y, w in corners])
        with _autocast(device, config.autocast):
            out = _mirrored(predict, x) if config.mirroring else predict(x)
        if out.shape[1] != num_classes or tuple(out.shape[2:]) != (pz, py, px):
            raise ValueError(
                f"expected network output (b, {num_classes}, {pz}, {py}, {px}), "
                f"got {tuple(out.shape)}"
            )
        out = out.to(acc_dtype).mul_(weights)
        for j, (z, y, w) in enumerate(corners):
            logits[:, z : z + pz, y : y + py, w : w + px] += out[j]
            if weight is not None:
                weight[z : z + pz, y : y + py, w : w + px] += weights
    logits = logits[(slice(None), *crop)]
    weight = weight[crop] if weight is not None else None
    if average:
        logits = logits / weight.clamp_min(torch.finfo(acc_dtype).tiny)[None]
    return WindowResult(logits, weight if keep_weight else None, len(starts), n_total)


def run_network_grid(
    prepared: np.ndarray | torch.Tensor, segmenter: Segmenter, config: SlidingWindowConfig
) -> tuple[np.ndarray | torch.Tensor, int, int]:
    """Labels ("z y x", uint8) of a preprocessed image on the network grid.

    ``prepared`` may already be a tensor on the segmenter's device (then it
    stays there: body mask and windows are computed on it, and the labels are
    returned as a tensor on that device); a numpy image gives numpy labels.
    Returns the labels, the number of windows run and the number placed.
    """
    plan = segmenter.plan
    if isinstance(prepared, torch.Tensor):
        image = prepared.to(segmenter.device, torch.float32)[None]
    else:
        image = torch.from_numpy(np.ascontiguousarray(prepared, dtype=np.float32))[None]
        image = image.to(segmenter.device)
    mask = otsu_body_mask(image[0]) if config.skip_empty else None
    image = stack_neighbour_slices(image, plan.neighbour_slices)
    sigmoid = plan.head == "sigmoid" and plan.threshold != 0.5
    res = sliding_window_logits(
        image,
        segmenter.predict_logits,
        plan.patch_size,
        plan.num_classes,
        config,
        mask,
        keep_weight=sigmoid,
    )
    as_tensor = isinstance(prepared, torch.Tensor)
    labels = logits_to_labels(res.logits, plan.head, plan.threshold, res.weight, as_tensor)
    return labels, res.n_run, res.n_total


def check_single_channel(segmenter: Segmenter) -> None:
    """Raise ``ValueError`` unless the segmenter takes one image channel (a Volume has one;
    its neighbour slices, when the plan stacks them, are added on the network grid)."""
    plan = segmenter.plan
    if plan.image_channels != 1:
        raise ValueError(
            f"expected a segmenter with 1 image channel for a single-image Volume, "
            f"got in_channels={plan.in_channels} with neighbour_slices={plan.neighbour_slices}"
        )


@INFERERS.register("sliding_window")
class SlidingWindowInferer(Inferer):
    """Preprocess, sliding windows at the plan's spacing, head, labels back to the input grid.

    Options: :class:`SlidingWindowConfig`.

    Attributes
    ----------
    last_stats_ : dict
        ``n_run`` / ``n_total`` windows of the last call.
    """

    config_class = SlidingWindowConfig

    def infer(self, volume: Volume, segmenter: Segmenter) -> Volume:
        check_single_channel(segmenter)
        net = to_network_grid(
            volume,
            segmenter.plan,
            resampling=self.config.resampling,
            device=segmenter.device,
        )
        labels, n_run, n_total = run_network_grid(net.image, segmenter, self.config)
        self.last_stats_ = {"n_run": n_run, "n_total": n_total}
        return net.labels_back(labels)
