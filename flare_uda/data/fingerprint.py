"""Dataset fingerprint: spacings, shapes and foreground intensity statistics (nnU-Net).

Per case, nnU-Net's ``DatasetFingerprintExtractor.collect_foreground_intensities``
samples ``num_samples`` foreground voxels (label > 0) with replacement from a
seeded ``RandomState``; the dataset statistics are computed on the pooled
samples, exactly as nnU-Net's fingerprint does. Cases without a label (e.g.
unlabelled MRI) contribute spacing and shape but no intensities.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np

from flare_uda.executor import Executor, get_executor
from flare_uda.volume import Case


def _foreground_samples(case: Case, num_samples: int, seed: int) -> np.ndarray:
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import (
        DatasetFingerprintExtractor,
    )

    samples, _ = DatasetFingerprintExtractor.collect_foreground_intensities(
        case.label.array[None], case.image.array[None], seed=seed, num_samples=num_samples
    )
    return np.asarray(samples[0], dtype=np.float64)


def intensity_statistics(samples: np.ndarray) -> dict[str, float]:
    """nnU-Net's intensity properties of pooled foreground ``samples`` (1D).

    Returns
    -------
    dict
        ``mean``, ``std``, ``median``, ``min``, ``max``, ``percentile_00_5``,
        ``percentile_99_5`` as floats.
    """
    samples = np.asarray(samples, dtype=np.float64).ravel()
    if samples.size == 0:
        raise ValueError("intensity statistics need foreground samples, got none")
    p005, median, p995 = np.percentile(samples, (0.5, 50.0, 99.5))
    return {
        "mean": float(samples.mean()),
        "std": float(samples.std()),
        "median": float(median),
        "min": float(samples.min()),
        "max": float(samples.max()),
        "percentile_00_5": float(p005),
        "percentile_99_5": float(p995),
    }


def compute_fingerprint(
    cases: Sequence[Case],
    num_samples: int = 10000,
    seed: int = 1234,
    executor: str | Executor | None = None,
) -> dict:
    """Fingerprint of a dataset, as nnU-Net's experiment planning computes it.

    Parameters
    ----------
    cases : sequence of Case
        Images with (optional) integer labels in FLARE order.
    num_samples : int
        Foreground voxels sampled per labelled case (with replacement).
    seed : int
        Seed of each case's sampler (nnU-Net uses 1234 for every case).
    executor : str, Executor or None
        Runs the per-case sampling (:func:`flare_uda.executor.get_executor`;
        ``None``: serial, with a progress bar).

    Returns
    -------
    dict
        ``spacings`` (list of (z, y, x)), ``shapes`` (list of (z, y, x)),
        ``median_spacing`` (z, y, x), ``median_shape``, ``modalities``,
        ``n_cases``, ``n_labelled``, and ``foreground_intensity_properties``:
        the dict of :func:`intensity_statistics` over labelled cases (keys
        ``mean``, ``std``, ``percentile_00_5``, ``percentile_99_5``, ...), or
        ``None`` when no case has a label.

    Raises
    ------
    ValueError
        No cases, or a labelled case with an empty foreground.
    """
    cases = list(cases)
    if not cases:
        raise ValueError("compute_fingerprint needs at least one case, got none")
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    bad = [type(c).__name__ for c in cases if not isinstance(c, Case)]
    if bad:
        raise TypeError(f"cases must be Case objects, got {bad[:3]}")
    labelled = [c for c in cases if c.label is not None]
    empty = [c.case_id for c in labelled if not (c.label.array > 0).any()]
    if empty:
        raise ValueError(f"cases {empty[:5]} have a label with no foreground voxel")
    sample = partial(_foreground_samples, num_samples=int(num_samples), seed=int(seed))
    pooled = get_executor(executor).map(sample, labelled, desc="fingerprint") if labelled else []
    spacings = [list(c.image.spacing) for c in cases]
    shapes = [list(c.image.shape) for c in cases]
    return {
        "n_cases": len(cases),
        "n_labelled": len(pooled),
        "modalities": sorted({c.modality for c in cases}),
        "spacings": spacings,
        "shapes": shapes,
        "median_spacing": [float(v) for v in np.median(np.asarray(spacings), axis=0)],
        "median_shape": [float(v) for v in np.median(np.asarray(shapes), axis=0)],
        "foreground_intensity_properties": (
            intensity_statistics(np.concatenate(pooled)) if pooled else None
        ),
    }
