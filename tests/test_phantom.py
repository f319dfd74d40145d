"""Synthetic phantom: geometry, anatomy sanity, intensity orders, determinism, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage

from flare_uda.data.io import read_label, read_volume
from flare_uda.data.phantom import (
    PHANTOM_PRESETS,
    generate_case,
    generate_cohort,
    get_preset,
    preview_figure,
    write_cohort,
)
from flare_uda.data.phantom.intensity import T, intensity_table
from flare_uda.data.phantom.render import keep_largest_components, separable_field

LIVER, RKID, SPLEEN, PANCREAS, AORTA, IVC, RADR, LADR, GB, ESO, STOMACH, DUO, LKID = range(1, 14)


@pytest.fixture(scope="module")
def ct():
    return generate_case("tiny", "CT", None, seed=3)


@pytest.fixture(scope="module")
def t1():
    return generate_case("tiny", "MR", "T1", seed=3)


@pytest.fixture(scope="module")
def t2():
    return generate_case("tiny", "MR", "T2", seed=3)


def centroid_mm(case, label):
    """Physical centroid (z, y, x) in mm of ``label``."""
    idx = np.argwhere(case.label.array == label)
    return case.label.index_to_physical(idx).mean(0)


def interior_values(case, label, iterations=1):
    mask = ndimage.binary_erosion(case.label.array == label, iterations=iterations)
    if mask.sum() < 5:
        mask = case.label.array == label
    return case.image.array[mask].astype(float)


def test_tiny_grid(ct, t1, t2):
    cfg = PHANTOM_PRESETS["tiny"]
    assert ct.image.shape == cfg.ct_shape == (16, 48, 48)
    assert t1.image.shape == t2.image.shape == cfg.mr_shape
    sz, sy, sx = ct.image.spacing
    assert cfg.ct_slice[0] <= sz <= cfg.ct_slice[1] and sy == sx
    assert cfg.ct_inplane[0] <= sx <= cfg.ct_inplane[1]
    assert t2.image.spacing[0] > t1.image.spacing[0] > sz  # MR slices thicker, T2 thickest
    assert t1.image.spacing[2] > sx  # different field of view
    assert np.abs(ct.image.origin).max() > 50  # a non-trivial origin
    assert ct.label.same_geometry(ct.image)
    assert ct.image.array.dtype == np.int16 and ct.label.array.dtype == np.uint8
    assert (ct.modality, ct.sequence, t2.modality, t2.sequence) == ("CT", None, "MR", "T2")
    assert ct.annotated == tuple(range(1, 14))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_all_organs_in_tiny_ct(seed):
    case = generate_case("tiny", "CT", seed=seed)
    assert np.unique(case.label.array).tolist() == list(range(14))


@pytest.mark.parametrize("which", ["ct", "t1", "t2"])
def test_left_right_front_back_up_down(which, request):
    ct = request.getfixturevalue(which)
    # LPS: x grows towards the patient's left, y towards the back, z towards the head
    x = {k: centroid_mm(ct, k)[2] for k in (LIVER, RKID, SPLEEN, LKID, AORTA, IVC, RADR, LADR)}
    assert max(x[LIVER], x[RKID]) < min(x[SPLEEN], x[LKID])
    assert x[RADR] < x[LADR] and x[IVC] < x[AORTA]
    y = {k: centroid_mm(ct, k)[1] for k in (RKID, LKID, PANCREAS, GB)}
    assert min(y[RKID], y[LKID]) > y[PANCREAS] > y[GB]
    z = {k: centroid_mm(ct, k)[0] for k in (RKID, LKID, RADR, LADR, GB, LIVER, ESO)}
    assert z[RADR] > z[RKID] and z[LADR] > z[LKID]
    assert z[GB] < z[LIVER] < z[ESO]


def test_same_seed_same_arrays_other_seed_differs():
    a = generate_case("tiny", "MR", "T2", seed=5)
    b = generate_case("tiny", "MR", "T2", seed=5)
    c = generate_case("tiny", "MR", "T2", seed=6)
    np.testing.assert_array_equal(a.image.array, b.image.array)
    np.testing.assert_array_equal(a.label.array, b.label.array)
    assert a.image.origin == b.image.origin
    assert not np.array_equal(a.label.array, c.label.array)


def test_ct_and_mr_subjects_differ():
    ct_cases, mr_cases = generate_cohort("tiny", n_ct=1, n_mr=3, seed=0)
    assert [c.case_id for c in ct_cases] == ["ct_000"]
    assert [c.case_id for c in mr_cases] == ["mr_t1_000", "mr_t1_001", "mr_t2_000"]
    assert [c.sequence for c in mr_cases] == ["T1", "T1", "T2"]
    vol = [np.bincount(c.label.array.ravel(), minlength=14) * c.label.voxel_volume_mm3
           for c in (ct_cases[0], mr_cases[0])]  # fmt: skip
    assert not np.allclose(vol[0][1:], vol[1][1:], rtol=0.02)


def test_ct_hu_ranges(ct):
    fat = np.median(interior_values(ct, 0)[interior_values(ct, 0) > -300])
    assert -150 < fat < -50
    for organ in (LIVER, SPLEEN, RKID):
        assert 20 < np.median(interior_values(ct, organ)) < 250
    assert ct.image.array.max() > 300  # bone
    assert ct.image.array.min() <= -900  # air / lung / gas


def test_mr_intensity_orders(t1, t2):
    med = {
        (seq, k): np.median(interior_values(case, k))
        for seq, case in (("T1", t1), ("T2", t2))
        for k in (LIVER, SPLEEN, GB)
    }
    assert med["T1", LIVER] > med["T1", SPLEEN]
    assert med["T2", SPLEEN] > med["T2", LIVER]
    assert med["T2", GB] > med["T2", LIVER] and med["T2", GB] > med["T2", SPLEEN]
    assert med["T1", GB] < med["T1", LIVER]


def test_intensity_tables_order():
    ct_v, t1_v, t2_v = (intensity_table("CT", "venous"), intensity_table("MR", "T1"),
                        intensity_table("MR", "T2"))  # fmt: skip
    assert ct_v[T["fat"]] < 0 < ct_v[T["liver"]] < ct_v[T["bone"]]
    assert t1_v[T["fat"]] > t1_v[T["liver"]] > t1_v[T["spleen"]] > t1_v[T["fluid"]]
    assert t2_v[T["fluid"]] > t2_v[T["spleen"]] > t2_v[T["liver"]]
    with pytest.raises(ValueError, match="CT phase must be one of"):
        intensity_table("CT", "T1")
    with pytest.raises(ValueError, match="MR sequence must be one of"):
        intensity_table("MR", "FLAIR")


def contrast_to_noise(case):
    liver, spleen = interior_values(case, LIVER), interior_values(case, SPLEEN)
    noise = np.sqrt(0.5 * (liver.var() + spleen.var()))
    return abs(np.median(liver) - np.median(spleen)) / noise


def test_t2_harder_than_t1():
    cnr = {
        seq: np.mean(
            [contrast_to_noise(generate_case("tiny", "MR", seq, seed=s)) for s in range(3)]
        )
        for seq in ("T1", "T2")
    }
    assert cnr["T2"] < cnr["T1"]


def test_separable_field_matches_direct_sum(rng):
    coef = rng.normal(size=(3, 4, 5))
    axes = [np.array([-10.0, 0.0, 20.0]), np.array([5.0, 7.0]), np.array([-30.0, 1.0, 2.0, 50.0])]
    got = separable_field(coef, axes, step=40.0, sigma=30.0)
    cz, cy, cx = ((np.arange(n) - (n - 1) / 2) * 40.0 for n in coef.shape)
    z, y, x = axes[0][1], axes[1][0], axes[2][3]
    w = (np.exp(-0.5 * ((z - cz) / 30) ** 2)[:, None, None] * np.exp(-0.5 * ((y - cy) / 30) ** 2)
         [None, :, None] * np.exp(-0.5 * ((x - cx) / 30) ** 2)[None, None, :])  # fmt: skip
    assert got.shape == (3, 2, 4)
    assert got[1, 0, 3] == pytest.approx((coef * w).sum(), rel=1e-5)


def test_bad_requests():
    with pytest.raises(KeyError, match="Did you mean 'tiny'"):
        generate_case("tinny")
    with pytest.raises(KeyError, match="unknown phantom preset"):
        get_preset("huge")
    with pytest.raises(ValueError, match="MR cases need a sequence"):
        generate_case("tiny", "MR")
    with pytest.raises(ValueError, match="CT cases take no sequence"):
        generate_case("tiny", "CT", "T1")
    with pytest.raises(ValueError, match="modality must be"):
        generate_case("tiny", "PET")
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        generate_case("tiny", seed=-1)
    with pytest.raises(ValueError, match="n_mr must be a non-negative int"):
        generate_cohort("tiny", 1, -2)


def test_lesion_keeps_organ_labels():
    plain = generate_case("tiny", "CT", seed=4)
    sick = generate_case("tiny", "CT", seed=4, lesion=True)
    np.testing.assert_array_equal(plain.label.array, sick.label.array)
    changed = plain.image.array != sick.image.array
    assert changed.sum() > 0
    # only the lesion changes: inside the liver or a kidney (or partial-volume neighbours)
    inside = np.isin(plain.label.array[changed], (LIVER, RKID, LKID))
    assert inside.mean() > 0.7


def test_cli_tiny_cohort(tmp_path):
    from flare_uda.cli import main

    runner = CliRunner()
    args = ["phantom", "--preset", "tiny", "--n-ct", "2", "--n-mri", "2", "--seed", "0"]
    res = runner.invoke(main, [*args, "--out", str(tmp_path / "a"), "--preview"])
    assert res.exit_code == 0, res.output
    ct_labels = [read_label(p).array for p in sorted((tmp_path / "a/ct/labelsTr").iterdir())]
    assert set(np.unique(np.concatenate([a.ravel() for a in ct_labels]))) == set(range(14))
    manifest = json.loads((tmp_path / "a/mr/manifest.json").read_text())
    assert {m["sequence"] for m in manifest.values()} == {"T1", "T2"}
    assert all(m["modality"] == "MR" for m in manifest.values())
    assert json.loads((tmp_path / "a/ct/dataset.json").read_text())["numTraining"] == 2
    assert (tmp_path / "a/preview.png").stat().st_size > 10_000
    subs = ("ct/imagesTr", "ct/labelsTr", "mr/imagesTr", "mr/labelsTr")
    first = {
        (sub, p.name): read_volume(p) for sub in subs for p in (tmp_path / "a" / sub).iterdir()
    }
    # same seed again, serially, over the first run: identical arrays and geometry
    res = runner.invoke(
        main, [*args, "--out", str(tmp_path / "a"), "--workers", "1", "--overwrite"]
    )
    assert res.exit_code == 0, res.output
    again = {
        (sub, p.name): read_volume(p) for sub in subs for p in (tmp_path / "a" / sub).iterdir()
    }
    assert sorted(again) == sorted(first) and len(first) == 8
    for key, vol in first.items():
        np.testing.assert_array_equal(vol.array, again[key].array)
        assert vol.same_geometry(again[key])
    res = runner.invoke(main, [*args, "--out", str(tmp_path / "a")])
    assert res.exit_code != 0 and "not empty" in res.output
    res = runner.invoke(main, [*args, "--out", str(tmp_path / "c"), "--preset", "quik"])
    assert res.exit_code != 0 and "Did you mean 'quick'" in res.output


def test_write_cohort_refuses_existing_datasets(tmp_path):
    (tmp_path / "ct").mkdir()
    with pytest.raises(ValueError, match="expected no existing dataset folders"):
        write_cohort(tmp_path, "tiny", 1, 1)
    with pytest.raises(ValueError, match="needs n_ct >= 1 and n_mr >= 1"):
        write_cohort(tmp_path / "x", "tiny", 1, 0)


def test_preview_errors(ct, t1, tmp_path):
    with pytest.raises(ValueError, match="must end in .png"):
        preview_figure(ct, t1, t1, tmp_path / "x.jpg")
    with pytest.raises(ValueError, match="needs labelled cases"):
        preview_figure(ct.with_label(None), t1, t1, tmp_path / "x.png")


def test_keep_largest_components():
    lab = np.zeros((5, 6, 6), dtype=np.uint8)
    lab[1:3, 1:4, 1:4] = 3
    lab[4, 5, 5] = 3  # not touching the main piece, but in a corner of the volume
    lab[0, 0, 0] = 7
    out = keep_largest_components(lab)
    assert out[4, 5, 5] == 3  # a piece on the border (the field of view cut the organ) stays
    assert (out[1:3, 1:4, 1:4] == 3).all() and out[0, 0, 0] == 7
    lab2 = np.zeros((8, 8, 8), dtype=np.uint8)
    lab2[1:4, 1:4, 1:4] = 5
    lab2[4, 4, 4] = 5  # diagonal neighbour: same piece (26-connectivity)
    lab2[2, 1, 7] = 5  # not touching the main piece, on the x border: kept
    lab2[6, 6, 6] = 5  # interior sliver: removed
    out2 = keep_largest_components(lab2)
    assert out2[4, 4, 4] == 5 and out2[2, 1, 7] == 5 and out2[6, 6, 6] == 0


def test_one_piece_per_organ(ct):
    for label in range(1, 14):
        _, n = ndimage.label(ct.label.array == label, structure=np.ones((3, 3, 3)))
        assert n == 1, f"organ {label} has {n} pieces"


def test_block_mode_plurality_ties_to_smaller_label():
    from flare_uda.data.phantom.render import _block_mode

    fine = np.zeros((2, 2, 4), dtype=np.uint8)
    fine[:, :, :2] = [[[5, 5], [5, 0]], [[3, 3], [0, 0]]]  # block 0: 5 x3, 3 x2, 0 x3 -> tie 0/5
    fine[:, :, 2:] = 4  # block 1: uniform
    got = _block_mode(fine, (2, 2, 2))
    assert got.shape == (1, 1, 2) and got[0, 0, 1] == 4 and got[0, 0, 0] == 0
    fine[0, 1, 1] = 5  # now 5 x4 wins
    assert _block_mode(fine, (2, 2, 2))[0, 0, 0] == 5


def test_paper_ct_slices_follow_coverage():
    from flare_uda.data.phantom.acquisition import sample_acquisition

    cfg = get_preset("paper")
    for seed in range(5):
        acq = sample_acquisition(cfg, "CT", None, np.random.default_rng(seed))
        assert acq.shape[1:] == (400, 400)
        assert cfg.ct_slice[0] <= acq.spacing[0] <= cfg.ct_slice[1]
        cover = acq.shape[0] * acq.spacing[0]
        assert cfg.ct_cover[0] - acq.spacing[0] <= cover <= cfg.ct_cover[1] + acq.spacing[0]


def test_config_validation():
    from dataclasses import replace

    tiny = get_preset("tiny")
    with pytest.raises(ValueError, match="ct_slice must be \\(low, high\\)"):
        replace(tiny, ct_slice=(3.0, 2.0))
    with pytest.raises(ValueError, match="supersample must be 3 positive integers"):
        replace(tiny, supersample=(2, 0, 2))
    with pytest.raises(ValueError, match="ct_cover must be"):
        replace(tiny, ct_cover=(0.0, 10.0))
    with pytest.raises(TypeError, match="preset must be a str"):
        get_preset(3)
