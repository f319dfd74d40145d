"""Real public volumes (../shared/data, see its README): IO, remaps, left/right sanity.

Skipped when the folder is absent. Physical coordinates are LPS (ITK): the x
component (last of z, y, x) grows towards the patient's left, so an organ on
the patient's right has the smaller x.
"""

from __future__ import annotations

import numpy as np
import pytest

from flare_uda.data.io import read_label, read_volume
from flare_uda.data.preprocess import PAPER_SPACING, Preprocessor
from flare_uda.data.resampling import resample_to_reference, resample_volume
from flare_uda.volume import Case, Volume

# (image or None, label, label map, FLARE organs the README says are present)
ALL_BUT = lambda *missing: set(range(1, 14)) - set(missing)  # noqa: E731
FILES = [
    ("ct/amos_0001_slab_image.nii.gz", "ct/amos_0001_slab_label.nii.gz", "amos", ALL_BUT(7, 10)),
    ("ct/amos_0013_slab_image.nii.gz", "ct/amos_0013_slab_label.nii.gz", "amos", ALL_BUT(10)),
    ("ct/chaos_ct3_image.nii.gz", "ct/chaos_ct3_label.nii.gz", "chaos_ct", {1}),
    ("ct/totalseg_ct_sm_image.nii.gz", "ct/totalseg_ct_sm_label.nii.gz", "total", ALL_BUT(10)),
    ("mr/totalseg_mr_sm_image.nii.gz", "mr/totalseg_mr_sm_label.nii.gz", "total_mr", ALL_BUT(10)),
    *[
        (
            f"mr/chaos_t2/chaos_t2_{i}_image.nii.gz",
            f"mr/chaos_t2/chaos_t2_{i}_label.nii.gz",
            "chaos",
            {1, 2, 3, 13},
        )
        for i in (1, 2, 3, 5, 8)
    ],  # fmt: skip
    (None, "labels_only/amos_0013_label.nii.gz", "amos", ALL_BUT()),
]
DICOM = (
    "ct/totalseg_ct_dicom",
    "ct/totalseg_ct_dicom_label.nii.gz",
    "total",
    {1, 3, 4, 5, 6, 7, 11},
)
# (organ on the patient's right, organ on the left): kidneys, liver/spleen, adrenals, IVC/aorta
RIGHT_LEFT = [(2, 13), (1, 3), (7, 8), (6, 5)]


def centroid_x(label: Volume, organ: int) -> float:
    """LPS x (mm) of the organ's centroid."""
    return float(label.index_to_physical(np.argwhere(label.array == organ).mean(0))[2])


def check_right_left(label: Volume, name: str) -> int:
    present = set(np.unique(label.array).tolist())
    checked = 0
    for right, left in RIGHT_LEFT:
        if {right, left} <= present:
            xr, xl = centroid_x(label, right), centroid_x(label, left)
            assert xr < xl, f"{name}: organ {right} at x={xr:.1f} not right of {left} at {xl:.1f}"
            checked += 1
    return checked


def corners(volume: Volume) -> np.ndarray:
    """Physical positions of the 8 outer grid corners (voxel edges), sorted."""
    edges = [(-0.5, n - 0.5) for n in volume.shape]
    idx = np.array(np.meshgrid(*edges, indexing="ij")).reshape(3, -1).T
    pts = volume.index_to_physical(idx)
    return pts[np.lexsort(pts.T[::-1])]


@pytest.mark.parametrize(("image", "label", "label_map", "organs"), FILES, ids=lambda v: str(v))
def test_read_remap_and_left_right(shared_data, image, label, label_map, organs):
    lab = read_label(shared_data / label, label_map)
    assert lab.array.dtype == np.uint8
    assert set(np.unique(lab.array).tolist()) - {0} == organs
    if label_map in ("chaos", "chaos_ct", "total", "total_mr", "amos"):
        assert check_right_left(lab, label) >= (1 if len(organs) > 1 else 0)
    if image is None:
        return
    img = read_volume(shared_data / image)
    assert np.isfinite(img.array).all() if img.array.dtype.kind == "f" else True
    case = Case(label.split("/")[-1], img, lab, "MR" if image.startswith("mr") else "CT")
    assert case.image.same_geometry(case.label)
    if case.modality == "CT":
        body = img.array > -500
        body_x = float(img.index_to_physical(np.argwhere(body).mean(0))[2])
        assert centroid_x(lab, 1) < body_x, f"{image}: liver not on the patient's right"


def test_chaos_t2_labels_are_float64_on_disk_and_read_as_integers(shared_data):
    import SimpleITK as sitk

    path = shared_data / "mr/chaos_t2/chaos_t2_1_label.nii.gz"
    assert sitk.ReadImage(str(path)).GetPixelID() == sitk.sitkFloat64
    raw = read_volume(path).array
    lab = read_label(path, "chaos")
    # CHAOS 4 spleen -> FLARE 3, CHAOS 3 left kidney -> FLARE 13
    assert (lab.array[raw == 4] == 3).all() and (lab.array[raw == 3] == 13).all()


def test_dicom_series_and_its_label_align_in_physical_space(shared_data):
    series, label, label_map, organs = DICOM
    img = read_volume(shared_data / series)
    lab = read_label(shared_data / label, label_map)
    assert img.shape == lab.shape == (20, 512, 512)
    assert set(np.unique(lab.array).tolist()) - {0} == organs
    # same physical extent, although the label's array is flipped in y
    np.testing.assert_allclose(corners(img), corners(lab), atol=1e-3)
    assert lab.direction[1, 1] == -img.direction[1, 1]
    on_image = resample_to_reference(lab, img)
    np.testing.assert_array_equal(on_image.array, lab.array[:, ::-1, :])
    case = Case("totalseg_ct_dicom", img, on_image)
    assert check_right_left(case.label, "dicom") >= 2  # liver/spleen, IVC/aorta
    liver_hu = np.median(img.array[case.label.array == 1])
    assert 0 < liver_hu < 200, f"liver median {liver_hu} HU: label not on the liver"


def test_paper_spacing_round_trip_on_a_real_label(shared_data):
    lab = read_label(shared_data / "ct/amos_0013_slab_label.nii.gz", "amos")
    down = resample_volume(lab, PAPER_SPACING, is_label=True)
    assert down.shape == (22, 494, 494)  # round(11 * 5 / 2.5), round(512 * 0.781 / 0.81)
    back = resample_to_reference(down, lab)
    assert back.same_geometry(lab, atol=0)
    for organ in (1, 2, 3, 11, 13):
        a, b = lab.array == organ, back.array == organ
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.97, organ


def test_preprocessor_on_real_ct(shared_data):
    cases = [
        Case(
            name,
            read_volume(shared_data / f"ct/{name}_image.nii.gz"),
            read_label(shared_data / f"ct/{name}_label.nii.gz", label_map),
        )
        for name, label_map in (("totalseg_ct_sm", "total"), ("amos_0013_slab", "amos"))
    ]
    pre = Preprocessor().fit(cases)
    stats = pre.stats_
    # abdominal organ foreground in HU: soft tissue, with contrast-enhanced vessels above
    assert -100 < stats["mean"] < 250 and stats["percentile_00_5"] < 0 < stats["percentile_99_5"]
    out = pre.preprocess_case(cases[0])
    assert out.image.array.dtype == np.float32 and out.image.same_geometry(out.label, atol=0)
    fg = out.image.array[out.label.array > 0]
    assert abs(float(fg.mean())) < 1.0  # z-scored by the dataset foreground statistics
