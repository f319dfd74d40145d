"""Test helpers that write image files the way scanners and other tools do."""

from __future__ import annotations

import contextlib
import locale
import subprocess
import time

import numpy as np
import pytest
import SimpleITK as sitk


def write_dicom_series(
    folder, array: np.ndarray, spacing, origin, series: int = 1, tags: dict | None = None
) -> None:
    """Write a (z, y, x) int16 array as an axial CT DICOM series (SimpleITK's recipe).

    ``tags`` (group|element -> value) are added to or replace the slices' tags
    (e.g. ``{"0008|0060": "MR", "0008|103e": "T2 HASTE"}``).

    GDCM's writer sets the C locale (LC_CTYPE "C": Python's default text encoding
    becomes ASCII); the locale is put back afterwards.
    """
    ctype = locale.setlocale(locale.LC_CTYPE)
    try:
        _write_dicom_series(folder, array, spacing, origin, series, tags or {})
    finally:
        locale.setlocale(locale.LC_CTYPE, ctype)


def _write_dicom_series(folder, array: np.ndarray, spacing, origin, series: int, extra) -> None:
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
            **extra,
        }
        for tag, value in tags.items():
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(sl)


def write_mha(path, header_edits: dict[str, str]) -> None:
    """A small MHA whose header lines are replaced by ``header_edits`` (key -> value)."""
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 6), np.uint8)), str(path))
    head, _, data = path.read_bytes().partition(b"ElementDataFile = LOCAL\n")
    lines = []
    for line in head.decode().splitlines():
        key = line.split(" = ")[0]
        lines.append(f"{key} = {header_edits[key]}" if key in header_edits else line)
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"ElementDataFile = LOCAL\n" + data)


def _writable(path) -> bool:
    probe = path / ".probe"
    try:
        probe.touch()
    except OSError:
        return False
    probe.unlink()
    return True


@contextlib.contextmanager
def read_only_folder(path, skip: bool = True):
    """Make ``path`` unwritable, even for root (``chattr +i``), for the ``with`` block.

    Yields ``path``, or ``None`` where this system cannot (root without
    ``chattr``); with ``skip`` the test is skipped then.
    """
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o555)
    immutable = False
    if _writable(path):
        chattr = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        immutable = chattr.returncode == 0
    try:
        if _writable(path) and skip:
            pytest.skip("cannot make a folder read-only here (root without chattr)")
        yield None if _writable(path) else path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o755)
