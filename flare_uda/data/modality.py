"""Is a scan CT or MR, and which MR sequence: from headers where present, else intensities.

- :func:`dicom_tags`: a few header tags of a DICOM series (its first file).
- :func:`looks_like_ct`: why a scan is CT (the DICOM ``Modality`` tag, or Hounsfield
  intensities: much air at about -1000), or ``None``.
- :func:`sequence_from_dicom`: ``"T1"``/``"T2"`` from the series description or
  protocol name, else from repetition and echo times; ``None`` when unclear.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

TAGS = {
    "modality": "0008|0060",
    "series_description": "0008|103e",
    "protocol_name": "0018|1030",
    "sequence_name": "0018|0024",
    "repetition_time": "0018|0080",
    "echo_time": "0018|0081",
}
"""Header tags read from DICOM series (name -> group|element)."""

AIR_HU = -800.0
CT_AIR_FRACTION = 0.1
CT_MIN_HU = -900.0
"""A scan is CT-like when >= 10 % of its voxels lie below -800 and its minimum is <= -900:
Hounsfield air. MR magnitudes are non-negative (up to noise)."""

_T1 = re.compile(r"(?<![a-z0-9])t1|vibe|flash|lava|thrive|mprage|dixon|in[ _-]?phase|opp", re.I)
_T2 = re.compile(r"(?<![a-z0-9])t2|haste|ssfse|spir|stir|tse|fse|blade|trufi|fiesta", re.I)


def dicom_tags(folder: str | Path) -> dict[str, str]:
    """:data:`TAGS` present in the first file of the DICOM series in ``folder`` (name -> value)."""
    import SimpleITK as sitk

    from flare_uda.data.dicom import series_files

    reader = sitk.ImageFileReader()
    reader.SetFileName(series_files(Path(folder))[0])
    reader.ReadImageInformation()
    keys = set(reader.GetMetaDataKeys())
    return {name: reader.GetMetaData(tag).strip() for name, tag in TAGS.items() if tag in keys}


def looks_like_ct(array: np.ndarray, tags: dict[str, str] | None = None) -> str | None:
    """Why the scan is CT (a sentence), or ``None`` when it does not look like CT.

    Parameters
    ----------
    array : np.ndarray, "z y x"
        The image's voxels.
    tags : dict, optional
        :func:`dicom_tags` of its series; ``Modality`` decides when present.
    """
    modality = (tags or {}).get("modality", "").upper()
    if modality:
        return f"its DICOM Modality tag (0008,0060) is {modality!r}" if modality == "CT" else None
    values = np.asarray(array)
    low = float(np.mean(values < AIR_HU))
    minimum = float(values.min())
    if low >= CT_AIR_FRACTION and minimum <= CT_MIN_HU:
        return (
            f"its intensities are Hounsfield units ({100 * low:.0f} % of voxels below "
            f"{AIR_HU:.0f}, minimum {minimum:.0f})"
        )
    return None


def _time(tags: dict[str, str], name: str) -> float | None:
    try:
        return float(tags[name].split("\\")[0])
    except (KeyError, ValueError, IndexError):
        return None


def sequence_from_dicom(tags: dict[str, str]) -> str | None:
    """``"T1"`` or ``"T2"`` from a series' header tags; ``None`` when they do not say.

    The series description, protocol and sequence names are searched for sequence
    words (``t1``, ``vibe``, ``dixon``, ...; ``t2``, ``haste``, ``spir``, ...); when
    they name one kind only, it wins. Otherwise short TR (<= 1000 ms) with short TE
    (<= 30 ms) is T1 and long TR (>= 1500 ms) with long TE (>= 60 ms) is T2.
    """
    text = " ".join(tags.get(k, "") for k in ("series_description", "protocol_name"))
    text += " " + tags.get("sequence_name", "")
    t1, t2 = bool(_T1.search(text)), bool(_T2.search(text))
    if t1 != t2:
        return "T1" if t1 else "T2"
    tr, te = _time(tags, "repetition_time"), _time(tags, "echo_time")
    if tr is not None and te is not None:
        if tr <= 1000 and te <= 30:
            return "T1"
        if tr >= 1500 and te >= 60:
            return "T2"
    return None
