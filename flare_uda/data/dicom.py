"""Read one DICOM series folder, refusing damaged files and uneven slice positions.

GDCM leaves a file it cannot parse (e.g. a truncated slice) out of the series
without a word, and ITK then reads the remaining slices with their *average*
spacing (only a warning on the console). Both give a volume on a wrong grid,
so :func:`read_dicom_series` checks that every DICOM file of the folder is in
the series and that the slice positions are evenly spaced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from flare_uda.data.integrity import CorruptFileError

SLICE_TOLERANCE_MM = 0.01
SLICE_TOLERANCE_REL = 0.01
"""A slice step may differ from the mean step by ``max(0.01 mm, 1 %)``."""


def _looks_like_dicom(path: Path) -> bool:
    if path.name.startswith(".") or not path.is_file():
        return False
    if path.suffix.lower() == ".dcm":
        return True
    with open(path, "rb") as fh:
        fh.seek(128)
        return fh.read(4) == b"DICM"


def is_dicom_folder(folder: Path) -> bool:
    """Whether ``folder`` directly holds at least one DICOM file (``.dcm`` or ``DICM`` magic)."""
    return folder.is_dir() and any(_looks_like_dicom(p) for p in folder.iterdir())


def series_files(folder: Path) -> list[str]:
    """The files of the single DICOM series in ``folder``, in slice order.

    Raises
    ------
    ValueError
        No series, several series, or a DICOM file that is not part of the series
        (:class:`~flare_uda.data.integrity.CorruptFileError`: unreadable, e.g. truncated).
    """
    series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise ValueError(f"expected a DICOM series in folder {folder}, found none")
    if len(series) > 1:
        raise ValueError(
            f"expected one DICOM series in folder {folder}, found {len(series)}: {list(series)}"
        )
    files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series[0]))
    listed = {Path(f).resolve() for f in files}
    left_out = sorted(
        p.name for p in folder.iterdir() if _looks_like_dicom(p) and p.resolve() not in listed
    )
    if left_out:
        raise CorruptFileError(
            f"DICOM folder {folder}: expected every DICOM file to be a readable slice of the "
            f"series, got {len(left_out)} unreadable or foreign file(s): {left_out[:5]}"
        )
    return files


def slice_positions(reader: sitk.ImageSeriesReader, n: int) -> np.ndarray | None:
    """Position (mm) of each slice along the slice normal, or ``None`` without position tags."""
    positions, normal = [], None
    for i in range(n):
        if not (reader.HasMetaDataKey(i, "0020|0032") and reader.HasMetaDataKey(i, "0020|0037")):
            return None
        cosines = np.array([float(v) for v in reader.GetMetaData(i, "0020|0037").split("\\")])
        if normal is None:
            normal = np.cross(cosines[:3], cosines[3:])
        position = np.array([float(v) for v in reader.GetMetaData(i, "0020|0032").split("\\")])
        positions.append(float(position @ normal))
    return np.asarray(positions)


def require_even_slices(positions: np.ndarray, folder: Path) -> None:
    """Raise ``ValueError`` unless slice positions step evenly (no gap, no duplicate).

    Parameters
    ----------
    positions : np.ndarray, shape (n,)
        Slice positions along the normal (mm), in reading order.
    """
    if positions.size < 3:
        return
    steps = np.abs(np.diff(positions))
    mean = float(steps.mean())
    worst = int(np.argmax(np.abs(steps - mean)))
    if abs(steps[worst] - mean) > max(SLICE_TOLERANCE_MM, SLICE_TOLERANCE_REL * mean):
        raise ValueError(
            f"DICOM series {folder}: expected evenly spaced slices, got a step of "
            f"{steps[worst]:.4g} mm between slices {worst} and {worst + 1} where the mean "
            f"step is {mean:.4g} mm (a missing or duplicate slice?)"
        )


def read_dicom_series(folder: str | Path) -> sitk.Image:
    """Read the single DICOM series of ``folder`` after checking it (see module doc)."""
    folder = Path(folder)
    reader = sitk.ImageSeriesReader()
    files = series_files(folder)
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # uneven spacing: our error, not a warning
    try:
        image = reader.Execute()
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings)
    positions = slice_positions(reader, len(files))
    if positions is not None:
        require_even_slices(positions, folder)
    return image
