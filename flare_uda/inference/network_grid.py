"""One volume's way to the network grid and back, on the CPU or all on the device.

Both inferers do the same four steps in the paper's order: normalise the
whole image per plan, crop it to a region (the whole image or the ROI),
resample the crop to the plan's spacing, and, after the windows, bring the
*label map* back onto the input grid (nearest neighbour), never the logits.
The resampling and normalisation themselves are :mod:`flare_uda.data`
(nnU-Net's rules); this module sequences them and handles crops. Two paths:

* ``"nnunet"``: numpy arrays, nnU-Net's normalisation and spline resampling
  on the CPU (exact parity with nnUNetPredictor's input);
* ``"torch"``: the raw image crosses to the segmenter's device once (in its
  own dtype), and normalisation, Otsu body box, crop, resampling and the
  label gather run there; only the uint8 label map on the input grid comes
  back. Why: on a GPU the CPU steps, not the forward passes, dominated the
  time (measured in docs/benchmarks.md, "Steps around the network").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from flare_uda.data.orientation import canonical_tensor, to_canonical
from flare_uda.inference.segmenter import SegmentationPlan
from flare_uda.volume import Volume

RESAMPLINGS = ("auto", "nnunet", "torch")
"""How an image reaches the network's spacing (see :func:`resolve_resampling`)."""

# numpy dtypes torch.from_numpy takes as they are (others are cast to float32 on the host)
_UPLOADABLE = {np.dtype(t) for t in ("float32", "float64", "float16", "int16", "int32", "uint8")}


def _same_spacing(a: Sequence[float], b: Sequence[float]) -> bool:
    return bool(np.allclose(a, b, rtol=1e-5, atol=1e-6))


def normalize_for_plan(volume: Volume, plan: SegmentationPlan) -> Volume:
    """``volume`` normalised per ``plan`` (same grid, float32)."""
    from flare_uda.data.preprocess import normalize

    stats = plan.intensity_stats if plan.normalization == "ct" else None
    return volume.with_array(normalize(volume.array, plan.normalization, stats))


def resample_image(image: Volume, spacing: Sequence[float]) -> Volume:
    """``image`` at ``spacing`` (nnU-Net's image resampling); unchanged when already there."""
    if _same_spacing(image.spacing, spacing):
        return image
    from flare_uda.data.preprocess import resample_volume

    return resample_volume(image, tuple(float(s) for s in spacing), is_label=False)


def resolve_resampling(resampling: str, device: torch.device | str) -> str:
    """``"nnunet"`` or ``"torch"`` for a ``resampling`` setting (``"auto"``: torch on CUDA)."""
    if resampling not in RESAMPLINGS:
        raise ValueError(f"resampling must be one of {list(RESAMPLINGS)}, got {resampling!r}")
    if resampling == "auto":
        return "torch" if torch.device(device).type == "cuda" else "nnunet"
    return resampling


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
        if plan.canonical:
            region = to_canonical(region)
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
    geometry = region_geometry(volume, box)
    if plan.canonical:
        image = canonical_tensor(image, geometry.direction)
        geometry = to_canonical(geometry)
    image, grid = resample_image_torch(geometry, target, data=image)
    return NetworkInput(image, grid, volume, box)


def labels_to_grid_array(
    array: np.ndarray | torch.Tensor, grid: Volume, reference: Volume
) -> np.ndarray | torch.Tensor:
    """A label array ("z y x") on ``grid``'s geometry, brought onto ``reference``'s grid
    (nearest neighbour), as the same kind: a tensor stays on its device unless the
    directions differ, where SimpleITK resamples it on the CPU and the result
    returns to the device."""
    if grid.same_geometry(reference):
        return array
    if _same_orthonormal_direction(grid, reference):
        return _nearest_same_direction(array, grid, reference)
    from flare_uda.data.preprocess import resample_to_reference

    if isinstance(array, torch.Tensor):
        host = grid.with_array(array.cpu().numpy())
        out = resample_to_reference(host, reference, is_label=True).array
        return torch.from_numpy(np.ascontiguousarray(out)).to(array.device, array.dtype)
    return resample_to_reference(grid.with_array(array), reference, is_label=True).array


def _same_orthonormal_direction(a: Volume, b: Volume) -> bool:
    d = a.direction
    return bool(
        np.allclose(d, b.direction, atol=1e-6) and np.allclose(d.T @ d, np.eye(3), atol=1e-6)
    )


def _nearest_same_direction(
    array: np.ndarray | torch.Tensor, grid: Volume, reference: Volume
) -> np.ndarray | torch.Tensor:
    """Nearest-neighbour labels on ``reference``'s grid when both grids share a direction.

    The mapping is then separable: along each axis, reference voxel ``i`` sits
    at continuous index ``a + i * b`` of ``array``; its value is the voxel
    ``floor(a + i * b + 0.5)`` (ITK's rounding), 0 outside. Written by hand
    because SimpleITK's ResampleImageFilter maps every output voxel through
    the full transform, where three index vectors and one ``np.ix_`` gather
    suffice (faster: docs/benchmarks.md, "Steps around the network"), with identical
    labels (tested against SimpleITK) except at exact ties, where a reference
    voxel centre lies halfway between two label voxels and float rounding
    picks either neighbour. A tensor is gathered on its own device
    (``index_select`` per axis), so on a GPU the labels never visit the CPU.
    """
    offset = reference.direction.T @ (np.asarray(reference.origin) - np.asarray(grid.origin))
    index, inside = [], []
    for axis, (n_ref, n_src) in enumerate(zip(reference.shape, grid.shape, strict=True)):
        step = reference.spacing[axis] / grid.spacing[axis]
        pos = offset[axis] / grid.spacing[axis] + np.arange(n_ref) * step
        i = np.floor(pos + 0.5).astype(np.int64)
        inside.append((i >= 0) & (i < n_src))
        index.append(np.clip(i, 0, n_src - 1))
    if isinstance(array, torch.Tensor):
        out = array
        for axis, i in enumerate(index):
            out = out.index_select(axis, torch.from_numpy(i).to(array.device))
    else:
        out = np.asarray(array)[np.ix_(*index)]
    for axis, ok in enumerate(inside):
        if not ok.all():
            outside = ~ok if isinstance(out, np.ndarray) else torch.from_numpy(~ok).to(out.device)
            out[(slice(None),) * axis + (outside,)] = 0
    return out


def region_geometry(volume: Volume, box: Sequence[slice] | None) -> Volume:
    """The geometry of ``volume[box]`` (a zero-copy placeholder array), or ``volume``."""
    if box is None:
        return volume
    starts = [b.start or 0 for b in box]
    shape = tuple(len(range(*b.indices(n))) for b, n in zip(box, volume.shape, strict=True))
    origin = tuple(volume.index_to_physical(np.array(starts, dtype=float)).tolist())
    placeholder = np.broadcast_to(np.zeros((), dtype=np.uint8), shape)
    return Volume(placeholder, volume.spacing, origin, volume.direction)


def crop_volume(volume: Volume, box: Sequence[slice]) -> Volume:
    """The sub-volume ``volume.array[box]`` with its own origin (physical position kept)."""
    return region_geometry(volume, box).with_array(np.ascontiguousarray(volume.array[tuple(box)]))
