"""Test helpers that write image files the way scanners and other tools do."""

from __future__ import annotations

import time

import numpy as np
import SimpleITK as sitk


def write_dicom_series(folder, array: np.ndarray, spacing, origin, series: int = 1) -> None:
    """Write a (z, y, x) int16 array as an axial CT DICOM series (SimpleITK's recipe)."""
    folder.mkdir()
    image = sitk.GetImageFromArray(array.astype(np.int16))
    image.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    image.SetOrigin(tuple(float(o) for o in origin[::-1]))
    stamp = time.strftime("%Y%m%d"), time.strftime("%H%M%S")
    uid = "1.2.826.0.1.3680043.2.1125." + stamp[0] + stamp[1]
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(array.shape[0]):
        sl = image[:, :, k]
        tags = {
            "0008|0060": "CT",
            "0008|0031": stamp[1],
            "0008|0021": stamp[0],
            "0020|000d": uid + ".1",
            "0020|000e": f"{uid}.{series + 1}",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0032": "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k)))),
            "0020|0013": str(k),
            "0018|0050": str(spacing[0]),
        }
        for tag, value in tags.items():
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(sl)
