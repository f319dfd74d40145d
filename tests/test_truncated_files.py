"""A file cut short or damaged fails on read, in every supported format; a complete one reads."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import SimpleITK as sitk
from io_support import write_dicom_series

from flare_uda.data.integrity import CorruptFileError, verify_file
from flare_uda.data.io import read_label, read_volume

# (file name, compress): every READ_SUFFIXES format, raw and compressed where it has both
FORMATS = [
    ("scan.nii.gz", True),
    ("scan.nii", False),
    ("scan.mha", False),
    ("scan.mha", True),
    ("scan.mhd", False),
    ("scan.mhd", True),
    ("scan.nrrd", False),
    ("scan.nrrd", True),
    ("scan.nhdr", False),
]


@pytest.fixture
def labels() -> np.ndarray:
    """A label-like int16 array: mostly zeros, so a zero-filled tail would look plausible."""
    array = np.zeros((12, 20, 24), np.int16)
    array[3:9, 5:15, 6:18] = np.random.default_rng(3).integers(1, 14, (6, 10, 12))
    return array


def write(tmp_path, name: str, compress: bool, array: np.ndarray):
    """Write ``array`` with SimpleITK; return the file holding the voxel data."""
    path = tmp_path / name
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path), useCompression=compress)
    data = [p for p in tmp_path.iterdir() if p.suffix in (".raw", ".zraw")]
    return path, (data[0] if data else path)


@pytest.mark.parametrize("name, compress", FORMATS)
def test_complete_files_read_exactly(tmp_path, labels, name, compress):
    path, _ = write(tmp_path, name, compress, labels)
    verify_file(path)
    np.testing.assert_array_equal(read_volume(path).array, labels)
    np.testing.assert_array_equal(read_label(path).array, labels)


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
@pytest.mark.parametrize("name, compress", FORMATS)
def test_truncated_files_fail(tmp_path, labels, name, compress, keep):
    path, data = write(tmp_path, name, compress, labels)
    content = data.read_bytes()
    data.write_bytes(content[: int(len(content) * keep)])
    with pytest.raises(ValueError, match=f"could not read .*{path.suffix[1:]}|of {path.name}"):
        read_volume(path)
    with pytest.raises(ValueError, match="could not read"):
        read_label(path)


@pytest.mark.parametrize(
    "name, compress", [(n, c) for n, c in FORMATS if c or n.endswith(".nii.gz")]
)
def test_damaged_compressed_data_fails(tmp_path, labels, name, compress):
    path, data = write(tmp_path, name, compress, labels)
    content = bytearray(data.read_bytes())
    middle = len(content) - 200  # inside the compressed voxels, before any trailer
    content[middle : middle + 8] = bytes(255 - b for b in content[middle : middle + 8])
    data.write_bytes(bytes(content))
    with pytest.raises(CorruptFileError, match="truncated or corrupt, expected valid compressed"):
        read_volume(path)


def test_nifti_cut_inside_its_header(tmp_path, labels):
    path, _ = write(tmp_path, "scan.nii.gz", True, labels)
    header = gzip.decompress(path.read_bytes())[:200]
    path.write_bytes(gzip.compress(header))
    with pytest.raises(CorruptFileError, match=r"expected a 348-byte NIfTI header, got 200 bytes"):
        read_volume(path)


def test_multi_member_gzip_and_zero_padding_accepted(tmp_path, labels):
    path, _ = write(tmp_path, "scan.nii.gz", True, labels)
    raw = gzip.decompress(path.read_bytes())
    half = len(raw) // 2
    path.write_bytes(gzip.compress(raw[:half]) + gzip.compress(raw[half:]) + b"\0" * 16)
    np.testing.assert_array_equal(read_volume(path).array, labels)
    path.write_bytes(gzip.compress(raw) + b"junk")
    with pytest.raises(CorruptFileError, match="expected the end of file .*, got more bytes"):
        read_volume(path)


def test_not_a_nifti_file(tmp_path):
    path = tmp_path / "notes.nii.gz"
    path.write_bytes(gzip.compress(b"some text, not an image" * 30))
    with pytest.raises(ValueError, match=r"notes.nii.gz: expected a NIfTI header .*NIfTI file\?"):
        read_volume(path)


def test_missing_detached_data_file(tmp_path, labels):
    path, data = write(tmp_path, "scan.mhd", False, labels)
    data.unlink()
    with pytest.raises(CorruptFileError, match=f"expected its data file {data.name}, got no such"):
        read_volume(path)


@pytest.mark.parametrize("which", [0, 4, -1])
def test_truncated_dicom_slice_fails(tmp_path, which):
    """GDCM leaves a damaged slice out of the series silently, even the first or last one."""
    array = np.random.default_rng(1).integers(-500, 500, (6, 8, 9)).astype(np.int16)
    write_dicom_series(tmp_path / "s", array, (2.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    victim = sorted((tmp_path / "s").iterdir())[which]
    victim.write_bytes(victim.read_bytes()[:-40])
    with pytest.raises(CorruptFileError, match=rf"unreadable or foreign .*{victim.name}"):
        read_volume(tmp_path / "s")
