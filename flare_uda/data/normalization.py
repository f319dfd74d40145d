"""Intensity normalisation: nnU-Net's CT and z-score schemes, plus the paper's clip.

``"ct"`` and ``"zscore"`` run nnU-Net v2's own ``CTNormalization`` and
``ZScoreNormalization`` (``nnunetv2.preprocessing.normalization``); what is
added here is input checking, never modifying the caller's array, and the
optional foreground percentile clip before the z-score that the paper applies
to MRI (nnU-Net has no such option).
"""

from __future__ import annotations

import numpy as np

from flare_uda._validation import require_choice, require_finite

SCHEMES = ("ct", "zscore", "none")
STATS_KEYS = ("mean", "std", "percentile_00_5", "percentile_99_5")


def _check_stats(stats: dict | None) -> dict:
    if not isinstance(stats, dict):
        raise ValueError(
            f"scheme 'ct' needs stats, a dict with keys {list(STATS_KEYS)} (from "
            f"compute_fingerprint), got {type(stats).__name__}"
        )
    missing = [k for k in STATS_KEYS if k not in stats]
    if missing:
        raise ValueError(f"stats must hold keys {list(STATS_KEYS)}, missing {missing}")
    values = {k: float(stats[k]) for k in STATS_KEYS}
    if not all(np.isfinite(v) for v in values.values()):
        raise ValueError(f"stats must be finite, got {values}")
    if values["percentile_00_5"] > values["percentile_99_5"]:
        raise ValueError(
            f"stats percentile_00_5 must be <= percentile_99_5, got "
            f"{values['percentile_00_5']} > {values['percentile_99_5']}"
        )
    return values


def _check_clip(clip_percentiles: tuple[float, float] | None) -> tuple[float, float] | None:
    if clip_percentiles is None:
        return None
    lo, hi = (float(p) for p in clip_percentiles)
    if not 0.0 <= lo < hi <= 100.0:
        raise ValueError(
            f"clip_percentiles must satisfy 0 <= low < high <= 100, got {tuple(clip_percentiles)}"
        )
    return lo, hi


def normalize(
    array: np.ndarray,
    scheme: str,
    stats: dict | None = None,
    mask: np.ndarray | None = None,
    clip_percentiles: tuple[float, float] | None = None,
) -> np.ndarray:
    """Normalise intensities; returns a new float32 array of the same shape.

    Parameters
    ----------
    array : np.ndarray, any shape (typically "z y x")
        Image intensities; must be finite.
    scheme : {"ct", "zscore", "none"}
        ``"ct"``: nnU-Net CTNormalization, clip to the dataset foreground
        ``stats["percentile_00_5"]``/``stats["percentile_99_5"]``, subtract
        ``stats["mean"]``, divide by ``stats["std"]``. ``"zscore"``: per-image
        z-score (nnU-Net ZScoreNormalization). ``"none"``: cast only.
    stats : dict, optional
        Dataset foreground statistics (``compute_fingerprint(...)
        ["foreground_intensity_properties"]``); required by ``"ct"``.
    mask : np.ndarray of bool, optional, same shape as ``array``
        ``"zscore"`` only: mean/std (and clip percentiles) from these voxels;
        voxels outside the mask are set to 0, as nnU-Net does for its
        non-zero-mask normalisation.
    clip_percentiles : (float, float), optional
        ``"zscore"`` only: first clip to these percentiles of the (masked)
        image, e.g. ``(0.5, 99.5)``, as the paper does for MRI.

    Raises
    ------
    ValueError
        Unknown scheme, non-finite input, missing stats, bad mask or clip.
    """
    from nnunetv2.preprocessing.normalization.default_normalization_schemes import (
        CTNormalization,
        NoNormalization,
        ZScoreNormalization,
    )

    require_choice(scheme, SCHEMES, "normalisation scheme")
    image = np.array(array, dtype=np.float32, copy=True)
    require_finite(image, "image to normalise")
    clip = _check_clip(clip_percentiles)
    if scheme != "zscore" and (mask is not None or clip is not None):
        raise ValueError(f"mask and clip_percentiles apply to scheme 'zscore' only, got {scheme!r}")
    if scheme == "none":
        return NoNormalization(intensityproperties={}).run(image)
    if scheme == "ct":
        return CTNormalization(intensityproperties=_check_stats(stats)).run(image)
    seg = None
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != image.shape:
            raise ValueError(f"mask shape must equal the image's {image.shape}, got {mask.shape}")
        mask = mask.astype(bool)
        if not mask.any():
            raise ValueError("mask must select at least one voxel, got an empty mask")
        seg = np.where(mask, 0, -1).astype(np.int8)
    if clip is not None:
        values = image[mask] if mask is not None else image
        lo, hi = np.percentile(values, clip)
        np.clip(image, lo, hi, out=image)
    out = ZScoreNormalization(use_mask_for_norm=mask is not None, intensityproperties={}).run(
        image, seg
    )
    if mask is not None:
        out[~mask] = 0.0
    return out


def normalize_tensor(x, scheme: str, stats: dict | None = None, box=None):
    """:func:`normalize` for a torch tensor, computed where the tensor lives.

    Written by hand because nnU-Net's normalisation classes take numpy arrays
    only: on a GPU the image would have to cross to the CPU and back for two
    passes of arithmetic. The formulas are nnU-Net's (``"ct"``: clip to the
    dataset percentiles, subtract the mean, divide by ``max(std, 1e-8)``;
    ``"zscore"``: the image's own mean and population std), in float32; the
    result matches :func:`normalize` up to float32 summation order (tested).
    Masks and the percentile clip are :func:`normalize`'s only.

    Parameters
    ----------
    x : torch.Tensor, any shape
        Image intensities (any real dtype); must be finite.
    scheme : {"ct", "zscore", "none"}
    stats : dict, optional
        Required by ``"ct"`` (as for :func:`normalize`).
    box : tuple of slice, optional
        Return only ``normalized[box]``; the z-score statistics still come
        from all of ``x`` (so a crop is normalised as the whole image would
        be, without writing the rest).

    Returns
    -------
    torch.Tensor, float32, same shape (or the box's) and device (a new tensor).
    """
    import torch

    require_choice(scheme, SCHEMES, "normalisation scheme")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__} (use normalize)")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"expected real intensities, got a {x.dtype} tensor")
    # min and max are NaN or inf exactly when some value is (one cheap pass, far cheaper than
    # isfinite().all(): docs/benchmarks.md, "Steps around the network")
    if x.is_floating_point() and not bool(torch.isfinite(torch.stack(torch.aminmax(x))).all()):
        n_nan, n_inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        raise ValueError(
            f"image to normalise must hold finite values, got {n_nan} NaN and {n_inf} inf voxels"
        )
    image = (x if box is None else x[tuple(box)]).to(torch.float32, copy=True)
    if scheme == "none":
        return image
    if scheme == "ct":
        values = _check_stats(stats)
        image.clamp_(values["percentile_00_5"], values["percentile_99_5"])
        return image.sub_(values["mean"]).div_(max(values["std"], 1e-8))
    mean, std = _mean_std(x) if x.device.type == "cpu" else _mean_std_torch(x)
    return image.sub_(mean).div_(std.clamp_min(1e-8))


def _mean_std(x):
    """Mean and population std of a CPU tensor by numpy (nnU-Net's own arithmetic).

    On the shared memory, no copy; faster than torch's CPU ``std_mean``
    (docs/benchmarks.md, "Steps around the network").
    """
    import torch

    whole = (x if x.dtype == torch.float32 else x.float()).numpy()
    return torch.tensor(float(whole.mean())), torch.tensor(float(whole.std()))


def _mean_std_torch(x):
    """Mean and population std on ``x``'s device (0-dim tensors, no synchronisation)."""
    import torch

    std, mean = torch.std_mean(x.float(), correction=0)
    return mean, std
