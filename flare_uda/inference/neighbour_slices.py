"""Neighbour slices as channels: z-context for a slice-wise network (2.5D).

A slice-wise network (``spatial_dims=2``) labels each axial slice from that
slice alone, so it cannot tell a slice at the liver dome from one at the
kidneys by what lies above or below (docs/results.md, "Real data"). Giving it
the ``k`` slices on either side as extra input channels is the usual 2.5D
remedy: every slice's input becomes ``2k + 1`` channels, the network stays
slice-wise, and the training patch and every inferer are unchanged.

The same function stacks the slices of a whole preprocessed volume in
training (:func:`flare_uda.segmentation.data.prepare_cases`) and at inference
(:func:`flare_uda.inference.sliding_window.run_network_grid`), at the network's
grid, so both see the same neighbours; at the first and last slice the edge
slice is repeated. Written here because MONAI and nnU-Net have no 2.5D input
transform that works on both numpy arrays and device tensors.
"""

from __future__ import annotations

import numpy as np
import torch


def require_neighbour_slices(k: object, what: str = "neighbour_slices") -> int:
    """Return ``k`` if it is an int >= 0 (``bool`` is not), else raise ``ValueError``
    naming ``what``; the one check of the stacking, the plan and the training config."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"{what} must be an int >= 0, got {k!r}")
    return k


def stack_neighbour_slices(image: np.ndarray | torch.Tensor, k: int) -> np.ndarray | torch.Tensor:
    """Each channel's slices ``z - k .. z + k`` as ``2k + 1`` channels at slice ``z``.

    Parameters
    ----------
    image : np.ndarray or torch.Tensor, "c z y x"
    k : int
        Slices on each side (0: ``image`` unchanged).

    Returns
    -------
    np.ndarray or torch.Tensor, "(c * (2k + 1)) z y x"
        Same type (and device) as ``image``; channel ``i * (2k + 1) + j`` is channel
        ``i`` shifted by ``j - k`` slices (``j = k``: the slice itself), the first and
        last slice repeated beyond the volume.
    """
    require_neighbour_slices(k, "k (neighbour slices)")
    if image.ndim != 4:
        raise ValueError(f"expected an image 'c z y x' (4D), got shape {tuple(image.shape)}")
    if k == 0:
        return image
    n_z = image.shape[1]
    offsets = np.arange(-k, k + 1)
    index = np.clip(np.arange(n_z)[None, :] + offsets[:, None], 0, n_z - 1)  # (2k+1, z)
    if isinstance(image, torch.Tensor):
        index_t = torch.as_tensor(index, device=image.device)
        stacked = image[:, index_t]  # (c, 2k+1, z, y, x)
    else:
        stacked = image[:, index]
    return stacked.reshape(image.shape[0] * len(offsets), *image.shape[1:])
