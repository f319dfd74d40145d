"""Reading and writing volumes with SimpleITK, geometry preserved exactly.

Reads NIfTI, MHA/MHD, NRRD and DICOM series folders; writes NIfTI and MHA.
Writes are atomic: a temporary file in the target folder, then a rename.
SimpleITK already does the format work; what is written here is the (z, y, x)
convention of :class:`~flare_uda.volume.Volume`, label checks and atomicity.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from flare_uda._atomic import atomic_path, is_hidden_or_temporary
from flare_uda._validation import require_finite, require_ndim, require_spacing_in_range
from flare_uda.data.integrity import verify_file
from flare_uda.data.labels import check_label_values, remap_to_flare
from flare_uda.volume import Volume

READ_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr")
WRITE_SUFFIXES = (".nii.gz", ".nii", ".mha")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for s in sorted(READ_SUFFIXES, key=len, reverse=True):
        if name.endswith(s):
            return s
    return path.suffix.lower()


def is_volume_file(path: Path, suffixes: tuple[str, ...] = READ_SUFFIXES) -> bool:
    """Whether ``path`` is a volume file to read as input: a known suffix, not hidden or temporary.

    Hidden names cover this package's own temporaries (``.NAME.<pid>-<hex>.tmp.nii.gz``,
    left by a killed run) and macOS ``._NAME`` companions.
    """
    return (
        path.name.lower().endswith(suffixes)
        and not is_hidden_or_temporary(path)
        and not path.is_dir()
    )


def list_volume_files(
    folder: str | os.PathLike, suffixes: tuple[str, ...] = READ_SUFFIXES
) -> list[Path]:
    """The volume files directly inside ``folder``, sorted (see :func:`is_volume_file`)."""
    return sorted(p for p in Path(folder).iterdir() if is_volume_file(p, suffixes))


def from_sitk(image: sitk.Image) -> Volume:
    """Convert a 3D SimpleITK image into a :class:`Volume` ((x, y, z) -> (z, y, x))."""
    if image.GetDimension() != 3:
        raise ValueError(f"expected a 3D image, got {image.GetDimension()}D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(
            f"expected a scalar image, got {image.GetNumberOfComponentsPerPixel()} components"
        )
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)[::-1, ::-1]
    return Volume(
        array=sitk.GetArrayFromImage(image),
        spacing=image.GetSpacing()[::-1],
        origin=image.GetOrigin()[::-1],
        direction=direction.copy(),
    )


def to_sitk(volume: Volume) -> sitk.Image:
    """Convert a :class:`Volume` into a SimpleITK image with the same geometry."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.array))
    image.SetSpacing(volume.spacing[::-1])
    image.SetOrigin(volume.origin[::-1])
    image.SetDirection(tuple(volume.direction[::-1, ::-1].ravel().tolist()))
    return image


def _itk_reason(err: RuntimeError) -> str:
    """The informative line of an ITK exception (its ``ERROR:`` line, without source paths)."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    for ln in lines:
        if "ERROR:" in ln:
            return re.sub(r"^.*?ERROR:\s*(\w+\(0x[0-9a-f]+\):\s*)?", "", ln)
    return lines[-1] if lines else type(err).__name__


def _read_sitk(path: Path) -> sitk.Image:
    """Read a file or DICOM folder after checking it is complete (:mod:`.integrity`)."""
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_dir():
        from flare_uda.data.dicom import read_dicom_series

        try:
            return read_dicom_series(path)
        except RuntimeError as err:
            raise ValueError(
                f"could not read DICOM series {path}: expected readable slices, "
                f"got '{_itk_reason(err)}'"
            ) from err
    if _suffix(path) not in READ_SUFFIXES:
        raise ValueError(
            f"unsupported file type {path.name!r}: expected one of {READ_SUFFIXES} "
            "or a DICOM folder"
        )
    if _suffix(path) in (".mha", ".mhd"):
        verify_file(path)  # first: ITK's MetaImage reader prints to the console on short files
        return _read_file(path)
    with ThreadPoolExecutor(1) as pool:  # the check inflates the file again, beside ITK
        check = pool.submit(verify_file, path)
        try:
            image = _read_file(path)
        except ValueError:
            check.result()  # a truncated file says so, not ITK's guess
            raise
        check.result()
    return image


def _read_file(path: Path) -> sitk.Image:
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise ValueError(
            f"could not read {path}: expected a {_suffix(path)} image, got '{_itk_reason(err)}'"
        ) from err


def _checked_volume(path: Path, image: sitk.Image, what: str) -> Volume:
    """``image`` as a Volume, refusing non-3D, vector and out-of-range geometry; names ``path``."""
    if image.GetDimension() != 3:
        raise ValueError(
            f"{what} {path} must be a 3D volume, got {image.GetDimension()}D "
            f"(size {image.GetSize()})"
        )
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(
            f"{what} {path} must be a scalar image (one value per voxel), got "
            f"{image.GetNumberOfComponentsPerPixel()} components (a vector or RGB image)"
        )
    require_spacing_in_range(image.GetSpacing()[::-1], f"{what} {path}")
    try:
        return from_sitk(image)
    except ValueError as err:
        raise ValueError(f"{what} {path}: {err}") from err


def _require_finite_nifti(path: Path, image: sitk.Image, what: str) -> None:
    """Refuse NaN/inf voxels of a floating-point NIfTI file.

    ITK 5's NIfTI reader silently replaces every NaN and +-inf voxel by 0
    (``nifti_read_buffer``; fixed only in ITK 6, InsightSoftwareConsortium/ITK
    PR 6683), so the array SimpleITK returns cannot show them. nibabel (a
    dependency of nnunetv2) reads the raw values; this costs a second read of
    float NIfTI files only (integer images, the common CT case, skip it).
    """
    if _suffix(path) not in (".nii", ".nii.gz"):
        return
    if image.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        return
    import nibabel

    dataobj = nibabel.load(str(path)).dataobj
    raw = dataobj.get_unscaled() if hasattr(dataobj, "get_unscaled") else np.asarray(dataobj)
    require_finite(np.asarray(raw), what)


def read_volume(path: str | os.PathLike) -> Volume:
    """Read an image volume (file or DICOM series folder).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it is unreadable, truncated or corrupt, not a scalar 3D volume, has a
        spacing outside :data:`~flare_uda._validation.SPACING_RANGE_MM` or a
        direction that is not orthonormal, or holds NaN/inf voxels.
    """
    path = Path(path)
    image = _read_sitk(path)
    volume = _checked_volume(path, image, "image")
    _require_finite_nifti(path, image, f"image {path.name}")
    require_finite(volume.array, f"image {path.name}")
    return volume


def as_integer_labels(array: np.ndarray, what: str = "label") -> np.ndarray:
    """Return labels as integers; float-stored labels must be integral.

    Raises
    ------
    ValueError
        If float values are not integral (e.g. an interpolated label map), or non-finite.
    """
    arr = np.asarray(array)
    if np.issubdtype(arr.dtype, np.integer):
        return arr
    if np.issubdtype(arr.dtype, np.bool_):
        return arr.astype(np.uint8)
    require_finite(arr, what)
    rounded = np.rint(arr)
    if not np.array_equal(rounded, arr):
        frac = arr[rounded != arr]
        raise ValueError(
            f"{what} must hold integral values, got {frac.size} non-integral voxels "
            f"(e.g. {float(frac[0]):.4g}); was it resampled with linear interpolation?"
        )
    if rounded.min() < 0:
        raise ValueError(f"{what} must be non-negative, got minimum {rounded.min():.0f}")
    return rounded.astype(np.uint16 if rounded.max() > 255 else np.uint8)


def read_label(path: str | os.PathLike, label_map: str = "flare") -> Volume:
    """Read a label volume and convert it into FLARE order.

    Parameters
    ----------
    path : path-like
        Label file.
    label_map : str
        Source label map name (``"flare"``, ``"amos"``, ``"total"``, ...).

    Returns
    -------
    Volume of uint8
        FLARE labels, same geometry as the file.
    """
    path = Path(path)
    image = _read_sitk(path)
    volume = _checked_volume(path, image, "label")
    _require_finite_nifti(path, image, f"label {path.name}")
    labels = as_integer_labels(volume.array, f"label {path.name}")
    check_label_values(labels, label_map, f"label {path.name}")
    return volume.with_array(remap_to_flare(labels, label_map))


def write_volume(volume: Volume, path: str | os.PathLike, is_label: bool = False) -> Path:
    """Write ``volume`` to ``path`` (.nii.gz, .nii or .mha) atomically.

    Labels are written as unsigned integers (uint8, or uint16 above 255).
    The parent folder is created. Returns the path written.
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix not in WRITE_SUFFIXES:
        raise ValueError(f"can write {WRITE_SUFFIXES}, got {path.name!r}")
    require_ndim(volume.array, 3, "volume to write")
    array = volume.array
    if is_label:
        array = as_integer_labels(array, f"label for {path.name}")
        array = array.astype(np.uint16 if array.max(initial=0) > 255 else np.uint8)
    elif array.dtype == np.float64:
        array = array.astype(np.float32)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8)
    image = to_sitk(volume.with_array(array))
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=suffix != ".nii")
    return path
