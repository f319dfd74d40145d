"""Volume and Case: the (z, y, x) data model and its validation."""

from __future__ import annotations

import numpy as np
import pytest

from flare_uda.volume import Case, Volume


def test_geometry_views():
    direction = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])  # det +1
    vol = Volume(np.zeros((2, 3, 4)), (2.0, 0.5, 0.25), (1.0, 2.0, 3.0), direction)
    assert vol.shape == (2, 3, 4) and vol.voxel_volume_mm3 == 0.25
    idx = np.array([[0, 0, 0], [1, 2, 3]])
    # spacing * (1, 2, 3) = (2, 1, 0.75); direction maps it to (0.75, 1, -2)
    np.testing.assert_allclose(vol.index_to_physical(idx), [[1, 2, 3], [1.75, 3, 1]])
    homogeneous = vol.affine @ np.array([1, 2, 3, 1.0])
    np.testing.assert_allclose(homogeneous[:3], vol.index_to_physical(np.array([1, 2, 3])))
    assert "shape=(2, 3, 4)" in repr(vol)


def test_scalar_spacing_and_with_array():
    vol = Volume(np.zeros((2, 2, 2)), 1.5)
    assert vol.spacing == (1.5, 1.5, 1.5)
    other = vol.with_array(np.ones((2, 2, 2), np.uint8))
    assert other.same_geometry(vol) and other.array.dtype == np.uint8
    with pytest.raises(ValueError, match=r"array shape must equal the volume's \(2, 2, 2\), got"):
        vol.with_array(np.ones((2, 2)))


def test_same_geometry_and_require():
    a = Volume(np.zeros((2, 2, 2)), (1, 1, 1))
    assert not a.same_geometry(Volume(np.zeros((2, 2, 2)), (1, 1, 1), origin=(0, 0, 1e-3)))
    assert a.same_geometry(Volume(np.zeros((2, 2, 2)), (1, 1, 1 + 1e-6)))
    with pytest.raises(ValueError, match="labels must share one geometry, got shape"):
        a.require_same_geometry(Volume(np.zeros((2, 2, 3))), "labels")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"array": np.zeros((3, 3))}, r"must be 3D \(z, y, x\), got 2D"),
        ({"array": np.zeros((1, 3, 3, 3))}, r"must be 3D \(z, y, x\), got 4D"),
        ({"spacing": (1.0, 0.0, 1.0)}, "spacing must be positive, got"),
        ({"spacing": (1.0, -2.0, 1.0)}, "spacing must be positive"),
        ({"spacing": (1.0, 1.0)}, "spacing must have 3 values"),
        ({"spacing": (1.0, np.nan, 1.0)}, "spacing must be finite"),
        ({"origin": (0.0, np.inf, 0.0)}, "origin must be finite"),
        ({"direction": np.eye(2)}, r"finite 3x3 matrix, got shape \(2, 2\)"),
        ({"direction": 2 * np.eye(3)}, "must be orthonormal"),
    ],
)
def test_volume_errors(kwargs, match):
    kwargs = {"array": np.zeros((2, 2, 2)), **kwargs}
    with pytest.raises(ValueError, match=match):
        Volume(**kwargs)


def test_case_defaults_and_copies():
    img = Volume(np.zeros((2, 2, 2)))
    lab = img.with_array(np.zeros((2, 2, 2), np.uint8))
    case = Case("a", img, lab, "MR", "T1", annotated=(13, 1))
    assert case.annotated == (1, 13)
    assert Case("b", img).annotated == tuple(range(1, 14))
    assert case.with_label(None).label is None and case.with_label(None).annotated == (1, 13)
    assert case.with_label(lab, [2]).annotated == (2,)
    assert case.with_image(img.with_array(np.ones((2, 2, 2)))).image.array.sum() == 8


def test_case_errors():
    img = Volume(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="case_id must be a non-empty str, got ''"):
        Case("", img)
    with pytest.raises(TypeError, match="image must be a Volume, got ndarray"):
        Case("a", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"modality must be one of \['CT', 'MR'\], got 'PET'"):
        Case("a", img, modality="PET")
    with pytest.raises(ValueError, match=r"FLARE labels 1..13, got \[14\]"):
        Case("a", img, annotated=(1, 14))
    with pytest.raises(TypeError, match="label must be a Volume or None, got ndarray"):
        Case("a", img, np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="must hold integers, got float64"):
        Case("a", img, img.with_array(np.zeros((2, 2, 2))))
    # image/label geometry mismatch: shape, spacing, origin
    for label in (
        Volume(np.zeros((2, 2, 3), np.uint8)),
        Volume(np.zeros((2, 2, 2), np.uint8), spacing=(2, 1, 1)),
        Volume(np.zeros((2, 2, 2), np.uint8), origin=(0, 0, 5)),
    ):
        with pytest.raises(ValueError, match="image and label of case 'a' must share one geometry"):
            Case("a", img, label)
