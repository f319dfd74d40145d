"""Anatomy space: Sobel gradient magnitude, robustly scaled to [0, 1].

CT and MR differ in intensities but share edges; the gradient magnitude of an
image, divided by a high percentile of itself, is (nearly) modality free and
independent of the intensity scale. The same function, with the same
parameters, is applied to CT and MR, with one exception: a CT can first be
clipped to the abdominal soft-tissue window (:data:`CT_SOFT_TISSUE_WINDOW`).
Without it the CT's air/lung/bone edges (hundreds of HU) set the scale and the
organ boundaries (tens of HU) end up about 3x weaker than the same boundaries
in MR, whose dynamic range is set by soft tissue and fat (measured on the
phantom: median organ-boundary value 0.098 for raw CT, 0.285 for windowed CT,
0.233 for MR; ``benchmarks/ct_window.py``, docs/results.md).

The separable Sobel filter is built from ``scipy.ndimage.correlate1d`` rather
than ``scipy.ndimage.sobel`` because the per-slice ("2d") mode must smooth in
plane only (``ndimage.sobel`` on a 3D array also smooths along z); on a 3D
array the "3d" mode equals ``ndimage.sobel`` exactly (a test checks it).
scipy was measured faster than a torch ``conv3d`` on these CPUs
(docs/benchmarks.md, "Sobel anatomy space").
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

from flare_uda._validation import as_triplet, require_choice, require_finite, require_ndim
from flare_uda.data.appearance import body_mask, foreground_mask
from flare_uda.volume import Volume

MODES = ("3d", "2d")
EDGE_SCALES = ("percentile", "rank")
"""How a Sobel magnitude is brought to [0, 1]: divided by a high percentile of itself
(the paper), or replaced by its rank among the body's voxels (see :func:`rank_in_body`)."""
CT_SOFT_TISSUE_WINDOW: tuple[float, float] = (-150.0, 250.0)
"""HU: the usual abdominal soft-tissue window (width 400, level 50)."""
_AIR_HU = -500.0  # a CT in HU has air (-1000) around the body; one without it is suspect
_DERIVATIVE = np.array([-1.0, 0.0, 1.0], dtype=np.float32)
_SMOOTH = np.array([1.0, 2.0, 1.0], dtype=np.float32)


def sobel_gradient(
    array: np.ndarray, spacing: tuple[float, float, float] | None = None, mode: str = "3d"
) -> np.ndarray:
    """Sobel estimate of the intensity gradient, in intensity units per mm.

    Parameters
    ----------
    array : np.ndarray, shape "z y x"
        Finite image.
    spacing : tuple of 3 float, optional
        Voxel size (z, y, x) mm; ``None`` means 1 mm (per-voxel gradient).
    mode : {"3d", "2d"}
        ``"3d"``: derivatives along z, y, x, smoothing over the other two axes.
        ``"2d"``: per z slice, derivatives along y, x, smoothing in plane only.

    Returns
    -------
    np.ndarray of float32, shape "g z y x"
        ``g`` = 3 (z, y, x components) or 2 (y, x). A linear ramp ``a * x_mm``
        gives exactly ``a`` in the x component away from the borders.
    """
    require_ndim(array, 3, "image for the Sobel filter")
    require_choice(mode, MODES, "Sobel mode")
    image = np.asarray(array, dtype=np.float32)
    require_finite(image, "image for the Sobel filter")
    spacing = as_triplet(1.0 if spacing is None else spacing, "spacing", positive=True)
    axes = (0, 1, 2) if mode == "3d" else (1, 2)
    # [-1, 0, 1] spans 2 voxels; each [1, 2, 1] smoothing sums to 4.
    scale = 2.0 * 4.0 ** (len(axes) - 1)
    out = np.empty((len(axes), *image.shape), dtype=np.float32)
    for g, axis in enumerate(axes):
        comp = ndimage.correlate1d(image, _DERIVATIVE, axis=axis, mode="reflect")
        for other in axes:
            if other != axis:
                comp = ndimage.correlate1d(comp, _SMOOTH, axis=other, mode="reflect")
        out[g] = comp / (scale * spacing[axis])
    return out


def sobel_magnitude(
    array: np.ndarray,
    spacing: tuple[float, float, float] | None = None,
    mode: str = "3d",
    percentile: float = 99.5,
) -> np.ndarray:
    """Sobel gradient magnitude scaled to [0, 1] by a high percentile of itself.

    Parameters
    ----------
    array : np.ndarray, shape "z y x"
        Finite image (any intensity scale: HU, arbitrary MR units).
    spacing : tuple of 3 float, optional
        Voxel size (z, y, x) mm, so that gradients are per mm; ``None``: 1 mm.
    mode : {"3d", "2d"}
        3D Sobel, or per-slice 2D Sobel (see :func:`sobel_gradient`).
    percentile : float in (0, 100]
        The magnitude is divided by this percentile of its non-zero values
        (robust to a few extreme edges, e.g. air/bone), then clipped to [0, 1].

    Returns
    -------
    np.ndarray of float32, shape "z y x", values in [0, 1]
        All zeros for a constant image. Invariant to ``a * array + b`` (a > 0).
    """
    if not 0.0 < float(percentile) <= 100.0:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    grad = sobel_gradient(array, spacing, mode)
    magnitude = np.sqrt(np.einsum("g...,g...->...", grad, grad, dtype=np.float32))
    nonzero = magnitude[magnitude > 0]
    if nonzero.size == 0:
        return np.zeros_like(magnitude)
    ref = float(np.percentile(nonzero, percentile))
    return np.clip(magnitude / ref, 0.0, 1.0).astype(np.float32, copy=False)


def rank_in_body(magnitude: np.ndarray, body: np.ndarray) -> np.ndarray:
    """Each body voxel's share of body voxels with a strictly smaller ``magnitude``.

    A monotone map of the edge strengths onto [0, 1) whose distribution over the
    body is uniform whatever the modality: CT organ boundaries (tens of HU beside
    hundreds at bone and air) and fat-suppressed MR organ boundaries (the
    strongest edges of the scan) then land on comparable values, which a
    division by one percentile does not give (docs/results.md, "Real data":
    CHAOS T2 boundaries 2-28x the CT's after it; 1-1.5x after the rank).
    Voxels outside ``body`` are 0; so are voxels without any gradient.

    Parameters
    ----------
    magnitude : np.ndarray of float, shape "z y x"
    body : np.ndarray of bool, shape "z y x"

    Returns
    -------
    np.ndarray of float32, shape "z y x", values in [0, 1)
    """
    if body.shape != magnitude.shape or body.dtype != bool:
        raise ValueError(
            f"body must be a bool mask of the magnitude's shape {magnitude.shape}, got "
            f"{body.dtype} {body.shape}"
        )
    out = np.zeros(magnitude.shape, dtype=np.float32)
    values = magnitude[body]
    if values.size:
        ranks = np.searchsorted(np.sort(values), values, side="left")
        out[body] = ranks / values.size
    return out


def check_window(window: object, what: str = "window") -> tuple[float, float] | None:
    """``window`` as ``(low, high)`` floats with low < high, or ``None``.

    Raises
    ------
    ValueError
        For anything else (says what arrived).
    """
    if window is None:
        return None
    try:
        low, high = (float(v) for v in window)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be None or (low, high) numbers, got {window!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"{what} must be finite with low < high, got {window!r}")
    return (low, high)


def clip_to_window(array: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """``array`` clipped to the HU ``window``; warns when it does not look like HU.

    A CT without any voxel below -500 HU has no air around the body, which an
    abdominal CT in HU always has: most likely it is stored without its
    rescale slope/intercept, and the window would flatten it.
    """
    if float(np.min(array)) > _AIR_HU:
        warnings.warn(
            f"clipping to the CT window {window} HU, but the image's minimum is "
            f"{float(np.min(array)):.1f} (> {_AIR_HU:g}: no air): is it in HU?",
            stacklevel=3,
        )
    return np.clip(array, window[0], window[1])


def to_anatomy_space(
    volume: Volume,
    mode: str = "3d",
    percentile: float = 99.5,
    window: tuple[float, float] | None = None,
    scale: str = "percentile",
) -> Volume:
    """The :func:`sobel_magnitude` of ``volume`` (physical spacing used), same geometry.

    Parameters
    ----------
    volume : Volume
    mode, percentile
        See :func:`sobel_magnitude`.
    window : (float, float), optional
        Clip the intensities to this window first: :data:`CT_SOFT_TISSUE_WINDOW`
        for a CT in HU, ``None`` (no clipping) for MR.
    scale : {"percentile", "rank"}
        ``"percentile"`` (the paper): divided by the ``percentile`` of itself.
        ``"rank"``: :func:`rank_in_body`, the body being the Otsu foreground's
        largest part of the unclipped image (``percentile`` unused).
    """
    if not isinstance(volume, Volume):
        raise TypeError(f"volume must be a Volume, got {type(volume).__name__}")
    require_choice(scale, EDGE_SCALES, "edge scale")
    window = check_window(window)
    array = volume.array if window is None else clip_to_window(volume.array, window)
    if scale == "percentile":
        return volume.with_array(sobel_magnitude(array, volume.spacing, mode, percentile))
    magnitude = sobel_magnitude(array, volume.spacing, mode, 100.0)
    body = body_mask(foreground_mask(np.asarray(volume.array, dtype=np.float32)))
    return volume.with_array(rank_in_body(magnitude, body))
