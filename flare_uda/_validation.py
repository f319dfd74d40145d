"""Shared input checks that raise clear errors (expected vs. got), never ``assert``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def require_ndim(array: np.ndarray, ndim: int, what: str = "array") -> None:
    """Raise ``ValueError`` unless ``array`` has ``ndim`` dimensions."""
    if np.ndim(array) != ndim:
        raise ValueError(
            f"{what} must be {ndim}D (z, y, x), got {np.ndim(array)}D with shape {np.shape(array)}"
        )


def require_finite(array: np.ndarray, what: str = "array") -> None:
    """Raise ``ValueError`` if ``array`` holds NaN or inf values."""
    arr = np.asarray(array)
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise ValueError(f"{what} must hold finite values, got {n_nan} NaN and {n_inf} inf voxels")


def as_triplet(value: Sequence[float] | float, what: str, positive: bool = False) -> tuple:
    """Return ``value`` as a tuple of three finite floats (z, y, x).

    Raises
    ------
    ValueError
        If ``value`` does not hold three finite numbers, or (``positive``) one is <= 0.
    """
    arr = (
        np.broadcast_to(np.asarray(value, dtype=float), (3,))
        if np.ndim(value) == 0
        else (np.asarray(value, dtype=float))
    )
    if arr.shape != (3,):
        raise ValueError(f"{what} must have 3 values (z, y, x), got {tuple(np.ravel(value))}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} must be finite, got {tuple(arr.tolist())}")
    if positive and (arr <= 0).any():
        raise ValueError(f"{what} must be positive, got {tuple(arr.tolist())}")
    return tuple(float(v) for v in arr)


def require_int(value: object, what: str, minimum: int | None = None) -> int:
    """Return ``value`` if it is an int (``bool`` is not) and ``>= minimum``, else raise.

    Raises
    ------
    ValueError
        "``what`` must be a positive int, got True" and the like.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (minimum is not None and value < minimum)
    ):
        bound = {None: "an int", 0: "a non-negative int", 1: "a positive int"}.get(
            minimum, f"an int >= {minimum}"
        )
        raise ValueError(f"{what} must be {bound}, got {value!r}")
    return value


SPACING_RANGE_MM = (0.01, 100.0)
"""Voxel sizes accepted from files (mm): 10 micrometres (micro-CT) to 10 cm.

A spacing outside this range is a broken header (e.g. 1e-4 or 1e5 mm), and
resampling it to a network spacing would give one voxel or run out of memory.
"""


def require_spacing_in_range(spacing: Sequence[float], what: str) -> None:
    """Raise ``ValueError`` unless every spacing (z, y, x) lies in :data:`SPACING_RANGE_MM`."""
    low, high = SPACING_RANGE_MM
    values = tuple(float(s) for s in spacing)
    if not all(low <= s <= high for s in values):
        raise ValueError(
            f"{what} must have a spacing in [{low}, {high}] mm per axis, got "
            f"{tuple(round(s, 6) for s in values)} (z, y, x); is its header broken?"
        )


def require_choice(value: str, choices: Sequence[str], what: str) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{what} must be one of {list(choices)}, got {value!r}")
    return value


def class_range(name: str, value: tuple[int, int]) -> tuple[int, int]:
    """``value`` as ``(low, high)`` with ``1 <= low <= high``, or a ValueError naming it."""
    try:
        lo, hi = (int(v) for v in value)  # exactly two integers
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of integers (low, high), got {value!r}") from None
    if not 1 <= lo <= hi:
        raise ValueError(f"{name} must be (low, high) with 1 <= low <= high, got {value!r}")
    return lo, hi
