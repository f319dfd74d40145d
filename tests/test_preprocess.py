"""Preprocessing: fingerprint, normalisation, resampling (nnU-Net rules) and the inverse."""

from __future__ import annotations

import numpy as np
import pytest

from flare_uda.data.fingerprint import compute_fingerprint, intensity_statistics
from flare_uda.data.normalization import normalize
from flare_uda.data.preprocess import PAPER_SPACING, PreprocessConfig, Preprocessor
from flare_uda.data.resampling import (
    resample_to_reference,
    resample_volume,
    separate_z_axis,
    target_shape,
)
from flare_uda.volume import Case, Volume


def rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def sphere(shape, spacing, radius_mm, centre_mm=None) -> np.ndarray:
    """Binary ball, physical radius, centre in mm from voxel 0 (default: middle)."""
    idx = np.indices(shape).astype(float)
    pos = idx * np.asarray(spacing, dtype=float)[:, None, None, None]
    if centre_mm is None:
        centre_mm = (np.asarray(shape) - 1) * np.asarray(spacing) / 2
    d2 = sum((pos[a] - centre_mm[a]) ** 2 for a in range(3))
    return (d2 <= radius_mm**2).astype(np.uint8)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


# ------------------------------------------------------------------ normalisation
def test_ct_normalization_known_values():
    arr = np.array([-2000.0, -100.0, 0.0, 50.0, 100.0, 3000.0]).reshape(1, 2, 3)
    stats = {"mean": 50.0, "std": 25.0, "percentile_00_5": -100.0, "percentile_99_5": 200.0}
    out = normalize(arr, "ct", stats)
    expected = (np.clip(arr, -100, 200) - 50) / 25
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert arr[0, 0, 0] == -2000.0  # input untouched


def test_zscore_and_none():
    rng = np.random.default_rng(1)
    arr = rng.normal(7.0, 3.0, size=(4, 8, 8)).astype(np.float32)
    out = normalize(arr, "zscore")
    assert abs(out.mean()) < 1e-5 and abs(out.std() - 1) < 1e-4
    np.testing.assert_array_equal(normalize(arr, "none"), arr)


def test_zscore_mask_statistics_from_mask_and_zero_outside():
    arr = np.zeros((2, 4, 4), dtype=np.float32)
    arr[0] = 10.0
    arr[0, 0, :2] = 20.0  # mask values: 2 x 20, 14 x 10
    mask = np.zeros_like(arr, dtype=bool)
    mask[0] = True
    arr[1] = 1000.0  # outside: ignored, set to 0
    out = normalize(arr, "zscore", mask=mask)
    vals = arr[mask]
    np.testing.assert_allclose(out[mask], (vals - vals.mean()) / vals.std(), rtol=1e-5)
    assert (out[~mask] == 0).all()


def test_zscore_percentile_clip():
    arr = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    arr[0, 0, 0] = -1e6  # outliers removed by the clip
    arr[-1, -1, -1] = 1e6
    out = normalize(arr, "zscore", clip_percentiles=(0.5, 99.5))
    lo, hi = np.percentile(arr, (0.5, 99.5))
    clipped = np.clip(arr, lo, hi)
    np.testing.assert_allclose(out, (clipped - clipped.mean()) / clipped.std(), atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scheme": "minmax"}, "normalisation scheme must be one of"),
        ({"scheme": "ct"}, "scheme 'ct' needs stats"),
        ({"scheme": "ct", "stats": {"mean": 0.0}}, "missing"),
        (
            {
                "scheme": "ct",
                "stats": {"mean": 0, "std": 1, "percentile_00_5": 5, "percentile_99_5": 1},
            },
            "percentile_00_5 must be <=",
        ),
        ({"scheme": "zscore", "mask": np.ones((2, 2, 2), bool)}, "mask shape"),
        ({"scheme": "zscore", "mask": np.zeros((2, 3, 3), bool)}, "empty mask"),
        ({"scheme": "zscore", "clip_percentiles": (99, 1)}, "clip_percentiles"),
        ({"scheme": "ct", "clip_percentiles": (1, 99)}, "zscore' only"),
    ],
)
def test_normalize_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        normalize(np.ones((2, 3, 3)), **kwargs)


def test_normalize_refuses_nan():
    arr = np.ones((2, 3, 3))
    arr[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite values, got 1 NaN"):
        normalize(arr, "zscore")


# ------------------------------------------------------------------ fingerprint
def test_fingerprint_statistics_and_determinism():
    rng = np.random.default_rng(2)
    cases = []
    for i, sp in enumerate([(3.0, 0.8, 0.8), (5.0, 0.7, 0.7), (2.0, 0.9, 0.9)]):
        lab = np.zeros((6, 10, 10), np.uint8)
        lab[2:4, 3:7, 3:7] = 1
        img = np.where(lab > 0, rng.normal(100, 5, lab.shape), -1000.0).astype(np.float32)
        cases.append(Case(f"c{i}", Volume(img, sp), Volume(lab, sp)))
    cases.append(Case("mr", Volume(np.ones((4, 4, 4)), (1, 1, 1)), modality="MR"))  # unlabelled
    fp = compute_fingerprint(cases, num_samples=5000)
    assert fp["n_cases"] == 4 and fp["n_labelled"] == 3
    np.testing.assert_allclose(fp["median_spacing"], [2.5, 0.85, 0.85])  # 4 cases
    assert fp["modalities"] == ["CT", "MR"]
    st = fp["foreground_intensity_properties"]
    assert abs(st["mean"] - 100) < 1.0 and abs(st["std"] - 5) < 0.5  # background never sampled
    assert st["percentile_00_5"] < st["median"] < st["percentile_99_5"]
    assert compute_fingerprint(cases, num_samples=5000) == fp
    assert compute_fingerprint(cases, num_samples=5000, executor="process") == fp
    assert compute_fingerprint(cases, num_samples=5000, seed=7) != fp


def test_fingerprint_errors():
    with pytest.raises(ValueError, match="at least one case"):
        compute_fingerprint([])
    with pytest.raises(TypeError, match="must be Case objects"):
        compute_fingerprint([Volume(np.ones((2, 2, 2)))])
    empty = Case("e", Volume(np.ones((2, 2, 2))), Volume(np.zeros((2, 2, 2), np.uint8)))
    with pytest.raises(ValueError, match=r"cases \['e'\] have a label with no foreground voxel"):
        compute_fingerprint([empty])
    with pytest.raises(ValueError, match="need foreground samples"):
        intensity_statistics(np.array([]))


# ------------------------------------------------------------------ resampling
def test_target_shape_and_separate_z_rule():
    assert target_shape((10, 100, 100), (5.0, 0.8, 0.8), (2.5, 0.8, 1.6)) == (20, 100, 50)
    assert separate_z_axis((5.0, 0.8, 0.8), (2.5, 0.81, 0.81)) == 0  # 6.25 > 3: z separately
    assert separate_z_axis((1.0, 1.0, 1.0), (1.5, 1.0, 1.0)) is None  # isotropic
    assert separate_z_axis((1.0, 1.0, 1.0), (4.0, 1.0, 1.0)) == 0  # target anisotropic
    assert separate_z_axis((2.0, 0.8, 0.8), (2.0, 0.8, 0.8)) is None  # ratio 2.5 <= 3


def test_separate_z_is_nearest_along_z():
    """Anisotropic source: slices are copied along z (order 0), never blended."""
    rng = np.random.default_rng(3)
    arr = np.repeat(rng.normal(size=(4, 1, 1)), 8, axis=1).repeat(8, axis=2).astype(np.float32)
    out = resample_volume(Volume(arr, (4.0, 1.0, 1.0)), (1.0, 1.0, 1.0))
    assert out.shape == (16, 8, 8)
    assert set(np.unique(out.array.round(5))) <= set(np.unique(arr.round(5)))
    iso = resample_volume(Volume(arr, (2.0, 1.0, 1.0)), (0.5, 1.0, 1.0))  # ratio 2: cubic in z
    assert len(np.unique(iso.array.round(5))) > 4


def test_resample_geometry_extent_and_sphere_volume():
    rng = np.random.default_rng(4)
    spacing, shape = (5.0, 0.7, 0.7), (14, 90, 90)
    direction = rotation(rng)
    lab = Volume(sphere(shape, spacing, 25.0), spacing, (10.0, -20.0, 30.0), direction)
    out = resample_volume(lab, PAPER_SPACING, is_label=True)
    assert out.shape == target_shape(shape, spacing, PAPER_SPACING) == (28, 78, 78)
    assert out.array.dtype == np.uint8 and set(np.unique(out.array)) == {0, 1}
    np.testing.assert_allclose(np.multiply(out.shape, out.spacing), np.multiply(shape, spacing))
    np.testing.assert_allclose(out.spacing, PAPER_SPACING, rtol=0.5 / 28)
    np.testing.assert_array_equal(out.direction, direction)
    # the grid's outer corner (voxel -0.5) stays where it was
    corner_in = lab.index_to_physical(np.array([-0.5, -0.5, -0.5]))
    np.testing.assert_allclose(out.index_to_physical(np.array([-0.5, -0.5, -0.5])), corner_in)
    vol_true = 4 / 3 * np.pi * 25.0**3
    assert abs(out.array.sum() * out.voxel_volume_mm3 / vol_true - 1) < 0.05
    img = resample_volume(lab.with_array(lab.array * 100.0), PAPER_SPACING)
    assert img.array.dtype == np.float32 and img.same_geometry(out, atol=1e-9)


def test_resample_round_trip_to_reference_is_exact_geometry_and_high_dice():
    rng = np.random.default_rng(5)
    spacing, shape = (4.0, 0.9, 0.9), (12, 64, 64)
    ref = Volume(
        np.zeros(shape, np.uint8), spacing, tuple(rng.uniform(-100, 100, 3)), rotation(rng)
    )
    lab = sphere(shape, spacing, 20.0) + sphere(shape, spacing, 8.0, (22.0, 20.0, 20.0))
    label = ref.with_array(lab.astype(np.uint8))
    down = resample_volume(label, (2.5, 1.3, 1.3), is_label=True)
    back = resample_to_reference(down, ref)
    assert back.shape == ref.shape and back.spacing == ref.spacing
    assert back.origin == ref.origin and np.array_equal(back.direction, ref.direction)
    assert back.array.dtype == np.uint8
    for k in (1, 2):
        assert dice(back.array == k, lab == k) > 0.9
    image = resample_to_reference(resample_volume(label, (2.0, 0.45, 0.45)), ref, is_label=False)
    assert image.array.dtype == np.float32 and image.same_geometry(ref, atol=0)


def test_resample_same_spacing_is_identity():
    arr = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    vol = Volume(arr, (2.0, 1.0, 1.0), (1.0, 2.0, 3.0))
    out = resample_volume(vol, (2.0, 1.0, 1.0))
    np.testing.assert_array_equal(out.array, arr)
    assert out.array.dtype == np.float32 and out.same_geometry(vol, atol=0)


def test_resample_errors():
    vol = Volume(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="target spacing must be positive"):
        resample_volume(vol, (0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="3 values"):
        resample_volume(vol, (1.0, 1.0))
    with pytest.raises(TypeError, match="must be a Volume"):
        resample_volume(np.ones((2, 3, 4)), 1.0)
    with pytest.raises(TypeError, match="label volume must hold integers"):
        resample_volume(vol, 0.5, is_label=True)
    with pytest.raises(TypeError, match="label volume must hold integers"):
        resample_to_reference(vol, vol)
    with pytest.raises(TypeError, match="reference must be a Volume"):
        resample_to_reference(vol, None, is_label=False)


# ------------------------------------------------------------------ Preprocessor
def _ct_case(rng, case_id="ct0", spacing=(5.0, 0.8, 0.8)) -> Case:
    lab = sphere((8, 32, 32), spacing, 9.0)
    img = np.where(lab > 0, rng.normal(60, 10, lab.shape), rng.normal(-900, 50, lab.shape))
    return Case(case_id, Volume(img.astype(np.float32), spacing), Volume(lab, spacing))


def test_preprocessor_ct_matches_functions():
    rng = np.random.default_rng(6)
    cases = [_ct_case(rng, f"ct{i}") for i in range(2)]
    pre = Preprocessor(PreprocessConfig(target_spacing=(2.5, 1.6, 1.6))).fit(cases)
    assert pre.modality_ == "CT" and pre.scheme_for(None) == "ct"
    assert pre.stats_ == compute_fingerprint(cases)["foreground_intensity_properties"]
    expected = resample_volume(
        cases[0].image.with_array(normalize(cases[0].image.array, "ct", pre.stats_)),
        (2.5, 1.6, 1.6),
    )
    out = pre(cases[0])
    np.testing.assert_array_equal(out.array, expected.array)
    assert out.same_geometry(expected, atol=0)
    np.testing.assert_array_equal(pre(cases[0].image).array, out.array)  # Volume, fitted modality
    pc = pre.preprocess_case(cases[0])
    assert pc.label.same_geometry(pc.image, atol=0) and pc.label.array.dtype == np.uint8
    assert pc.case_id == "ct0" and pc.annotated == cases[0].annotated


def test_preprocessor_mr_zscore_with_clip_needs_no_fit():
    rng = np.random.default_rng(7)
    img = Volume(rng.gamma(2.0, 50.0, size=(6, 16, 16)).astype(np.float32), (6.0, 1.5, 1.5))
    case = Case("mr0", img, modality="MR", sequence="T2")
    pre = Preprocessor(PreprocessConfig(target_spacing=None, clip_percentiles=(0.5, 99.5)))
    out = pre(case)
    np.testing.assert_array_equal(
        out.array, normalize(img.array, "zscore", clip_percentiles=(0.5, 99.5))
    )
    assert pre.preprocess_case(case).label is None


def test_preprocessor_errors():
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError, match="scheme must be one of"):
        PreprocessConfig(scheme="ctt")
    with pytest.raises(ValueError, match="applies to the z-score scheme"):
        PreprocessConfig(scheme="ct", clip_percentiles=(0.5, 99.5))
    with pytest.raises(ValueError, match="0 <= low < high <= 100"):
        PreprocessConfig(clip_percentiles=(50, 10))
    with pytest.raises(ValueError, match="target_spacing must be positive"):
        PreprocessConfig(target_spacing=(2.5, -1, 1))
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        PreprocessConfig(num_samples=0)
    with pytest.raises(TypeError, match="config must be a PreprocessConfig"):
        Preprocessor({"scheme": "ct"})
    case = _ct_case(rng)
    with pytest.raises(ValueError, match="call fit"):
        Preprocessor()(case)
    with pytest.raises(ValueError, match="needs a modality"):
        Preprocessor()(case.image)
    with pytest.raises(ValueError, match="needs labelled cases"):
        Preprocessor().fit([case.with_label(None)])
    with pytest.raises(TypeError, match="expected a Case or a Volume"):
        Preprocessor()(case.image.array)
    with pytest.raises(TypeError, match="expected a Case"):
        Preprocessor().preprocess_case(case.image)


def test_preprocessor_on_phantom_cohort():
    phantom = pytest.importorskip("flare_uda.data.phantom")
    ct = [phantom.generate_case("tiny", "CT", None, s) for s in (0, 1)]
    mr = phantom.generate_case("tiny", "MR", "T1", 2)
    spacing = (6.0, 4.0, 4.0)
    pre = Preprocessor(PreprocessConfig(target_spacing=spacing)).fit(ct)
    for case in ct:
        out = pre.preprocess_case(case)
        fg = out.image.array[out.label.array > 0]
        assert abs(float(fg.mean())) < 0.5  # dataset foreground z-scored
        assert set(np.unique(out.label.array)) == set(np.unique(case.label.array))
        back = resample_to_reference(out.label, case.label)
        assert back.same_geometry(case.label, atol=0)
        assert dice(back.array == 1, case.label.array == 1) > 0.9  # liver
    out_mr = pre.preprocess_case(mr)  # auto: z-score for MR, no statistics needed
    assert abs(float(out_mr.image.array.mean())) < 0.2
    np.testing.assert_allclose(out_mr.image.spacing, spacing, rtol=0.1)
