"""IO: geometry round trips (NIfTI, MHA), other readers (NRRD, MHD, DICOM), labels."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from io_support import write_dicom_series

from flare_uda.data.io import (
    as_integer_labels,
    from_sitk,
    read_label,
    read_volume,
    to_sitk,
    write_volume,
)
from flare_uda.volume import Volume

F32_EPS = float(np.finfo(np.float32).eps)


def random_header(rng: np.random.Generator, flip: bool):
    """Random spacing (0.3-8 mm), origin (+-500 mm) and orthonormal direction."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    direction = q * np.sign(np.diag(r))
    if flip:  # det -1: a left-handed grid, common in DICOM-derived NIfTI
        direction[:, 0] *= -1
    spacing = tuple(rng.uniform(0.3, 8.0, 3))
    origin = tuple(rng.uniform(-500.0, 500.0, 3))
    return spacing, origin, direction


def as_f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def test_sitk_conversion_keeps_the_physical_mapping(rng):
    spacing, origin, direction = random_header(rng, flip=True)
    vol = Volume(rng.normal(size=(3, 4, 5)), spacing, origin, direction)
    image = to_sitk(vol)
    assert image.GetSize() == (5, 4, 3)
    for index in [(0, 0, 0), (2, 3, 4), (1, 0, 3)]:
        physical = np.asarray(image.TransformIndexToPhysicalPoint(index[::-1]))[::-1]
        np.testing.assert_allclose(vol.index_to_physical(np.array(index)), physical, atol=1e-9)
        assert image[index[::-1]] == vol.array[index]
    back = from_sitk(image)
    assert back.spacing == vol.spacing and back.origin == vol.origin
    np.testing.assert_array_equal(back.direction, vol.direction)


def test_mha_geometry_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(10)
    for i in range(100):
        spacing, origin, direction = random_header(rng, flip=bool(i % 2))
        vol = Volume(rng.normal(size=(3, 4, 5)).astype(np.float32), spacing, origin, direction)
        back = read_volume(write_volume(vol, tmp_path / "v.mha"))
        assert back.spacing == vol.spacing and back.origin == vol.origin
        np.testing.assert_array_equal(back.direction, vol.direction)
        np.testing.assert_array_equal(back.array, vol.array)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_nifti_geometry_round_trip_to_float32(tmp_path, suffix):
    """NIfTI stores pixdim, qoffset and the sform in float32: what "exact" means there.

    Spacing and origin come back as exactly the float32 rounding of what was
    written (so a float32-representable header round-trips bit for bit); the
    direction (quaternion / sform, float32) within float32 epsilon.
    """
    rng = np.random.default_rng(11)
    for i in range(100):
        spacing, origin, direction = random_header(rng, flip=bool(i % 2))
        vol = Volume(rng.normal(size=(3, 4, 5)).astype(np.float32), spacing, origin, direction)
        back = read_volume(write_volume(vol, tmp_path / f"v{suffix}"))
        np.testing.assert_array_equal(back.spacing, as_f32(spacing))
        np.testing.assert_array_equal(back.origin, as_f32(origin))
        np.testing.assert_allclose(back.direction, direction, rtol=0, atol=F32_EPS)
        np.testing.assert_array_equal(back.array, vol.array)
    exact = Volume(np.zeros((2, 2, 2), np.float32), (2.5, 0.75, 0.5), (-100.25, 3.5, 7.0))
    back = read_volume(write_volume(exact, tmp_path / f"exact{suffix}"))
    assert back.same_geometry(exact, atol=0)


@pytest.mark.parametrize("suffix", [".nrrd", ".mhd"])
def test_read_nrrd_and_mhd(tmp_path, suffix):
    array = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.123456789, 0.7, 3.3))  # (x, y, z)
    image.SetOrigin((-12.3456789, 1e-3, 400.1))
    image.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, 1))
    sitk.WriteImage(image, str(tmp_path / f"x{suffix}"))
    vol = read_volume(tmp_path / f"x{suffix}")
    np.testing.assert_array_equal(vol.array, array)
    assert vol.spacing == (3.3, 0.7, 0.123456789)
    assert vol.origin == (400.1, 1e-3, -12.3456789)
    # array axis x (column 2) points along physical -y; axis y along physical +x
    np.testing.assert_array_equal(vol.direction, [[1, 0, 0], [0, 0, -1], [0, 1, 0]])


def test_read_dicom_series_folder(tmp_path):
    rng = np.random.default_rng(12)
    array = rng.integers(-1000, 1000, size=(5, 6, 7)).astype(np.int16)
    write_dicom_series(tmp_path / "series", array, (2.5, 0.5, 0.75), (10.0, -20.0, 30.0))
    vol = read_volume(tmp_path / "series")
    np.testing.assert_array_equal(vol.array, array)
    np.testing.assert_allclose(vol.spacing, (2.5, 0.5, 0.75), atol=1e-6)
    np.testing.assert_allclose(vol.origin, (10.0, -20.0, 30.0), atol=1e-6)
    np.testing.assert_allclose(vol.direction, np.eye(3), atol=1e-9)


def test_labels_written_as_integers_and_float_integral_labels_accepted(tmp_path):
    lab = np.zeros((3, 4, 5), np.float64)
    lab[1, 1:3, 1:4] = 13
    lab[2, 0, 0] = 1
    path = write_volume(Volume(lab, (2, 1, 1)), tmp_path / "lab.nii.gz", is_label=True)
    assert sitk.ReadImage(str(path)).GetPixelID() == sitk.sitkUInt8
    # a float-stored label file (as CHAOS T2 ships) reads through the integral path
    sitk.WriteImage(sitk.GetImageFromArray(lab), str(tmp_path / "float_lab.nii.gz"))
    for p in (path, tmp_path / "float_lab.nii.gz"):
        back = read_label(p)
        assert back.array.dtype == np.uint8
        np.testing.assert_array_equal(back.array, lab.astype(np.uint8))
    big = Volume(np.full((1, 1, 2), 300, np.int32))
    written = write_volume(big, tmp_path / "big.mha", is_label=True)
    assert sitk.ReadImage(str(written)).GetPixelID() == sitk.sitkUInt16


def test_read_label_remaps_amos_to_flare(tmp_path):
    amos = np.array([0, 1, 2, 3, 6, 13, 14, 15], dtype=np.uint8).reshape(1, 2, 4)
    sitk.WriteImage(sitk.GetImageFromArray(amos), str(tmp_path / "amos.nii.gz"))
    flare = read_label(tmp_path / "amos.nii.gz", "amos")
    # AMOS 1 spleen -> 3, 2 rkid -> 2, 3 lkid -> 13, 6 liver -> 1, 13 duodenum -> 12,
    # 14 bladder / 15 prostate -> background
    np.testing.assert_array_equal(flare.array.ravel(), [0, 3, 2, 13, 1, 12, 0, 0])


def test_write_converts_dtypes_and_is_atomic(tmp_path):
    vol = Volume(np.ones((2, 2, 2), np.float64))
    path = write_volume(vol, tmp_path / "sub" / "img.mha")
    assert sitk.ReadImage(str(path)).GetPixelID() == sitk.sitkFloat32
    mask = write_volume(Volume(np.ones((2, 2, 2), bool)), tmp_path / "mask.nii.gz")
    assert sitk.ReadImage(str(mask)).GetPixelID() == sitk.sitkUInt8
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "img.mha",
        "mask.nii.gz",
    ]


def test_as_integer_labels():
    assert as_integer_labels(np.array([True, False])).dtype == np.uint8
    ints = np.array([1, 2], np.int64)
    assert as_integer_labels(ints) is ints
    assert as_integer_labels(np.array([0.0, 500.0])).dtype == np.uint16


# ------------------------------------------------------------------ bad input (item 10)
def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder: .*nope.nii.gz"):
        read_volume(tmp_path / "nope.nii.gz")
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        read_label(tmp_path / "nope.mha")


def test_unreadable_and_unsupported_files(tmp_path):
    (tmp_path / "bad.nii.gz").write_bytes(b"not a nifti" * 10)
    with pytest.raises(ValueError, match="could not read .*bad.nii.gz"):
        read_volume(tmp_path / "bad.nii.gz")
    (tmp_path / "empty.mha").write_bytes(b"")
    with pytest.raises(ValueError, match="could not read .*empty.mha"):
        read_label(tmp_path / "empty.mha")
    (tmp_path / "scan.png").write_bytes(b"x")
    with pytest.raises(ValueError, match="unsupported file type 'scan.png': expected one of"):
        read_volume(tmp_path / "scan.png")
    (tmp_path / "no_dicom").mkdir()
    with pytest.raises(
        ValueError, match="expected a DICOM series in folder .*no_dicom, found none"
    ):
        read_volume(tmp_path / "no_dicom")
    with pytest.raises(ValueError, match=r"can write \('.nii.gz', '.nii', '.mha'\), got 'x.nrrd'"):
        write_volume(Volume(np.zeros((2, 2, 2))), tmp_path / "x.nrrd")


def test_two_dicom_series_in_one_folder_refused(tmp_path):
    array = np.zeros((2, 3, 3), np.int16)
    write_dicom_series(tmp_path / "a", array, (2.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    write_dicom_series(tmp_path / "b", array, (2.0, 1.0, 1.0), (0.0, 0.0, 0.0), series=2)
    for f in (tmp_path / "b").iterdir():
        f.rename(tmp_path / "a" / f"b_{f.name}")
    with pytest.raises(ValueError, match="expected one DICOM series in folder .*, found 2"):
        read_volume(tmp_path / "a")


def test_2d_and_4d_files_refused(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, 4), np.float32)), str(tmp_path / "2d.mha"))
    with pytest.raises(ValueError, match="2d.mha must be a 3D volume, got 2D"):
        read_volume(tmp_path / "2d.mha")
    with pytest.raises(ValueError, match="label .*2d.mha must be a 3D volume, got 2D"):
        read_label(tmp_path / "2d.mha")
    frame = sitk.GetImageFromArray(np.zeros((2, 3, 4), np.float32))
    sitk.WriteImage(sitk.JoinSeries([frame, frame]), str(tmp_path / "4d.nii.gz"))
    with pytest.raises(ValueError, match="4d.nii.gz must be a 3D volume, got 4D"):
        read_volume(tmp_path / "4d.nii.gz")
    vector = sitk.GetImageFromArray(np.zeros((2, 3, 4, 3), np.float32), isVector=True)
    sitk.WriteImage(vector, str(tmp_path / "rgb.mha"))
    with pytest.raises(ValueError, match=r"rgb.mha must be a scalar image .*, got 3 components"):
        read_volume(tmp_path / "rgb.mha")
    with pytest.raises(ValueError, match=r"volume to write must be 3D \(z, y, x\), got 2D"):
        write_volume(type("V", (), {"array": np.zeros((2, 2))})(), tmp_path / "x.mha")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_voxels_refused(tmp_path, bad):
    array = np.zeros((2, 3, 4), np.float32)
    array[1, 2, 3] = bad
    sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / "x.nii.gz"))
    with pytest.raises(ValueError, match=r"image x.nii.gz must hold finite values, got \d NaN"):
        read_volume(tmp_path / "x.nii.gz")
    with pytest.raises(ValueError, match="label x.nii.gz must hold finite values"):
        read_label(tmp_path / "x.nii.gz")


def test_label_values_outside_the_map_refused(tmp_path):
    lab = np.zeros((2, 3, 4), np.uint8)
    lab[0, 0, 0] = 16
    sitk.WriteImage(sitk.GetImageFromArray(lab), str(tmp_path / "l.nii.gz"))
    with pytest.raises(ValueError, match=r"label l.nii.gz holds values outside the 'amos' map"):
        read_label(tmp_path / "l.nii.gz", "amos")
    with pytest.raises(ValueError, match=r"outside the 'chaos' map \(0..4\): \[16\]"):
        read_label(tmp_path / "l.nii.gz", "chaos")
    neg = np.zeros((2, 3, 4), np.float32)
    neg[0, 0, 0] = -1
    sitk.WriteImage(sitk.GetImageFromArray(neg), str(tmp_path / "neg.nii.gz"))
    with pytest.raises(ValueError, match="must be non-negative, got minimum -1"):
        read_label(tmp_path / "neg.nii.gz")


def test_non_integral_labels_refused(tmp_path):
    lab = np.zeros((2, 3, 4), np.float32)
    lab[0, 0, :2] = 0.5
    sitk.WriteImage(sitk.GetImageFromArray(lab), str(tmp_path / "interp.nii.gz"))
    with pytest.raises(ValueError, match="must hold integral values, got 2 non-integral voxels"):
        read_label(tmp_path / "interp.nii.gz")
    with pytest.raises(ValueError, match=r"e.g. 0.5\); was it resampled with linear"):
        write_volume(Volume(lab), tmp_path / "out.nii.gz", is_label=True)
    assert not (tmp_path / "out.nii.gz").exists()


def mha_header(spacing: bytes) -> bytes:
    return (
        b"ObjectType = Image\nNDims = 3\nElementSpacing = " + spacing + b"\nDimSize = 2 2 2\n"
        b"ElementType = MET_UCHAR\nElementDataFile = LOCAL\n" + bytes(8)
    )


def test_non_positive_spacing_refused(tmp_path):
    with pytest.raises(ValueError, match=r"spacing must be positive, got \(0.0, 1.0, 1.0\)"):
        Volume(np.zeros((2, 2, 2)), spacing=(0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="spacing must be positive"):
        Volume(np.zeros((2, 2, 2)), spacing=(1.0, -1.0, 1.0))
    (tmp_path / "zero.mha").write_bytes(mha_header(b"1 0 1"))
    with pytest.raises(ValueError, match=r"could not read .*zero.mha: .*spacing"):
        read_volume(tmp_path / "zero.mha")
    # ITK turns a negative spacing into a flipped direction: the same physical grid,
    # so flare_uda receives a positive spacing and the geometry stays right
    (tmp_path / "neg.mha").write_bytes(mha_header(b"1 -2 1"))
    vol = read_volume(tmp_path / "neg.mha")
    assert vol.spacing == (1.0, 2.0, 1.0)
    np.testing.assert_allclose(vol.index_to_physical(np.array([0, 1, 0])), [0, -2, 0])


def test_unknown_label_map_name_when_reading(tmp_path):
    lab = write_volume(Volume(np.zeros((2, 2, 2), np.uint8)), tmp_path / "l.mha", is_label=True)
    with pytest.raises(ValueError, match="unknown label map 'totl'. Did you mean 'total'"):
        read_label(lab, "totl")
