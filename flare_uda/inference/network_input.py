"""One volume's way to the network grid and back, on the CPU or all on the device.

Both inferers do the same four steps in the paper's order: normalise the
whole image per plan, crop it to a region (the whole image or the ROI),
resample the crop to the plan's spacing, and, after the windows, bring the
*label map* back onto the input grid (nearest neighbour). Two paths:

* ``"nnunet"``: numpy arrays, nnU-Net's normalisation and spline resampling
  on the CPU (exact parity with nnUNetPredictor's input);
* ``"torch"``: the raw image crosses to the segmenter's device once (in its
  own dtype), and normalisation, Otsu body box, crop, resampling and the
  label gather run there; only the uint8 label map on the input grid comes
  back. Why: on a GPU the forward passes of a 100x400x400 MR take about a
  quarter of a second, while the same steps on the CPU took seconds
  (``benchmarks/bench_preprocessing.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from flare_uda.inference.grid import (
    crop_volume,
    labels_to_grid_array,
    normalize_for_plan,
    region_geometry,
    resample_image,
    resolve_resampling,
)
from flare_uda.segmentation.base import SegmentationPlan
from flare_uda.volume import Volume

# numpy dtypes torch.from_numpy takes as they are (others are cast to float32 on the host)
_UPLOADABLE = {np.dtype(t) for t in ("float32", "float64", "float16", "int16", "int32", "uint8")}


def upload(volume: Volume, device: torch.device | str) -> torch.Tensor:
    """``volume.array`` as a float32 tensor on ``device`` (sent in its own dtype, cast there).

    The volume's array is never modified (on the CPU the tensor may share its
    memory; every later step writes to new tensors).
    """
    array = volume.array
    if array.dtype not in _UPLOADABLE:  # also non-native byte orders ('>f4' != '<f4')
        array = array.astype(np.float32)
    array = np.ascontiguousarray(array)
    host = torch.from_numpy(array) if array.flags.writeable else torch.tensor(array)
    return host.to(device).float()


@dataclass
class NetworkInput:
    """An image on the network grid, and the way back to its volume's grid.

    Attributes
    ----------
    image : np.ndarray or torch.Tensor, "z' y' x'"
        Normalised, at the network spacing (a tensor on the device for the
        ``"torch"`` path).
    grid : Volume
        The network grid's geometry (its array may be a placeholder).
    volume : Volume
        The input volume.
    box : tuple of slice or None
        The region of ``volume`` that was resampled (None: all of it).
    """

    image: np.ndarray | torch.Tensor
    grid: Volume
    volume: Volume
    box: tuple[slice, ...] | None = None

    def labels_back(self, labels: np.ndarray | torch.Tensor) -> Volume:
        """``labels`` ("z' y' x'", on :attr:`grid`) as a uint8 Volume on the input grid.

        Nearest neighbour onto the region, zeros outside it; a tensor is
        handled on its device and crosses to the CPU once, as uint8.
        """
        if tuple(labels.shape) != self.grid.shape:
            raise ValueError(
                f"labels must have the network grid's shape {self.grid.shape}, "
                f"got {tuple(labels.shape)}"
            )
        array = labels_to_grid_array(labels, self.grid, region_geometry(self.volume, self.box))
        on_device = isinstance(array, torch.Tensor)
        array = (
            array.to(torch.uint8) if on_device else np.asarray(array).astype(np.uint8, copy=False)
        )
        if self.box is not None:
            full = (
                torch.zeros(self.volume.shape, dtype=torch.uint8, device=array.device)
                if on_device
                else np.zeros(self.volume.shape, dtype=np.uint8)
            )
            full[self.box] = array
            array = full
        return self.volume.with_array(array.cpu().numpy() if on_device else array)


def to_network_grid(
    volume: Volume,
    plan: SegmentationPlan,
    spacing: Sequence[float] | None = None,
    resampling: str = "auto",
    device: torch.device | str = "cpu",
    box: Sequence[slice] | None = None,
    data: torch.Tensor | None = None,
) -> NetworkInput:
    """Normalise ``volume`` per ``plan``, crop to ``box``, resample to ``spacing``.

    Parameters
    ----------
    volume : Volume
        Raw image on its own grid.
    plan : SegmentationPlan
        Normalisation scheme and statistics; its spacing is the default target.
    spacing : 3 floats, optional
        Target spacing (z, y, x) mm; default ``plan.spacing``.
    resampling : {"auto", "nnunet", "torch"}
        The path (see the module docstring and :func:`resolve_resampling`).
    device : torch.device or str
        Where the ``"torch"`` path runs (the segmenter's device).
    box : tuple of 3 slices, optional
        Region of ``volume`` to keep (normalisation statistics still come from
        the whole image, as without a box).
    data : torch.Tensor, "z y x", optional
        ``"torch"`` path: ``volume``'s raw values already uploaded
        (:func:`upload`), so a caller that needed them (e.g. for a body box)
        does not send them twice; moved to ``device`` if elsewhere.

    Returns
    -------
    NetworkInput
    """
    target = plan.spacing if spacing is None else tuple(float(s) for s in spacing)
    box = None if box is None else tuple(box)
    if resolve_resampling(resampling, device) == "nnunet":
        region = normalize_for_plan(volume, plan)
        if box is not None:
            region = crop_volume(region, box)
        grid = resample_image(region, target)
        return NetworkInput(grid.array, grid, volume, box)
    from flare_uda.data.normalization import normalize_tensor
    from flare_uda.data.torch_resampling import resample_image_torch

    raw = upload(volume, device) if data is None else data.to(device)
    if tuple(raw.shape) != volume.shape:
        raise ValueError(
            f"data must have the volume's shape {volume.shape}, got {tuple(raw.shape)}"
        )
    stats = plan.intensity_stats if plan.normalization == "ct" else None
    image = normalize_tensor(raw, plan.normalization, stats, box=box)
    image, grid = resample_image_torch(region_geometry(volume, box), target, data=image)
    return NetworkInput(image, grid, volume, box)
