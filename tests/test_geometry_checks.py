"""Geometry is checked, not trusted: shears, DICOM gaps, absurd spacings, huge resampled grids."""

from __future__ import annotations

import numpy as np
import pytest
from io_support import write_dicom_series, write_mha

from flare_uda.data.dicom import require_even_slices
from flare_uda.data.io import read_label, read_volume
from flare_uda.data.resampling import MAX_RESAMPLED_VOXELS, resample_volume, target_shape
from flare_uda.volume import Volume

SHEAR = np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # det 1, not orthonormal


@pytest.mark.parametrize(
    "direction, what",
    [(SHEAR, "shear"), (np.diag([2.0, 0.5, 1.0]), "scaling"), (np.diag([1.0, 1.0, 1.01]), "")],
)
def test_volume_refuses_non_orthonormal_directions(direction, what):
    assert what != "shear" or np.isclose(np.linalg.det(direction), 1.0)  # |det| = 1 misses it
    with pytest.raises(ValueError, match=r"direction must be orthonormal .*\|D\^T D - I\| = "):
        Volume(np.zeros((2, 2, 2)), direction=direction)


def test_volume_accepts_rounding_noise_and_reflections(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    noisy = q + rng.normal(scale=1e-5, size=(3, 3))
    Volume(np.zeros((2, 2, 2)), direction=noisy)
    Volume(np.zeros((2, 2, 2)), direction=np.diag([-1.0, 1.0, 1.0]))


def test_sheared_file_refused_with_its_name(tmp_path):
    path = tmp_path / "sheared.mha"
    write_mha(path, {"TransformMatrix": "1 0 0 0.3 1 0 0 0 1"})
    with pytest.raises(ValueError, match=r"image .*sheared.mha: direction must be orthonormal"):
        read_volume(path)
    with pytest.raises(ValueError, match=r"label .*sheared.mha: direction must be orthonormal"):
        read_label(path)


@pytest.mark.parametrize("spacing", ["0.0001 1 1", "1 1 100000", "1 0.005 1"])
def test_absurd_spacing_in_a_file_refused(tmp_path, spacing):
    path = tmp_path / "odd.mha"
    write_mha(path, {"ElementSpacing": spacing})
    with pytest.raises(ValueError, match=r"odd.mha must have a spacing in \[0.01, 100.0\] mm"):
        read_volume(path)


def test_boundary_spacings_accepted(tmp_path):
    path = tmp_path / "edge.mha"
    write_mha(path, {"ElementSpacing": "0.01 100 3"})
    assert read_volume(path).spacing == pytest.approx((3.0, 100.0, 0.01))


def test_resampled_size_bounded_before_allocating():
    volume = Volume(np.zeros((4, 4, 4), np.float32), spacing=(1e5, 1e5, 1.0))
    with pytest.raises(ValueError, match=r"would make 6.4e\+11 voxels; expected at most 1.07e\+09"):
        resample_volume(volume, (1.0, 1.0, 1.0))
    assert target_shape((512, 512, 512), (2.0, 2.0, 2.0), (1.0, 1.0, 1.0)) == (1024,) * 3
    assert 1024**3 == MAX_RESAMPLED_VOXELS


def dicom_series(tmp_path, n: int = 7):
    array = np.random.default_rng(2).integers(-500, 500, (n, 8, 9)).astype(np.int16)
    folder = tmp_path / "series"
    write_dicom_series(folder, array, (2.5, 1.0, 1.0), (0.0, 0.0, 0.0))
    return folder, array


def test_dicom_series_with_a_missing_slice_refused(tmp_path):
    folder, _ = dicom_series(tmp_path)
    (folder / "slice003.dcm").unlink()
    with pytest.raises(
        ValueError, match=r"expected evenly spaced slices, got a step of 5 mm between slices 2 and"
    ):
        read_volume(folder)


def test_complete_dicom_series_reads_with_its_spacing(tmp_path):
    folder, array = dicom_series(tmp_path)
    volume = read_volume(folder)
    np.testing.assert_array_equal(volume.array, array)
    assert volume.spacing[0] == pytest.approx(2.5)


@pytest.mark.parametrize(
    "positions, bad",
    [
        ([0.0, 2.5, 5.0, 7.5, 10.0], False),
        ([0.0, 2.5, 5.0, 7.501, 10.0], False),  # rounding in the position tags
        ([0.0, 2.5, 5.0, 5.0, 7.5], True),  # a duplicate slice
        ([0.0, 2.5, 5.0, 10.0, 12.5], True),  # a gap
        ([0.0, 2.5, 5.0, 8.0, 11.0], True),  # the step changes
    ],
)
def test_even_slice_rule(tmp_path, positions, bad):
    if bad:
        with pytest.raises(ValueError, match="expected evenly spaced slices"):
            require_even_slices(np.array(positions), tmp_path)
    else:
        require_even_slices(np.array(positions), tmp_path)
