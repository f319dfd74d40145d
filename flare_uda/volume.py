"""The data model shared by every stage: :class:`Volume` and :class:`Case`.

Axis convention
---------------
Arrays are indexed ``(z, y, x)`` everywhere, and so are ``spacing`` and
``origin``: everything in this API is SimpleITK's ``(x, y, z)`` reversed.
``direction`` is a 3x3 matrix whose column ``j`` is the physical direction of
array axis ``j``, both written in ``(z, y, x)`` components, so that the
physical position of voxel index ``i = (iz, iy, ix)`` is::

    origin + direction @ (spacing * i)

(:mod:`flare_uda.data.io` converts to and from SimpleITK's convention.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from flare_uda._validation import as_triplet, require_choice, require_ndim

MODALITIES = ("CT", "MR")
ORTHONORMAL_TOLERANCE = 1e-3
"""Largest entry of ``|D^T D - I|`` accepted for a direction matrix ``D``."""


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3D array with its physical geometry.

    Parameters
    ----------
    array : np.ndarray, shape (z, y, x)
        Voxel values (image intensities or integer labels).
    spacing : tuple of 3 float
        Voxel size in mm, (z, y, x); all positive.
    origin : tuple of 3 float
        Physical position (mm) of voxel (0, 0, 0), (z, y, x) components.
    direction : np.ndarray, shape (3, 3)
        Column ``j`` is the unit physical direction of array axis ``j``; the
        columns must be orthonormal (:data:`ORTHONORMAL_TOLERANCE`): a shear or
        scaling would put voxels elsewhere than ``spacing`` says.
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        require_ndim(array, 3, "Volume array")
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "spacing", as_triplet(self.spacing, "spacing", positive=True))
        object.__setattr__(self, "origin", as_triplet(self.origin, "origin"))
        direction = np.asarray(self.direction, dtype=float)
        if direction.shape != (3, 3) or not np.isfinite(direction).all():
            raise ValueError(f"direction must be a finite 3x3 matrix, got shape {direction.shape}")
        error = float(np.abs(direction.T @ direction - np.eye(3)).max())
        if error > ORTHONORMAL_TOLERANCE:
            raise ValueError(
                "direction must be orthonormal (unit columns at right angles, |D^T D - I| <= "
                f"{ORTHONORMAL_TOLERANCE}), got {np.round(direction, 4).tolist()} with "
                f"|D^T D - I| = {error:.3g} (a shear or scaling)"
            )
        object.__setattr__(self, "direction", direction)

    # ------------------------------------------------------------------ views
    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape (z, y, x)."""
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm^3."""
        return float(np.prod(self.spacing))

    @property
    def affine(self) -> np.ndarray:
        """4x4 index -> physical matrix, (z, y, x) convention."""
        out = np.eye(4)
        out[:3, :3] = self.direction * np.asarray(self.spacing)[None, :]
        out[:3, 3] = self.origin
        return out

    def index_to_physical(self, index: np.ndarray) -> np.ndarray:
        """Physical positions (mm, z y x) of voxel indices, shape ``(..., 3)``."""
        idx = np.asarray(index, dtype=float)
        return idx @ (self.direction * np.asarray(self.spacing)[None, :]).T + np.asarray(
            self.origin
        )

    def with_array(self, array: np.ndarray) -> Volume:
        """A new volume with the same geometry and another array of the same shape."""
        array = np.asarray(array)
        if array.shape != self.shape:
            raise ValueError(f"array shape must equal the volume's {self.shape}, got {array.shape}")
        return replace(self, array=array)

    def same_geometry(self, other: Volume, atol: float = 1e-4) -> bool:
        """Whether ``other`` has the same shape, spacing, origin and direction."""
        return (
            self.shape == other.shape
            and np.allclose(self.spacing, other.spacing, atol=atol)
            and np.allclose(self.origin, other.origin, atol=atol)
            and np.allclose(self.direction, other.direction, atol=atol)
        )

    def require_same_geometry(self, other: Volume, what: str = "volumes") -> None:
        """Raise ``ValueError`` describing the difference unless geometries match."""
        if not self.same_geometry(other):
            raise ValueError(
                f"{what} must share one geometry, got shape {self.shape} vs {other.shape}, "
                f"spacing {self.spacing} vs {other.spacing}, origin {self.origin} vs "
                f"{other.origin}"
            )

    def __repr__(self) -> str:
        return (
            f"Volume(shape={self.shape}, dtype={self.array.dtype}, "
            f"spacing={tuple(round(s, 4) for s in self.spacing)})"
        )


@dataclass(frozen=True, eq=False)
class Case:
    """One scan: an image, its optional label, and where it comes from.

    Parameters
    ----------
    case_id : str
        Unique identifier (file stem in nnU-Net layouts).
    image : Volume
        The scan.
    label : Volume or None
        Integer label map in FLARE order, on the image's grid.
    modality : {"CT", "MR"}
    sequence : str or None
        MR sequence, e.g. ``"T1"`` or ``"T2"``; ``None`` for CT or unknown.
    annotated : tuple of int
        FLARE labels (1..13) the source label map can contain. An organ not in
        this tuple is *unknown* in ``label`` (not background): training must
        ignore it. Defaults to all 13 organs.
    """

    case_id: str
    image: Volume
    label: Volume | None = None
    modality: str = "CT"
    sequence: str | None = None
    annotated: tuple[int, ...] = tuple(range(1, 14))

    def __post_init__(self) -> None:
        if not isinstance(self.case_id, str) or not self.case_id:
            raise ValueError(f"case_id must be a non-empty str, got {self.case_id!r}")
        if not isinstance(self.image, Volume):
            raise TypeError(f"image must be a Volume, got {type(self.image).__name__}")
        require_choice(self.modality, MODALITIES, "modality")
        annotated = tuple(sorted(int(a) for a in self.annotated))
        bad = [a for a in annotated if not 1 <= a <= 13]
        if bad:
            raise ValueError(f"annotated organs must be FLARE labels 1..13, got {bad}")
        object.__setattr__(self, "annotated", annotated)
        if self.label is not None:
            if not isinstance(self.label, Volume):
                raise TypeError(f"label must be a Volume or None, got {type(self.label).__name__}")
            if not np.issubdtype(self.label.array.dtype, np.integer):
                raise ValueError(
                    f"label of case {self.case_id!r} must hold integers, "
                    f"got {self.label.array.dtype}"
                )
            self.image.require_same_geometry(
                self.label, f"image and label of case {self.case_id!r}"
            )

    def with_label(self, label: Volume | None, annotated: Iterable[int] | None = None) -> Case:
        """A copy with another label (and optionally another annotated set)."""
        return replace(
            self,
            label=label,
            annotated=tuple(annotated) if annotated is not None else self.annotated,
        )

    def with_image(self, image: Volume) -> Case:
        """A copy with another image on the same grid."""
        return replace(self, image=image)
